"""What a run leaves in W&B besides curves: a table of its test predictions and, with
logger.artifacts=true, its model and record as Artifacts; all read back from the offline files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from attention_zoo.wandb_records import group_runs, logged_artifacts, logged_table
from conftest import REPO, entrypoint_env, run_dirs, run_train
from multi30k_corpus import TEST_DE, TEST_EN, write_corpus


def offline_run(run: Path) -> Path:
    (folder,) = run.glob("wandb/offline-run-*")
    return folder


def table_images(run: Path) -> list[str]:
    """The images the predictions table carries (files of its run_table artifact)."""
    (table,) = [a for a in logged_artifacts(offline_run(run)).values() if a["type"] == "run_table"]
    return [f for f in table["files"] if f.startswith("media/images/")]


def test_a_translation_run_logs_every_test_sentence_and_with_the_flag_its_model_and_record(tmp_path):
    write_corpus(tmp_path / "data")
    env = entrypoint_env(tmp_path / "data", tmp_path)
    run_train(
        env,
        "experiment=transformer",
        "trainer=smoke",
        "data.download=false",
        "data.vocab_size=120",
        "data.max_tokens=60",
        "task.figure_sentences=[]",
        "logger.artifacts=true",
    )
    (run,) = run_dirs(tmp_path / "runs", "transformer")
    table = logged_table(offline_run(run), "test/predictions")
    assert table["columns"] == ["index", "source", "reference", "hypothesis", "chrF"]
    hypotheses = (run / "translations.test2016.en").read_text().splitlines()
    assert [r[1] for r in table["data"]] == TEST_DE and [r[2] for r in table["data"]] == TEST_EN
    assert [r[3] for r in table["data"]] == hypotheses and all(0 <= r[4] <= 100 for r in table["data"])
    artifacts = logged_artifacts(offline_run(run))
    model = next(v for v in artifacts.values() if v["type"] == "model")
    results = next(v for v in artifacts.values() if v["type"] == "results")
    assert model["files"] == ["model.pt"] and results["files"] == ["config.yaml", "history.csv", "metrics.json"]
    assert torch.load(run / "model.pt", weights_only=True)["inputs"]["task"] == "translation"


def test_without_the_flag_no_artifact_but_the_table(tiny_data_root, tmp_path):
    env = entrypoint_env(tiny_data_root, tmp_path)
    run_train(env, "experiment=resnet_cifar", "block=cbam", "trainer=smoke", "data.val_size=20")
    (run,) = run_dirs(tmp_path / "runs", "resnet_cifar")
    assert not [a for a in logged_artifacts(offline_run(run)).values() if a["type"] != "run_table"]
    table = logged_table(offline_run(run), "test/predictions")
    assert table["columns"] == ["index", "image", "label", "prediction", "p", "Grad-CAM"]
    accuracy = json.loads((run / "metrics.json").read_text())["test"]["acc"]
    assert len(table["data"]) == min(32, round((1 - accuracy) * 40))  # the misclassified of 40 test images
    for _, image, label, prediction, p, cam in table["data"]:
        assert label != prediction and 0 < p <= 1 and image == cam == "Image"
    assert len(table_images(run)) == 2 * len(table["data"])  # each picture and its Grad-CAM map


@pytest.mark.slow  # ~2 min; the captioning run tests cover the rest of its W&B record
def test_a_captioning_run_logs_images_captions_and_attention_overlays(tmp_path):
    env = entrypoint_env(tmp_path / "data", tmp_path)
    run_train(env, "experiment=show_attend_tell_scenes", "trainer=smoke")
    (run,) = run_dirs(tmp_path / "runs", "show_attend_tell_scenes")
    table = logged_table(offline_run(run), "test/predictions")
    assert table["columns"] == ["index", "image", "caption", "references", "CIDEr", "attention"]
    (records,) = [json.loads(p.read_text()) for p in run.glob("captions.test.beam*.json")]
    by_index = {r["index"]: r for r in records}
    for index, image, caption, references, cider, overlay in table["data"]:
        assert caption == by_index[index]["caption"] and references == " | ".join(by_index[index]["references"])
        assert cider == by_index[index]["cider"] and image == overlay == "Image"
    assert len(table_images(run)) == 2 * len(table["data"])  # each image and its per-word overlay


@pytest.mark.slow  # three runs
def test_the_runs_of_a_group_come_back_side_by_side_from_the_offline_files(tiny_data_root, tmp_path):
    env = entrypoint_env(tiny_data_root, tmp_path)
    for seed in (0, 1):
        run_train(env, "experiment=resnet_cifar", "trainer=smoke", "data.val_size=20", f"seed={seed}")
    run_train(env, "experiment=resnet_cifar", "trainer=smoke", "data.val_size=20", "logger.group=another")
    runs = group_runs("resnet_cifar", tmp_path / "runs", path="me/attention-zoo")  # no credentials: the offline files
    records = {json.loads((r / "metrics.json").read_text())["seed"]: r for r in run_dirs(tmp_path / "runs", "resnet_cifar")[:2]}
    assert sorted(r["config"]["seed"] for r in runs) == [0, 1]
    for run in runs:
        metrics = json.loads((records[run["config"]["seed"]] / "metrics.json").read_text())
        assert run["summary"]["test/acc"] == metrics["test"]["acc"] and run["job_type"] == "train"
    proc = subprocess.run(
        [sys.executable, "scripts/results.py", "wandb", "resnet_cifar", "--runs", tmp_path / "runs", "--metrics", "test/acc"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "| run | seed | job_type | test/acc |" and len(lines) == 4  # header, rule, 2 runs
