"""Attention mechanisms, one paper per file, and the string-keyed factory the models use.

``build_block_attention(name, channels, **options)`` returns a module that maps a feature
map (B, C, H, W) to a feature map of the same shape; the CIFAR ResNet applies it to each
residual branch before the addition (the place CBAM, Woo et al. 2018 Fig. 3, and SE use).
A mechanism joins the zoo by adding an entry to ``BLOCK_ATTENTION``. (The non-local block of
Wang et al. 2018 is not a branch attention but a block of its own between residual blocks; the
ResNet places it, see models/resnet.py.)
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from attention_zoo.attention.cbam import CBAM
from attention_zoo.attention.squeeze_excitation import SqueezeExcitation


def _no_attention(channels: int) -> nn.Module:
    return nn.Identity()


BLOCK_ATTENTION: dict[str, Callable[..., nn.Module]] = {"none": _no_attention, "se": SqueezeExcitation, "cbam": CBAM}


def build_block_attention(name: str, channels: int, **options) -> nn.Module:
    if name not in BLOCK_ATTENTION:
        raise ValueError(f"Unknown block attention {name!r}; valid: {', '.join(sorted(BLOCK_ATTENTION))}.")
    return BLOCK_ATTENTION[name](channels, **options)
