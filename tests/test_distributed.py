"""Data-parallel training with torchrun: 2 CPU processes (gloo) against 1.

The runs use a Transformer without dropout (no random draws) and without BatchNorm, on a tiny
Multi30k corpus whose token-budget batches hold sentences of different lengths, so the two
shards of a batch hold different numbers of target tokens: averaging the processes' per-token
means (instead of normalizing by the global token count) would give other losses.
"""

import csv
import json
import subprocess
import sys

import pytest
import torch

from attention_zoo.data.captions import CaptionConfig, CaptionData
from attention_zoo.engine.distributed import Distributed
from conftest import REPO, entrypoint_env, run_dirs, run_train
from multi30k_corpus import TINY_TRANSFORMER as TINY_CORPUS_MODEL
from multi30k_corpus import WHOLE_CORPUS, write_corpus

TINY_TRANSFORMER = ("experiment=transformer", "trainer.epochs=3", *WHOLE_CORPUS, *TINY_CORPUS_MODEL)


def torchrun(env: dict, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "attention_zoo.train",
            *overrides,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-4000:]}")
    return proc


def history(run_dir) -> list[dict[str, float]]:
    keys = ("train/loss", "val/loss", "train/lr")
    return [{k: float(row[k]) for k in keys} for row in csv.DictReader((run_dir / "history.csv").open())]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The same configuration trained by one process and by two."""
    root = tmp_path_factory.mktemp("ddp")
    write_corpus(root / "data")
    one, two = entrypoint_env(root / "data", root / "one"), entrypoint_env(root / "data", root / "two")
    run_train(one, *TINY_TRANSFORMER)
    torchrun(two, *TINY_TRANSFORMER)
    return {
        "root": root,
        "data": root / "data",
        "one": run_dirs(root / "one" / "runs", "transformer"),
        "two": run_dirs(root / "two" / "runs", "transformer"),
    }


def test_two_processes_on_half_batches_give_the_losses_of_one_process_on_whole_batches(runs):
    (one,), (two,) = runs["one"], runs["two"]
    expected, got = history(one), history(two)
    assert len(got) == len(expected) == 3
    for a, b in zip(expected, got):
        assert b == pytest.approx(a, rel=1e-5)
    assert got[-1]["train/loss"] < got[0]["train/loss"] - 0.3  # it learns: the comparison is not of untrained models
    first, second = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert second["test"]["loss"] == pytest.approx(first["test"]["loss"], rel=1e-5)
    assert second["steps"] == first["steps"]  # the global batch, not twice as many half batches


def test_a_two_process_run_writes_one_run_folder_and_one_wandb_run(runs):
    (two,) = runs["two"]  # run_dirs: every folder holding .hydra/
    assert [p.name for p in (runs["root"] / "two" / "runs" / "transformer").iterdir()] == [two.name]
    assert len(list((two / "wandb").glob("offline-run-*"))) == 1
    assert json.loads((two / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_a_killed_two_process_run_resumed_ends_as_the_uninterrupted_one(runs):
    env = entrypoint_env(runs["data"], runs["root"] / "killed")
    killed = torchrun(env, *TINY_TRANSFORMER, "trainer.kill_at_step=6", "trainer.checkpoint_every_minutes=0", check=False)
    assert killed.returncode != 0
    (run_dir,) = run_dirs(runs["root"] / "killed" / "runs", "transformer")
    state = torch.load(run_dir / "last.pt", weights_only=False)
    assert state["train_state"]["step"] == 5 and len(state["rng_of_ranks"]) == 2  # killed after step 6, saved after 5
    torchrun(env, *TINY_TRANSFORMER, f"resume={run_dir}")
    resumed = run_dirs(runs["root"] / "killed" / "runs", "transformer")[-1]
    (uninterrupted,) = runs["two"]
    assert history(resumed) == history(uninterrupted)
    end, expected = (json.loads((d / "metrics.json").read_text()) for d in (resumed, uninterrupted))
    assert end["test"] == expected["test"]


@pytest.mark.slow
def test_a_cluster_job_of_two_tasks_trains_one_run_data_parallel(runs):
    """hydra/launcher=slurm runs one task per GPU; submitit's local executor runs the same job
    environment here: its 2 tasks must train the run that torchrun's 2 processes train."""
    env = entrypoint_env(runs["data"], runs["root"] / "tasks")
    run_train(env, "-m", "hydra/launcher=local", "hydra.launcher.tasks_per_node=2", *TINY_TRANSFORMER)
    (job,) = run_dirs(runs["root"] / "tasks" / "runs", "transformer")
    (torchrun_run,) = runs["two"]
    assert history(job) == history(torchrun_run)
    assert len(list((job / "wandb").glob("offline-run-*"))) == 1


