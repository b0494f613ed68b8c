"""Scaled dot-product and multi-head attention of Vaswani et al. 2017, Sec. 3.2.

https://arxiv.org/abs/1706.03762

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V                                  (Eq. 1)
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
        head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)                            (Sec. 3.2.2)

Two paths compute Eq. 1. The fast one calls ``torch.nn.functional.scaled_dot_product_attention``
(fused kernels where the device has them) and does not return the weights. The reference path
writes the formula out and returns the weights too, for figures and for tests, which check that
the two agree. Masking: ``key_mask`` (B, S) is True at real key positions, so padding gets
exactly zero weight; ``causal`` hides the keys after each query (the decoder's self-attention,
Sec. 3.2.3), aligned at the end when there are more keys than queries (incremental decoding).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def attention_mask(key_mask: torch.Tensor | None, causal: bool, queries: int, keys: int, device) -> torch.Tensor | None:
    """Boolean (B or 1, 1, T, S) mask, True where a query may attend, or None for no mask."""
    mask = None
    if key_mask is not None:
        mask = key_mask[:, None, None, :]  # (B, 1, 1, S)
    if causal:
        offset = keys - queries  # query i sits at key position offset + i
        allowed = torch.ones(queries, keys, dtype=torch.bool, device=device).tril(diagonal=offset)  # (T, S)
        mask = allowed[None, None] if mask is None else mask & allowed
    return mask


def scaled_dot_product_attention(
    q: torch.Tensor,  # (B, H, T, d_k)
    k: torch.Tensor,  # (B, H, S, d_k)
    v: torch.Tensor,  # (B, H, S, d_v)
    key_mask: torch.Tensor | None = None,  # (B, S) True at real keys
    causal: bool = False,
    dropout_p: float = 0.0,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Eq. 1: returns the output (B, H, T, d_v) and, with ``need_weights``, the weights (B, H, T, S)."""
    mask = attention_mask(key_mask, causal, q.shape[-2], k.shape[-2], q.device)
    if not need_weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p), None
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return F.dropout(weights, dropout_p) @ v, weights


class MultiHeadAttention(nn.Module):
    """Sec. 3.2.2 with h heads of d_k = d_v = d_model / h (the paper's choice) unless given."""

    def __init__(
        self, d_model: int, heads: int, d_k: int | None = None, d_v: int | None = None, dropout: float = 0.0, bias: bool = True
    ):
        super().__init__()
        if d_k is None and d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}; set d_k and d_v explicitly.")
        self.heads, self.dropout = heads, dropout
        self.d_k, self.d_v = d_k or d_model // heads, d_v or d_model // heads
        self.w_q = nn.Linear(d_model, heads * self.d_k, bias=bias)  # W^Q of every head, side by side
        self.w_k = nn.Linear(d_model, heads * self.d_k, bias=bias)
        self.w_v = nn.Linear(d_model, heads * self.d_v, bias=bias)
        self.w_o = nn.Linear(heads * self.d_v, d_model, bias=bias)  # W^O

    def _split(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """(B, L, h * dim) -> (B, h, L, dim)."""
        return x.view(x.shape[0], x.shape[1], self.heads, dim).transpose(1, 2)

    def project_kv(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, d_model) keys and values -> per-head K (B, h, S, d_k) and V (B, h, S, d_v); the
        decoder caches these (its own past tokens, and the encoder output once per sentence)."""
        return self._split(self.w_k(key), self.d_k), self._split(self.w_v(value), self.d_v)

    def attend(
        self,
        query: torch.Tensor,  # (B, T, d_model)
        k: torch.Tensor,  # (B, h, S, d_k) from project_kv
        v: torch.Tensor,  # (B, h, S, d_v)
        key_mask: torch.Tensor | None = None,  # (B, S) True at real keys
        causal: bool = False,
        need_weights: bool = False,
        query_offset: int = 0,  # position of the first query (used by position-aware subclasses)
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (B, T, d_model) and, with ``need_weights``, the per-head weights (B, h, T, S)."""
        q = self._split(self.w_q(query), self.d_k)
        out, weights = scaled_dot_product_attention(
            q, k, v, key_mask, causal, self.dropout if self.training else 0.0, need_weights
        )  # (B, h, T, d_v)
        return self._merge(out), weights

    def _merge(self, out: torch.Tensor) -> torch.Tensor:
        """(B, h, T, d_v) -> W^O applied to the concatenated heads, (B, T, d_model)."""
        batch, _, queries, _ = out.shape
        return self.w_o(out.transpose(1, 2).reshape(batch, queries, self.heads * self.d_v))

    def forward(
        self,
        query: torch.Tensor,  # (B, T, d_model)
        key: torch.Tensor,  # (B, S, d_model)
        value: torch.Tensor,  # (B, S, d_model)
        key_mask: torch.Tensor | None = None,  # (B, S) True at real keys
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (B, T, d_model) and, with ``need_weights``, the per-head weights (B, h, T, S)."""
        k, v = self.project_kv(key, value)
        return self.attend(query, k, v, key_mask, causal, need_weights)
