"""Flickr8k (Hodosh, Young and Hockenmaier 2013): 8,092 images with 5 captions each.

Two public formats of the captions and splits are read, from ``<root>/flickr8k/``:

- Karpathy's split file ``dataset_flickr8k.json`` (from caption_datasets.zip): one entry per
  image with its ``filename``, ``split`` (train / val / test; 6,000 / 1,000 / 1,000) and
  ``sentences`` (``raw`` text);
- the original release: ``Flickr8k.token.txt`` (``<image>#<k>\\t<caption>`` lines) with
  ``Flickr_8k.trainImages.txt``, ``Flickr_8k.devImages.txt`` and ``Flickr_8k.testImages.txt``.

The images are JPEGs in ``Flicker8k_Dataset/`` (the original archive's spelling),
``Flickr8k_Dataset/`` or ``images/`` under the same folder, or still packed in
``Flicker8k_Dataset.tar`` / ``Flickr8k_Dataset.zip`` there: an archive is checked against the
folder's ``SHA256SUMS`` when that file lists it, then unpacked once into ``cache_dir`` (as the
CIFAR-10 JPEG tar is). The dataset is distributed by its authors on request, so nothing
downloads it automatically; ``FLICKR8K_HELP`` says where to get it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tarfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from attention_zoo.choices import check_choice
from attention_zoo.engine.cache import build_lock

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
KARPATHY = "dataset_flickr8k.json"
TOKENS = "Flickr8k.token.txt"
ORIGINAL_SPLITS = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt", "test": "Flickr_8k.testImages.txt"}
IMAGE_FOLDERS = ("Flicker8k_Dataset", "Flickr8k_Dataset", "images")
IMAGE_ARCHIVES = ("Flicker8k_Dataset.tar", "Flickr8k_Dataset.zip")
CHECKSUMS = "SHA256SUMS"
FORMATS = ("auto", "karpathy", "original")
FLICKR8K_HELP = (
    "Get Flickr8k from its authors (https://hockenmaier.cs.illinois.edu/8k-pictures.html; the archives "
    "Flickr8k_Dataset.zip and Flickr8k_text.zip are also mirrored at "
    "https://github.com/jbrownlee/Datasets/releases/tag/Flickr8k) and Karpathy's split file from "
    "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip. Unpack them so that "
    "{folder} holds Flicker8k_Dataset/*.jpg and either dataset_flickr8k.json or Flickr8k.token.txt with "
    "Flickr_8k.{{train,dev,test}}Images.txt."
)


class Flickr8kNotFoundError(FileNotFoundError):
    pass


@dataclass
class CaptionedImage:
    path: Path
    captions: list[str]


def _karpathy(folder: Path) -> dict[str, list[tuple[str, list[str]]]]:
    entries = json.loads((folder / KARPATHY).read_text())["images"]
    splits: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for entry in entries:
        split = "train" if entry["split"] == "restval" else entry["split"]
        splits[split].append((entry["filename"], [s["raw"].strip() for s in entry["sentences"]]))
    return splits


def _original(folder: Path) -> dict[str, list[tuple[str, list[str]]]]:
    captions: dict[str, list[str]] = defaultdict(list)
    for line_no, line in enumerate((folder / TOKENS).read_text().splitlines(), 1):
        if not line.strip():
            continue
        key, sep, caption = line.partition("\t")
        if not sep or "#" not in key:
            raise ValueError(f"{folder / TOKENS}:{line_no}: expected '<image>#<k><TAB><caption>', got {line[:80]!r}.")
        captions[key.rsplit("#", 1)[0]].append(caption.strip())
    splits = {}
    for split, name in ORIGINAL_SPLITS.items():
        names = [n.strip() for n in (folder / name).read_text().splitlines() if n.strip()]
        missing = [n for n in names if n not in captions]
        if missing:
            raise ValueError(f"{folder / name} lists {len(missing)} images without captions in {TOKENS}, e.g. {missing[0]}.")
        splits[split] = [(n, captions[n]) for n in names]
    return splits


def _image_folder_in(folder: Path) -> Path | None:
    return next((folder / f for f in IMAGE_FOLDERS if (folder / f).is_dir()), None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_sha256(archive: Path) -> str | None:
    """The archive's sum in ``SHA256SUMS`` beside it (``<hex>  <name>`` lines), if listed."""
    sums = archive.parent / CHECKSUMS
    if not sums.is_file():
        return None
    for line in sums.read_text().splitlines():
        digest, _, name = line.strip().partition(" ")
        if name.strip().lstrip("*") == archive.name:
            return digest.lower()
    return None


