"""The training curve every trainer draws beside its checkpoint: loss and a validation metric."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def training_curve(
    curve: list[dict[str, float]],
    title: str,
    path: Path,
    x: str = "iteration",
    metric: str = "recall@50",
) -> Path:
    """Training loss (left axis) and validation ``metric`` (right axis) against ``x``."""
    steps = [p[x] for p in curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [p["loss"] for p in curve], color="tab:blue", marker=".")
    ax.set_xlabel(x)
    ax.set_ylabel("training loss", color="tab:blue")
    right = ax.twinx()
    values = [p[metric] for p in curve]
    right.plot(steps, values, color="tab:red", marker=".")
    if values:  # the weights a trainer keeps: the best validation point
        best = max(range(len(values)), key=values.__getitem__)
        right.plot([steps[best]], [values[best]], marker="*", markersize=14, color="tab:red")
        right.annotate(
            f"best {values[best]:.4f}",
            (steps[best], values[best]),
            fontsize=8,
            textcoords="offset points",
            xytext=(6, -12),
        )
    right.set_ylabel(f"validation {metric}", color="tab:red")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
