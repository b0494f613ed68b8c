"""The speed benchmarks run end to end (tiny data, a few steps) and report what they promise."""

import json
import os
import subprocess
import sys

from conftest import REPO
from multi30k_corpus import write_corpus


def run_script(env, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_translation_bench_reports_speed_padding_and_decoding(tmp_path):
    write_corpus(tmp_path / "data")
    env = dict(os.environ, ATTN_ZOO_DATA=str(tmp_path / "data"), ATTN_ZOO_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    small = [f"--override={o}" for o in ("data.download=false", "data.min_freq=1", "data.max_tokens=40",
                                          "model.embed_dim=16", "model.hidden_dim=16", "task.figure_sentences=[]")]
    out = tmp_path / "bench.json"
    proc = run_script(env, "scripts/bench_translation.py", *small, "--steps", "4", "--warmup", "1",
                      "--decode-sentences", "4", "--beam", "3", "--json", str(out))
    report = json.loads(out.read_text())
    assert [r["experiment"] for r in report["results"]] == ["seq2seq_cpu", "rnnsearch_cpu"]
    for r in report["results"]:
        assert r["train_tgt_tok_per_s"] > 0 and r["timed_steps"] == 4
        assert 0 <= r["padding_share"] <= r["padding_share_random_order"] < 1
        assert r["decode"]["sentences"] == 4 and r["decode"]["greedy"]["sent_per_s"] > 0 and r["decode"]["beam3"]["sent_per_s"] > 0
        assert r["decode_checkpoint"].startswith("none")
    assert "rnnsearch_cpu" in proc.stdout


def test_resnet_bench_runs_on_synthetic_images(tmp_path):
    out = tmp_path / "bench.json"
    run_script(dict(os.environ, OMP_NUM_THREADS="1"), "scripts/bench_resnet.py", "--synthetic", "--batch-size", "8",
               "--steps", "2", "--warmup", "1", "--json", str(out))
    report = json.loads(out.read_text())
    assert [r["channels_last"] for r in report["results"]] == [False, True]
    assert all(r["train_img_per_s"] > 0 and 0 <= r["data_wait_share"] < 1 for r in report["results"])
