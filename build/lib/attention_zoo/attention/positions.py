"""Position information for attention, Vaswani et al. 2017 Sec. 3.5 and Table 3 row (E).

    PE(pos, 2i)   = sin(pos / 10000^(2i / d_model))
    PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))

``sinusoid`` evaluates this for any integer positions, negative ones included (the signed
distances of relative attention, see ``generalized.py``). ``PositionalEncoding`` adds absolute
positions to token embeddings: the fixed sinusoids, learned embeddings (row E: "nearly identical
results"), or nothing (models whose attention carries relative positions instead).
"""

from __future__ import annotations

import torch
from torch import nn

from attention_zoo.choices import check_choice

POSITIONS = ("sinusoidal", "learned", "none")


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(L,) integer positions -> (L, dim) encodings, sin on even and cos on odd channels."""
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even dimension, got {dim}.")
    rates = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)  # (dim/2,)
    angles = positions.to(torch.float64)[:, None] * rates[None, :]  # (L, dim/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1).float()  # (L, dim) interleaved


class PositionalEncoding(nn.Module):
    def __init__(self, kind: str, d_model: int, max_positions: int):
        super().__init__()
        check_choice("model.positions", kind, POSITIONS)
        self.kind, self.max_positions = kind, max_positions
        if kind == "learned":
            self.table = nn.Embedding(max_positions, d_model)
            nn.init.normal_(self.table.weight, std=d_model**-0.5)
        elif kind == "sinusoidal":
            self.register_buffer("table", sinusoid(torch.arange(max_positions), d_model), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """x (B, L, d_model) at positions offset..offset+L-1 -> x + PE."""
        if self.kind == "none":
            return x
        end = offset + x.shape[1]
        if end > self.max_positions:
            raise ValueError(f"sequence reaches position {end} but model.max_positions={self.max_positions}; raise it.")
        table = self.table.weight if self.kind == "learned" else self.table
        return x + table[offset:end].to(x.dtype)
