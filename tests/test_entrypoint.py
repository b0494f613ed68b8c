"""The real entrypoint in subprocesses: smoke run, W&B offline record, sweeps, resume, signals."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from attention_zoo.wandb_records import defined_metrics, logged_history, logged_run
from conftest import REPO, SMOKE, run_dirs, run_train

METRIC_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc")


def _runs(env, experiment="resnet_cifar"):
    return run_dirs(Path(env["ATTN_ZOO_RUNS"]), experiment)


def test_smoke_run_writes_run_record_and_offline_wandb_run(train_env):
    proc = run_train(train_env, *SMOKE, "seed=3")
    (run_dir,) = _runs(train_env)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["seed"] == 3 and metrics["epochs"] == 2
    # trainer=smoke: 2 epochs of their first 4 batches (of 7), val/test on 2 batches, and the record says so
    assert metrics["steps"] == 8 and metrics["limit_train_batches"] == 4 and metrics["limit_eval_batches"] == 2
    assert set(metrics["test"]) == {"loss", "acc", "acc_top5", "error"}
    assert metrics["best_val"]["epoch"] in (1, 2) and 0 <= metrics["best_val"]["value"] <= 1
    for key in ("wall_time_s", "hardware", "git_commit", "parameters"):
        assert metrics[key]
    assert metrics["hardware"]["torch"] == torch.__version__
    assert min(metrics["hardware"]["matmul_gflops_at_start"], metrics["hardware"]["matmul_gflops"]) > 0  # speed, start and end
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 3 and all(k in history[0] for k in METRIC_KEYS)
    for name in ("config.yaml", ".hydra/config.yaml", "train.log", "curves.png", "last.pt", "best.pt"):
        assert (run_dir / name).exists(), name
    assert "wandb sync" in proc.stdout + proc.stderr

    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    run = logged_run(wandb_run)
    assert run["project"] == "attention-zoo" and run["group"] == "resnet_cifar" and run["job_type"] == "train"
    assert "he2016" in run["tags"] and "seed=3" in run["name"]
    assert run["config"]["seed"] == 3 and run["config"]["model"]["depth"] == 8
    rows = logged_history(wandb_run)
    logged = {key for row in rows for key in row}
    assert {*METRIC_KEYS, "train/lr", "time/data_wait_share", "test/acc", "best_val/acc", "figures/curves"} <= logged
    final = [row for row in rows if "test/acc" in row][-1]
    assert final["test/acc"] == pytest.approx(metrics["test"]["acc"])
    assert "val/acc" in defined_metrics(wandb_run)


def test_a_diverging_job_of_a_multirun_is_recorded_as_failed_and_the_sweep_goes_on(train_env):
    proc = run_train(train_env, "-m", *SMOKE, "trainer.epochs=1", "optim.lr=1e12,0.1")
    assert proc.returncode == 0
    runs = sorted(_runs(train_env), key=lambda r: int(r.name))
    assert len(runs) == 2
    failed, completed = (json.loads((r / "metrics.json").read_text()) for r in runs)
    assert failed["status"] == "failed" and "NonFiniteLossError: Loss is" in failed["reason"]
    assert completed["status"] == "completed" and "diverged" in proc.stdout + proc.stderr
    single = run_train(train_env, *SMOKE, "trainer.epochs=1", "optim.lr=1e12", check=False)
    assert single.returncode == 1  # a single run still fails loudly


def test_two_job_multirun_gives_two_runs_in_one_group(train_env):
    run_train(train_env, "-m", *SMOKE, "trainer.epochs=1", "seed=0,1")
    runs = _runs(train_env)
    assert len(runs) == 2 and all("multirun" in str(r) for r in runs)
    seeds, groups, ids = set(), set(), set()
    for run_dir in runs:
        seeds.add(json.loads((run_dir / "metrics.json").read_text())["seed"])
        (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
        info = logged_run(wandb_run)
        groups.add(info["group"])
        ids.add(info["id"])
        assert any(tag.startswith("sweep:") for tag in info["tags"]) and info["job_type"] == "sweep-trial"
    assert seeds == {0, 1} and groups == {"resnet_cifar"} and len(ids) == 2


def _comparable(run_dir):
    """Everything a run computed, without timings."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = [{k: v for k, v in row.items() if not k.startswith("time/")} for row in csv.DictReader(open(run_dir / "history.csv"))]
    return metrics["test"], metrics["best_val"], metrics["steps"], rows


