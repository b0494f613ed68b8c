"""Generalized attention of Zhu, Cheng, Zhang, Lin and Dai 2019 (ICCV), "An Empirical Study of
Spatial Attention Mechanisms in Deep Networks", Sec. 3 and Fig. 1, for sequences.

https://arxiv.org/abs/1904.05873

The attention logit of query i (content z_i) on key j (content x_j) in head m is a sum of up
to four terms, chosen by a 4-bit string as in mmcv's ``attention_type`` ('1000' = E1 only):

    E1  query and key content:          z_iᵀ U_mᵀ V_m^C x_j
    E2  query content, relative pos.:   z_iᵀ U_mᵀ V_m^R R_{j-i}
    E3  key content only:               u_mᵀ V_m^C x_j
    E4  relative position only:         v_mᵀ V_m^R R_{j-i}

U_m, V_m^C are the head's query and key projections (W^Q, W^K of Vaswani et al.), R_{j-i} the
sinusoidal encoding of the signed distance j - i (Transformer-XL's, Dai et al. 2019, which the
paper's Transformer terms follow), V_m^R its projection, and u_m, v_m learned vectors. E1 + E3
is (U_m z_i + u_m)ᵀ V_m^C x_j and E2 + E4 is (U_m z_i + v_m)ᵀ V_m^R R_{j-i}, so the module
computes two products whatever the subset. In encoder-decoder attention i is the target
position and j the source position, as in the paper.

Departure: the summed logits are divided by √d_k, so that '1000' is exactly Eq. 1 of Vaswani
et al. (the paper writes the terms without a scale; the scale only sets the softmax temperature
at initialization).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.attention.positions import sinusoid
from attention_zoo.attention.scaled_dot_product import MultiHeadAttention, attention_mask

TERMS = ("E1 query-key content", "E2 query content-relative position", "E3 key content", "E4 relative position")
TRANSFORMER = "1000"  # Vaswani et al.'s attention: E1 alone


def parse_terms(attention_type: str) -> tuple[bool, bool, bool, bool]:
    """'1010' -> (True, False, True, False); a clear error for anything else."""
    attention_type = str(attention_type)
    if len(attention_type) != 4 or set(attention_type) - {"0", "1"} or attention_type == "0000":
        raise ValueError(
            f"attention type {attention_type!r} must be 4 characters of 0/1 with at least one 1, one per term "
            f"({'; '.join(TERMS)}); e.g. '1000' is the Transformer's attention, '1111' all four terms."
        )
    return tuple(bit == "1" for bit in attention_type)


class GeneralizedAttention(MultiHeadAttention):
    def __init__(
        self,
        d_model: int,
        heads: int,
        attention_type: str = "1111",
        d_k: int | None = None,
        d_v: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__(d_model, heads, d_k, d_v, dropout, bias)
        self.e1, self.e2, self.e3, self.e4 = parse_terms(attention_type)
        self.d_model = d_model
        if self.e2 or self.e4:
            self.w_r = nn.Linear(d_model, heads * self.d_k, bias=False)  # V^R of every head
        if self.e3:
            self.u = nn.Parameter(torch.randn(heads, self.d_k))  # unit scale, like a projected query
        if self.e4:
            self.v = nn.Parameter(torch.randn(heads, self.d_k))

    def logits(self, query: torch.Tensor, k: torch.Tensor, query_offset: int = 0) -> torch.Tensor:
        """Σ of the selected terms / √d_k: (B, T, d_model) queries, (B, h, S, d_k) keys -> (B or 1, h, T, S)."""
        batch, queries, _ = query.shape
        keys = k.shape[2]
        q = self._split(self.w_q(query), self.d_k) if self.e1 or self.e2 else None  # (B, h, T, d_k)
        scores = 0.0
        content_query = _sum(q if self.e1 else None, self.u[None, :, None] if self.e3 else None)  # (B|1, h, T|1, d_k)
        if content_query is not None:
            scores = content_query @ k.transpose(-2, -1)  # E1 + E3: (B, h, T|1, S)
        position_query = _sum(q if self.e2 else None, self.v[None, :, None] if self.e4 else None)
        if position_query is not None:
            # Distances j - i for query positions offset..offset+T-1 and key positions 0..S-1.
            first = -(query_offset + queries - 1)
            distances = torch.arange(first, keys, device=query.device)  # (n,) every distance that occurs
            r = self._split(self.w_r(sinusoid(distances, self.d_model).to(query.dtype))[None], self.d_k)  # (1, h, n, d_k)
            by_distance = position_query @ r.transpose(-2, -1)  # E2 + E4: (B|1, h, T|1, n)
            query_pos = torch.arange(queries, device=query.device) + query_offset
            index = torch.arange(keys, device=query.device)[None, :] - query_pos[:, None] - first  # (T, S)
            by_distance = by_distance.expand(*by_distance.shape[:2], queries, -1)
            scores = scores + by_distance.gather(-1, index.expand(*by_distance.shape[:2], queries, keys))
        return scores / math.sqrt(self.d_k)

    def attend(self, query, k, v, key_mask=None, causal=False, need_weights=False, query_offset=0):
        """As ``MultiHeadAttention.attend``, with the selected terms as logits."""
        scores = self.logits(query, k, query_offset)  # (B|1, h, T, S)
        mask = attention_mask(key_mask, causal, query.shape[1], k.shape[2], query.device)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1).expand(query.shape[0], -1, query.shape[1], -1)  # (B, h, T, S)
        out = F.dropout(weights, self.dropout, self.training) @ v  # (B, h, T, d_v)
        return self._merge(out), weights if need_weights else None


def _sum(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


def build_attention(
    attention_type: str, d_model: int, heads: int, d_k: int | None = None, d_v: int | None = None, dropout: float = 0.0
) -> MultiHeadAttention:
    """The Transformer's fused multi-head attention for '1000', the generalized form otherwise."""
    parse_terms(attention_type)
    if str(attention_type) == TRANSFORMER:
        return MultiHeadAttention(d_model, heads, d_k, d_v, dropout)
    return GeneralizedAttention(d_model, heads, attention_type, d_k, d_v, dropout)
