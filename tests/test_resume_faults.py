"""Resume when things went wrong: a damaged newest checkpoint, several runs to choose from, a
budget that a schedule depends on; each stops with a message that names the file or setting."""

import json
import os
from pathlib import Path

import pytest
import torch

from attention_zoo.engine import checkpoint
from conftest import SMOKE, load_script, run_dirs, run_train


def _runs(env, experiment="resnet_cifar"):
    return run_dirs(Path(env["ATTN_ZOO_RUNS"]), experiment)


DAMAGES = {
    "empty": lambda data: b"",
    "half": lambda data: data[: len(data) // 2],
    "random": lambda data: os.urandom(len(data)),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_checkpoint_is_named_without_torchs_advice(tmp_path, damage):
    path = tmp_path / "last.pt"
    checkpoint.save_atomic({"model": {"w": torch.ones(64, 64)}}, path)
    path.write_bytes(DAMAGES[damage](path.read_bytes()))
    with pytest.raises(checkpoint.DamagedCheckpointError) as err:
        checkpoint.load(path)
    assert f"Checkpoint {path}" in str(err.value) and "weights_only" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # torch's message is not chained in


def test_a_damaged_last_checkpoint_is_named_and_the_previous_one_takes_over(train_env):
    run_train(train_env, *SMOKE, "trainer.epochs=2")
    (first,) = _runs(train_env)
    last, previous = first / "last.pt", first / "last.prev.pt"
    assert previous.is_file()  # the epoch-1 state, kept when epoch 2's replaced it
    last.write_bytes(os.urandom(last.stat().st_size))
    kept = previous.read_bytes()
    previous.unlink()
    proc = run_train(train_env, *SMOKE, "trainer.epochs=2", "resume=auto", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"Checkpoint {last}" in output and "cannot be read" in output
    assert "weights_only=False" not in output  # torch's advice would execute the file's pickled code
    previous.write_bytes(kept)
    proc = run_train(train_env, *SMOKE, "trainer.epochs=2", "resume=auto")
    assert "Falling back to the previous checkpoint" in proc.stdout + proc.stderr
    metrics = json.loads((_runs(train_env)[-1] / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["resumed_from"] == str(previous) and metrics["epochs"] == 2


@pytest.mark.slow  # several entrypoint runs: `make test-slow`
def test_resume_auto_picks_the_newest_run_made_with_this_config(train_env):
    run_train(train_env, *SMOKE, "trainer.epochs=1", "seed=0")
    run_train(train_env, *SMOKE, "trainer.epochs=1", "seed=1")
    seed0, seed1 = _runs(train_env)
    run_train(train_env, *SMOKE, "trainer.epochs=2", "seed=0", "resume=auto")
    assert json.loads((_runs(train_env)[-1] / "metrics.json").read_text())["resumed_from"] == str(seed0 / "last.pt")
    proc = run_train(train_env, *SMOKE, "trainer.epochs=1", "seed=7", "resume=auto", check=False)
    assert proc.returncode != 0 and "was made with this config" in proc.stdout + proc.stderr


@pytest.mark.slow  # several entrypoint runs: `make test-slow`
def test_a_new_budget_is_refused_where_the_schedule_depends_on_it(train_env):
    run_train(train_env, *SMOKE, "trainer.epochs=1", "schedule=cosine")
    (first,) = _runs(train_env)
    proc = run_train(train_env, *SMOKE, "trainer.epochs=3", "schedule=cosine", f"resume={first}", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "trainer.epochs: 1 -> 3" in output and "cosine schedule" in output
    run_train(train_env, *SMOKE, "trainer.epochs=1")
    multistep = _runs(train_env)[-1]
    run_train(train_env, *SMOKE, "trainer.epochs=2", f"resume={multistep}")  # milestones in epochs: a longer budget is fine
    assert json.loads((_runs(train_env)[-1] / "metrics.json").read_text())["epochs"] == 2


def test_a_failed_start_is_marked_failed_and_no_grid_counts_it(train_env, tmp_path):
    env = {**train_env, "ATTN_ZOO_DATA": str(tmp_path / "empty")}
    proc = run_train(env, *SMOKE, "data.download=false", check=False)
    assert proc.returncode != 0
    (run_dir,) = _runs(env)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "DatasetNotFoundError" in metrics["reason"] and metrics["checkpoint"] is None
    run_variants = load_script("run_variants")
    assert run_variants.split_finished([run_dir]) == ([], [])  # neither finished nor resumable


def test_a_signal_during_the_test_stops_with_training_interrupted_and_restores_the_handler(tmp_path):
    import signal

    from attention_zoo.engine.trainer import Trainer, TrainerConfig, TrainingInterrupted

    trainer = Trainer(TrainerConfig(epochs=1), torch.nn.Linear(1, 1), None, None, None, None, tmp_path, torch.device("cpu"))
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as stopped, trainer.stop_at_once_on_signal():
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.signum == signal.SIGTERM and signal.getsignal(signal.SIGTERM) == before
