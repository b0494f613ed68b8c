"""Derived files that concurrent runs share (unpacked archives, decoded or encoded corpora,
cached features): each is built by one process under a lock file, while the others wait and
then read what it built. Grids, sweeps and launchers start runs side by side, so a cache build
must survive a second run arriving in the middle of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from attention_zoo.engine.checkpoint import save_atomic

log = logging.getLogger(__name__)
WAIT_S = 4 * 3600  # longer than any cache build here (decoding CIFAR takes ~2 min, Flickr8k features ~1 h)


@contextmanager
def build_lock(target: str | Path, wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold ``<target>.lock`` while checking for and building ``target``. A crashed holder's lock
    is released by the operating system with its process (flock), so no lock is ever stale."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("Another run is building %s; waiting for it.", target)
        try:
            lock.acquire(timeout=wait_s)
        except Timeout as err:
            raise TimeoutError(
                f"Waited {wait_s / 3600:.1f} h for another process to finish building {target} (lock {lock.lock_file}). "
                "If no other run is going, delete the lock file and start again."
            ) from err
    try:
        yield
    finally:
        lock.release()


def load_or_build(path: str | Path, build: Callable[[], dict]) -> tuple[dict, bool]:
    """The tensors cached at ``path``, built by ``build()`` and saved atomically if no process has
    yet; returns them and whether they came from the cache."""
    path = Path(path)
    with build_lock(path):
        if path.is_file():
            return torch.load(path, weights_only=True), True
        built = build()
        save_atomic(built, path)
        return built, False
