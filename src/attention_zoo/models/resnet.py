"""CIFAR ResNet of He et al. 2016, "Deep Residual Learning for Image Recognition", Sec. 4.2.

https://arxiv.org/abs/1512.03385

The 6n+2-layer network for 32x32 inputs: a 3x3 convolution with 16 filters, then three
stages of n basic blocks (two 3x3 convolutions each) on feature maps of 32, 16 and 8 pixels
with 16, 32 and 64 filters, the first block of stages 2 and 3 subsampling with stride 2,
then global average pooling and a fully connected layer. Depth 20/32/44/56/110 gives
n = 3/5/7/9/18 (Table 6: 0.27M/0.46M/0.66M/0.85M/1.7M parameters).

Shortcuts (Sec. 3.3): option A is the identity, with the subsampled input zero-padded in
the extra channels (no parameters; the option the paper uses on CIFAR); option B is a 1x1
projection (+BN) where the shape changes, the identity elsewhere.

Convolutions use He initialization (He et al. 2015, cited in Sec. 3.4); BN starts at (1, 0).

Attention hook: every block passes its residual branch through ``block_attention`` (a
module from ``attention.build_block_attention``) before the addition, as CBAM and SE do.
With ``block_attention="none"`` the network is exactly the paper's.

Non-local blocks (Wang et al. 2018, attention/non_local.py) go between residual blocks, as
the paper places them (Sec. 4.1): ``non_local_stages`` lists the stages (1-3) that get them and
``non_local_placement`` where inside each stage of n blocks:
"before_last" inserts one block right before the last residual block (the paper's 1-block
model, in res4); "every_other" after every second block (the paper's 5- and 10-block models
put them in res3 and res4 at every other block: after blocks 2, 4, ...); "all" after every block.
Stage 2 (16x16) and stage 1 (32x32) play the parts of res4 (14x14) and res3 (28x28).
With n = 3 (ResNet-20) "before_last" and "every_other" coincide.
``non_local_kind="generalized"`` puts Zhu et al.'s generalized attention (attention/generalized_2d.py,
terms E1..E4 chosen by ``non_local_options.attention_type``) in those places instead.

Deformable convolution (attention/deformable.py; Zhu et al. 2019 study it as spatial attention):
every 3x3 convolution of the blocks of ``deformable_stages`` samples at learned offsets (v2,
modulated, unless ``deformable_modulated=false``), as DCN replaces the 3x3 convolutions of
ResNet stages conv3-conv5. Its offsets start at zero and learn at ``deformable_offset_lr_mult``
(0.1) times the network's rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.attention import build_block_attention
from attention_zoo.attention.deformable import DeformableConv2d
from attention_zoo.attention.generalized_2d import GeneralizedAttention2d
from attention_zoo.attention.non_local import NonLocalBlock
from attention_zoo.choices import check_choice
from attention_zoo.engine.seeding import own_random_stream

SHORTCUTS = ("A", "B")
NON_LOCAL_PLACEMENTS = ("before_last", "every_other", "all")
NON_LOCAL_KINDS = {"non_local": NonLocalBlock, "generalized": GeneralizedAttention2d}  # modules between residual blocks


@dataclass
class ResNetConfig:
    depth: int = 20  # 6n + 2
    num_classes: int = 10
    widths: tuple[int, int, int] = (16, 32, 64)
    shortcut: str = "A"
    block_attention: str = "none"
    block_attention_options: dict = field(default_factory=dict)
    non_local_stages: tuple[int, ...] = ()  # 1-based stages that get non-local blocks; () = none
    non_local_placement: str = "before_last"
    non_local_options: dict = field(default_factory=dict)  # the module's arguments: instantiation, subsample, ...
    non_local_kind: str = "non_local"  # non_local (Wang et al.) | generalized (Zhu et al., E1..E4)
    non_local_after_blocks: tuple[tuple[int, int], ...] = ()  # explicit (stage, 0-based block) pairs, instead of the placement
    deformable_stages: tuple[int, ...] = ()  # 1-based stages whose 3x3 convolutions are deformable
    deformable_modulated: bool = True  # DCN v2 (a modulation per tap) or v1
    deformable_offset_lr_mult: float = 0.1  # the offset layers' learning rate, times the network's

    def blocks_per_stage(self) -> int:
        if (self.depth - 2) % 6 != 0 or self.depth < 8:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110, ...); got {self.depth}.")
        return (self.depth - 2) // 6

    def non_local_after(self, stage: int) -> list[int]:
        """0-based indices of the residual blocks of ``stage`` (1-based) followed by a non-local block."""
        if self.non_local_placement not in NON_LOCAL_PLACEMENTS:
            raise ValueError(
                f"Unknown non_local_placement {self.non_local_placement!r}; valid: {', '.join(NON_LOCAL_PLACEMENTS)}."
            )
        if any(s not in (1, 2, 3) for s in self.non_local_stages):
            raise ValueError(
                f"non_local_stages must be among 1, 2, 3 (the CIFAR ResNet's stages); got {list(self.non_local_stages)}."
            )
        n = self.blocks_per_stage()
        if stage not in self.non_local_stages:
            return []
        if self.non_local_after_blocks:
            after = sorted(block for s, block in self.non_local_after_blocks if s == stage)
            if any(not 0 <= block < n for block in after):
                pairs = list(self.non_local_after_blocks)
                raise ValueError(f"non_local_after_blocks {pairs}: stage {stage} has blocks 0..{n - 1}.")
            return after
        if self.non_local_placement == "before_last":
            if n < 2:
                raise ValueError(f"non_local_placement=before_last needs 2+ blocks per stage; depth {self.depth} has {n}.")
            return [n - 2]
        if self.non_local_placement == "every_other":
            return list(range(1, n, 2))
        return list(range(n))


class PadChannelsShortcut(nn.Module):
    """Option A: subsample by ``stride`` and zero-pad the new channels, half on each side."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = out_channels - in_channels
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C_in, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, *self.pad))  # (B, C_out, H/s, W/s)


