"""CBAM: Convolutional Block Attention Module of Woo, Park, Lee and Kweon 2018.

https://arxiv.org/abs/1807.06521

    M_c(F) = σ(MLP(AvgPool(F)) + MLP(MaxPool(F)))              (Eq. 2)  channel attention, (C, 1, 1)
    M_s(F) = σ(f^{7x7}([AvgPool_c(F); MaxPool_c(F)]))          (Eq. 3)  spatial attention, (1, H, W)
    F'  = M_c(F) ⊗ F,   F'' = M_s(F') ⊗ F'                     (Eq. 1)  channel first, then spatial

The MLP is shared by both pooled descriptors: C -> C/r -> C with a ReLU between (r = 16).
The module sits on the residual branch of a block, before the addition (Fig. 3); the CIFAR
ResNet applies it there through ``build_block_attention("cbam", ...)``.

Switches for the paper's ablations (Sec. 4.1):
- ``channel_pooling``: "avg", "max" or "avg+max" descriptors for M_c (Table 1);
  "avg" with ``spatial=False`` is exactly SE (Hu et al.; see squeeze_excitation.py).
- ``spatial_kernel``: the k of f^{kxk}, 3 or 7 (Table 2).
- ``arrangement`` (Table 3): "channel_spatial" (Eq. 1), "spatial_channel" (M_s first, then
  M_c on its output), or "parallel": both maps computed from the same F and applied together,
  F'' = M_c(F) ⊗ M_s(F) ⊗ F. The paper does not write the parallel form out; this is its
  direct reading (each map from F, combined by the same element-wise product).

Departure from the authors' code: their spatial gate puts a BatchNorm after the kxk
convolution; Eq. 3 has none, and we follow Eq. 3. The MLP layers carry biases, as in their code.

Speed (results/bench_cnn_attention.md), same values: both channel descriptors go through the shared
MLP in one call, pooled by the adaptive pooling kernels (one pass each way, the max's backward
through its saved indices); max pooling over channels is ``max(...).values``, whose backward sends
the gradient to the one maximum (``amax`` splits it among ties, which real-valued inputs do not
have, at twice the cost); the channel mean is a sum divided on the pooled map, so its backward
broadcasts without a full-size division; the pooled spatial map follows the input's
channels_last layout into the kxk convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attention_zoo.choices import check_choice

CHANNEL_POOLINGS = ("avg", "max", "avg+max")
ARRANGEMENTS = ("channel_spatial", "spatial_channel", "parallel")


class ChannelAttention(nn.Module):
    """M_c of Eq. 2: (B, C, H, W) -> (B, C, 1, 1) weights in (0, 1)."""

    def __init__(self, channels: int, reduction: int = 16, pooling: str = "avg+max"):
        super().__init__()
        check_choice("CBAM channel_pooling", pooling, CHANNEL_POOLINGS)
        hidden = max(channels // reduction, 1)
        self.pooling = pooling
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))  # W_1, W_0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        descriptors = []
        if "avg" in self.pooling:
            descriptors.append(F.adaptive_avg_pool2d(x, 1).flatten(1))  # (B, C) F^c_avg
        if "max" in self.pooling:
            descriptors.append(F.adaptive_max_pool2d(x, 1).flatten(1))  # (B, C) F^c_max
        logits = self.mlp(torch.stack(descriptors)).sum(dim=0)  # the shared MLP on both at once, summed: (B, C)
        return torch.sigmoid(logits)[:, :, None, None]  # (B, C, 1, 1)


class SpatialAttention(nn.Module):
    """M_s of Eq. 3: (B, C, H, W) -> (B, 1, H, W) weights in (0, 1)."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        check_choice("CBAM spatial_kernel", kernel_size, (3, 7))
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)  # f^{kxk}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel_mean = x.sum(dim=1, keepdim=True) / x.shape[1]  # divided after the sum: no full-size division backward
        pooled = torch.cat([channel_mean, x.max(dim=1, keepdim=True).values], dim=1)  # (B, 2, H, W)
        if x.is_contiguous(memory_format=torch.channels_last):  # torch.cat gives NCHW; the CPU conv is ~2x faster in NHWC
            pooled = pooled.contiguous(memory_format=torch.channels_last)
        return torch.sigmoid(self.conv(pooled))  # (B, 1, H, W)


class CBAM(nn.Module):
    """Channel and spatial attention on a feature map; output has the input's shape (Eq. 1)."""

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        channel_pooling: str = "avg+max",
        spatial_kernel: int = 7,
        arrangement: str = "channel_spatial",
        spatial: bool = True,
    ):
        super().__init__()
        check_choice("CBAM arrangement", arrangement, ARRANGEMENTS)
        self.arrangement = arrangement
        self.channel = ChannelAttention(channels, reduction, channel_pooling)
        self.spatial = SpatialAttention(spatial_kernel) if spatial else None  # its output M_s: hook it for figures

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        if self.spatial is None:
            return x * self.channel(x)
        if self.arrangement == "channel_spatial":
            x = x * self.channel(x)  # F'
            return x * self.spatial(x)  # F''
        if self.arrangement == "spatial_channel":
            x = x * self.spatial(x)
            return x * self.channel(x)
        return x * self.channel(x) * self.spatial(x)  # parallel: both maps from the same F
