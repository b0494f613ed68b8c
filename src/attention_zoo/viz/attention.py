"""Attention figures: alignment matrices (Bahdanau et al. 2015, Fig. 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch


def plot_alignment(
    weights: torch.Tensor, source_tokens: Sequence[str], target_tokens: Sequence[str], path: Path, title: str = ""
) -> Path:
    """Annotation weights α_ij as a grey-scale matrix, source tokens across the top and target
    tokens down the side (0 = black, 1 = white, as in the paper); saved as PNG at ``path``.

    weights: (T, S), row i = the weights over the source when emitting target token i.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows, cols = weights.shape
    if (rows, cols) != (len(target_tokens), len(source_tokens)):
        raise ValueError(f"weights {tuple(weights.shape)} do not match {len(target_tokens)} target x {len(source_tokens)} source tokens")
    fig, ax = plt.subplots(figsize=(0.42 * cols + 1.8, 0.42 * rows + 1.6))
    ax.imshow(weights.float().cpu().numpy(), cmap="gray", vmin=0.0, vmax=1.0, aspect="equal")
    ax.set_xticks(range(cols), source_tokens, rotation=90)
    ax.set_yticks(range(rows), target_tokens)
    ax.xaxis.tick_top()
    if title:
        ax.set_title(title, pad=12, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
