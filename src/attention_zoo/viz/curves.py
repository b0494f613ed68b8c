"""Training-curve figure from a run's per-epoch history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from attention_zoo.viz.attention import pyplot, save_figure


def plot_history(rows: Sequence[Mapping[str, float]], path: Path, metric: str = "acc", title: str = "") -> Path:
    """Loss (left) and ``metric`` (right) per epoch for train and val; saved as PNG at ``path``."""
    epochs = [row["epoch"] for row in rows]
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 3.8))
    for ax, name in zip(axes, ("loss", metric)):
        for split in ("train", "val"):
            key = f"{split}/{name}"
            points = [(e, row[key]) for e, row in zip(epochs, rows) if key in row]
            if points:
                ax.plot(*zip(*points), label=split, marker="." if len(points) < 40 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
