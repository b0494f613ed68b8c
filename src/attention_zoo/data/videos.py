"""Video clips for the spacetime non-local block (Wang et al. 2018): a seeded generated set, and a
reader for a folder of real clips.

**moving_shapes** (generated; no public video set is reachable offline). A clip is T frames of
size x size pixels on a dark background with sensor noise:
- two grey distractor squares that move in straight lines through every frame, bouncing off the
  borders;
- event A: a coloured square in one quadrant during the first two frames;
- event B: a coloured square in the diagonally opposite quadrant during the last two frames.
The label is whether A and B have the same colour (4 colours; classes "different", "same",
balanced). The two events never share a frame and are half the frame apart, so the answer needs
a comparison across time and space. A per-frame 2D network whose features are averaged over
time and space before a linear classifier (C2D) cannot represent it: a linear function g of
summed per-frame features would need g(a) + g(a) > t > g(a) + g(b) for every colour pair a != b,
which summing over a pair contradicts. It can still beat chance: scores G(A's colour) + H(B's colour)
with G = (0, 1, 2, 3), H = (0, 3, 2, 1) and threshold 3.5 are right on 75% of clips. A spacetime
non-local block, whose output at A mixes in the features at B, can be exact. Clip i of a split
is a pure function of (``generation_seed``, split, i).

**folder** (real clips): ``<root>/<name>/{train,val,test}/<class>/<clip>/<frame>.{jpg,png}``,
frames in name order; every clip is sampled to ``frames`` frames evenly and resized to
``size`` x ``size``. A clip with fewer frames, or an unreadable frame, is a named error.

Clips are stored as uint8 (N, 3, T, H, W), the layout of a 3D convolution's input, and
normalized per channel with the training clips' statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from attention_zoo.choices import check_choice
from attention_zoo.data.images import IMAGE_SUFFIXES, read_rgb, to_square
from attention_zoo.engine.cache import build_lock
from attention_zoo.engine.checkpoint import save_atomic
from attention_zoo.engine.distributed import SINGLE_PROCESS, Distributed
from attention_zoo.engine.seeding import derived_generator

log = logging.getLogger(__name__)

SOURCES = ("moving_shapes", "folder")
SPLITS = ("train", "val", "test")
COLOURS = ((225, 45, 45), (45, 200, 60), (50, 90, 235), (235, 210, 40))  # red, green, blue, yellow
CLASSES = ("different", "same")
SQUARE, DISTRACTOR = 6, 5  # side lengths in pixels at size 32 (scaled with the frame size)


@dataclass
class VideoConfig:
    source: str  # moving_shapes | folder
    root: str
    cache_dir: str
    name: str = "moving_shapes"  # the folder under root (source=folder), the cache file's name
    frames: int = 8
    size: int = 32
    clips: dict | None = None  # moving_shapes: {"train": n, "val": n, "test": n}
    generation_seed: int = 0  # fixes the generated set; the run's seed does not change it
    batch_size: int = 32
    eval_batch_size: int = 64
    num_classes: int = 2


@dataclass
class Clips:
    videos: torch.Tensor  # (N, 3, T, H, W) uint8
    labels: torch.Tensor  # (N,) int64


def _square(frame: np.ndarray, top: int, left: int, side: int, colour) -> None:
    frame[max(top, 0) : top + side, max(left, 0) : left + side] = colour


def moving_shapes_clip(rng: np.random.Generator, frames: int = 8, size: int = 32) -> tuple[np.ndarray, int]:
    """One clip (T, H, W, 3) uint8 and its label (1 = event A's colour equals event B's)."""
    scale = size / 32
    square, distractor = max(2, round(SQUARE * scale)), max(2, round(DISTRACTOR * scale))
    video = np.full((frames, size, size, 3), 20.0)
    for _ in range(2):  # distractors: grey squares in straight lines through every frame
        grey = rng.uniform(90, 160)
        position = rng.uniform(0, size - distractor, 2)
        velocity = rng.choice([-2, -1, 1, 2], 2) * scale
        for t in range(frames):
            _square(video[t], int(position[0]), int(position[1]), distractor, grey)
            position += velocity
            for axis in range(2):  # bounce off the borders
                if not 0 <= position[axis] <= size - distractor:
                    velocity[axis] *= -1
                    position[axis] = np.clip(position[axis], 0, size - distractor)
    label = int(rng.integers(2))
    colour_a = int(rng.integers(len(COLOURS)))
    colour_b = colour_a if label else int((colour_a + rng.integers(1, len(COLOURS))) % len(COLOURS))
    quadrant = rng.integers(2, size=2)  # (row, column) halves of event A; B takes the opposite ones
    half, margin = size // 2, max(1, size // 16)
    for colour, corner, times in ((colour_a, quadrant, range(2)), (colour_b, 1 - quadrant, range(frames - 2, frames))):
        top, left = (corner * half + rng.integers(margin, half - square - margin + 1, 2)).tolist()
        step = rng.choice([-1, 1], 2)
        for k, t in enumerate(times):
            _square(video[t], top + k * step[0], left + k * step[1], square, COLOURS[colour])
    video += rng.normal(0, 6, video.shape)
    return np.clip(video, 0, 255).round().astype(np.uint8), label


def generate(split: str, count: int, frames: int, size: int, seed: int) -> Clips:
    """``count`` clips of ``split``, clip i drawn from a generator seeded with (seed, split, i)."""
    split_code = SPLITS.index(split)
    videos, labels = [], []
    for i in range(count):
        clip, label = moving_shapes_clip(np.random.default_rng([seed, split_code, i]), frames, size)
        videos.append(clip)
        labels.append(label)
    stacked = torch.from_numpy(np.stack(videos)).permute(0, 4, 1, 2, 3).contiguous()  # (N, 3, T, H, W)
    return Clips(stacked, torch.tensor(labels, dtype=torch.int64))


def read_clip_folder(root: Path, split: str, frames: int, size: int) -> tuple[Clips, list[str]]:
    """Clips of ``root/split/<class>/<clip>/`` (frames in name order), and the class names."""
    folder = root / split
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise FileNotFoundError(
            f"No clips in {folder}: expected {folder}/<class>/<clip>/<frame>.jpg (frames as images, in name order). "
            "Use data.source=moving_shapes for the generated set."
        )
    videos, labels = [], []
    for label, name in enumerate(classes):
        for clip in sorted(p for p in (folder / name).iterdir() if p.is_dir()):
            files = sorted(p for p in clip.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if len(files) < frames:
                raise ValueError(f"{clip} has {len(files)} frames; data.frames={frames} needs at least that many.")
            chosen = [files[round(k * (len(files) - 1) / max(frames - 1, 1))] for k in range(frames)]  # evenly spaced
            videos.append(torch.stack([_frame(f, size) for f in chosen], dim=1))  # (3, T, H, W)
            labels.append(label)
    return Clips(torch.stack(videos), torch.tensor(labels, dtype=torch.int64)), classes


def _frame(path: Path, size: int) -> torch.Tensor:
    try:
        return to_square(read_rgb(path), size)  # (3, size, size) uint8
    except OSError as err:
        raise ValueError(f"Cannot read frame {path} ({err}); replace or remove the clip.") from None


class VideoData:
    """Train/val/test batches of normalized clips (B, 3, T, H, W), no augmentation."""

    shard: Distributed = SINGLE_PROCESS

    def __init__(self, cfg: VideoConfig, seed: int):
        check_choice("data.source", cfg.source, SOURCES)
        self.cfg, self.seed = cfg, seed
        splits = self._load()
        self.train, self.val, self.test = (splits[s] for s in SPLITS)
        pixels = self.train.videos.float().div_(255)
        self.mean = pixels.mean(dim=(0, 2, 3, 4)).view(1, 3, 1, 1, 1)
        self.std = pixels.std(dim=(0, 2, 3, 4)).view(1, 3, 1, 1, 1)
        self.num_train_batches = -(-len(self.train.labels) // cfg.batch_size)
        log.info(
            "%s: %d / %d / %d clips of %d frames at %dx%d, classes %s",
            cfg.name,
            *(len(splits[s].labels) for s in SPLITS),
            cfg.frames,
            cfg.size,
            ", ".join(self.class_names),
        )

    def _load(self) -> dict[str, Clips]:
        cfg = self.cfg
        if cfg.source == "folder":
            folder = Path(cfg.root).expanduser() / cfg.name
            loaded = {split: read_clip_folder(folder, split, cfg.frames, cfg.size) for split in SPLITS}
            self.class_names = tuple(loaded["train"][1])
            return {split: clips for split, (clips, _) in loaded.items()}
        self.class_names = CLASSES
        counts = cfg.clips or {"train": 6000, "val": 1000, "test": 1000}
        cache = Path(cfg.cache_dir).expanduser() / (
            f"{cfg.name}-{cfg.generation_seed}-{cfg.frames}x{cfg.size}-" + "-".join(str(counts[s]) for s in SPLITS) + ".pt"
        )
        with build_lock(cache):  # generated once; later runs (and concurrent ones) read the file
            if cache.is_file():
                stored = torch.load(cache, weights_only=True)
                return {split: Clips(**stored[split]) for split in SPLITS}
            splits = {s: generate(s, counts[s], cfg.frames, cfg.size, cfg.generation_seed) for s in SPLITS}
            save_atomic({s: {"videos": c.videos, "labels": c.labels} for s, c in splits.items()}, cache)
        return splits

    def model_inputs(self) -> dict:
        return {
            "task": "classification",
            "classes": list(self.class_names),
            "frames": self.cfg.frames,
            "image_size": self.cfg.size,
            "mean": self.mean.flatten().tolist(),
            "std": self.std.flatten().tolist(),
        }

    def normalize(self, videos: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, T, H, W) -> float, zero mean and unit variance per channel."""
        return (videos.float().div_(255) - self.mean) / self.std

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.train.labels), generator=derived_generator(self.seed, epoch))
        bs = self.cfg.batch_size
        for index in range(start, self.num_train_batches):
            idx = order[index * bs : (index + 1) * bs]
            videos, labels = self.shard.take((self.train.videos[idx], self.train.labels[idx]))
            yield self.normalize(videos), labels

    def val_batches(self):
        return self._eval_batches(self.val)

    def test_batches(self):
        return self._eval_batches(self.test)

    def _eval_batches(self, split: Clips):
        bs = self.cfg.eval_batch_size
        return [(self.normalize(split.videos[i : i + bs]), split.labels[i : i + bs]) for i in range(0, len(split.labels), bs)]
