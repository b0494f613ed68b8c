"""Atomic, resumable checkpoints.

A checkpoint is written to a temporary file in the same folder, flushed to disk and then
renamed over the target with ``os.replace`` (atomic on POSIX), so a process killed in the
middle of a save leaves the previous checkpoint intact. Everything stored is a tensor or a
plain Python value, so checkpoints load with ``torch.load(weights_only=True)``: loading a
checkpoint never executes pickled code.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import torch

LAST = "last.pt"  # full training state, rewritten every epoch and every N minutes
PREVIOUS = "last.prev.pt"  # the full training state before the newest one: the fallback if last.pt is damaged
BEST = "best.pt"  # model weights of the best validation epoch
EPOCH = "epoch{}.pt"  # model weights at the end of an epoch (kept for checkpoint averaging)
AVERAGED = "averaged.pt"  # the average of the last epochs' weights, when the run averages
_TMP_PREFIX = ".tmp-"


def save_atomic(obj: dict, path: str | Path) -> None:
    """Write ``obj`` to ``path`` so that ``path`` is always either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{os.getpid()}.{secrets.token_hex(4)}")  # unique per writer
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


class DamagedCheckpointError(RuntimeError):
    """A checkpoint file that cannot be read: truncated, empty, or not written by this project."""


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_atomic` (tensors and plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds; none of its advice is passed on
        # torch's own message may suggest weights_only=False, which would run the file's pickled code
        raise DamagedCheckpointError(
            f"Checkpoint {path} ({path.stat().st_size:,} bytes) cannot be read: it is truncated, empty or not a "
            f"checkpoint of this project ({type(err).__name__}). Resume from an earlier checkpoint or start a new run."
        ) from None


def rotate_and_save(obj: dict, path: str | Path) -> None:
    """Save ``obj`` at ``path`` (atomically), keeping the file it replaces as ``last.prev.pt`` beside it."""
    path = Path(path)
    if path.is_file():
        os.replace(path, path.with_name(PREVIOUS))
    save_atomic(obj, path)


def average(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the model weights stored in ``paths`` (Vaswani et al. Sec. 6.1);
    integer buffers are taken from the last file."""
    states = [load(path)["model"] for path in paths]
    return {
        key: torch.stack([s[key] for s in states]).mean(dim=0) if value.is_floating_point() else value
        for key, value in states[-1].items()
    }


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete half-written files left by a process killed during a save: those whose writer (the
    pid in their name) is no longer running. Another live process's file is being written: kept."""
    for stale in Path(folder).glob(f"{_TMP_PREFIX}*"):
        parts = stale.name.split(".")
        pid = int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None
        if pid is None or not _running(pid):
            stale.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not writing while it cleans up before its own save
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
