"""Generalized attention of Zhu, Cheng, Zhang, Lin and Dai 2019 (ICCV), "An Empirical Study of
Spatial Attention Mechanisms in Deep Networks", Sec. 3 and Fig. 1, over the positions of a
feature map (the image form the paper uses in its detection and recognition networks, and mmcv's
``GeneralizedAttention`` implements). The sequence form is ``generalized.py``.

For query position i = (y_i, x_i) with content z_i and key position j = (y_j, x_j) with content
x_j, head m's logit is the sum of the selected terms (a 4-bit ``attention_type``, '1000' = E1):

    E1  query and key content:          z_iᵀ U_mᵀ V_m^C x_j
    E2  query content, relative pos.:   z_iᵀ U_mᵀ V_m^R R_{j-i}
    E3  key content only:               u_mᵀ V_m^C x_j
    E4  relative position only:         v_mᵀ V_m^R R_{j-i}

with a two-dimensional relative position, as the paper and mmcv encode it: the horizontal and
vertical offsets each get a sinusoidal encoding of ``position_dim`` channels and a projection of
their own, V_m^R R_{j-i} = V_m^{R,x} S(x_j - x_i) + V_m^{R,y} S(y_j - y_i). The weights are the
softmax of the logits over the keys; the output is y_i = z_i + γ W_o Σ_j w_ij W_v x_j with γ a
learned scalar starting at 0 (mmcv's ``gamma``), so a new module is the identity map.

Key subsampling (``kv_stride`` s, mmcv's option of the same name): keys and values are taken at
every s-th row and column, (H/s)(W/s) of them, with their true coordinates in the distances.

Departure: the summed logits are divided by sqrt(d_k) (as in ``generalized.py``; the paper writes
the terms without a scale). The paper's E2 and E4 share V^R across the two terms; so do we.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attention_zoo.attention.generalized import parse_terms
from attention_zoo.attention.positions import sinusoid


class GeneralizedAttention2d(nn.Module):
    def __init__(
        self,
        channels: int,
        heads: int = 4,
        attention_type: str = "1111",
        kv_stride: int = 1,
        position_dim: int | None = None,
    ):
        super().__init__()
        if channels % heads:
            raise ValueError(f"generalized attention: channels ({channels}) must be divisible by heads ({heads}).")
        if kv_stride < 1:
            raise ValueError(f"generalized attention: kv_stride must be at least 1, got {kv_stride}.")
        self.e1, self.e2, self.e3, self.e4 = parse_terms(attention_type)
        self.attention_type, self.heads, self.kv_stride = str(attention_type), heads, kv_stride
        self.d_k = channels // heads
        self.position_dim = position_dim or 2 * math.ceil(self.d_k / 2)
        h_dk = heads * self.d_k
        self.query = nn.Conv2d(channels, h_dk, 1, bias=False) if self.e1 or self.e2 else None  # U of every head
        self.key = nn.Conv2d(channels, h_dk, 1, bias=False) if self.e1 or self.e3 else None  # V^C
        if self.e2 or self.e4:
            self.position_x = nn.Linear(self.position_dim, h_dk, bias=False)  # V^{R,x}
            self.position_y = nn.Linear(self.position_dim, h_dk, bias=False)  # V^{R,y}
        self.u = nn.Parameter(torch.randn(heads, self.d_k)) if self.e3 else None
        self.v = nn.Parameter(torch.randn(heads, self.d_k)) if self.e4 else None
        self.value = nn.Conv2d(channels, h_dk, 1, bias=False)  # W_v
        self.out = nn.Conv2d(h_dk, channels, 1, bias=False)  # W_o
        self.gamma = nn.Parameter(torch.zeros(()))
        self.last_weights: torch.Tensor | None = None  # (B, heads, N_query, N_key) of the last forward, for figures

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, h·d_k, H', W') -> (B, h, H'·W', d_k)."""
        b, _, height, width = x.shape
        return x.view(b, self.heads, self.d_k, height * width).transpose(2, 3)

    def _axis_terms(self, query: torch.Tensor | None, size: int, stride: int, projection: nn.Linear, bias) -> torch.Tensor:
        """Position logits along one axis: (B|1, h, n_query, n_key) for query coordinates 0..size-1
        and key coordinates 0, s, 2s, ...: (query content (E2) + v_m (E4))ᵀ V^R S(key - query)."""
        device = projection.weight.device
        queries = torch.arange(size, device=device)
        keys = torch.arange(0, size, stride, device=device)
        distances = torch.arange(-(size - 1), size, device=device)  # every offset that occurs
        r = projection(sinusoid(distances, self.position_dim).to(projection.weight.dtype))  # (n, h·d_k)
        r = r.view(len(distances), self.heads, self.d_k).transpose(0, 1)  # (h, n, d_k)
        index = (keys[None, :] - queries[:, None]) + (size - 1)  # (size, n_key) into distances
        per_distance = []
        if query is not None:  # E2: (B, h, size, d_k) query content per coordinate of this axis
            per_distance.append(query @ r.transpose(-2, -1))  # (B, h, size, n)
        if bias is not None:  # E4
            per_distance.append((bias[:, None, :] @ r.transpose(-2, -1)).expand(-1, size, -1)[None])  # (1, h, size, n)
        total = sum(per_distance)
        return total.gather(-1, index.expand(*total.shape[:2], -1, -1))  # (B|1, h, size, n_key)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Σ of the selected terms / sqrt(d_k): (B, C, H, W) -> (B|1, h, H·W, H'·W'), keys every kv_stride."""
        b, _, height, width = x.shape
        s = self.kv_stride
        keys_x = x[:, :, ::s, ::s]  # (B, C, H', W')
        kh, kw = keys_x.shape[-2:]
        q = self._heads(self.query(x)) if self.query is not None else None  # (B, h, N, d_k)
        scores = torch.zeros(1, self.heads, height * width, kh * kw, dtype=x.dtype, device=x.device)
        if self.key is not None:
            k = self._heads(self.key(keys_x))  # (B, h, M, d_k)
            content = (q if self.e1 else 0) + (self.u[None, :, None] if self.e3 else 0)  # E1 + E3: (B|1, h, N|1, d_k)
            scores = scores + content @ k.transpose(-2, -1)
        if self.e2 or self.e4:
            grid_q = q.view(b, self.heads, height, width, self.d_k) if self.e2 else None
            # query content along each axis: E2 needs q_i for every (y_i, x_i); the x-term varies with x_i,
            # so it is computed per query position, flattening (y_i) into the batch of the x axis and back.
            x_terms = self._axis_terms(
                grid_q.permute(0, 2, 1, 3, 4).reshape(b * height, self.heads, width, self.d_k) if self.e2 else None,
                width,
                s,
                self.position_x,
                self.v if self.e4 else None,
            )  # (B·H|1, h, W, W')
            y_terms = self._axis_terms(
                grid_q.permute(0, 3, 1, 2, 4).reshape(b * width, self.heads, height, self.d_k) if self.e2 else None,
                height,
                s,
                self.position_y,
                self.v if self.e4 else None,
            )  # (B·W|1, h, H, H')
            n = b if self.e2 else 1
            x_terms = x_terms.view(n, -1, self.heads, width, kw).permute(0, 2, 1, 3, 4)  # (n, h, H|1, W, W')
            y_terms = y_terms.view(n, -1, self.heads, height, kh).permute(0, 2, 3, 1, 4)  # (n, h, H, W|1, H')
            position = x_terms[..., None, :] + y_terms[..., :, None]  # (n, h, H, W, H', W')
            scores = scores + position.reshape(n, self.heads, height * width, kh * kw)
        return scores / math.sqrt(self.d_k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        weights = torch.softmax(self.logits(x), dim=-1).expand(b, -1, -1, -1)  # (B, h, N, M)
        values = self._heads(self.value(x[:, :, :: self.kv_stride, :: self.kv_stride]))  # (B, h, M, d_k)
        attended = (weights @ values).transpose(2, 3).reshape(b, self.heads * self.d_k, height, width)
        self.last_weights = weights.detach()
        return x + self.gamma * self.out(attended)  # (B, C, H, W)
