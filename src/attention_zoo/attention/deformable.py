"""Deformable convolution (Dai et al. 2017, v1; Zhu, Hu, Lin and Dai 2019, v2 with modulation),
the form of spatial attention Zhu et al. 2019 ("An Empirical Study of Spatial Attention
Mechanisms", Sec. 3.2) set beside the Transformer's terms: its sampling depends on the query
content and the relative position, like E2.

For output position p and kernel tap k (offsets p_k of the regular K x K grid):

    y(p) = Σ_k w_k · x(p + p_k + Δp_k) · Δm_k                   (v2 Eq. 1; v1: Δm_k = 1)

where Δp_k (two numbers per tap) and Δm_k = sigmoid(·) come from a K x K convolution of the same
input (``offset``), x at fractional positions is bilinearly interpolated, and positions outside
the map read zero. The offset convolution starts at zero (both papers), so a new layer samples
the regular grid: v1 is then the plain convolution, v2 the plain convolution times 0.5 (which a
following BatchNorm normalizes away). The arithmetic is torchvision.ops.deform_conv2d.
"""

from __future__ import annotations

import torch
from torch import nn


class DeformableConv2d(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding: int = 1, modulated: bool = True
    ):
        super().__init__()
        self.stride, self.padding, self.modulated = stride, padding, modulated
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)  # w_k
        taps = kernel_size * kernel_size
        with torch.random.fork_rng(devices=[]):  # zeroed below: its default init must not move the model's other draws
            self.offset = nn.Conv2d(in_channels, (3 if modulated else 2) * taps, kernel_size, stride=stride, padding=padding)
        nn.init.zeros_(self.offset.weight), nn.init.zeros_(self.offset.bias)
        self.taps = taps

    def offsets_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Δp: (B, 2K², H', W') as (dy, dx) per tap; Δm: (B, K², H', W') in (0, 1), or None for v1."""
        predicted = self.offset(x)
        if not self.modulated:
            return predicted, None
        return predicted[:, : 2 * self.taps], torch.sigmoid(predicted[:, 2 * self.taps :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import deform_conv2d  # imported here: torchvision.ops loads torch._dynamo, ~2 s at every start

        offsets, mask = self.offsets_and_mask(x)
        return deform_conv2d(x, offsets, self.conv.weight, stride=self.stride, padding=self.padding, mask=mask)
