"""Translation end to end on a tiny corpus: each model trained through the real entrypoint,
then the figures they draw and the figure script run on their run directories."""

import json
import subprocess
import sys

import pytest

from attention_zoo.metrics.bleu import bleu_by_length
from attention_zoo.wandb_records import logged_history
from conftest import REPO, entrypoint_env, run_dirs, run_train
from multi30k_corpus import TEST_EN, TINY_TRANSFORMER, write_corpus

MODELS = ("seq2seq", "rnnsearch", "transformer")
# The test uses the final weights (an average of 1 epoch): val and test differ, so the epoch that is best on val
# is not the one that has memorized the training pairs that test repeats.
RNN_OVERRIDES = (
    "optim.lr=0.01",
    "data.min_freq=1",
    "model.embed_dim=32",
    "model.hidden_dim=64",
    "trainer.grad_clip_norm=5",
    "trainer.average_last_epochs=1",
)
MODEL_OVERRIDES = {
    "seq2seq": (*RNN_OVERRIDES, "model.num_layers=1"),
    "rnnsearch": (*RNN_OVERRIDES, "model.attention_dim=32", "model.maxout_dim=32"),
    "transformer": (
        *TINY_TRANSFORMER,
        "trainer.average_last_epochs=3",
        "optim.lr=0.003",
        "schedule.warmup_steps=0",
    ),
}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> dict:
    """One finished run per model on 6 repeated sentence pairs (offline W&B), trained to memorize them
    (the Transformer with a joint BPE vocabulary, tied embeddings and the last 3 epochs averaged)."""
    root = tmp_path_factory.mktemp("translation")
    write_corpus(root / "data")
    env = entrypoint_env(root / "data", root)
    runs = {}
    for model in MODELS:
        run_train(
            env,
            f"experiment={model}",
            "trainer=smoke",
            "trainer.epochs=60",
            "trainer.limit_train_batches=null",  # every batch of the tiny corpus, every epoch
            "trainer.max_steps=null",
            "trainer.limit_eval_batches=null",
            "data.max_tokens=40",
            "data.download=false",
            "task.figure_sentences=[1,3]",
            "optim=adam",
            "schedule=constant",
            *MODEL_OVERRIDES[model],
        )
        (runs[model],) = run_dirs(root / "runs", model)
    return {"runs": runs, "env": env, "data": root / "data"}


@pytest.mark.parametrize("model", MODELS)
def test_entrypoint_overfits_a_tiny_corpus_to_bleu_above_90(tiny_runs, model):
    run_dir = tiny_runs["runs"][model]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["bleu"] > 90, metrics["test"]
    assert (run_dir / "translations.test2016.en").read_text().splitlines() == TEST_EN


def test_rnnsearch_run_draws_its_alignments_and_logs_them_to_wandb(tiny_runs):
    run_dir = tiny_runs["runs"]["rnnsearch"]
    drawn = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert drawn == ["alignment_test2016_1.png", "alignment_test2016_3.png"]
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    logged = {key: value for row in logged_history(wandb_run) for key, value in row.items()}
    for name in ("figures/alignment_test2016_1", "figures/alignment_test2016_3", "figures/curves"):
        assert logged[name]["_type"] == "image-file", name
    assert not (tiny_runs["runs"]["seq2seq"] / "figures").exists()  # no attention, nothing drawn


