"""Non-local block of Wang, Girshick, Gupta and He 2018, "Non-local Neural Networks".

https://arxiv.org/abs/1711.07971

    y_i = (1 / C(x)) Σ_j f(x_i, x_j) g(x_j)                     (Eq. 1)
    z_i = W_z y_i + x_i                                         (Eq. 6)

with g(x_j) = W_g x_j, a 1x1 (1x1x1 for video) convolution, and four choices of f (Sec. 3.2):

    gaussian            f = exp(x_iᵀ x_j),            C(x) = Σ_j f   -> softmax over j   (Eq. 2)
    embedded_gaussian   f = exp(θ(x_i)ᵀ φ(x_j)),      C(x) = Σ_j f   -> softmax over j   (Eq. 3)
    dot_product         f = θ(x_i)ᵀ φ(x_j),           C(x) = N                           (Eq. 4)
    concatenation       f = ReLU(w_fᵀ [θ(x_i), φ(x_j)]), C(x) = N                        (Eq. 5)

θ, φ and g halve the channels (Sec. 3.3, "bottleneck"). N is the number of positions j
summed over: with ``subsample`` a max-pooling after φ and g (Sec. 3.3) makes it a quarter of
the input's positions, and N counts the pooled positions. The concatenation's w_fᵀ[θ_i, φ_j]
is computed as aᵀθ_i + bᵀφ_j with w_f = [a; b], the same number without building the N x N x C
concatenation. W_z is followed by BatchNorm whose scale starts at zero (Sec. 3.3), so a new
block is the identity map and can be inserted into a pretrained network.

``dims=2`` works on images (B, C, H, W); ``dims=3`` on spacetime volumes (B, C, T, H, W), the
paper's video block, where subsampling pools space only (1x2x2), as in the authors' code.
As in the authors' code (facebookresearch/video-nonlocal-net: ``USE_SCALE``,
``CONV_INIT_STD = 0.01``) and timm's ``NonLocalAttn``, and by default here: the embedded
Gaussian divides θ(x_i)ᵀφ(x_j) by sqrt(C') before the softmax (``scale``), the scaled dot
product of self-attention, which Sec. 3.2 relates it to; and the 1x1 convolutions θ, φ, g and
W_z start from N(0, 0.01²) with zero biases (``conv_init_std``). The paper's text gives
neither. ``scale=False, conv_init_std=None`` (no scaling, PyTorch's default convolution init)
is how the 4-epoch non-local results committed before these defaults were trained.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.choices import check_choice

INSTANTIATIONS = ("gaussian", "embedded_gaussian", "dot_product", "concatenation")


class NonLocalBlock(nn.Module):
    def __init__(
        self,
        channels: int,
        instantiation: str = "embedded_gaussian",
        inner_channels: int | None = None,
        subsample: bool = False,
        dims: int = 2,
        zero_init: bool = True,
        scale: bool = True,
        conv_init_std: float | None = 0.01,
    ):
        super().__init__()
        check_choice("non-local instantiation", instantiation, INSTANTIATIONS)
        if dims not in (2, 3):
            raise ValueError(f"Non-local block dims must be 2 (B, C, H, W) or 3 (B, C, T, H, W); got {dims}.")
        conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
        inner = inner_channels or max(channels // 2, 1)
        self.instantiation, self.dims = instantiation, dims
        self.scale = inner**-0.5 if scale and instantiation == "embedded_gaussian" else 1.0  # 1/sqrt(C') (authors' code)
        embedded = instantiation != "gaussian"
        self.theta = conv(channels, inner, 1) if embedded else None
        self.phi = conv(channels, inner, 1) if embedded else None
        self.g = conv(channels, inner, 1)
        # w_f = [a; b] of Eq. 5, one weight per concatenated channel, ~ N(0, 1/C') (the paper gives no init)
        self.w_f = nn.Parameter(torch.randn(2, inner) / inner**0.5) if instantiation == "concatenation" else None
        self.pool = (nn.MaxPool2d(2) if dims == 2 else nn.MaxPool3d((1, 2, 2))) if subsample else None
        self.w_z = conv(inner, channels, 1)
        self.bn = norm(channels)
        if conv_init_std is not None:
            for proj in (self.theta, self.phi, self.g, self.w_z):
                if proj is not None:
                    nn.init.normal_(proj.weight, std=conv_init_std)
                    nn.init.zeros_(proj.bias)
        if zero_init:
            nn.init.zeros_(self.bn.weight)

    def _keys(self, x: torch.Tensor, proj: nn.Module | None) -> torch.Tensor:
        """φ(x_j) or g(x_j) (x_j itself for the Gaussian's φ), pooled if subsampling: (B, C', M)."""
        k = x if proj is None else proj(x)
        if self.pool is not None:
            k = self.pool(k)
        return k.flatten(2)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """f(x_i, x_j) / C(x) for all pairs: (B, C, *S) -> (B, N_query, M_keys), rows are weights over j."""
        query = (x if self.theta is None else self.theta(x)).flatten(2).transpose(1, 2)  # (B, N, C')
        key = self._keys(x, self.phi)  # (B, C', M)
        if self.instantiation in ("gaussian", "embedded_gaussian"):
            return torch.softmax((query @ key) * self.scale, dim=-1)  # (B, N, M)
        if self.instantiation == "dot_product":
            return (query @ key) / key.shape[-1]
        a, b = self.w_f  # (C',) each
        pairwise = (query @ a)[:, :, None] + (key.transpose(1, 2) @ b)[:, None, :]  # (B, N, M) w_fᵀ[θ_i, φ_j]
        return F.relu(pairwise) / key.shape[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) or (B, C, T, H, W)
        weights = self.attention(x)  # (B, N, M)
        values = self._keys(x, self.g).transpose(1, 2)  # (B, M, C')
        y = (weights @ values).transpose(1, 2).reshape(x.shape[0], -1, *x.shape[2:])  # (B, C', *S)
        return self.bn(self.w_z(y)) + x  # z = W_z y + x
