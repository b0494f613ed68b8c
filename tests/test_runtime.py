"""The machine-speed probe recorded beside every run's wall time (engine/runtime.py)."""

import itertools

import torch

from attention_zoo.engine import runtime


def test_matmul_gflops_counts_two_n_cubed_flops_per_product(monkeypatch):
    clock = itertools.count(step=0.5)  # every reading of the clock is 0.5 s after the last
    monkeypatch.setattr(runtime.time, "perf_counter", lambda: next(clock))
    # each timed chunk of 8 products of 512 x 512 matrices lasts one reading: 0.5 s
    assert runtime.matmul_gflops(torch.device("cpu"), seconds=0.0, size=512) == round(8 * 2 * 512**3 / 0.5 / 1e9, 2)
