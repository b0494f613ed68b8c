"""C2D of Wang, Girshick, Gupta and He 2018, "Non-local Neural Networks" (Table 1): a 2D ResNet
applied to every frame of a clip, with spacetime non-local blocks (attention/non_local.py,
dims=3) between its residual blocks, and the features averaged over time and space before the
classifier. Without non-local blocks no layer sees two frames at once: the baseline whose
receptive field is local in time (each frame) and in space.

The 2D network is the CIFAR ResNet (models/resnet.py) on the frames, so seeds pair the variants
as they do there (a non-local block draws its initial weights from a stream of its own).
``non_local_stages`` / ``non_local_placement`` or ``non_local_after_blocks`` place the blocks.

Departures from Table 1: the CIFAR ResNet-20 per frame instead of ResNet-50 (32x32 frames), and
no temporal max pooling after res2 (8 frames are kept to the end; the clip is averaged there).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from attention_zoo.attention.non_local import NonLocalBlock
from attention_zoo.models.resnet import CifarResNet, ResNetConfig


class C2D(nn.Module):
    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        if cfg.non_local_kind != "non_local" or cfg.block_attention != "none" or cfg.deformable_stages:
            raise ValueError("C2D takes spacetime non-local blocks only (model.non_local_*), no other attention.")
        self.frames = CifarResNet(replace(cfg, non_local_options={**cfg.non_local_options, "dims": 3}))

    def attention_modules(self) -> list[nn.Module]:
        return self.frames.attention_modules()

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, 3, T, H, W) -> (B, C) averaged over time and space."""
        b, c, t, height, width = clips.shape
        x = self.frames.stem(clips.transpose(1, 2).reshape(b * t, c, height, width))  # (B·T, 16, H, W)
        for stage in self.frames.stages:
            for block in stage:
                if isinstance(block, NonLocalBlock):  # the clip as one volume: (B, C, T, H', W')
                    volume = x.view(b, t, *x.shape[1:]).transpose(1, 2)
                    x = block(volume).transpose(1, 2).reshape(b * t, *x.shape[1:])
                else:  # each frame alone
                    x = block(x)
        return x.view(b, t, *x.shape[1:]).mean(dim=(1, 3, 4))  # (B, C)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.frames.head(self.features(clips))  # (B, num_classes)
