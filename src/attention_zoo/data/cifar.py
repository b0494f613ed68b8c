"""CIFAR-10/100 for the ResNet papers: loading from any of the public copies, then batching.

Sources, searched in this order under ``data.root`` (``source=auto``):

1. ``cifar-10-batches-py/`` (``cifar-100-python/``): the original pickles that
   ``torchvision.datasets.CIFAR10`` downloads, checked against torchvision's md5 sums;
2. ``cifar10-jpeg/{train,test}/<class>/*.jpg``: an ImageFolder layout (the JPEG copy in
   ``../shared/data``), or its ``cifar10-jpeg.tar.gz``, unpacked once into ``data.cache_dir``;
3. with ``download=true``: torchvision's download of the original archive into the data root.

The whole split is decoded once into a uint8 tensor (cached on disk for the JPEG copy) and
kept in memory: CIFAR-10 is 180 MB. Augmentation (He et al. 2016, Sec. 4.2: 4-pixel zero
padding, random 32x32 crop, horizontal flip) runs on whole batches as tensor indexing in the
main process. On a 2-core machine this beats DataLoader workers, which would compete with the
model for the same cores, and it makes every batch a pure function of (seed, epoch, index).
"""

from __future__ import annotations

import logging
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from attention_zoo.choices import check_choice
from attention_zoo.engine.cache import build_lock
from attention_zoo.engine.checkpoint import save_atomic
from attention_zoo.engine.distributed import SINGLE_PROCESS, Distributed
from attention_zoo.engine.seeding import derived_generator

log = logging.getLogger(__name__)

PICKLE_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
JPEG_FOLDER = {"cifar10": "cifar10-jpeg", "cifar100": "cifar100-jpeg"}
SOURCES = ("auto", "pickle", "jpeg")
NORMALIZATIONS = ("mean_std", "minus_one_one")  # per-channel standardization | [-1, 1], a tanh generator's range
PAD = 4  # He et al. 2016, Sec. 4.2
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DatasetNotFoundError(FileNotFoundError):
    pass


@dataclass
class CifarConfig:
    name: str  # cifar10 | cifar100
    root: str
    cache_dir: str
    source: str = "auto"
    download: bool = True
    val_size: int = 5000  # He et al.'s 45k/5k split; 0 trains on all 50k with no validation
    split_seed: int = 0  # fixed, so that every run and seed shares one validation set
    batch_size: int = 128
    eval_batch_size: int = 256
    augment: bool = True
    normalize: str = "mean_std"
    num_classes: int = 10
    limit_train: int | None = None  # a random subset of N training images (val included), for smoke runs


@dataclass
class Split:
    images: torch.Tensor  # (N, 3, 32, 32) uint8
    labels: torch.Tensor  # (N,) int64


def load_cifar(cfg: CifarConfig) -> tuple[Split, Split]:
    """The full train and test splits of ``cfg.name`` as uint8 tensors."""
    check_choice("CIFAR dataset", cfg.name, PICKLE_FOLDER)
    check_choice("data.source", cfg.source, SOURCES)
    root = Path(cfg.root).expanduser()
    pickles = root / PICKLE_FOLDER[cfg.name]
    if cfg.source in ("auto", "pickle") and pickles.is_dir():
        try:
            return _load_pickles(cfg.name, root, download=False)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted" (an md5 mismatch)
            if cfg.source == "pickle":
                raise DatasetNotFoundError(
                    f"The CIFAR pickles in {pickles} fail torchvision's md5 check ({err}). "
                    "Delete the folder and download it again, or use data.source=jpeg."
                ) from None
            log.warning("The CIFAR pickles in %s fail torchvision's md5 check; trying the JPEG copy next.", pickles)
    if cfg.source in ("auto", "jpeg"):
        folder = _jpeg_folder(cfg.name, root, Path(cfg.cache_dir).expanduser())
        if folder is not None:
            return _load_jpeg_folder(folder, Path(cfg.cache_dir).expanduser())
    if cfg.download and cfg.source in ("auto", "pickle"):
        try:
            return _load_pickles(cfg.name, root, download=True)
        except OSError as err:  # no network: fall through to the error that says what to do
            log.warning("Download of %s failed: %s", cfg.name, err)
    raise DatasetNotFoundError(
        f"{cfg.name} not found. Looked for {root / PICKLE_FOLDER[cfg.name]} (torchvision pickles), "
        f"{root / JPEG_FOLDER[cfg.name]}/{{train,test}} or {root / JPEG_FOLDER[cfg.name] / (JPEG_FOLDER[cfg.name] + '.tar.gz')} "
        f"(JPEG ImageFolder copy), and the download {'failed' if cfg.download else 'is off (data.download=false)'}. "
        f"Fetch it with `python scripts/download_data.py {cfg.name} --root {root}` on a machine with internet, "
        "or point data.root (env ATTN_ZOO_DATA) at a folder holding one of these copies."
    )


