"""SAGAN's generator and discriminator (Zhang et al. 2019, Sec. 4-5), scaled to 32x32 CIFAR-10.

The paper's networks are the 128x128 ImageNet ResNet GAN of Miyato et al. (projection
discriminator, class-conditional BatchNorm in G), with spectral normalization in both G and D
(Sec. 4.1) and the self-attention module (attention/sagan.py) inserted after the residual block
that produces the chosen feature-map size (Table 1: feat8 ... feat64, in both networks).

Here, the CIFAR-10 version of the same family (Miyato & Koyama 2018 / BigGAN's 32x32 layout):
- G: z (``z_dim``) -> linear to 4x4 -> 3 up-sampling residual blocks (8, 16, 32) with
  class-conditional BatchNorm (a per-class gain and bias, Dumoulin et al.) -> BN, ReLU, 3x3 conv,
  tanh. Self-attention after the block whose output is ``attention_at`` pixels wide.
- D: residual blocks 32 -> 16 -> 8 -> 8 -> 8 (the first an "optimized" block, average-pool
  down-sampling), ReLU, global sum pooling h, then the projection output
  ψ(h) + <embed(y), h> (Miyato & Koyama Eq. 3). Self-attention after the block whose output is
  ``attention_at`` pixels wide.
- Spectral normalization on every convolution and linear layer of D and G and on D's projection
  embedding; the class-conditional BatchNorm's gain and bias embeddings are plain (as in Miyato &
  Koyama's code) and start at zero, so G starts unconditional.

Departures from the paper's 128x128 setup: 32x32 images and 3 up/down-sampling stages instead of
5; widths ``g_width``/``d_width`` (256 and 128 in SNGAN's CIFAR nets; smaller by default here to fit
a CPU run); attention placements are the 8x8 and 16x16 maps (what 32x32 has between low and high
level), not 32 and 64. No orthogonal init (the paper uses the default of Miyato et al.).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from attention_zoo.attention.sagan import SelfAttention2d
from attention_zoo.engine.seeding import own_random_stream

ATTENTION_SIZES = (8, 16)  # widths that both G (8, 16, 32) and D (16, 8) produce: where attention can go (Table 1 style)


def sn_conv(c_in: int, c_out: int, kernel: int = 3) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2))


class ConditionalBatchNorm2d(nn.Module):
    """BN without its own affine; gain 1 + γ_y and bias β_y per class y (spectrally normalized embeddings)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.zeros_(self.gain.weight), nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain, bias = 1 + self.gain(y)[:, :, None, None], self.bias(y)[:, :, None, None]  # (B, C, 1, 1)
        return self.norm(x) * gain + bias


