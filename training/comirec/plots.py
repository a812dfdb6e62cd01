"""PNG figures of multi-interest runs: the lambda trade-off (the training curve is
``training.curves``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


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
