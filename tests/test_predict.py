"""attention-zoo-predict and attention-zoo-export, end to end on models the tests train.

Each trained run is then moved away from its data and caches (deleted), so what predicts is
only what the run folder, or the exported file, holds. The predictions must be the ones the
run's own test made with the same weights: the translations file, the test captions, the
test accuracy.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from captioning_fixtures import TINY_CAPTIONER, fixture_images, write_flickr8k
from conftest import REPO, entrypoint_env, run_dirs, run_train, write_image_folder
from multi30k_corpus import TEST_DE, TINY_TRANSFORMER, WHOLE_CORPUS, write_corpus

TRANSLATION = ("experiment=transformer", "trainer.epochs=30", *WHOLE_CORPUS, *TINY_TRANSFORMER, "trainer.progress_bar=false")
CAPTIONING = (
    "experiment=show_attend_tell_cpu",
    *TINY_CAPTIONER,
    "task.figure_images=[]",
    "task.failure_cases=0",
    "trainer.epochs=2",
)
CLASSIFICATION = ("experiment=resnet_cifar", "block=cbam", "trainer=smoke", "data.val_size=20", "trainer.progress_bar=false")


def predict(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attention_zoo.predict", *map(str, args)],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def train_and_move_away(root: Path, data: Path, experiment: str, overrides: tuple[str, ...]) -> Path:
    """Train, then move the run folder out and delete the data and caches it was made from."""
    work = root / "work"
    run_train(entrypoint_env(data, work), *overrides)
    (run,) = run_dirs(work / "runs", experiment)
    moved = shutil.move(run, root / "moved_run")
    shutil.rmtree(work)
    return Path(moved)


@pytest.fixture(scope="module")
def translation_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict_translation")
    write_corpus(root / "data")
    run = train_and_move_away(root, root / "data", "transformer", TRANSLATION)
    shutil.rmtree(root / "data")
    return run


def test_a_moved_run_translates_as_its_own_test_did(translation_run):
    expected = (translation_run / "translations.test2016.en").read_text().splitlines()
    from_args = predict(translation_run, *TEST_DE)
    assert from_args.returncode == 0, from_args.stderr
    assert from_args.stdout.splitlines() == expected
    from_stdin = predict(translation_run, "--format", "jsonl", stdin="\n".join(TEST_DE) + "\n")
    rows = [json.loads(line) for line in from_stdin.stdout.splitlines()]
    assert [r["input"] for r in rows] == TEST_DE and [r["output"] for r in rows] == expected
    greedy = predict(translation_run, "--beam", "1", "--batch-size", "1", *TEST_DE)
    assert greedy.returncode == 0 and len(greedy.stdout.splitlines()) == len(TEST_DE)


def test_the_exported_file_loads_weights_only_and_translates_the_same(translation_run, tmp_path):
    out = tmp_path / "model.pt"
    subprocess.run([sys.executable, "-m", "attention_zoo.portable", translation_run, "-o", out], cwd=REPO, check=True)
    bundle = torch.load(out, weights_only=True)
    assert bundle["versions"]["torch"] == str(torch.__version__) and "averaged.pt" in bundle["weights_from"]
    assert bundle["inputs"]["task"] == "translation" and bundle["config"]["model"]["name"] == "transformer"
    shutil.rmtree(translation_run / "wandb", ignore_errors=True)
    proc = predict(out, TEST_DE[0])
    assert proc.stdout.splitlines() == (translation_run / "translations.test2016.en").read_text().splitlines()[:1]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("Ein Hund.",), None, None),  # the valid case, for contrast
        ((), "Ein Hund.\n\nEin Kind.\n", "Input line 2 is empty: remove it or put a sentence on it"),
        (("--task", "caption", "x.jpg"), None, "is a translation model: it can only translate"),
        (("--file", "sentences.txt", "Ein Hund."), None, "not both"),
    ],
)
def test_bad_translation_input_is_named(translation_run, args, stdin, message):
    proc = predict(translation_run, *args, stdin=stdin)
    if message is None:
        assert proc.returncode == 0 and proc.stdout.strip()
    else:
        assert proc.returncode == 2 and message in proc.stderr and not proc.stdout


def test_an_unknown_run_or_file_is_named(tmp_path):
    proc = predict(tmp_path / "nowhere", "Ein Hund.")
    assert proc.returncode == 2 and "No trained model at" in proc.stderr and "attention-zoo-export" in proc.stderr
    (tmp_path / "notes.txt").write_text("not a model")
    proc = predict(tmp_path / "notes.txt", "Ein Hund.")
    assert proc.returncode == 2 and "is not a model file written by attention-zoo-export" in proc.stderr


def test_a_run_from_before_model_inputs_is_rebuilt_from_its_data_or_names_what_is_missing(tmp_path):
    write_corpus(tmp_path / "data")
    work = tmp_path / "work"
    env = entrypoint_env(tmp_path / "data", work)
    run_train(env, "experiment=transformer", "trainer.epochs=1", *WHOLE_CORPUS, *TINY_TRANSFORMER)
    (run,) = run_dirs(work / "runs", "transformer")
    (run / "model_inputs.json").unlink()  # as a run made by an older commit
    with_data = subprocess.run(
        [sys.executable, "-m", "attention_zoo.predict", run, TEST_DE[0]], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert with_data.returncode == 0 and (run / "model_inputs.json").is_file()
    (run / "model_inputs.json").unlink()
    shutil.rmtree(tmp_path / "data"), shutil.rmtree(work / "cache")
    without = subprocess.run(
        [sys.executable, "-m", "attention_zoo.predict", run, TEST_DE[0]], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert (
        without.returncode == 2
        and "has no model_inputs.json" in without.stderr
        and "training data, which is missing" in without.stderr
    )


@pytest.mark.slow  # ~1 min of captioning training; translation and classification cover the loading in the fast suite
def test_a_moved_captioning_run_captions_photos_as_its_test_did_and_draws_overlays(tmp_path):
    folder = write_flickr8k(tmp_path / "data", "original", n_per_split=4)
    photos = tmp_path / "photos"
    shutil.copytree(folder / "Flicker8k_Dataset", photos)
    run = train_and_move_away(tmp_path, tmp_path / "data", "show_attend_tell_cpu", CAPTIONING)
    shutil.rmtree(tmp_path / "data")
    records = json.loads((run / "captions.test.beam3.json").read_text())
    names = [name for name, _ in fixture_images(4)["test"]]
    assert [r["references"] for r in records] == [caps for _, caps in fixture_images(4)["test"]]  # index -> file name
    proc = predict(run, *(photos / n for n in names), "--format", "jsonl", "--attention-dir", tmp_path / "overlays")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["output"] for r in rows] == [r["caption"] for r in records]
    assert all(Path(r["attention"]).is_file() for r in rows)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    broken = predict(run, photos)  # a folder: its images, sorted
    assert broken.returncode == 2 and f"Cannot read the image {photos / 'broken.jpg'}" in broken.stderr


def test_a_moved_classifier_scores_the_test_folder_as_its_test_did_and_draws_maps(tmp_path):
    write_image_folder(tmp_path / "data" / "cifar10-jpeg", {"train": 12, "test": 4})
    test_folder = tmp_path / "test_images"
    shutil.copytree(tmp_path / "data" / "cifar10-jpeg" / "test", test_folder)
    run = train_and_move_away(tmp_path, tmp_path / "data", "resnet_cifar", CLASSIFICATION)
    shutil.rmtree(tmp_path / "data")
    classes = sorted(p.name for p in test_folder.iterdir())
    proc = predict(run, *(test_folder / c for c in classes), "--format", "jsonl", "--top-k", "3")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 4 * len(classes) and all(len(r["top"]) == 3 for r in rows)
    correct = sum(r["output"] == Path(r["input"]).parent.name for r in rows)
    assert correct / len(rows) == pytest.approx(json.loads((run / "metrics.json").read_text())["test"]["acc"])
    drawn = predict(run, test_folder / classes[0], "--attention-dir", tmp_path / "maps")
    assert drawn.returncode == 0 and len(list((tmp_path / "maps").glob("*.png"))) == 4
    line = drawn.stdout.splitlines()[0].split("\t")
    assert line[1] in classes and 0 < float(line[2]) <= 1
