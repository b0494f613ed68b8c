"""Captioning metrics and Show-Attend-Tell through the real entrypoint."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attention_zoo.metrics.caption import caption_scores
from attention_zoo.wandb_records import logged_history
from captioning_fixtures import write_flickr8k
from conftest import REPO, run_dirs, run_train

HYPOTHESES = ["a dog runs on the grass .", "A man rides a red bike", "two children play in the water"]
REFERENCES = [
    ["A dog is running on grass.", "a brown dog runs across a lawn", "The dog runs on the grass ."],
    ["a man riding a bicycle", "A person on a red bike.", "A man rides his bike down the road"],
    ["Two kids are playing in the water .", "children splash in a lake", "two young children play in the water"],
]


def test_metric_wrapper_equals_pycocoevalcap_called_directly():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    ours = caption_scores(HYPOTHESES, REFERENCES, spice=False)
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": r} for r in refs] for k, refs in enumerate(REFERENCES)})
    res = tokenizer.tokenize({k: [{"caption": h}] for k, h in enumerate(HYPOTHESES)})
    bleu = Bleu(4).compute_score(gts, res, verbose=0)[0]
    direct = {
        **{f"bleu{n + 1}": b for n, b in enumerate(bleu)},
        "meteor": Meteor().compute_score(gts, res)[0],
        "rouge_l": Rouge().compute_score(gts, res)[0],
        "cider": Cider().compute_score(gts, res)[0],
    }
    assert ours == pytest.approx(direct)
    assert ours["bleu1"] > ours["bleu4"] > 0 and ours["cider"] > 0
    perfect = caption_scores([REFERENCES[0][0]], [REFERENCES[0]], spice=False)
    assert perfect["bleu4"] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="one hypothesis per image"):
        caption_scores(HYPOTHESES, REFERENCES[:2])


TINY_MODEL = [
    "model.embed_dim=16",
    "model.hidden_dim=32",
    "model.attention_dim=16",
    "task.figure_images=[0,1]",
    "trainer.epochs=2",
    "trainer.progress_bar=false",
]


def test_scenes_run_reports_caption_metrics_localization_and_logs_attention_figures(train_env):
    run_train(train_env, "experiment=show_attend_tell_scenes", "data.scenes_images={train: 40, val: 8, test: 8}", *TINY_MODEL)
    (run,) = run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), "show_attend_tell_scenes")
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"bleu1", "bleu4", "meteor", "rouge_l", "cider", "localization", "loss"} <= set(metrics["test"])
    assert metrics["best_val"]["metric"] == "bleu4" and 0 <= metrics["test"]["localization"] <= 1
    assert all(0 <= metrics["test"][k] <= 1 for k in ("localization_previous_step", "object_precision", "object_recall"))
    captions = json.loads((run / "captions.test.beam3.json").read_text())
    assert len(captions) == 8 and all(c["references"] and isinstance(c["caption"], str) for c in captions)
    assert (run / "figures" / "attention_test_1.png").is_file()
    worst = [c["index"] for c in sorted(captions, key=lambda c: (c["cider"], c["index"]))[:3]]  # failure_cases: 3
    drawn = sorted(path.name for path in (run / "figures").glob("failure_test_*.png"))
    assert drawn == sorted(f"failure_test_{i}.png" for i in worst)
    (wandb_run,) = (run / "wandb").glob("offline-run-*")
    logged = {key for row in logged_history(wandb_run) for key in row}
    assert {"figures/attention_test_0", f"figures/failure_test_{worst[0]}", "val/localization", "test/cider"} <= logged
    assert {"val/bleu4", "train/nll"} <= logged
    # the report script re-scores the run with its best.pt exactly as its test did, and says where attention went
    for command in (["evaluate"], ["where"], ["evaluate", "--weights", "last.pt"]):
        proc = subprocess.run(
            [sys.executable, "scripts/caption_report.py", *command[:1], str(run), *command[1:]],
            cwd=REPO,
            env=train_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
    rescored = json.loads((run / "eval.test.beam3.json").read_text())
    assert all(rescored[k] == pytest.approx(v) for k, v in metrics["test"].items())
    last = json.loads((run / "eval.test.beam3.last.json").read_text())  # the other selection rule: the last epoch
    assert last["checkpoint"] == "last.pt" and set(metrics["test"]) <= set(last)
    where = json.loads((run / "eval.test.where.json").read_text())["by_phrase"]
    assert all(
        sum(v for k, v in shares.items() if k != "colour words") == pytest.approx(1, abs=1e-3) for shares in where.values()
    )


def test_flickr8k_run_with_a_frozen_encoder_caches_its_features(train_env, tmp_path):
    train_env = dict(train_env, ATTN_ZOO_DATA=str(tmp_path / "flickr_root"))  # not the shared CIFAR root
    write_flickr8k(tmp_path / "flickr_root", "original", n_per_split=4)
    frozen = [
        "experiment=show_attend_tell",
        "model.encoder=scenes_cnn",
        "model.encoder_weights=null",
        "data.image_size=64",
        "data.batch_size=8",
        "optim.lr=0.001",
        *TINY_MODEL,
        "trainer.epochs=1",
    ]
    run_train(train_env, *frozen)  # reuse of the cache by a later run: test_show_attend_tell.py
    assert len(list(Path(train_env["ATTN_ZOO_CACHE"]).glob("captions-flickr8k-features-*.pt"))) == 1
    (run,) = run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), "show_attend_tell")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and {"bleu4", "meteor", "cider"} <= set(metrics["test"])
    assert "localization" not in metrics["test"]  # Flickr8k has no boxes


def test_missing_flickr8k_stops_with_where_to_get_it(train_env):
    proc = run_train(train_env, "experiment=show_attend_tell", "model.encoder_weights=null", check=False)
    assert proc.returncode != 0
    assert "Flickr8k captions not found" in proc.stderr and "caption_datasets.zip" in proc.stderr
