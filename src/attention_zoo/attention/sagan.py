"""Self-attention module of Zhang, Goodfellow, Metaxas and Odena 2019, "Self-Attention
Generative Adversarial Networks" (SAGAN), Sec. 3 and Fig. 2.

https://arxiv.org/abs/1805.08318

The features x ∈ R^{C×N} of the previous layer (N = H·W positions) are mapped by 1x1
convolutions into a key space f(x) = W_f x and a query space g(x) = W_g x, both C̄ = C/k
channels (k = 8 in all the paper's experiments):

    s_ij    = f(x_i)ᵀ g(x_j)
    β_{j,i} = exp(s_ij) / Σ_{i=1..N} exp(s_ij)        (Eq. 1: how much position j attends to i)
    o_j     = v( Σ_{i=1..N} β_{j,i} h(x_i) ),  h(x_i) = W_h x_i (C̄ channels), v(x_i) = W_v x_i (C)
    y_i     = γ o_i + x_i                               (Eq. 3, γ a learnable scalar initialized to 0)

so a new module is the identity map, and the network "first relies on the cues in the local
neighborhood, then gradually learns to assign more weight to the non-local evidence".
Spectral normalization (Sec. 4) is applied to W_f, W_g, W_h and W_v when ``spectral_norm`` (the
paper uses it in both G and D). Departure: none in the formulas; the authors' later code
(BigGAN-PyTorch's ``Attention``) also max-pools keys and values and gives h C/2 channels, which
the paper's text does not have and this module does not do.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SelfAttention2d(nn.Module):
    def __init__(self, channels: int, reduction: int = 8, spectral_norm: bool = True):
        super().__init__()
        if channels % reduction:
            raise ValueError(f"SAGAN self-attention: channels ({channels}) must be divisible by the reduction k ({reduction}).")
        inner = channels // reduction

        def conv(c_in: int, c_out: int) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, kernel_size=1, bias=False)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer

        self.f, self.g, self.h = conv(channels, inner), conv(channels, inner), conv(channels, inner)  # key, query, value
        self.v = conv(inner, channels)
        self.gamma = nn.Parameter(torch.zeros(()))
        self.last_attention: torch.Tensor | None = None  # (B, N_query, N_key) of the last forward, for figures

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """β: (B, N, N), row j = query position j's weights over the key positions i (Eq. 1)."""
        keys = self.f(x).flatten(2)  # (B, C̄, N)
        queries = self.g(x).flatten(2)  # (B, C̄, N)
        scores = torch.einsum("bci,bcj->bji", keys, queries)  # s_ij at [b, j, i]
        return F.softmax(scores, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        beta = self.attention(x)  # (B, N, N)
        values = self.h(x).flatten(2)  # (B, C̄, N)
        attended = torch.einsum("bji,bci->bcj", beta, values).reshape(b, -1, height, width)  # Σ_i β_{j,i} h(x_i)
        self.last_attention = beta.detach()
        return self.gamma * self.v(attended) + x  # (B, C, H, W)
