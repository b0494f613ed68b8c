"""Attention mechanisms, one paper per file, and the string-keyed factory the models use.

``build_block_attention(name, channels, **options)`` returns a module that maps a feature
map (B, C, H, W) to a feature map of the same shape; the CIFAR ResNet applies it to each
residual branch before the addition (the place CBAM, Woo et al. 2018 Fig. 3, and SE use).
A mechanism joins the zoo by adding an entry to ``BLOCK_ATTENTION``.
"""

from __future__ import annotations

from typing import Callable

from torch import nn


def _no_attention(channels: int) -> nn.Module:
    return nn.Identity()


BLOCK_ATTENTION: dict[str, Callable[..., nn.Module]] = {"none": _no_attention}


def build_block_attention(name: str, channels: int, **options) -> nn.Module:
    if name not in BLOCK_ATTENTION:
        raise ValueError(f"Unknown block attention {name!r}; valid: {', '.join(sorted(BLOCK_ATTENTION))}.")
    return BLOCK_ATTENTION[name](channels, **options)
