"""Shared fixtures: a tiny generated CIFAR-style ImageFolder and a runner for the real entrypoint."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str, module_name: str | None = None):
    """scripts/<name>.py imported as a module (scripts/ is not a package), to test its functions directly."""
    spec = importlib.util.spec_from_file_location(module_name or name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# A small, fast configuration of the real CIFAR experiment, for subprocess runs.
SMOKE = [
    "experiment=resnet_cifar",
    "trainer=smoke",
    "model.depth=8",
    "model.widths=[4,8,16]",
    "data.val_size=20",
    "data.batch_size=16",
    "data.eval_batch_size=64",
]


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs one worker per core) each worker's torch keeps to one
    thread, as the training subprocesses do (OMP_NUM_THREADS=1): threads that fight for the
    cores make both workers many times slower."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="module")
def compose_cfg():
    """compose(overrides) -> the train config, as the entrypoint would compose it."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        yield lambda overrides: compose(config_name="train", overrides=overrides)


def write_image_folder(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """CIFAR-10-shaped JPEGs, each class a distinct colour plus noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            base = np.array([(label * 25) % 256, (label * 70) % 256, (255 - label * 25) % 256], dtype=np.float64)
            for i in range(count):
                pixels = np.clip(base + rng.normal(0, 20, size=(32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=90)
    return root


def write_cifar_archive(root: Path, per_class: dict[str, int], work: Path) -> Path:
    """``<root>/cifar10-jpeg/cifar10-jpeg.tar.gz`` as the shared data ships it (train/ and test/
    inside), from images written under ``work``; returns ``root``."""
    source = write_image_folder(work, per_class)
    (root / "cifar10-jpeg").mkdir(parents=True)
    with tarfile.open(root / "cifar10-jpeg" / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        tar.add(source / "train", arcname="train")
        tar.add(source / "test", arcname="test")
    return root


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """A data root holding ``cifar10-jpeg/{train,test}`` with 12 train and 4 test images per class."""
    root = tmp_path_factory.mktemp("data")
    write_image_folder(root / "cifar10-jpeg", {"train": 12, "test": 4})
    return root


def entrypoint_env(data: Path, work: Path) -> dict[str, str]:
    """The environment of an entrypoint subprocess: data from ``data``, runs and caches under
    ``work``, W&B offline and without a key, one torch thread."""
    env = dict(os.environ)
    env.update(
        ATTN_ZOO_DATA=str(data),
        ATTN_ZOO_RUNS=str(work / "runs"),
        ATTN_ZOO_CACHE=str(work / "cache"),
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("WANDB_API_KEY", None)
    return env


@pytest.fixture()
def train_env(tiny_data_root, tmp_path) -> dict[str, str]:
    return entrypoint_env(tiny_data_root, tmp_path)


def run_train(env: dict[str, str], *overrides: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m attention_zoo.train`` in a subprocess, as a user would run it."""
    proc = subprocess.run(
        [sys.executable, "-m", "attention_zoo.train", *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-4000:]}")
    return proc


def run_dirs(runs_root: Path, experiment: str) -> list[Path]:
    """Run directories of an experiment (folders holding .hydra/), oldest first."""
    return sorted((p.parent for p in (runs_root / experiment).glob("**/.hydra")), key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="session")
def inception_file(tmp_path_factory):
    """torch-fidelity's Inception-v3 with random weights, saved as its weights file would be (the real
    weights cannot be fetched here): enough to test that the file is read and the metrics computed."""
    from unittest import mock

    import torch
    from torch_fidelity import feature_extractor_inceptionv3 as fidelity

    with (
        mock.patch.object(fidelity, "load_state_dict_from_url", lambda *a, **k: None),
        mock.patch.object(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None),
    ):
        torch.manual_seed(0)
        network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "weights.pth"
    torch.save(network.state_dict(), path)
    return path
