"""Slow: the real entrypoint learns the generated colour classes perfectly (make test-slow)."""

import json
from pathlib import Path

import pytest

from conftest import SMOKE, run_dirs, run_train


@pytest.mark.slow
def test_entrypoint_learns_the_tiny_dataset(train_env):
    run_train(
        train_env,
        *SMOKE,
        "trainer.limit_train_batches=null",
        "trainer.max_steps=null",
        "trainer.epochs=40",
        "optim.lr=0.1",
        "schedule=cosine",
        "trainer.deterministic=false",
        timeout=900,
    )
    (run_dir,) = run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), "resnet_cifar")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["acc"] == 1.0, metrics
    assert metrics["best_val"]["value"] == 1.0
