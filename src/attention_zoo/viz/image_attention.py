"""Where a CNN's attention looks, drawn over the input images.

- ``cbam_spatial_maps``: the spatial attention M_s (Woo et al. 2018, Eq. 3) of the last CBAM
  of each stage, read with forward hooks during one forward pass.
- ``grad_cam``: Grad-CAM (Selvaraju et al. 2017) of the last stage for the predicted class,
  through captum; the maps of CBAM's Fig. 4, which compares them for baseline, SE and CBAM.
- ``non_local_maps``: the weights f(x_i, x_j)/C(x) of the first non-local block for chosen query
  positions i over all key positions j (Wang et al. 2018, Fig. 3 draws them for video).
- ``plot_maps``: one row per image, the image and then each map overlaid on it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.attention.cbam import SpatialAttention
from attention_zoo.attention.generalized_2d import GeneralizedAttention2d
from attention_zoo.attention.non_local import NonLocalBlock
from attention_zoo.viz.attention import pyplot, save_figure


def cbam_spatial_maps(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"M_s stage k": (B, H_k, W_k)} for the last CBAM of each stage; {} for a model without CBAM."""
    maps: dict[str, torch.Tensor] = {}
    hooks = []
    for stage_index, stage in enumerate(getattr(model, "stages", [])):
        spatial = [m for m in stage.modules() if isinstance(m, SpatialAttention)]
        if spatial:
            label = f"M_s stage {stage_index + 1}"
            hooks.append(
                spatial[-1].register_forward_hook(lambda m, i, out, label=label: maps.__setitem__(label, out[:, 0].detach()))
            )
    try:
        with torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return maps