def _load_pickles(name: str, root: Path, download: bool) -> tuple[Split, Split]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    splits = []
    for train in (True, False):
        ds = cls(str(root), train=train, download=download)  # torchvision checks the md5 sums
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # (N, 3, 32, 32)
        splits.append(Split(images, torch.tensor(ds.targets, dtype=torch.int64)))
    return splits[0], splits[1]


def _jpeg_folder(name: str, root: Path, cache_dir: Path) -> Path | None:
    """The ImageFolder root holding train/ and test/, unpacking the shipped archive if needed."""
    folder_name = JPEG_FOLDER[name]
    for candidate in (root / folder_name, cache_dir / folder_name):
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return candidate
    archive = root / folder_name / f"{folder_name}.tar.gz"
    if not archive.is_file():
        return None
    target = cache_dir / folder_name
    with build_lock(target):  # a second run waits for the first one's unpacking, then uses it
        if (target / "train").is_dir() and (target / "test").is_dir():
            return target
        log.info("Unpacking %s into %s (once).", archive, target)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # what a killed unpacking left
        partial.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="data")
        partial.rename(target)
    return target


def _load_jpeg_folder(folder: Path, cache_dir: Path) -> tuple[Split, Split]:
    """Decode an ImageFolder copy once; later runs read the decoded tensors from the cache."""
    cache = cache_dir / f"{folder.name}-decoded.pt"
    with build_lock(cache):
        if cache.is_file() and cache.stat().st_mtime >= folder.stat().st_mtime:
            stored = torch.load(cache, weights_only=True)
        else:
            stored = _decode_image_folder(folder)
            save_atomic(stored, cache)
    return Split(**stored["train"]), Split(**stored["test"])


def _decode_image_folder(folder: Path) -> dict:
    from torchvision.datasets import ImageFolder

    splits = {}
    for split in ("train", "test"):
        ds = ImageFolder(str(folder / split))  # classes sorted by name == CIFAR-10's label order
        log.info("Decoding %d images from %s.", len(ds.samples), folder / split)
        pixels = np.stack([_read_image(ds.loader, path) for path, _ in ds.samples])  # (N, H, W, 3), PIL RGB
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
        if images.shape[1:] != (3, 32, 32):
            raise ValueError(f"{folder / split} holds images of shape {tuple(images.shape[1:])}, expected (3, 32, 32).")
        splits[split] = {"images": images, "labels": torch.tensor(ds.targets, dtype=torch.int64)}
    return splits


def _read_image(loader, path: str) -> np.ndarray:
    try:
        return np.asarray(loader(path))
    except OSError as err:  # PIL: "Truncated File Read", "cannot identify image file", ...
        raise DatasetNotFoundError(
            f"Cannot read {path} ({err}). Replace the file from the original archive, or delete the unpacked "
            "folder so that it is unpacked again."
        ) from None


