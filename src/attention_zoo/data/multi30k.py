"""Multi30k task 1 (Elliott et al. 2016): the official raw files, read with strict checks.

https://github.com/multi30k/dataset (data/task1/raw). One sentence per line, aligned across
de/en/fr/cs. Splits: train (29,000), val (1,014) and the four official test sets: test2016
(test_2016_flickr, 1,000), test2017 (test_2017_flickr, 1,000), test2017_mscoco (test_2017_mscoco,
461) and test2018 (test_2018_flickr, 1,071); each is also accepted by its file name.

Files live in ``<data root>/multi30k/``. Online, missing files are downloaded from the
official repository and must match their sha256 (pinned here for train, val and test2016; the
2017 and 2018 sets' sums could not be read from this offline machine, so their first download's sum
is logged and written beside the file as <file>.sha256); offline, the local folder is read.
Every file is checked: gzip integrity, UTF-8 decoding (the error names the line), and equal
line counts on the two sides of a pair.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import urllib.request
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

LANGUAGES = ("de", "en", "fr", "cs")
SPLIT_FILES = {
    "train": "train",
    "val": "val",
    "test2016": "test_2016_flickr",
    "test2017": "test_2017_flickr",
    "test2017_mscoco": "test_2017_mscoco",
    "test2018": "test_2018_flickr",
}
TEST_SETS = tuple(split for split in SPLIT_FILES if split.startswith("test"))
URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/{name}"
SHA256 = {
    "test_2016_flickr.cs.gz": "200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "train.cs.gz": "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.cs.gz": "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
}


class Multi30kError(ValueError):
    pass


def split_name(name: str) -> str:
    """The split key of a split or official test set name ("test_2017_flickr" -> "test2017")."""
    by_file = {file: split for split, file in SPLIT_FILES.items()}
    if name in SPLIT_FILES or name in by_file:
        return by_file.get(name, name)
    valid = ", ".join(f"{split} ({file})" if file != split else split for split, file in SPLIT_FILES.items())
    raise Multi30kError(f"Unknown Multi30k split {name!r}; valid: {valid}.")


def file_name(split: str, lang: str) -> str:
    split = split_name(split)
    if split not in SPLIT_FILES:
        raise Multi30kError(f"Unknown Multi30k split {split!r}; valid: {', '.join(SPLIT_FILES)}.")
    if lang not in LANGUAGES:
        raise Multi30kError(f"Unknown Multi30k language {lang!r}; valid: {', '.join(LANGUAGES)}.")
    return f"{SPLIT_FILES[split]}.{lang}.gz"


def download_command(root: Path, name: str = "") -> str:
    """The command that fetches the file ``name`` (all pinned files; a later test set by its key)."""
    split = next((s for s, f in SPLIT_FILES.items() if name.startswith(f"{f}.")), "")
    extra = f" --test-sets {split} --langs {name.split('.')[1]}" if split and name not in SHA256 else ""
    return f"python scripts/download_data.py multi30k --root {root}{extra}"


def ensure_file(folder: Path, name: str, download: bool) -> Path:
    """The local file, downloaded (and sha256-checked) first if it is missing and download is on."""
    path = folder / name
    if path.is_file():
        return path
    if not download:
        raise FileNotFoundError(
            f"Multi30k file {path} not found (data.download=false). Fetch the raw files with "
            f"`{download_command(folder.parent, name)}` on a machine with internet, or copy them into {folder}."
        )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{name}")
    try:
        log.info("Downloading %s", URL.format(name=name))
        urllib.request.urlretrieve(URL.format(name=name), tmp)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise FileNotFoundError(
            f"Multi30k file {path} not found and its download failed ({err}). Fetch the raw files with "
            f"`{download_command(folder.parent, name)}` on a machine with internet, or copy them into {folder}."
        ) from err
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    if name not in SHA256:
        log.warning("%s has no sha256 pinned here; downloaded with sha256 %s (written to %s.sha256).", name, digest, path)
        path.with_name(f"{name}.sha256").write_text(f"{digest}  {name}\n")
    elif digest != SHA256[name]:
        tmp.unlink()
        raise Multi30kError(f"Downloaded {name} has sha256 {digest}, expected {SHA256[name]}; not kept.")
    os.replace(tmp, path)
    return path


def read_lines(path: Path) -> list[str]:
    """Decoded lines of a gzip text file; named errors for truncation, bad bytes and emptiness."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise Multi30kError(f"{path} is not a complete gzip file ({err}): delete it and fetch it again.") from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise Multi30kError(f"{path}, line {line}: bytes that are not UTF-8 ({err.reason}).") from err
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise Multi30kError(f"{path} is empty: delete it and fetch it again.")
    return [line.strip() for line in lines]


HUB_DATASET = "bentrevett/multi30k"  # en-de only: train, validation, test (= test2016)
HUB_SPLITS = {"train": "train", "val": "validation", "test2016": "test"}


def load_hub_pairs(split: str, src: str, tgt: str, dataset=None) -> tuple[list[str], list[str]]:
    """The same pairs from the Hugging Face Hub copy (``data.source=hub``), through ``datasets``:
    an alternative to the raw files when online. ``dataset``: an already loaded DatasetDict."""
    split = split_name(split)
    if split not in HUB_SPLITS or {src, tgt} != {"de", "en"}:
        raise Multi30kError(
            f"{HUB_DATASET} holds de-en train, val and test2016 only (asked: {src}-{tgt} {split}); use data.source=files."
        )
    if dataset is None:
        import datasets

        try:
            dataset = datasets.load_dataset(HUB_DATASET)
        except (OSError, ConnectionError) as err:
            raise FileNotFoundError(f"Cannot load {HUB_DATASET} from the Hub ({err}); use data.source=files offline.") from err
    rows = dataset[HUB_SPLITS[split]]
    return [line.strip() for line in rows[src]], [line.strip() for line in rows[tgt]]


def load_pairs(root: str | Path, split: str, src: str, tgt: str, download: bool = True) -> tuple[list[str], list[str]]:
    """Aligned (source, target) sentences of one split, e.g. ``load_pairs(root, "train", "de", "en")``."""
    if src == tgt:
        raise Multi30kError(f"Source and target language are both {src!r}.")
    split = split_name(split)
    folder = Path(root).expanduser() / "multi30k"
    paths = [ensure_file(folder, file_name(split, lang), download) for lang in (src, tgt)]
    sources, targets = (read_lines(p) for p in paths)
    if len(sources) != len(targets):
        raise Multi30kError(
            f"Line counts differ: {paths[0]} has {len(sources)} lines, {paths[1]} has {len(targets)}. "
            "The two sides of a split must be aligned line by line; fetch both files again."
        )
    empty = next((i for i, (s, t) in enumerate(zip(sources, targets)) if not s or not t), None)
    if empty is not None:
        raise Multi30kError(f"Empty sentence at line {empty + 1} of {paths[0] if not sources[empty] else paths[1]}.")
    return sources, targets
