"""Squeeze-and-Excitation block of Hu, Shen and Sun 2018, the baseline CBAM compares with.

https://arxiv.org/abs/1709.01507

    z = F_sq(u) = (1 / HW) Σ_{i,j} u(i, j)                      (Eq. 2)  global average pooling
    s = F_ex(z, W) = σ(W_2 δ(W_1 z))                            (Eq. 3)  C -> C/r -> C, δ = ReLU
    x̃_c = s_c · u_c                                             (Eq. 4)

Written on its own, not through cbam.py, so that the test "SE equals CBAM with average
pooling only and no spatial part" compares two independent implementations. The fully
connected layers carry biases, as in the authors' released models.
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Linear(channels, hidden)  # W_1
        self.fc2 = nn.Linear(hidden, channels)  # W_2

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        z = u.mean(dim=(2, 3))  # (B, C) squeeze
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))  # (B, C) excitation
        return u * s[:, :, None, None]
