"""Image -> annotation vectors a_1..a_L (Xu et al. 2015, Sec. 3.1.1): a CNN's last spatial grid.

- ``vgg19``: torchvision VGG-19 up to conv5_4 and its ReLU, before the last max pooling: a
  14x14x512 grid for 224x224 inputs, L = 196, D = 512, as in the paper (Sec. 4.3).
- ``vgg16``: the same cut of VGG-16 (conv5_3).
- ``resnet50`` / ``resnet101``: torchvision ResNet up to layer4 (7x7x2048 for 224 inputs).
- ``scenes_cnn``: a small CNN for the generated scenes set (64x64 -> 8x8x128: four 3x3
  conv-BN-ReLU layers of 16, 32, 64, 128 channels, each of the first three followed by 2x2 max
  pooling), trained with the captioner. Receptive field 38 px: each cell sees most of the image.
- ``scenes_cnn_local``: the same with a 1x1 last layer, receptive field 22 px, about one object
  (objects are 12-21 px): a cell's annotation describes its own part of the image, as the
  paper's motivation for lower conv features asks (Sec. 3.1.1), so attention has to move to an
  object to read it.
- ``small_cnn``: a CNN to train with the captioner when no ImageNet weights can be had (a
  departure from the paper's pretrained VGG-19): a 4x4 stride-4 stem of 32 channels (56x56), then
  3x3 conv-BN-ReLU layers of 64, 64 (28x28, the first with stride 2), 128, 256 (14x14, the first
  with stride 2): a 14x14x256 grid for 224x224 inputs, L = 196 as in the paper, D = 256. About
  0.12 GMACs per image against VGG-19's 19.6 (to conv5_4), so that it trains on a CPU.

ImageNet weights (``weights="imagenet"``) come through torchvision's weights API, or from a
local state-dict file (``weights=/path/to/vgg19.pth``, a torchvision state dict of the whole
network); ``weights=None`` builds the network with random weights and warns, since a frozen
random encoder gives poor captions. The encoders built here (``TRAINED_HERE``) have no ImageNet
weights: they start random, or from a state-dict file of their trunk (an encoder trained before).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from attention_zoo.choices import check_choice

ENCODERS = ("vgg19", "vgg16", "resnet50", "resnet101", "scenes_cnn", "scenes_cnn_local", "small_cnn")
TRAINED_HERE = ("scenes_cnn", "scenes_cnn_local", "small_cnn")  # no pretrained weights: built here, trained with the captioner


def _load_state_dict(module: nn.Module, weights: str, expected: str) -> None:
    """Weights from a local state-dict file (model.encoder_weights=/path/to/file)."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model.encoder_weights={weights}: no such file. Pass {expected}.")
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _torchvision_trunk(name: str, weights: str | None) -> tuple[nn.Module, int]:
    from torchvision import models

    builder = getattr(models, name)
    model = builder(weights=None)
    if weights == "imagenet":
        enum = models.get_model_weights(name).DEFAULT
        try:
            model = builder(weights=enum)
        except Exception as err:  # offline, or a blocked download
            raise RuntimeError(
                f"Could not get the ImageNet weights of {name} ({enum}): {err}. Download them once online, "
                f"or pass a local state-dict file (model.encoder_weights=/path/to/{name}.pth), or "
                "model.encoder_weights=null to train from random weights."
            ) from err
    elif weights is not None:
        _load_state_dict(model, weights, f"a torchvision {name} state dict, 'imagenet', or null")
    else:
        warnings.warn(
            f"{name} encoder with random weights (model.encoder_weights=null): captions will be poor unless it is fine-tuned.",
            stacklevel=3,  # the line that built the ImageEncoder
        )
    if name.startswith("vgg"):
        cut = [i for i, layer in enumerate(model.features) if isinstance(layer, nn.MaxPool2d)][-1]
        return model.features[:cut], 512  # up to the last conv + ReLU, before the last max pooling
    return nn.Sequential(*list(model.children())[:-2]), model.fc.in_features  # up to layer4


def _conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    padding = kernel // 2 if stride == 1 else (kernel - stride + 1) // 2
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def _scenes_cnn(last_kernel: int) -> tuple[nn.Module, int]:
    layers = [
        *_conv_bn_relu(3, 16),
        nn.MaxPool2d(2),
        *_conv_bn_relu(16, 32),
        nn.MaxPool2d(2),
        *_conv_bn_relu(32, 64),
        nn.MaxPool2d(2),
        *_conv_bn_relu(64, 128, last_kernel),
    ]
    return nn.Sequential(*layers), 128


def _small_cnn() -> tuple[nn.Module, int]:
    layers = [
        *_conv_bn_relu(3, 32, kernel=4, stride=4),  # 224 -> 56
        *_conv_bn_relu(32, 64, stride=2),  # -> 28
        *_conv_bn_relu(64, 64),
        *_conv_bn_relu(64, 128, stride=2),  # -> 14
        *_conv_bn_relu(128, 256),
    ]
    return nn.Sequential(*layers), 256


def _load_trunk(trunk: nn.Module, name: str, weights: str | None, fine_tune: bool) -> None:
    if weights == "imagenet":  # only torchvision's networks come with ImageNet weights
        raise ValueError(
            f"model.encoder={name} has no ImageNet weights: it is built here and trained with the captioner. "
            "Set model.encoder_weights=null and model.fine_tune_encoder=true (or a state-dict file of this trunk)."
        )
    if weights is not None:
        _load_state_dict(trunk, weights, f"a state dict of the {name} trunk, or null")
    elif not fine_tune:
        warnings.warn(f"{name} encoder frozen at random weights: set model.fine_tune_encoder=true to train it.", stacklevel=3)


class ImageEncoder(nn.Module):
    """(B, 3, H, W) normalized images -> (B, L, D) annotation vectors, row-major over the grid."""

    def __init__(self, name: str = "vgg19", weights: str | None = "imagenet", fine_tune: bool = False):
        super().__init__()
        check_choice("model.encoder", name, ENCODERS)
        if name in TRAINED_HERE:
            self.trunk, self.dim = _small_cnn() if name == "small_cnn" else _scenes_cnn(3 if name == "scenes_cnn" else 1)
            _load_trunk(self.trunk, name, weights, fine_tune)
        else:
            self.trunk, self.dim = _torchvision_trunk(name, weights)
        self.frozen = not fine_tune
        if self.frozen:
            self.trunk.requires_grad_(False)

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        if self.frozen:
            self.trunk.eval()  # a frozen encoder keeps its BatchNorm statistics
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            grid = self.trunk(images)  # (B, D, h, w)
        return grid.flatten(2).transpose(1, 2)  # (B, L = h*w, D)
