"""Timing several models in turns, for the bench scripts that compare them (bench_cnn_attention.py,
bench_transformer.py): the models take turns step by step, so that all of them see the same machine
load (a shared VM's speed drifts by +-15% over minutes, as large as the differences measured)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def rates_in_turns(
    steps: dict[str, Callable[[int], int]], timed: int, warmup: int, device: torch.device
) -> tuple[dict[str, float], dict[str, float]]:
    """Each named step function is called with the step index ``warmup + timed`` times, in turns, and
    returns the items it processed (images, target tokens). Returns the items per second of each over
    the timed steps, and the seconds of its untimed warm-up steps (which hold compilation, if any)."""
    elapsed, warmup_s, items = dict.fromkeys(steps, 0.0), dict.fromkeys(steps, 0.0), dict.fromkeys(steps, 0)
    for i in range(warmup + timed):
        for name, step in steps.items():
            start = time.perf_counter()
            count = step(i)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i < warmup:
                warmup_s[name] += time.perf_counter() - start
            else:
                elapsed[name] += time.perf_counter() - start
                items[name] += count
    return {name: round(items[name] / elapsed[name], 1) for name in steps}, warmup_s