@pytest.mark.parametrize("checkpoint_every_minutes", [0, 10], ids=["mid-epoch-checkpoint", "epoch-checkpoint"])
def test_sigkill_and_resume_equals_an_uninterrupted_run(train_env, checkpoint_every_minutes, tmp_path):
    """... and the collected record keeps the log of the killed segment beside the resumed one's."""
    from attention_zoo.engine.run_record import collect

    common = [*SMOKE, "trainer.epochs=3", f"trainer.checkpoint_every_minutes={checkpoint_every_minutes}"]
    run_train(train_env, *common, "experiment_name=straight")
    killed = run_train(train_env, *common, "experiment_name=broken", "trainer.kill_at_step=6", check=False)
    assert killed.returncode == -signal.SIGKILL  # trainer=smoke: 4 batches an epoch, step 6 is mid-epoch 2
    (broken,) = _runs(train_env, "broken")
    assert not (broken / "metrics.json").exists()
    run_train(train_env, *common, "experiment_name=broken", "resume=auto")
    straight, resumed = _runs(train_env, "straight")[0], _runs(train_env, "broken")[-1]
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["resumed_from"] == str(broken / "last.pt")
    killed_id = torch.load(broken / "last.pt", weights_only=True)["config"]["wandb_id"]
    (resumed_wandb,) = (resumed / "wandb").glob("offline-run-*")  # offline: a W&B run of its own that names the killed one
    assert f"resumes:{killed_id}" in logged_run(resumed_wandb)["tags"] and metrics["wandb"]["id"] != killed_id
    assert len(metrics["hardware"]["matmul_gflops_at_starts"]) == 2  # the machine's speed as each segment started
    assert _comparable(resumed) == _comparable(straight)
    record = collect(resumed, tmp_path / "records")
    killed_log = (broken / "train.log").read_text()
    assert "epoch 1:" in killed_log and (record / "train.before-resume.log").read_text() == killed_log
    assert "Resuming from" in (record / "train.log").read_text()


def test_resume_refuses_a_config_that_computes_something_else(train_env):
    run_train(train_env, *SMOKE, "trainer.epochs=1")
    (first,) = _runs(train_env)
    proc = run_train(train_env, *SMOKE, "optim.lr=0.5", f"resume={first}", check=False)
    assert proc.returncode != 0
    assert "optim.lr: 0.1 -> 0.5" in proc.stdout + proc.stderr
    proc = run_train(train_env, *SMOKE, f"resume={first / 'nowhere'}", check=False)
    assert proc.returncode != 0 and "no checkpoint at" in proc.stdout + proc.stderr


def _start(env, *overrides: str) -> subprocess.Popen:
    """The entrypoint in the background, its output (stdout and stderr) read as text."""
    command = [sys.executable, "-m", "attention_zoo.train", *SMOKE, *overrides]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(train_env):
    proc = _start(train_env, "trainer.epochs=1000", "trainer.max_steps=null")
    deadline = time.monotonic() + 120
    while not list(Path(train_env["ATTN_ZOO_RUNS"]).glob("**/last.pt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    (run_dir,) = _runs(train_env)
    state = torch.load(run_dir / "last.pt", weights_only=True)
    assert state["train_state"]["step"] >= 4  # trainer=smoke: 4 steps an epoch, last.pt after the first
    assert f"resume={run_dir}" in output and (run_dir / "history.csv").exists()


def test_sigterm_during_the_test_phase_stops_at_once_naming_the_resume_command(train_env):
    """After training, the test and the figures: a SIGTERM there stops the run at once with its
    own message, the resume command and metrics.json marked interrupted, not a bare exit 143."""
    proc = _start(train_env, "data.eval_batch_size=1", "trainer.limit_eval_batches=null")
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "Testing with the" in line:
            proc.send_signal(signal.SIGTERM)
            break
    output = "".join(seen) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    (run_dir,) = _runs(train_env)
    assert "Received SIGTERM after training (during the test)" in output and f"resume={run_dir}" in output
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"


def test_missing_data_names_the_paths_and_the_download_command(train_env, tmp_path):
    env = dict(train_env, ATTN_ZOO_DATA=str(tmp_path / "empty"))
    proc = run_train(env, *SMOKE, "data.download=false", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert str(tmp_path / "empty" / "cifar-10-batches-py") in out
    assert "scripts/download_data.py cifar10" in out


# Hydra's launcher hands each job's JobReturn (from hydra.core.utils.run_job) to the sweeper; the
# probe wraps run_job, which the launcher module looks up when Hydra loads its plugins.
SWEEPER_PROBE = """
import json, sys
import hydra.core.utils as hydra_utils
original = hydra_utils.run_job
def run_job(*args, **kwargs):
    job = original(*args, **kwargs)
    print("SWEEPER_RECEIVES " + json.dumps(job.return_value), flush=True)
    return job
hydra_utils.run_job = run_job
from attention_zoo.train import main
sys.argv = ["attention_zoo.train", *sys.argv[1:]]
main()
"""


def test_a_sweeper_receives_the_best_validation_value_never_the_test_value(train_env):
    proc = subprocess.run(
        [sys.executable, "-c", SWEEPER_PROBE, "-m", *SMOKE, "trainer.epochs=2", "seed=0,1"],
        cwd=REPO,
        env=train_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    received = [json.loads(x.split(" ", 1)[1]) for x in proc.stdout.splitlines() if x.startswith("SWEEPER_RECEIVES ")]
    runs = sorted(_runs(train_env), key=lambda r: json.loads((r / "metrics.json").read_text())["seed"])
    metrics = [json.loads((r / "metrics.json").read_text()) for r in runs]
    assert received == [m["best_val"]["value"] for m in metrics]
    history = [[float(row["val/acc"]) for row in csv.DictReader((r / "history.csv").open())] for r in runs]
    assert received == [max(h) for h in history]  # the best epoch's validation accuracy
