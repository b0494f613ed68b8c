"""Cluster sweeps through hydra-submitit-launcher (configs/hydra/launcher), tried with its local
executor, and the resume-in-place that a requeued cluster job relies on."""

import json
import signal
from pathlib import Path

from conftest import SMOKE, run_dirs, run_train


def test_a_two_job_sweep_runs_through_the_submitit_local_launcher(train_env):
    run_train(train_env, "-m", "hydra/launcher=local", *SMOKE, "trainer.epochs=1", "seed=0,1")
    runs = run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), "resnet_cifar")
    assert len(runs) == 2
    assert sorted(json.loads((r / "metrics.json").read_text())["seed"] for r in runs) == [0, 1]
    assert all(json.loads((r / "metrics.json").read_text())["status"] == "completed" for r in runs)
    sweep = runs[0].parent
    assert list(sweep.glob(".submitit/*/*_log.out"))  # submitit ran each job and kept its logs


def test_a_job_started_again_in_its_own_folder_resumes_from_its_checkpoint(train_env, tmp_path):
    """What SLURM does to a preempted job (max_num_timeout): the same command in the same folder."""
    common = [*SMOKE, "trainer.epochs=3", "trainer.checkpoint_every_minutes=0"]
    folder = tmp_path / "job"
    killed = run_train(train_env, *common, f"hydra.run.dir={folder}", "trainer.kill_at_step=6", check=False)
    assert killed.returncode == -signal.SIGKILL and (folder / "last.pt").is_file()
    again = run_train(train_env, *common, f"hydra.run.dir={folder}")
    assert "resuming that run in place" in again.stdout + again.stderr
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["resumed_from"] == str(folder / "last.pt") and metrics["steps"] == 8
    run_train(train_env, *common, "hydra.run.dir=" + str(tmp_path / "straight"))
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert metrics["test"] == straight["test"] and metrics["best_val"] == straight["best_val"]
    finished = run_train(train_env, *common, f"hydra.run.dir={folder}", check=False)
    assert finished.returncode != 0 and "holds a finished run" in finished.stdout + finished.stderr