def test_each_process_takes_a_contiguous_share_and_together_they_cover_the_batch():
    items = list(range(7))
    shares = [Distributed(rank, 3).rows(items) for rank in range(3)]
    assert shares == [[0, 1, 2], [3, 4], [5, 6]]
    batch = (torch.arange(7), {"tgt": torch.arange(14).view(7, 2)})
    images, rest = Distributed(1, 2).take(batch)
    assert images.tolist() == [4, 5, 6] and rest["tgt"].tolist() == [[8, 9], [10, 11], [12, 13]]
    assert Distributed().take(batch) is batch  # one process: the batch itself


def test_a_batch_smaller_than_the_number_of_processes_is_refused_naming_the_fix():
    with pytest.raises(ValueError, match=r"batch of 1 items cannot be split over 2 processes; raise the batch size"):
        Distributed(0, 2).rows([0])


def test_a_caption_batch_grouped_by_image_is_split_by_whole_images(tmp_path):
    cfg = CaptionConfig(
        root=str(tmp_path),
        cache_dir=str(tmp_path / "cache"),
        name="scenes",
        scenes_images={"train": 12, "val": 2, "test": 2},
        scenes_image_size=32,
        batch_size=20,  # 4 images and their captions
        group_by="image",
    )
    data = CaptionData(cfg, seed=0)
    whole = next(data.train_batches(epoch=1))
    shards = []
    for rank in (0, 1):
        data.shard = Distributed(rank, 2)
        shards.append(next(data.train_batches(epoch=1)))
    assert [len(s["src"]) for s in shards] == [2, 2]
    assert torch.equal(torch.cat([s["src"] for s in shards]), whole["src"])
    assert torch.cat([s["index"] for s in shards]).tolist() == whole["index"].tolist()  # every caption, once
    offset = 0
    for shard in shards:  # each caption points at its own image among its shard's rows
        for i, row in enumerate(shard["caption_image"].tolist()):
            assert torch.equal(shard["src"][row], whole["src"][whole["caption_image"][offset + i]])
        offset += len(shard["caption_image"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ("experiment=resnet_cifar", "data.val_size=20"),
        ("experiment=show_attend_tell_scenes",),
        ("experiment=show_attend_tell_scenes_hard",),
        ("experiment=show_attend_tell_scenes", "captioner=none"),
        ("experiment=show_attend_tell_scenes", "data.group_by=image"),
        ("experiment=rnnsearch", "data.download=false", "data.max_tokens=60", "task.figure_sentences=[]"),
        ("experiment=seq2seq", "data.download=false", "data.max_tokens=60", "task.figure_sentences=[]"),
    ],
    ids=["resnet", "soft", "hard", "none", "caption-image-groups", "rnnsearch", "seq2seq"],
)
def test_every_task_trains_and_tests_under_torchrun(tiny_data_root, tmp_path, overrides):
    write_corpus(tiny_data_root)
    env = entrypoint_env(tiny_data_root, tmp_path)
    torchrun(env, *overrides, "trainer=smoke")
    experiment = overrides[0].split("=")[1]
    (run_dir,) = run_dirs(tmp_path / "runs", experiment)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] >= 2 and metrics["test"]
