"""Where a run executes: device choice, mixed precision and a description of the hardware."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

from attention_zoo.choices import check_choice

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda > mps > cpu; anything else is passed to ``torch.device``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"trainer.device={name} but CUDA is not available; use trainer.device=auto or cpu.")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``auto`` means bf16 autocast on CUDA and full fp32 elsewhere; None means no autocast."""
    check_choice("trainer.precision", precision, PRECISIONS)
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def hardware_summary(device: torch.device) -> dict:
    """What a results table needs to say where a number came from."""
    summary = {
        "device": str(device),
        "cpu": _cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "logical_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "matmul_gflops": matmul_gflops(device),  # the machine's speed as the summary is taken
    }
    if device.type == "cuda":
        summary["gpu"] = torch.cuda.get_device_name(device)
    return summary


def matmul_gflops(device: torch.device, seconds: float = 0.25, size: int = 256) -> float:
    """How fast the machine is now: the median rate of fp32 (size x size) matmuls over ``seconds``,
    in GFLOP/s, with the run's threads. The same VM has trained the same model 1.8x faster on one
    day than another; runs record this beside their wall times so that timings can be compared."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(8):  # untimed: the first products of a process start its thread pool
        a @ b
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 5:
        begin = time.perf_counter()
        for _ in range(8):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(8 * 2 * size**3 / (time.perf_counter() - begin) / 1e9)
    return round(statistics.median(rates), 2)


def git_commit(repo: Path | None = None) -> str:
    """HEAD's hash, suffixed ``-dirty`` when tracked files differ from it; ``unknown`` outside git."""
    cwd = repo or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