class GeneratorBlock(nn.Module):
    """cBN, ReLU, up x2, conv3x3, cBN, ReLU, conv3x3; shortcut: up x2, conv1x1."""

    def __init__(self, c_in: int, c_out: int, num_classes: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm2d(c_in, num_classes), ConditionalBatchNorm2d(c_out, num_classes)
        self.conv1, self.conv2 = sn_conv(c_in, c_out), sn_conv(c_out, c_out)
        self.shortcut = sn_conv(c_in, c_out, kernel=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DiscriminatorBlock(nn.Module):
    """(ReLU,) conv3x3, ReLU, conv3x3, (avg-pool x2); shortcut: conv1x1, (avg-pool x2). The first
    block of D takes the image and starts without ReLU, pooling its shortcut before the conv."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, first: bool = False):
        super().__init__()
        self.conv1, self.conv2 = sn_conv(c_in, c_out), sn_conv(c_out, c_out)
        self.shortcut = sn_conv(c_in, c_out, kernel=1) if (c_in != c_out or downsample) else None
        self.downsample, self.first = downsample, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        skip = x
        if self.first and self.downsample:
            skip = self.shortcut(F.avg_pool2d(skip, 2))
        elif self.shortcut is not None:
            skip = self.shortcut(skip)
            skip = F.avg_pool2d(skip, 2) if self.downsample else skip
        return (F.avg_pool2d(h, 2) if self.downsample else h) + skip


@dataclass
class SAGANConfig:
    num_classes: int = 10
    z_dim: int = 128
    g_width: int = 128
    d_width: int = 128
    attention_at: list[int] = field(default_factory=lambda: [16])  # [] = no attention; e.g. [8], [16]
    attention_reduction: int = 8  # k: f, g and h have C/k channels (the paper's k = 8)
    ema_decay: float | None = None  # keep an exponential moving average of G's weights (e.g. 0.999); None = off


def attention_modules(channels: int, cfg: SAGANConfig, stream: int) -> nn.ModuleDict:
    """{"size": self-attention} for each size of ``cfg.attention_at``, each drawing its initial
    weights from a random stream of its own: with or without attention, seed s gives G and D the
    same other weights, so that the runs of one seed pair across the variants."""
    unknown = sorted(set(cfg.attention_at) - set(ATTENTION_SIZES))
    if unknown:
        raise ValueError(
            f"model.attention_at={list(cfg.attention_at)}: no feature map of width {unknown} in both G and D; "
            f"self-attention goes after a block of width {list(ATTENTION_SIZES)} (gan_attention=feat8|feat16), or none ([])."
        )
    modules = {}
    for size in cfg.attention_at:
        with own_random_stream(stream + size):
            modules[str(size)] = SelfAttention2d(channels, cfg.attention_reduction)
    return nn.ModuleDict(modules)


class Generator(nn.Module):
    def __init__(self, cfg: SAGANConfig):
        super().__init__()
        w = cfg.g_width
        self.cfg = cfg
        self.linear = spectral_norm(nn.Linear(cfg.z_dim, 4 * 4 * w))
        self.blocks = nn.ModuleList(GeneratorBlock(w, w, cfg.num_classes) for _ in range(3))  # 8, 16, 32
        self.attention = attention_modules(w, cfg, stream=2000)
        self.out_norm = nn.BatchNorm2d(w)
        self.out_conv = sn_conv(w, 3)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z: (B, z_dim), y: (B,) class ids -> images (B, 3, 32, 32) in [-1, 1]."""
        h = self.linear(z).view(len(z), self.cfg.g_width, 4, 4)
        for block in self.blocks:
            h = block(h, y)
            if str(h.shape[-1]) in self.attention:
                h = self.attention[str(h.shape[-1])](h)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


class Discriminator(nn.Module):
    def __init__(self, cfg: SAGANConfig):
        super().__init__()
        w = cfg.d_width
        self.blocks = nn.ModuleList(
            [
                DiscriminatorBlock(3, w, downsample=True, first=True),  # 16
                DiscriminatorBlock(w, w, downsample=True),  # 8
                DiscriminatorBlock(w, w, downsample=False),  # 8
                DiscriminatorBlock(w, w, downsample=False),  # 8
            ]
        )
        self.attention = attention_modules(w, cfg, stream=3000)
        self.linear = spectral_norm(nn.Linear(w, 1))
        self.embed = spectral_norm(nn.Embedding(cfg.num_classes, w))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """h: (B, d_width), the globally sum-pooled last features."""
        h, attended = x, set()
        for block in self.blocks:
            h = block(h)
            size = str(h.shape[-1])
            if size in self.attention and size not in attended:  # after the block that first makes this size
                h = self.attention[size](h)
                attended.add(size)
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 32, 32), y: (B,) -> logits (B,): ψ(h) + <embed(y), h> (the projection)."""
        h = self.features(x)
        return self.linear(h)[:, 0] + (self.embed(y) * h).sum(dim=1)


class SAGAN(nn.Module):
    """G and D as one module, so that one checkpoint, one optimizer (a parameter group each, for
    TTUR: optim.group_lr) and the trainer's resume cover both; plus, with ``ema_decay``, a copy
    of G whose weights are the exponential moving average of G's after each of its updates
    (Yazıcı et al. 2019; BigGAN's G_ema), not trained by the optimizer, used for evaluation."""

    def __init__(self, cfg: SAGANConfig):
        super().__init__()
        self.cfg = cfg
        self.generator = Generator(cfg)
        self.discriminator = Discriminator(cfg)
        self.generator_ema = None
        if cfg.ema_decay is not None:
            if not 0 < cfg.ema_decay < 1:
                raise ValueError(f"model.ema_decay={cfg.ema_decay} must be in (0, 1), or null for no moving average.")
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)

    def named_parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The trained parameters by player (the EMA copy is not trained)."""
        return {"generator": list(self.generator.parameters()), "discriminator": list(self.discriminator.parameters())}

    def sampler(self) -> Generator:
        """The generator that evaluation and figures use: the moving average if kept, else G."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * G, parameter by parameter; buffers (BatchNorm
        statistics, spectral-norm vectors) are copied from G."""
        if self.generator_ema is None:
            return
        for averaged, current in zip(self.generator_ema.parameters(), self.generator.parameters()):
            averaged.lerp_(current, 1 - self.cfg.ema_decay)
        for averaged, current in zip(self.generator_ema.buffers(), self.generator.buffers()):
            averaged.copy_(current)

    def attention_modules(self) -> list[nn.Module]:
        return [*self.generator.attention.values(), *self.discriminator.attention.values()]


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z), y))] (SAGAN Eq. 4, first line)."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[D(G(z), y)] (SAGAN Eq. 4, second line)."""
    return -fake_logits.mean()