class CifarData:
    """Train/val/test batches of normalized float images, with He et al.'s augmentation."""

    shard: Distributed = SINGLE_PROCESS  # a data-parallel run sets this process's place: train batches are its shards

    def __init__(self, cfg: CifarConfig, seed: int, splits: tuple[Split, Split] | None = None):
        """``splits``: (train, test) already in memory; by default loaded with :func:`load_cifar`."""
        self.cfg = cfg
        self.seed = seed
        self.class_names = CIFAR10_CLASSES if cfg.name == "cifar10" else tuple(str(k) for k in range(cfg.num_classes))
        train, self.test = splits or load_cifar(cfg)
        # One fixed shuffle (split_seed) picks the validation images, then the optional subset.
        order = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(cfg.split_seed))
        if cfg.limit_train is not None:
            order = order[: cfg.limit_train]
        if not 0 <= cfg.val_size < len(order):
            raise ValueError(f"data.val_size={cfg.val_size} must be in [0, {len(order)}).")
        val_idx, train_idx = order[: cfg.val_size], order[cfg.val_size :]
        self.train = Split(train.images[train_idx], train.labels[train_idx])
        self.val = Split(train.images[val_idx], train.labels[val_idx]) if cfg.val_size else None
        check_choice("data.normalize", cfg.normalize, NORMALIZATIONS)
        if cfg.normalize == "mean_std":  # per-channel statistics of the training images actually used (not the whole 50k)
            pixels = self.train.images.float().div_(255)
            self.mean = pixels.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
            self.std = pixels.std(dim=(0, 2, 3)).view(1, 3, 1, 1)
        else:  # (x - 0.5) / 0.5 maps [0, 1] onto [-1, 1]
            self.mean = self.std = torch.full((1, 3, 1, 1), 0.5)
        self.num_train_batches = -(-len(self.train.labels) // cfg.batch_size)
        log.info(
            "%s: %d train / %d val / %d test images, mean %s std %s",
            cfg.name,
            len(self.train.labels),
            0 if self.val is None else len(self.val.labels),
            len(self.test.labels),
            self.mean.flatten().tolist(),
            self.std.flatten().tolist(),
        )

    def model_inputs(self) -> dict:
        """What turns an image into this model's input and its output into class names (model_inputs.json)."""
        return {
            "task": "classification",
            "classes": list(self.class_names),
            "image_size": int(self.train.images.shape[-1]),
            "mean": self.mean.flatten().tolist(),
            "std": self.std.flatten().tolist(),
        }

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> float (B, 3, H, W): zero mean and unit variance per channel, or in [-1, 1]."""
        return (images.float().div_(255) - self.mean) / self.std

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.train.labels), generator=derived_generator(self.seed, epoch))
        bs = self.cfg.batch_size
        for index in range(start, self.num_train_batches):
            idx = order[index * bs : (index + 1) * bs]
            images = self.train.images[idx]
            if self.cfg.augment:  # drawn for the whole batch, so that the shards are the one-process batch's rows
                images = random_crop_flip(images, derived_generator(self.seed, epoch, index))
            images, labels = self.shard.take((images, self.train.labels[idx]))
            yield self.normalize(images), labels

    def val_batches(self):
        return None if self.val is None else self._eval_batches(self.val)

    def test_batches(self):
        return self._eval_batches(self.test)

    def _eval_batches(self, split: Split):
        bs = self.cfg.eval_batch_size
        return [(self.normalize(split.images[i : i + bs]), split.labels[i : i + bs]) for i in range(0, len(split.labels), bs)]


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, pad: int = PAD) -> torch.Tensor:
    """Zero-pad by ``pad``, take a random crop of the original size and flip half the images.

    images: (B, C, H, W). Each image gets its own offsets and flip, drawn from ``generator``.
    """
    b, c, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = dy[:, None] + torch.arange(h)  # (B, H)
    cols = dx[:, None] + torch.arange(w)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # a flip reads the columns backwards
    return padded[
        torch.arange(b)[:, None, None, None],
        torch.arange(c)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
