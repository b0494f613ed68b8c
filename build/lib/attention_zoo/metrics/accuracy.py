"""Top-k accuracy counts (summable across batches)."""

from __future__ import annotations

import torch


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """Number of rows of ``logits`` (B, K) whose label is among the k highest scores, per k."""
    k_max = min(max(ks), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices  # (B, k_max)
    hits = top == labels[:, None]  # (B, k_max)
    return {k: int(hits[:, : min(k, k_max)].any(dim=1).sum()) for k in ks}