def conv3x3(in_channels: int, out_channels: int, stride: int, deformable: bool, cfg: ResNetConfig) -> nn.Module:
    if deformable:
        return DeformableConv2d(in_channels, out_channels, 3, stride, 1, cfg.deformable_modulated, cfg.deformable_offset_lr_mult)
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers, attention on the branch, shortcut addition, ReLU (Fig. 2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, cfg: ResNetConfig, index: int, deformable: bool):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride, deformable, cfg)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels, 1, deformable, cfg)
        self.bn2 = nn.BatchNorm2d(out_channels)
        with own_random_stream(index):  # the backbone's weights stay those of the plain network
            self.attention = build_block_attention(cfg.block_attention, out_channels, **cfg.block_attention_options)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif cfg.shortcut == "A":
            self.shortcut = PadChannelsShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = F.relu(self.bn1(self.conv1(x)))  # (B, C_out, H/s, W/s)
        branch = self.bn2(self.conv2(branch))
        branch = self.attention(branch)
        return F.relu(branch + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        check_choice("shortcut option", cfg.shortcut, SHORTCUTS)
        check_choice("non_local_kind", cfg.non_local_kind, NON_LOCAL_KINDS)
        if any(s not in (1, 2, 3) for s in cfg.deformable_stages):
            raise ValueError(f"deformable_stages must be among 1, 2, 3; got {list(cfg.deformable_stages)}.")
        n = cfg.blocks_per_stage()
        self.stem = nn.Sequential(nn.Conv2d(3, cfg.widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(cfg.widths[0]), nn.ReLU())
        stages, in_channels = [], cfg.widths[0]
        for stage, width in enumerate(cfg.widths):
            blocks, non_local_after = [], cfg.non_local_after(stage + 1)
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                index = stage * n + i  # the block's own random stream (its attention's initial weights)
                blocks.append(BasicBlock(in_channels, width, stride, cfg, index, deformable=stage + 1 in cfg.deformable_stages))
                in_channels = width
                if i in non_local_after:
                    with own_random_stream(1000 + index):
                        blocks.append(NON_LOCAL_KINDS[cfg.non_local_kind](width, **cfg.non_local_options))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(in_channels, cfg.num_classes)
        between = tuple(f"{name}." for name, m in self.named_modules() if isinstance(m, tuple(NON_LOCAL_KINDS.values())))
        for name, module in self.named_modules():
            # The network's own convolutions only: attention modules and offset predictors keep their papers' inits.
            own = ".attention" not in name and not name.startswith(between) and not name.endswith(".offset")
            if isinstance(module, nn.Conv2d) and own:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def attention_modules(self) -> list[nn.Module]:
        """The modules that the plain network does not have: block attention, non-local or generalized
        attention blocks, and deformable convolutions."""
        branch = [m.attention for m in self.modules() if isinstance(m, BasicBlock) and not isinstance(m.attention, nn.Identity)]
        others = (*NON_LOCAL_KINDS.values(), DeformableConv2d)
        return [*branch, *(m for m in self.modules() if isinstance(m, others))]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The globally average-pooled last stage, the classifier's input: (B, widths[-1])."""
        x = self.stem(images)  # (B, 16, 32, 32)
        x = self.stages(x)  # (B, 64, 8, 8)
        return x.mean(dim=(2, 3))  # (B, 64)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))  # (B, num_classes) logits
