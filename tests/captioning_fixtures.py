"""Tiny Flickr8k fixtures in both public formats, written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from attention_zoo.models.show_attend_tell import ShowAttendTell, ShowAttendTellConfig

WORDS = ("dog", "cat", "man", "girl", "ball", "park", "water", "bike")


# show_attend_tell_cpu shrunk to seconds on the fixture's images (64x64, a few words)
TINY_CAPTIONER = (
    "data.image_size=64",
    "data.min_freq=1",
    "data.batch_size=10",
    "model.embed_dim=16",
    "model.hidden_dim=32",
    "model.attention_dim=16",
    "trainer.progress_bar=false",
)


def fixture_images(n_per_split: int = 3) -> dict[str, list[tuple[str, list[str]]]]:
    """{split: [(file name, 5 captions)]}: deterministic names and captions."""
    splits = {}
    k = 0
    for split in ("train", "val", "test"):
        items = []
        for i in range(n_per_split):
            a, b = WORDS[k % len(WORDS)], WORDS[(k + 3) % len(WORDS)]
            items.append(
                (
                    f"{1000 + k}_{split}{i}.jpg",
                    [
                        f"A {a} plays with a {b} .",
                        f"The {a} is near the {b}.",
                        f"a {a} and a {b}",
                        f"A {a} runs .",
                        f"There is a {b} .",
                    ],
                )
            )
            k += 1
        splits[split] = items
    return splits


def write_flickr8k(root: Path, fmt: str, n_per_split: int = 3, image_folder: str = "Flicker8k_Dataset") -> Path:
    """<root>/flickr8k/ in Karpathy's (``fmt="karpathy"``) or the original (``"original"``) format."""
    folder = root / "flickr8k"
    (folder / image_folder).mkdir(parents=True, exist_ok=True)
    splits = fixture_images(n_per_split)
    rng = np.random.default_rng(0)
    for items in splits.values():
        for name, _ in items:
            Image.fromarray(rng.integers(0, 255, size=(40, 56, 3), dtype=np.uint8)).save(folder / image_folder / name)
    if fmt == "karpathy":
        images = [
            {"filename": name, "split": split, "imgid": i, "sentences": [{"raw": c, "tokens": c.lower().split()} for c in caps]}
            for split, items in splits.items()
            for i, (name, caps) in enumerate(items)
        ]
        (folder / "dataset_flickr8k.json").write_text(json.dumps({"images": images, "dataset": "flickr8k"}))
    else:
        lines = [f"{name}#{k}\t{c}" for items in splits.values() for name, caps in items for k, c in enumerate(caps)]
        (folder / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
        for split, file in (("train", "trainImages"), ("val", "devImages"), ("test", "testImages")):
            (folder / f"Flickr_8k.{file}.txt").write_text("\n".join(name for name, _ in splits[split]) + "\n")
    return folder


VOCAB = 12


def small_model(**overrides) -> ShowAttendTell:
    """A small Show-Attend-Tell on the scenes CNN, seeded; ``overrides`` change its config."""
    torch.manual_seed(0)
    options = dict(
        vocab_size=VOCAB,
        encoder="scenes_cnn",
        encoder_weights=None,
        fine_tune_encoder=True,
        embed_dim=8,
        hidden_dim=16,
        attention_dim=8,
        dropout=0.0,
    )
    return ShowAttendTell(ShowAttendTellConfig(**{**options, **overrides}))


class TaskData:
    """The parts of CaptionData that the captioning task's training step reads."""

    references = {"test": [["a"]]}
