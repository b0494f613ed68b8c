"""Reading an image file into the square uint8 tensor the image models take."""

from __future__ import annotations

from pathlib import Path

import torch

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def read_rgb(path: str | Path) -> torch.Tensor:
    """(3, H, W) uint8; OSError (PIL's) if the file is not a readable image."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    with Image.open(path) as image:
        return TF.pil_to_tensor(image.convert("RGB"))


def to_square(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """(3, size, size): unchanged if already that size, else the shorter side resized to
    size x 256/224 and the centre cropped (the ImageNet evaluation transform)."""
    from torchvision.transforms.v2 import functional as TF

    if pixels.shape[1:] == (size, size):
        return pixels
    return TF.center_crop(TF.resize(pixels, round(size * 256 / 224), antialias=True), [size, size])


def image_files(paths: list[str | Path]) -> list[Path]:
    """The files named, and the images (by suffix, sorted) of the folders named."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(path)
    return found
