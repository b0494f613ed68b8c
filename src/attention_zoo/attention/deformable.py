"""Deformable convolution (Dai et al. 2017, v1; Zhu, Hu, Lin and Dai 2019, v2 with modulation),
the form of spatial attention Zhu et al. 2019 ("An Empirical Study of Spatial Attention
Mechanisms", Sec. 3.2) set beside the Transformer's terms: its sampling depends on the query
content and the relative position, like E2.

For output position p and kernel tap k (offsets p_k of the regular K x K grid):

    y(p) = Σ_k w_k · x(p + p_k + Δp_k) · Δm_k                   (v2 Eq. 1; v1: Δm_k = 1)

where Δp_k (two numbers per tap) and Δm_k = sigmoid(·) come from a K x K convolution of the same
input (``offset``), x at fractional positions is bilinearly interpolated (Dai et al. Eq. 3-4), and
positions outside the map read zero. The offset convolution starts at zero (both papers), so a new
layer samples the regular grid: v1 is then the plain convolution, v2 the plain convolution times
0.5 (which a following BatchNorm normalizes away). The offset layer learns at 0.1 times the
network's rate (``offset_lr_mult``; mmdetection's DCN ResNets and mmcv's ``dcn_offset_lr_mult``):
at the full rate (SGD 0.1) a ResNet-20 with deformable stage 3 diverged in its first epoch
(training loss 15, 27% validation accuracy after 3 epochs; results/bench/deformable_offset_lr_1.0_diverged).

The sampling is written out here (``grid_sample`` at the K² shifted grids, then one matrix product
with w): on the CPU a layer trains 8-11x faster than torchvision.ops.deform_conv2d, which the tests use
as the reference (equal to 1e-12 in float64, values and gradients; ~1e-14 observed).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def deformable_convolution(
    x: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, mask: torch.Tensor | None
) -> torch.Tensor:
    """x (B, C, H, W), offsets (B, 2K², H', W') as (dy, dx) per tap, weight (O, C, K, K),
    mask (B, K², H', W') or None -> (B, O, H', W'); torchvision.ops.deform_conv2d's arguments."""
    b, c, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    out_h, out_w = offsets.shape[-2:]
    tap_y, tap_x = torch.meshgrid(torch.arange(kh, device=x.device), torch.arange(kw, device=x.device), indexing="ij")
    rows = torch.arange(out_h, device=x.device) * stride - padding  # p's row, less the padding
    cols = torch.arange(out_w, device=x.device) * stride - padding
    sample_y = rows[:, None] + tap_y.reshape(-1, 1, 1) + offsets[:, 0::2]  # (B, K², H', W'): p + p_k + Δp_k
    sample_x = cols[None, :] + tap_x.reshape(-1, 1, 1) + offsets[:, 1::2]
    # grid_sample's coordinates (align_corners=False): pixel centre i at (2i + 1) / size - 1; out of the map reads 0
    grid = torch.stack(((2 * sample_x + 1) / width - 1, (2 * sample_y + 1) / height - 1), dim=-1)  # (B, K², H', W', 2)
    sampled = F.grid_sample(
        x, grid.view(b, kh * kw * out_h, out_w, 2), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    sampled = sampled.reshape(b, c, kh * kw, out_h, out_w)  # x(p + p_k + Δp_k); reshape: channels_last input
    if mask is not None:
        sampled = sampled * mask[:, None]  # · Δm_k
    columns = sampled.reshape(b, c * kh * kw, out_h * out_w)
    return (weight.reshape(out_channels, c * kh * kw) @ columns).view(b, out_channels, out_h, out_w)  # Σ_k w_k ·


class DeformableConv2d(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        modulated: bool = True,
        offset_lr_mult: float = 0.1,
    ):
        super().__init__()
        self.stride, self.padding, self.modulated = stride, padding, modulated
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)  # w_k
        taps = kernel_size * kernel_size
        with torch.random.fork_rng(devices=[]):  # zeroed below: its default init must not move the model's other draws
            self.offset = nn.Conv2d(in_channels, (3 if modulated else 2) * taps, kernel_size, stride=stride, padding=padding)
        nn.init.zeros_(self.offset.weight), nn.init.zeros_(self.offset.bias)
        self.offset.lr_mult = offset_lr_mult  # the optimizer's rate for Δp, Δm: this times the network's (engine/optim.py)
        self.taps = taps

    def offsets_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Δp: (B, 2K², H', W') as (dy, dx) per tap; Δm: (B, K², H', W') in (0, 1), or None for v1."""
        predicted = self.offset(x)
        if not self.modulated:
            return predicted, None
        return predicted[:, : 2 * self.taps], torch.sigmoid(predicted[:, 2 * self.taps :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offsets, mask = self.offsets_and_mask(x)
        return deformable_convolution(x, offsets, self.conv.weight, self.stride, self.padding, mask)