def grad_cam(model: nn.Module, images: torch.Tensor, layer: nn.Module, targets: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of ``layer`` for class ``targets`` (B,), upsampled to the image size: (B, H, W)."""
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(model, layer).attribute(images, target=targets.tolist(), relu_attributions=True)  # (B, 1, h, w)
    return LayerAttribution.interpolate(cam, tuple(images.shape[-2:]), interpolate_mode="bilinear")[:, 0].detach()


def input_of(block: nn.Module, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """What ``block`` receives when ``model`` runs on ``inputs`` (without gradients)."""
    captured = {}
    hook = block.register_forward_hook(lambda m, args, out: captured.__setitem__("x", args[0]))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        hook.remove()
    return captured["x"]


def non_local_maps(model: nn.Module, images: torch.Tensor, queries: Sequence[Sequence[float]]) -> dict[str, torch.Tensor]:
    """{"query (y, x)": (B, h, w)}: the first non-local (or generalized attention) block's weights
    over its key grid for each query, given as (y, x) fractions of the feature map (a generalized
    block's heads averaged); {} for a model without such blocks."""
    blocks = [m for m in model.modules() if isinstance(m, (NonLocalBlock, GeneralizedAttention2d))]
    if not blocks:
        return {}
    x = input_of(blocks[0], model, images)  # (B, C, H, W)
    with torch.no_grad():
        if isinstance(blocks[0], GeneralizedAttention2d):
            weights = blocks[0].last_weights.mean(dim=1)  # (B, H*W, M), heads averaged, from that forward pass
        else:
            weights = blocks[0].attention(x)  # (B, H*W, M)
    height, width = x.shape[-2:]
    if isinstance(blocks[0], GeneralizedAttention2d):
        key_height = -(-height // blocks[0].kv_stride)
    else:
        key_height = height // 2 if blocks[0].pool is not None else height
    maps = {}
    for y, x_frac in queries:
        row, col = min(int(y * height), height - 1), min(int(x_frac * width), width - 1)
        maps[f"query ({y:g}, {x_frac:g})"] = weights[:, row * width + col].reshape(len(images), key_height, -1)
    return maps


def plot_maps(
    images: torch.Tensor,
    columns: dict[str, torch.Tensor],
    row_labels: Sequence[str],
    path: Path,
    title: str = "",
    markers: dict[str, tuple[float, float]] | None = None,
) -> Path:
    """images: uint8 (B, 3, H, W); columns: name -> (B, h, w) maps, each upsampled to (H, W),
    min-max scaled per image and drawn over it; markers: name -> (y, x) fractions to mark with a cross."""
    plt = pyplot()
    rows, cols = len(images), 1 + len(columns)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + 0.4, 1.6 * rows + 0.5), squeeze=False)
    size = tuple(images.shape[-2:])
    for r, image in enumerate(images):
        picture = image.permute(1, 2, 0).cpu().numpy()
        axes[r, 0].imshow(picture)
        axes[r, 0].set_ylabel(row_labels[r], fontsize=7)
        for c, (name, maps) in enumerate(columns.items(), start=1):
            m = F.interpolate(maps[r][None, None].float().cpu(), size=size, mode="nearest")[0, 0]
            m = (m - m.min()) / (m.max() - m.min()).clamp_min(1e-12)
            axes[r, c].imshow(picture)
            axes[r, c].imshow(m.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
            if markers and name in markers:
                y, x = markers[name]
                axes[r, c].plot(x * size[1] - 0.5, y * size[0] - 0.5, "w+", markersize=9, markeredgewidth=2)
    for c, name in enumerate(["image", *columns]):
        axes[0, c].set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:  # wrapped to the figure's width (about 11 characters per inch at 9 pt)
        fig.suptitle(textwrap.fill(title, width=int(11 * fig.get_figwidth())), fontsize=9)
    return save_figure(fig, path)


def spacetime_maps(model: nn.Module, clips: torch.Tensor, queries: Sequence[Sequence[float]]) -> dict[str, torch.Tensor]:
    """{"query (t, y, x)": (B, T, h, w)}: the first spacetime non-local block's weights over all
    its key positions (every frame) for each query, given as (t, y, x) fractions of the volume
    (Wang et al. Figs. 1 and 3); {} for a model without one."""
    blocks = [m for m in model.modules() if isinstance(m, NonLocalBlock) and m.dims == 3]
    if not blocks:
        return {}
    x = input_of(blocks[0], model, clips)  # (B, C, T, H, W)
    with torch.no_grad():
        weights = blocks[0].attention(x)  # (B, T·H·W, M)
    frames, height, width = x.shape[2:]
    key_h, key_w = (height // 2, width // 2) if blocks[0].pool is not None else (height, width)
    maps = {}
    for t, y, x_frac in queries:
        index = (min(int(t * frames), frames - 1) * height + min(int(y * height), height - 1)) * width
        index += min(int(x_frac * width), width - 1)
        maps[f"query (t {t:g}, y {y:g}, x {x_frac:g})"] = weights[:, index].reshape(len(clips), frames, key_h, key_w)
    return maps


def plot_spacetime_maps(
    clips: torch.Tensor, maps: dict[str, torch.Tensor], row_labels: Sequence[str], path: Path, title: str = ""
) -> Path:
    """clips: uint8 (B, 3, T, H, W); maps: name -> (B, T, h, w). One row per clip and query, one
    column per frame: the frame with the weights on it (scaled by the row's maximum, so that the
    frames of a row compare), and a cross at the query in its own frame."""
    plt = pyplot()
    b, _, frames, height, width = clips.shape
    rows = [(i, name) for i in range(b) for name in maps]
    fig, axes = plt.subplots(len(rows), frames, figsize=(1.3 * frames + 0.4, 1.4 * len(rows) + 0.5), squeeze=False)
    for r, (i, name) in enumerate(rows):
        weights = F.interpolate(maps[name][i][:, None].float().cpu(), size=(height, width), mode="nearest")[:, 0]
        weights = weights / weights.max().clamp_min(1e-12)  # (T, H, W)
        t, y, x = (float(v.split()[1]) for v in name.removeprefix("query (").removesuffix(")").split(", "))
        for f in range(frames):
            axes[r, f].imshow(clips[i, :, f].permute(1, 2, 0).cpu().numpy())
            axes[r, f].imshow(weights[f].numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
            if f == min(int(t * frames), frames - 1):
                axes[r, f].plot(x * width - 0.5, y * height - 0.5, "w+", markersize=9, markeredgewidth=2)
            axes[r, f].set_xticks([]), axes[r, f].set_yticks([])
        axes[r, 0].set_ylabel(f"{row_labels[i]}\n{name.removeprefix('query ')}", fontsize=6)
    for f in range(frames):
        axes[0, f].set_title(f"frame {f + 1}", fontsize=8)
    if title:
        fig.suptitle(textwrap.fill(title, width=int(11 * fig.get_figwidth())), fontsize=9)
    return save_figure(fig, path)
