"""Attention figures: alignment matrices (Bahdanau et al. 2015, Fig. 3) and a grid of one
layer's attention heads (Vaswani et al. 2017, Figs. 3-5)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


def plot_alignment(
    weights: torch.Tensor, source_tokens: Sequence[str], target_tokens: Sequence[str], path: Path, title: str = ""
) -> Path:
    """Annotation weights α_ij as a grey-scale matrix, source tokens across the top and target
    tokens down the side (0 = black, 1 = white, as in the paper); saved as PNG at ``path``.

    weights: (T, S), row i = the weights over the source when emitting target token i.
    """
    plt = pyplot()
    rows, cols = _check_shape(weights, source_tokens, target_tokens)
    fig, ax = plt.subplots(figsize=(0.42 * cols + 1.8, 0.42 * rows + 1.6))
    _draw(ax, weights, source_tokens, target_tokens)
    if title:
        ax.set_title(title, pad=12, fontsize=9)
    return save_figure(fig, path)


def plot_heads(
    weights: torch.Tensor, key_tokens: Sequence[str], query_tokens: Sequence[str], path: Path, title: str = ""
) -> Path:
    """Every head of one attention layer side by side, each as in ``plot_alignment``.

    weights: (h, T, S), head m's row i = query token i's weights over the key tokens.
    """
    plt = pyplot()
    heads = weights.shape[0]
    rows, cols = _check_shape(weights[0], key_tokens, query_tokens)
    per_row = min(heads, 4)
    grid_rows = -(-heads // per_row)
    fig, axes = plt.subplots(
        grid_rows, per_row, figsize=(per_row * (0.3 * cols + 1.4), grid_rows * (0.3 * rows + 1.6)), squeeze=False
    )
    for m, ax in enumerate(axes.flat):
        if m >= heads:
            ax.axis("off")
            continue
        _draw(ax, weights[m], key_tokens, query_tokens, fontsize=6)
        ax.set_xlabel(f"head {m + 1}", fontsize=8)  # below: the token labels take the top
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _check_shape(weights: torch.Tensor, x_tokens: Sequence[str], y_tokens: Sequence[str]) -> tuple[int, int]:
    rows, cols = weights.shape
    if (rows, cols) != (len(y_tokens), len(x_tokens)):
        raise ValueError(f"weights {tuple(weights.shape)} do not match {len(y_tokens)} target x {len(x_tokens)} source tokens")
    return rows, cols


def _draw(ax, weights: torch.Tensor, x_tokens: Sequence[str], y_tokens: Sequence[str], fontsize: float | None = None) -> None:
    """Grey scale, 0 = black and 1 = white (the paper's), x labels on top."""
    ax.imshow(weights.float().cpu().numpy(), cmap="gray", vmin=0.0, vmax=1.0, aspect="equal")
    ax.set_xticks(range(len(x_tokens)), x_tokens, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(len(y_tokens)), y_tokens, fontsize=fontsize)
    ax.xaxis.tick_top()


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path
