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
broadcasts without a full-size division; the pooled spatial map is laid out channels_last for the
kxk convolution. In the paper's order (channel then spatial) the backward over the full-size maps
is written out (``_ChannelThenSpatial``): autograd's adds up each consumer's gradient apart.
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
        return self.from_descriptors(self.describe(x)[0])

    def describe(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The descriptors ``pooling`` names, (K, B, C): F^c_avg, then F^c_max; and the max's argmax
        over H*W, (B, C, 1, 1), or None without max pooling."""
        descriptors, argmax = [], None
        if "avg" in self.pooling:
            descriptors.append(F.adaptive_avg_pool2d(x, 1).flatten(1))  # (B, C) F^c_avg
        if "max" in self.pooling:
            channel_max, argmax = F.adaptive_max_pool2d(x, 1, return_indices=True)
            descriptors.append(channel_max.flatten(1))  # (B, C) F^c_max
        return torch.stack(descriptors), argmax

    def from_descriptors(self, descriptors: torch.Tensor) -> torch.Tensor:
        """(K, B, C) pooled descriptors (avg first, then max) -> M_c, (B, C, 1, 1)."""
        logits = self.mlp(descriptors).sum(dim=0)  # the shared MLP on both at once, summed: (B, C)
        return torch.sigmoid(logits)[:, :, None, None]


class SpatialAttention(nn.Module):
    """M_s of Eq. 3: (B, C, H, W) -> (B, 1, H, W) weights in (0, 1)."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        check_choice("CBAM spatial_kernel", kernel_size, (3, 7))
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)  # f^{kxk}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_pooled(self.pool(x)[0])

    @staticmethod
    def pool(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[AvgPool_c; MaxPool_c] of x, (B, 2, H, W), and the max's argmax over C, (B, 1, H, W)."""
        channel_max, argmax = x.max(dim=1, keepdim=True)
        channel_mean = x.sum(dim=1, keepdim=True) / x.shape[1]  # divided after the sum: no full-size division backward
        return torch.cat([channel_mean, channel_max], dim=1), argmax

    def from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) [AvgPool_c; MaxPool_c] -> M_s, (B, 1, H, W)."""
        pooled = pooled.contiguous(memory_format=torch.channels_last)  # the CPU kxk conv is ~2x faster in NHWC
        return torch.sigmoid(self.conv(pooled))


_AXES = ((-1, 1, 1, 1), (1, 1, -1, 1), (1, 1, 1, -1))  # how an index of B, H or W broadcasts over (B, C, H, W)


def _add_at(target: torch.Tensor, coordinates: tuple[torch.Tensor, ...], values: torch.Tensor) -> None:
    """target[b, c, h, w] += values at the (b, c, h, w) of ``coordinates`` (broadcast to values' shape, no
    position twice), in place, in any dense layout: the gradient of a max goes to its argmax. scatter_add_
    would copy a channels_last target to NCHW and back on the CPU, two full passes for a few values."""
    offsets = sum(index * stride for index, stride in zip(coordinates, target.stride()))  # storage offsets
    storage = target.as_strided((target.numel(),), (1,), target.storage_offset())
    storage.index_add_(0, offsets.flatten(), values.to(target.dtype).flatten())


class _ChannelThenSpatial(torch.autograd.Function):
    """F'' = M_s(F') ⊗ F',  F' = M_c(F) ⊗ F  (Eq. 1), with the backward over the full-size maps written out.

    Same values and gradients as the modules composed by autograd (tests/test_cbam.py), in fewer
    passes over (B, C, H, W) memory, which is what CBAM costs on a CPU (results/bench_cnn_attention.md).
    Autograd writes each consumer's gradient of F and F' apart and adds them up (F feeds two poolings and
    a product; F' a sum, a max and a product), and scatters each max's gradient into a zero tensor; here

        dL/dF' = dL/dF'' ⊗ M_s + (1/C) dL/dAvgPool_c   (one pass)  + dL/dMaxPool_c at each argmax over C
        dL/dF  = dL/dF'  ⊗ M_c + (1/HW) dL/dF^c_avg    (one pass)  + dL/dF^c_max at each argmax over H, W

    and the small maps' own graphs (the MLP, the kxk convolution: (B, C) and (B, 2, H, W) inputs) are
    differentiated by autograd from dL/dM_s = Σ_c dL/dF'' ⊗ F' and dL/dM_c = Σ_hw dL/dF' ⊗ F.
    Differentiable once (no double backward); the small graphs are kept until the outer graph is freed,
    so that the backward can run again on a retained graph.
    """

    @staticmethod
    def forward(ctx, x, channel: ChannelAttention, spatial: SpatialAttention, *parameters):
        descriptors, ctx.channel_argmax = channel.describe(x)  # (K, B, C), (B, C, 1, 1) over H*W or None
        ctx.descriptors = descriptors.requires_grad_()
        with torch.enable_grad():
            ctx.channel_weights = channel.from_descriptors(ctx.descriptors)  # M_c: (B, C, 1, 1), with its graph
        f1 = x * ctx.channel_weights.detach()  # F'
        pooled, ctx.spatial_argmax = spatial.pool(f1)  # (B, 2, H, W), (B, 1, H, W) over C
        ctx.pooled = pooled.requires_grad_()
        with torch.enable_grad():
            ctx.spatial_weights = spatial.from_pooled(ctx.pooled)  # M_s: (B, 1, H, W), with its graph
        ctx.pooling, ctx.channel_parameters = channel.pooling, len(list(channel.parameters()))
        ctx.save_for_backward(x, f1, *parameters)
        return f1 * ctx.spatial_weights.detach()  # F''

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, f1, *parameters = ctx.saved_tensors
        b, c, h, w = x.shape
        channel_params, spatial_params = parameters[: ctx.channel_parameters], parameters[ctx.channel_parameters :]
        grad_ms = (grad_out * f1).sum(dim=1, keepdim=True)  # (B, 1, H, W)
        grad_pooled, *grad_spatial = torch.autograd.grad(
            ctx.spatial_weights, [ctx.pooled, *spatial_params], grad_ms.to(ctx.spatial_weights.dtype), retain_graph=True
        )
        grad_f1 = torch.addcmul(grad_pooled[:, :1] / c, grad_out, ctx.spatial_weights.detach())  # (B, C, H, W)
        batch, rows, cols = (torch.arange(n, device=x.device).view(shape) for n, shape in zip((b, h, w), _AXES))
        _add_at(grad_f1, (batch, ctx.spatial_argmax, rows, cols), grad_pooled[:, 1:])  # MaxPool_c's gradient
        grad_mc = (grad_f1 * x).sum(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        grad_descriptors, *grad_channel = torch.autograd.grad(
            ctx.channel_weights, [ctx.descriptors, *channel_params], grad_mc.to(ctx.channel_weights.dtype), retain_graph=True
        )
        grad_descriptors = grad_descriptors.view(-1, b, c, 1, 1)  # (K, B, C, 1, 1)
        grad_avg = grad_descriptors[0] / (h * w) if "avg" in ctx.pooling else torch.zeros_like(grad_descriptors[0])
        grad_x = torch.empty_like(x)
        torch.addcmul(grad_avg.to(x.dtype), grad_f1, ctx.channel_weights.detach(), out=grad_x)
        if "max" in ctx.pooling:
            channels, argmax = torch.arange(c, device=x.device).view(1, c, 1, 1), ctx.channel_argmax  # (B, C, 1, 1)
            _add_at(grad_x, (batch, channels, argmax // w, argmax % w), grad_descriptors[-1])  # F^c_max's gradient
        return grad_x, None, None, *grad_channel, *grad_spatial


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
        # its output M_s: hook it for figures. In eager training the paper's order computes the maps inside
        # _ChannelThenSpatial, where module hooks do not fire; in evaluation (no grad) the modules run.
        self.spatial = SpatialAttention(spatial_kernel) if spatial else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        if self.spatial is None:
            return x * self.channel(x)
        if self.arrangement == "channel_spatial":  # Eq. 1, the paper's order
            if torch.is_grad_enabled() and not torch.compiler.is_compiling():  # eager training: the same, backward by hand
                parameters = (*self.channel.parameters(), *self.spatial.parameters())
                return _ChannelThenSpatial.apply(x, self.channel, self.spatial, *parameters)
            x = x * self.channel(x)  # F' (evaluation, or traced by torch.compile, which fuses it)
            return x * self.spatial(x)  # F''
        if self.arrangement == "spatial_channel":
            x = x * self.spatial(x)
            return x * self.channel(x)
        return x * self.channel(x) * self.spatial(x)  # parallel: both maps from the same F