def test_transformer_run_tests_the_averaged_weights_and_draws_every_head(tiny_runs):
    run_dir = tiny_runs["runs"]["transformer"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_weights"] == "average of epochs 58-60"
    assert sorted(p.name for p in run_dir.glob("epoch*.pt")) == ["epoch58.pt", "epoch59.pt", "epoch60.pt"]
    assert (run_dir / "averaged.pt").is_file()
    kinds = ("encoder_self", "decoder_self", "encoder_decoder")
    drawn = {p.name for p in (run_dir / "figures").glob("*.png")}
    assert drawn == {"alignment_test2016_1.png", "alignment_test2016_3.png", *(f"heads_{k}_test2016_1.png" for k in kinds)}
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    logged = {key: value for row in logged_history(wandb_run) for key, value in row.items()}
    for kind in kinds:
        assert logged[f"figures/heads_{kind}_test2016_1"]["_type"] == "image-file"


def report_script(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/translation_report.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_by_length_script_compares_the_two_runs_per_bucket(tiny_runs, tmp_path):
    runs = tiny_runs["runs"]
    out = tmp_path / "fig2"
    proc = report_script(
        tiny_runs["env"],
        "by-length",
        "--run",
        f"encdec={runs['seq2seq']}",
        "--run",
        f"search={runs['rnnsearch']}",
        "--out",
        str(out),
        "--edges",
        "1",
        "6",
        "--data-root",
        str(tiny_runs["data"]),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert out.with_suffix(".png").stat().st_size > 0
    lengths = [6, 6, 5, 5]  # Moses words of TEST_DE, the final period included
    hyps = (runs["rnnsearch"] / "translations.test2016.en").read_text().splitlines()
    assert report["runs"]["search"]["buckets"] == bleu_by_length(hyps, TEST_EN, lengths, [1, 6])
    assert [b["sentences"] for b in report["runs"]["encdec"]["buckets"]] == [2, 2]


def test_by_length_script_needs_label_equals_dir(tiny_runs, tmp_path):
    proc = report_script(tiny_runs["env"], "by-length", "--run", str(tiny_runs["runs"]["seq2seq"]), "--out", str(tmp_path / "x"))
    assert proc.returncode != 0 and "LABEL=RUN_DIR" in proc.stderr


def test_alignments_script_redraws_from_the_best_checkpoint(tiny_runs):
    run_dir = tiny_runs["runs"]["rnnsearch"]
    proc = report_script(tiny_runs["env"], "alignments", str(run_dir), "--sentences", "0", "2")
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "figures" / "alignment_test2016_0.png").stat().st_size > 0
    assert (run_dir / "figures" / "alignment_test2016_2.png").stat().st_size > 0
    refused = report_script(tiny_runs["env"], "alignments", str(tiny_runs["runs"]["seq2seq"]))
    assert refused.returncode != 0 and "no attention" in refused.stderr


def test_figure_sentences_outside_the_test_set_name_the_valid_range(tiny_runs):
    proc = run_train(
        tiny_runs["env"],
        "experiment=rnnsearch",
        "trainer=smoke",
        "data.download=false",
        "data.min_freq=1",
        "task.figure_sentences=[4]",
        check=False,
    )
    assert proc.returncode != 0
    assert "must index the 4 test2016 sentences (0..3)" in proc.stderr + proc.stdout


def own_details(run_dir):
    """How the run's own test was decoded and scored (metrics.json's test_details)."""
    return json.loads((run_dir / "metrics.json").read_text())["test_details"]


@pytest.mark.parametrize(("model", "test_beam"), [("rnnsearch", 5), ("transformer", 4)])
def test_evaluate_script_reproduces_the_runs_test_score_and_decodes_greedily(tiny_runs, model, test_beam):
    """With the weights the run's test used: best.pt, or averaged.pt for the Transformer."""
    run_dir = tiny_runs["runs"][model]
    for beam in (test_beam, 1):
        proc = report_script(tiny_runs["env"], "evaluate", str(run_dir), "--beam", str(beam))
        assert proc.returncode == 0, proc.stderr
    own = json.loads((run_dir / "metrics.json").read_text())["test"]
    again = json.loads((run_dir / f"eval.test2016.beam{test_beam}.json").read_text())
    assert again["bleu"] == own["bleu"] and again["loss"] == pytest.approx(own["loss"])
    greedy = json.loads((run_dir / "eval.test2016.beam1.json").read_text())
    assert greedy["beam"] == 1 and greedy["bleu"] > 90
    assert (run_dir / "translations.test2016.beam1.en").read_text().splitlines() == TEST_EN
    assert again["checkpoint"] == "averaged.pt"
    assert again["beam_stop"] == "exact" and own_details(run_dir)["bleu_signature"].startswith("nrefs:1|case:mixed")
    proc = report_script(tiny_runs["env"], "evaluate", str(run_dir), "--beam", str(test_beam), "--beam-stop", "first_k")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run_dir / f"eval.test2016.beam{test_beam}.first_k.json").read_text())["beam_stop"] == "first_k"
    if model == "transformer":  # another checkpoint of the run, on request
        proc = report_script(tiny_runs["env"], "evaluate", str(run_dir), "--beam", "1", "--weights", "best.pt")
        assert proc.returncode == 0, proc.stderr
        best = json.loads((run_dir / "eval.test2016.beam1.best.json").read_text())
        assert best["checkpoint"] == "best.pt" and best["loss"] != pytest.approx(own["loss"])


def test_time_to_script_finds_the_first_epoch_reaching_a_validation_bleu(tiny_runs):
    run_dir = tiny_runs["runs"]["rnnsearch"]
    history = (run_dir / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    bleus = [float(line.split(",")[header.index("val/bleu")]) for line in history[1:]]
    target = bleus[-1] / 2
    proc = report_script(tiny_runs["env"], "time-to", str(run_dir), "--bleu", f"{target:.3f}")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((run_dir / f"eval.time_to_bleu{float(f'{target:.3f}'):g}.json").read_text())
    first = next(i for i, b in enumerate(bleus) if b >= float(f"{target:.3f}"))
    assert report["reached"] and report["epoch"] == first + 1
    assert report["train_minutes"] <= report["wall_minutes"]
    unreachable = report_script(tiny_runs["env"], "time-to", str(run_dir), "--bleu", "101")
    assert json.loads(unreachable.stdout)["reached"] is False


def test_curves_script_tabulates_and_draws_validation_bleu_by_epoch_and_minutes(tiny_runs, tmp_path):
    runs = tiny_runs["runs"]
    out = tmp_path / "curves"
    labelled = ["--run", f"encdec={runs['seq2seq']}", "--run", f"search={runs['rnnsearch']}"]
    proc = report_script(tiny_runs["env"], "curves", *labelled, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert out.with_suffix(".png").stat().st_size > 0
    lines = (runs["rnnsearch"] / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    epochs = report["runs"]["search"]["epochs"]
    assert [e["val_bleu"] for e in epochs] == [float(r["val/bleu"]) for r in rows]
    assert [e["step"] for e in epochs] == [int(r["step"]) for r in rows]
    assert epochs[-1]["train_minutes"] == pytest.approx(sum(float(r["time/epoch_s"]) for r in rows) / 60)
    table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    assert table[0] == "| epoch | encdec | search |" and len(table) == 2 + len(rows)
    epoch_1 = [cell.strip() for cell in table[2].strip("|").split("|")]
    assert epoch_1[0] == "1" and epoch_1[2].startswith(f"{float(rows[0]['val/bleu']):.2f} (")
