"""Seeding and RNG-state capture, so that a resumed run replays an uninterrupted one."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs a fixed workspace for deterministic GEMMs (CUDA docs, "Reproducibility").
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: an op with no deterministic CUDA kernel (the backward of max_pool3d, which pools the
        # spacetime non-local block's keys; of grid_sample, which samples the deformable convolution's
        # inputs) warns rather than stops the run (seen on an H200 with trainer=smoke): deterministic
        # wherever PyTorch can be.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def derived_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU generator that is a pure function of (seed, *keys), e.g. (seed, epoch, batch).

    Data order and augmentation draw from these instead of the global RNG, so that any
    batch of any epoch can be rebuilt from its index alone: resuming mid-epoch needs no
    replay of the batches before it.
    """
    mixed = seed
    for key in keys:
        mixed = (mixed * 1_000_003 + key + 1) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)


@contextlib.contextmanager
def own_random_stream(*keys: int) -> Iterator[None]:
    """Modules built inside draw their initial weights from a stream of their own, a pure function
    of the run's seed (``torch.initial_seed()``) and ``keys``, and leave the global RNG where it
    was. Optional parts of a model (attention modules) built this way leave every other weight of
    the model exactly as it is without them: seed s gives every variant the same backbone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=derived_generator(torch.initial_seed(), *keys))))
        yield


def capture_rng_state() -> dict:
    """All global RNG states as tensors and plain values (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(_as_tuples(state["python"]))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value):
    """random.setstate wants tuples; a checkpoint round trip may hand back lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value