def _unpacked_images(archive: Path, cache_dir: Path) -> Path:
    """The image folder of ``archive``, unpacked once into ``cache_dir`` after its sha256 check."""
    expected = _expected_sha256(archive)
    stat = archive.stat()
    target = cache_dir / f"flickr8k-images-{(expected or f'{stat.st_size}-{stat.st_mtime_ns}')[:16]}"
    with build_lock(target):  # a second run waits for the first one's unpacking, then uses it
        found = _image_folder_in(target)
        if found is not None:
            return found
        if expected is None:
            log.warning("%s is not listed in a %s file beside it; unpacking it unchecked.", archive, CHECKSUMS)
        else:
            actual = _sha256(archive)
            if actual != expected:
                raise Flickr8kNotFoundError(
                    f"{archive} is corrupt: its sha256 is {actual}, {archive.parent / CHECKSUMS} says {expected}. "
                    "Copy the archive again (or delete the stale line of SHA256SUMS if you replaced it on purpose)."
                )
        log.info("Unpacking %s into %s (once).", archive, target)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # what a killed unpacking left
        partial.mkdir(parents=True)
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as packed:
                packed.extractall(partial)
        else:
            with tarfile.open(archive) as packed:
                packed.extractall(partial, filter="data")
        partial.rename(target)
    found = _image_folder_in(target)
    if found is None:
        raise Flickr8kNotFoundError(f"{archive} holds none of the image folders {', '.join(IMAGE_FOLDERS)}.")
    return found


def _image_folder(folder: Path, cache_dir: Path | None) -> Path:
    found = _image_folder_in(folder)
    if found is not None:
        return found
    archive = next((folder / a for a in IMAGE_ARCHIVES if (folder / a).is_file()), None)
    if archive is not None:
        return _unpacked_images(archive, Path(cache_dir).expanduser() if cache_dir else folder)
    raise Flickr8kNotFoundError(
        f"Flickr8k images not found: looked for {', '.join(IMAGE_FOLDERS)} or {', '.join(IMAGE_ARCHIVES)} in {folder}. "
        + FLICKR8K_HELP.format(folder=folder)
    )


def load_flickr8k(
    root: str | Path, split_format: str = "auto", cache_dir: str | Path | None = None
) -> dict[str, list[CaptionedImage]]:
    """{split: [CaptionedImage]} for train / val / test, with every image file checked to exist.
    ``cache_dir``: where an image archive is unpacked (default: beside the archive)."""
    check_choice("data.split_format", split_format, FORMATS)
    folder = Path(root).expanduser() / "flickr8k"
    has_karpathy = (folder / KARPATHY).is_file()
    has_original = (folder / TOKENS).is_file() and all((folder / f).is_file() for f in ORIGINAL_SPLITS.values())
    use = {"auto": "karpathy" if has_karpathy else "original" if has_original else None}.get(split_format, split_format)
    if use is None or (use == "karpathy" and not has_karpathy) or (use == "original" and not has_original):
        wanted = (
            KARPATHY
            if use == "karpathy"
            else f"{TOKENS} + {', '.join(ORIGINAL_SPLITS.values())}"
            if use == "original"
            else f"{KARPATHY}, or {TOKENS} + {', '.join(ORIGINAL_SPLITS.values())}"
        )
        raise Flickr8kNotFoundError(
            f"Flickr8k captions not found: looked for {wanted} in {folder}. " + FLICKR8K_HELP.format(folder=folder)
        )
    image_folder = _image_folder(folder, cache_dir)
    raw = _karpathy(folder) if use == "karpathy" else _original(folder)
    splits = {}
    for split in SPLITS:
        items = [CaptionedImage(image_folder / name, caps) for name, caps in raw.get(split, [])]
        missing = [str(i.path) for i in items if not i.path.is_file()]
        if missing:
            raise Flickr8kNotFoundError(
                f"{len(missing)} Flickr8k {split} images are missing, e.g. {missing[0]}. " + FLICKR8K_HELP.format(folder=folder)
            )
        if not items:
            raise ValueError(f"The Flickr8k {use} split file in {folder} has no {split} images.")
        splits[split] = items
    return splits


def as_hf_dataset(splits: dict[str, list[CaptionedImage]]):
    """The splits of :func:`load_flickr8k` as a ``datasets.DatasetDict`` (columns ``image``: the
    decoded file through ``datasets.Image``, ``path`` and ``captions``), for use with the Hugging
    Face tooling; the training pipeline itself reads the files directly."""
    import datasets

    features = datasets.Features(
        {"image": datasets.Image(), "path": datasets.Value("string"), "captions": datasets.Sequence(datasets.Value("string"))}
    )
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {
                    "image": [str(i.path) for i in items],
                    "path": [str(i.path) for i in items],
                    "captions": [i.captions for i in items],
                },
                features=features,
            )
            for split, items in splits.items()
        }
    )
