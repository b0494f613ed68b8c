"""Per-word attention over the image (Xu et al. 2015, Figs. 2-3): the image, then one panel per
generated word with that step's weights α_t upsampled to the image and laid over it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.nn import functional as F

from attention_zoo.viz.attention import pyplot, save_figure


def plot_caption_attention(
    image: torch.Tensor, words: Sequence[str], attention: torch.Tensor, path: Path, title: str = "", per_row: int = 6
) -> Path:
    """image: uint8 (3, H, W); attention: (len(words), L) over a square grid of L cells."""
    plt = pyplot()
    side = math.isqrt(attention.shape[-1])
    panels = len(words) + 1
    rows = -(-panels // per_row)
    fig, axes = plt.subplots(rows, per_row, figsize=(1.9 * per_row, 2.1 * rows), squeeze=False)
    picture = image.permute(1, 2, 0).cpu().numpy()
    size = tuple(image.shape[-2:])
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= panels:
            continue
        ax.imshow(picture)
        if k == 0:
            ax.set_title("image", fontsize=9)
            continue
        grid = attention[k - 1].float().cpu().reshape(1, 1, side, side)
        upsampled = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[0, 0]
        ax.imshow(upsampled.numpy(), cmap="gray", alpha=0.6, vmin=0, vmax=float(upsampled.max()))
        ax.set_title(words[k - 1], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
