"""PNG figures of multi-interest runs: the training curve and the lambda trade-off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def training_curve(curve: list[dict[str, float]], title: str, path: Path) -> Path:
    """Loss and validation Recall@50 against iterations."""
    it = [p["iteration"] for p in curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(it, [p["loss"] for p in curve], color="tab:blue", marker=".")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss", color="tab:blue")
    right = ax.twinx()
    right.plot(it, [p["recall@50"] for p in curve], color="tab:red", marker=".")
    right.set_ylabel("validation Recall@50", color="tab:red")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def tradeoff(sweep: list[dict[str, Any]], title: str, path: Path) -> Path:
    """Recall@50 against Diversity@50, one point per lambda."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    x = [p["diversity@50"] for p in sweep]
    y = [p["recall@50"] for p in sweep]
    ax.plot(x, y, marker="o")
    for p in sweep:
        ax.annotate(f"λ={p['lambda']:g}", (p["diversity@50"], p["recall@50"]), fontsize=8)
    ax.set_xlabel("Diversity@50")
    ax.set_ylabel("Recall@50")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
