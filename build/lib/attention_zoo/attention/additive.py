"""Additive ("soft-search") attention of Bahdanau, Cho and Bengio 2015, Eq. 5-6 and Appendix A.1.2.

https://arxiv.org/abs/1409.0473

    e_ij  = v_aᵀ tanh(W_a s_{i-1} + U_a h_j)          (Eq. 6; A.1.2)
    α_ij  = exp(e_ij) / Σ_k exp(e_ik)                  (Eq. 6)
    c_i   = Σ_j α_ij h_j                               (Eq. 5)

``U_a h_j`` does not depend on the decoder step, so it is computed once per source sentence
(``project_keys``), as the paper's appendix points out. Padded source positions are masked
with -inf before the softmax, so they receive exactly zero weight. The same MLP scoring is the
f_att of Show, Attend and Tell (Xu et al. 2015, Sec. 4.2), with biases; Bahdanau's
appendix writes W_a, U_a and v_a without biases, hence the ``bias`` switch.
"""

from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    def __init__(self, query_dim: int, key_dim: int, attention_dim: int, bias: bool = False):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attention_dim, bias=bias)  # W_a
        self.key_proj = nn.Linear(key_dim, attention_dim, bias=bias)  # U_a
        self.score = nn.Linear(attention_dim, 1, bias=False)  # v_a

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """U_a h_j for every source position: (B, S, K) -> (B, S, A)."""
        return self.key_proj(keys)

    def forward(
        self,
        query: torch.Tensor,  # (B, Q) the previous decoder state s_{i-1}
        keys: torch.Tensor,  # (B, S, K) the annotations h_j
        projected_keys: torch.Tensor,  # (B, S, A) from project_keys(keys)
        mask: torch.Tensor | None = None,  # (B, S) True where a real (non-padding) position is
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the context c_i (B, K) and the weights α_i (B, S)."""
        energies = self.score(torch.tanh(self.query_proj(query)[:, None, :] + projected_keys)).squeeze(-1)  # (B, S)
        if mask is not None:
            energies = energies.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(energies, dim=-1)  # (B, S)
        context = torch.bmm(weights[:, None, :], keys).squeeze(1)  # (B, K)
        return context, weights
