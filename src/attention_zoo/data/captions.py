"""Captioning data: Flickr8k (data/flickr8k.py) or the generated scenes set (data/scenes.py),
encoded and batched for Show, Attend and Tell.

- Vocabulary: lowercased Moses words of the training captions seen at least ``min_freq``
  times (about 8.5k words on Flickr8k with min_freq 1; the paper's vocabulary had 10k).
- Training items are (image, caption) pairs, all 5 captions of an image; captions over
  ``max_len`` words are dropped. ``group_by=length`` (Xu et al. Sec. 4.3): every batch holds
  captions of one length (no padding inside a training batch): the pairs are grouped by length
  and cut into batches once, and each epoch shuffles the order of the batches.
  ``group_by=image`` (for an encoder trained with the captioner): a batch holds all the captions
  of ``batch_size // 5`` images, padded, so that the encoder runs once per image instead of once
  per caption (5x fewer encoder passes); the images are reshuffled every epoch. Batches then carry
  ``caption_image`` (B_captions,), the row of ``src`` each caption describes.
- Evaluation goes over images, once each, with all their references (``references[split]``);
  its teacher-forced loss uses each image's first caption.
- Images: Flickr8k JPEGs are read per batch and normalized with the ImageNet statistics. An image
  already at ``image_size`` x ``image_size`` (the 224x224 copy in ../shared/data) goes to the
  encoder as it is; any other is resized (shorter side 256/224 x image_size) and centre-cropped.
  An unreadable image stops the run with its path: nothing is skipped. Scenes are kept in
  memory as uint8.
- ``cache_features(encoder)``: with a frozen encoder, the annotation vectors of every image are
  computed once and stored (fp16) under ``cache_dir``; batches then carry them instead of images.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from attention_zoo.choices import check_choice
from attention_zoo.data import flickr8k, scenes
from attention_zoo.data.flickr8k import Flickr8kNotFoundError
from attention_zoo.data.images import read_rgb, to_square
from attention_zoo.data.text import WordEncoder, config_key, encoder_from_state, pad_batch, shuffled
from attention_zoo.engine.cache import load_or_build
from attention_zoo.engine.distributed import SINGLE_PROCESS, Distributed
from attention_zoo.engine.seeding import derived_generator

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
NAMES = ("flickr8k", "scenes")
GROUPINGS = ("length", "image")
CAPTIONS_PER_IMAGE = 5
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class CaptionConfig:
    root: str
    cache_dir: str
    name: str = "flickr8k"  # flickr8k | scenes
    split_format: str = "auto"  # flickr8k: auto | karpathy | original
    min_freq: int = 1
    max_len: int = 50  # training captions with more words are dropped
    image_size: int = 224  # flickr8k crop
    batch_size: int = 64  # captions per training batch
    eval_batch_size: int = 64
    group_by: str = "length"  # length: same-length captions (Sec. 4.3) | image: all captions of batch_size // 5 images
    scenes_images: dict = field(default_factory=lambda: {"train": 6000, "val": 500, "test": 500})
    scenes_image_size: int = 64
    scenes_seed: int = 0  # the generated set is fixed by this seed, not by the run's seed
    limit_train: int | None = None  # first N training images (smoke runs)
    cache_features: bool = True  # with a frozen encoder, compute its features once (see prepare)


class CaptionData:
    shard: Distributed = SINGLE_PROCESS  # a data-parallel run sets this process's place: train batches are its shards

    def __init__(self, cfg: CaptionConfig, seed: int):
        check_choice("captioning data.name", cfg.name, NAMES)
        check_choice("data.group_by", cfg.group_by, GROUPINGS)
        self.cfg, self.seed = cfg, seed
        self.features: dict[str, torch.Tensor] | None = None
        if cfg.name == "scenes":
            generated = {s: scenes.generate(s, cfg.scenes_images[s], cfg.scenes_seed, cfg.scenes_image_size) for s in SPLITS}
            if cfg.limit_train is not None:
                generated["train"] = generated["train"][: cfg.limit_train]
            self.images = {s: torch.stack([x.image for x in items]) for s, items in generated.items()}  # (N, 3, H, W) uint8
            self.objects = {s: [x.objects for x in items] for s, items in generated.items()}
            self.references = {s: [x.captions for x in items] for s, items in generated.items()}
            self.paths = None
        else:
            loaded = flickr8k.load_flickr8k(cfg.root, cfg.split_format, cfg.cache_dir)
            if cfg.limit_train is not None:
                loaded["train"] = loaded["train"][: cfg.limit_train]
            self.paths = {s: [x.path for x in items] for s, items in loaded.items()}
            self.references = {s: [x.captions for x in items] for s, items in loaded.items()}
            self.images, self.objects = None, None
        self._encode()
        train = [(image, ids) for image, caps in enumerate(self.caption_ids["train"]) for ids in caps if len(ids) <= cfg.max_len]
        by_length = defaultdict(list)
        for pair in range(len(train)):
            by_length[len(train[pair][1])].append(pair)
        self.train_pairs = train
        self.train_batch_rows = []  # fixed partition into same-length batches (Sec. 4.3); epochs shuffle their order
        for length in sorted(by_length):
            pairs = by_length[length]
            perm = torch.randperm(len(pairs), generator=derived_generator(seed, -1, length)).tolist()
            pairs = [pairs[p] for p in perm]
            self.train_batch_rows += [pairs[i : i + cfg.batch_size] for i in range(0, len(pairs), cfg.batch_size)]
        self.pairs_of_image = defaultdict(list)  # image -> its training pairs, for group_by=image
        for pair, (image, _) in enumerate(train):
            self.pairs_of_image[image].append(pair)
        self.images_per_batch = max(1, cfg.batch_size // CAPTIONS_PER_IMAGE)
        self.num_train_batches = (
            len(self.train_batch_rows) if cfg.group_by == "length" else -(-len(self.pairs_of_image) // self.images_per_batch)
        )
        n_captions = sum(len(c) for c in self.caption_ids["train"])
        log.info(
            "%s: %d/%d/%d images, %d training captions (%d over max_len %d dropped) in %d batches grouped by %s; vocab %d",
            cfg.name,
            *(len(self.references[s]) for s in SPLITS),
            len(train),
            n_captions - len(train),
            cfg.max_len,
            self.num_train_batches,
            cfg.group_by,
            self.encoder.vocab_size,
        )

    # ------------------------------------------------------------------ encoding
    def _encode(self) -> None:
        """Vocabulary and caption ids, cached under cache_dir (Moses tokenization takes a while)."""
        cfg = self.cfg
        fields = {
            k: v for k, v in asdict(cfg).items() if k not in ("root", "cache_dir", "batch_size", "eval_batch_size", "max_len")
        }
        sources = [str(p) for p in self.paths["train"][:3]] if self.paths else []
        key = hashlib.sha1(
            config_key({"config": fields, "refs": [r[:2] for r in self.references["train"][:50]], "src": sources}).encode()
        )
        cache = Path(cfg.cache_dir).expanduser() / f"captions-{cfg.name}-{key.hexdigest()[:16]}.pt"

        def encode() -> dict:
            encoder = WordEncoder.train(
                "en", [c for caps in self.references["train"] for c in caps], lowercase=True, min_freq=cfg.min_freq
            )
            return {
                "encoder": encoder.state(),
                "ids": {s: [[encoder.encode(c) for c in caps] for caps in self.references[s]] for s in SPLITS},
            }

        stored, from_cache = load_or_build(cache, encode)
        if not from_cache:
            log.info("Encoded %s captions; cached at %s", cfg.name, cache)
        self.encoder = encoder_from_state(stored["encoder"])
        self.caption_ids = stored["ids"]

    # ------------------------------------------------------------------ images and features
    def pixels(self, split: str, rows: list[int]) -> torch.Tensor:
        """uint8 (B, 3, H, W) images of a split, as stored or read from disk."""
        if self.images is not None:
            return self.images[split][rows]
        return torch.stack([self._read(self.paths[split][i]) for i in rows])

    def _read(self, path: Path) -> torch.Tensor:
        """(3, image_size, image_size) uint8; resized only if the file is not at that size already."""
        try:
            pixels = read_rgb(path)  # (3, H, W)
        except OSError as err:  # PIL: "cannot identify image file", "image file is truncated", ...
            unpacked = Path(path).resolve().is_relative_to(Path(self.cfg.cache_dir).expanduser().resolve())
            fix = (
                f"delete the unpacked folder {Path(path).parent.parent} so that the archive is unpacked again"
                if unpacked
                else "replace it from the original archive"
            )
            raise Flickr8kNotFoundError(f"Cannot read the image {path} ({err}): {fix}. No image is ever skipped.") from None
        return to_square(pixels, self.cfg.image_size)

    @property
    def pixel_statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per channel: ImageNet's for photographs, fixed ones for the scenes."""
        return (IMAGENET_MEAN, IMAGENET_STD) if self.images is None else ((0.5,) * 3, (0.25,) * 3)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in self.pixel_statistics)
        return (pixels.float() / 255 - mean) / std

    def model_inputs(self) -> dict:
        """What turns an image into this model's input and its output ids into words (model_inputs.json)."""
        mean, std = self.pixel_statistics
        size = self.cfg.scenes_image_size if self.images is not None else self.cfg.image_size
        return {"task": "captioning", "words": self.encoder.state(), "image_size": size, "mean": list(mean), "std": list(std)}

    def prepare(self, model: torch.nn.Module, device: torch.device) -> None:
        """Called by the entrypoint once the model is built: caches the features of a frozen encoder."""
        encoder = getattr(model, "encoder", None)
        if not self.cfg.cache_features or encoder is None or not getattr(encoder, "frozen", False):
            return
        weights = model.cfg.encoder_weights
        if weights not in (None, "imagenet"):
            stat = Path(weights).expanduser().stat()
            weights = f"{Path(weights).name}-{stat.st_size}-{stat.st_mtime_ns}"
        tag = hashlib.sha1(
            config_key([model.cfg.encoder, weights, self.cfg.image_size, self.cfg.limit_train]).encode()
        ).hexdigest()[:12]
        self.cache_features(encoder, f"{model.cfg.encoder}-{tag}", device)

    @torch.no_grad()
    def cache_features(self, encoder: torch.nn.Module, tag: str, device: torch.device | str = "cpu") -> None:
        """Run a frozen ``encoder`` once over every image and keep its (N, L, D) outputs (fp16,
        stored under cache_dir as captions-<name>-features-<tag>.pt and reused by later runs)."""
        path = Path(self.cfg.cache_dir).expanduser() / f"captions-{self.cfg.name}-features-{tag}.pt"

        def compute() -> dict:
            model = encoder.to(device).eval()
            features = {}
            for split in SPLITS:
                n = len(self.references[split])
                chunks = [
                    model(self.normalize(self.pixels(split, list(range(i, min(i + 64, n))))).to(device)).half().cpu()
                    for i in range(0, n, 64)
                ]
                features[split] = torch.cat(chunks)  # (N, L, D)
            return features

        self.features, from_cache = load_or_build(path, compute)
        log.info(
            "%s encoder features of %d images: %s",
            "Loaded cached" if from_cache else "Cached",
            sum(len(f) for f in self.features.values()),
            path,
        )

    def _sources(self, split: str, rows: list[int]) -> torch.Tensor:
        if self.features is not None:
            return self.features[split][rows].float()  # (B, L, D)
        return self.normalize(self.pixels(split, rows))  # (B, 3, H, W)

    # ------------------------------------------------------------------ batches
    def train_batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        if self.cfg.group_by == "image":
            yield from self._image_batches(epoch, start)
            return
        for rows in shuffled(self.train_batch_rows, self.seed, epoch)[start:]:
            rows = self.shard.rows(rows)
            images = [self.train_pairs[r][0] for r in rows]
            yield {
                "src": self._sources("train", images),
                "captions": pad_batch([self.train_pairs[r][1] for r in rows], add_bos_eos=True),  # (B, T + 2)
                "index": torch.tensor(images),
            }

    def _image_batches(self, epoch: int, start: int) -> Iterator[dict[str, torch.Tensor]]:
        """group_by=image: all captions of ``images_per_batch`` images, in an order fixed by (seed, epoch)."""
        images = [image for (image,) in shuffled([[i] for i in self.pairs_of_image], self.seed, epoch)]
        for first in range(start * self.images_per_batch, len(images), self.images_per_batch):
            chunk = self.shard.rows(images[first : first + self.images_per_batch])  # a shard keeps whole images
            pairs = [(row, pair) for row, image in enumerate(chunk) for pair in self.pairs_of_image[image]]
            yield {
                "src": self._sources("train", chunk),  # one row per image
                "captions": pad_batch([self.train_pairs[p][1] for _, p in pairs], add_bos_eos=True),  # (B_cap, T + 2)
                "caption_image": torch.tensor([row for row, _ in pairs]),  # (B_cap,) row of src
                "index": torch.tensor([chunk[row] for row, _ in pairs]),  # (B_cap,) image of each caption
            }

    def batch(self, split: str, rows: list[int]) -> dict[str, torch.Tensor]:
        """Images ``rows`` of a split, with their first caption (for the loss) and their indices."""
        return {
            "src": self._sources(split, rows),
            "captions": pad_batch([self.caption_ids[split][i][0] for i in rows], add_bos_eos=True),
            "index": torch.tensor(rows),
        }

    def eval_batches(self, split: str) -> Iterator[dict[str, torch.Tensor]]:
        """Batches over the images of a split in order, built as they are consumed."""
        n, size = len(self.references[split]), self.cfg.eval_batch_size
        return (self.batch(split, list(range(i, min(i + size, n)))) for i in range(0, n, size))

    def val_batches(self):
        return self.eval_batches("val")

    def test_batches(self):
        return self.eval_batches("test")
