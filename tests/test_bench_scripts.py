"""The speed benchmarks run end to end (tiny data, a few steps) and report what they promise."""

import json
import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from attention_zoo.build import build_data, build_model
from attention_zoo.engine import checkpoint
from attention_zoo.train import CONFIG_DIR
from conftest import REPO
from multi30k_corpus import write_corpus


def run_script(env, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_translation_bench_reports_speed_padding_and_decoding(tmp_path):
    write_corpus(tmp_path / "data")
    env = dict(os.environ, ATTN_ZOO_DATA=str(tmp_path / "data"), ATTN_ZOO_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    small = [
        f"--override={o}"
        for o in (
            "data.download=false",
            "data.min_freq=1",
            "data.max_tokens=40",
            "model.embed_dim=16",
            "model.hidden_dim=16",
            "task.figure_sentences=[]",
        )
    ]
    out = tmp_path / "bench.json"
    proc = run_script(
        env,
        "scripts/bench_translation.py",
        *small,
        "--steps",
        "4",
        "--warmup",
        "1",
        "--decode-sentences",
        "3",  # the fixture's val split has 3 pairs
        "--beam",
        "3",
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    assert [r["experiment"] for r in report["results"]] == ["seq2seq_cpu", "rnnsearch_cpu"]
    for r in report["results"]:
        assert r["train_tgt_tok_per_s"] > 0 and r["timed_steps"] == 4
        assert 0 <= r["padding_share"] <= r["padding_share_random_order"] < 1
        assert (
            r["decode"]["sentences"] == 3 and r["decode"]["greedy"]["sent_per_s"] > 0 and r["decode"]["beam3"]["sent_per_s"] > 0
        )
        assert r["decode_checkpoint"].startswith("none")
    assert "rnnsearch_cpu" in proc.stdout


def test_resnet_bench_runs_on_synthetic_images(tmp_path):
    out = tmp_path / "bench.json"
    run_script(
        dict(os.environ, OMP_NUM_THREADS="1"),
        "scripts/bench_resnet.py",
        "--synthetic",
        "--batch-size",
        "8",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--bf16",
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    assert [(r["channels_last"], r["precision"]) for r in report["results"]] == [
        (False, "fp32"),
        (True, "fp32"),
        (False, "bf16"),
        (True, "bf16"),
    ]
    assert all(r["train_img_per_s"] > 0 and 0 <= r["data_wait_share"] < 1 for r in report["results"])


def test_transformer_bench_compares_with_torch_and_times_the_kv_cache(tmp_path):
    write_corpus(tmp_path / "data")
    env = dict(os.environ, ATTN_ZOO_DATA=str(tmp_path / "data"), ATTN_ZOO_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    small = [
        f"--override={o}"
        for o in (
            "data.download=false",
            "data.vocab_size=120",
            "data.max_tokens=40",
            "model.d_model=16",
            "model.heads=2",
            "model.d_ff=32",
            "task.figure_sentences=[]",
        )
    ]
    out = tmp_path / "bench.json"
    run_script(
        env,
        "scripts/bench_transformer.py",
        *small,
        "--steps",
        "3",
        "--warmup",
        "1",
        "--decode-sentences",
        "3",  # the fixture's val split has 3 pairs
        "--bf16",
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    assert set(report["train_tgt_tok_per_s"]) == {"ours", "torch.nn.Transformer", "ours, bf16 autocast"}
    assert report["ours_over_torch"] > 0 and report["bf16_over_fp32"] > 0
    # torch.nn.Transformer adds a final LayerNorm to its encoder and to its decoder (2 x 2 x d_model)
    assert report["parameters"]["torch.nn.Transformer"] - report["parameters"]["ours"] == 4 * 16
    for cache in ("kv_cache", "no_cache"):
        assert report["decode"][cache]["greedy"]["sent_per_s"] > 0 and report["decode"][cache]["beam4"]["sent_per_s"] > 0


def test_cnn_attention_bench_reports_cost_and_overhead_of_each_block(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run_script(
        env,
        "scripts/bench_cnn_attention.py",
        "--variants",
        "cbam",
        "none",
        "nonlocal_6blocks",
        "--depth",
        "14",
        "--batch-size",
        "4",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--precision",
        "bf16",
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    rows = {r["variant"]: r for r in report["results"]}
    assert report["precision"] == "bf16"  # under bf16 autocast, as trainer.precision=bf16
    assert report["results"][0]["variant"] == "none" and rows["none"]["train_time_ratio"] == 1.0
    assert rows["cbam"]["parameters"] > rows["none"]["parameters"]
    assert rows["nonlocal_6blocks"]["mflops_per_image"] > rows["cbam"]["mflops_per_image"] > rows["none"]["mflops_per_image"]
    assert all(r["train_img_per_s"] > 0 and r["eval_time_ratio"] > 0 for r in rows.values())


def test_captioning_bench_times_training_decoding_and_the_feature_cache(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, ATTN_ZOO_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    overrides = ["data.scenes_images={train: 60, val: 4, test: 4}", "model.hidden_dim=32"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=show_attend_tell_scenes", *overrides])
    trained = build_model(cfg.model, build_data(cfg.data, cfg.seed))
    checkpoint.save_atomic({"model": trained.state_dict()}, tmp_path / "best.pt")
    run_script(
        env,
        "scripts/bench_captioning.py",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--decode-images",
        "4",
        *[f"--override={o}" for o in overrides],
        "--checkpoint",
        str(tmp_path / "best.pt"),
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    assert report["train_captions_per_s"] > 0 and set(report["decode_captions_per_s"]) == {"greedy", "beam3"}
    assert report["decode_checkpoint"] == str(tmp_path / "best.pt")
    assert all(0 <= words <= cfg.data.max_len for words in report["decode_mean_words"].values())
    cache = report["frozen_encoder_train_captions_per_s"]
    assert cache["images"] > 0 and cache["cached_features"] > 0 and cache["speedup"] > 0


@pytest.mark.slow
def test_transformer_bench_times_a_compiled_copy_from_the_same_weights(tmp_path):
    """--compile: inductor compiles a C++ kernel per fused graph, about a minute even at toy size."""
    write_corpus(tmp_path / "data")
    env = dict(os.environ, ATTN_ZOO_DATA=str(tmp_path / "data"), ATTN_ZOO_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    small = [f"--override={o}" for o in ("data.download=false", "data.vocab_size=120", "data.max_tokens=40", "model.d_model=16")]
    out = tmp_path / "bench.json"
    timing = ["--steps", "2", "--warmup", "2", "--decode-sentences", "0"]  # 0: training speed only
    run_script(env, "scripts/bench_transformer.py", *small, "--compile", *timing, "--json", str(out))
    report = json.loads(out.read_text())
    assert set(report["train_tgt_tok_per_s"]) == {"ours", "torch.nn.Transformer", "ours, torch.compile"}
    assert report["decode"] == {}
    assert report["compiled_over_eager"] > 0 and report["warmup_s"]["ours, torch.compile"] > report["warmup_s"]["ours"]


def test_sagan_bench_times_each_placement_under_the_precision_asked(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    small = [f"--override={o}" for o in ("model.g_width=16", "model.d_width=16", "data.batch_size=4", "data.eval_batch_size=8")]
    out = tmp_path / "bench.json"
    timing = ["--steps", "2", "--warmup", "1"]
    run_script(env, "scripts/bench_sagan.py", *small, *timing, "--precision", "bf16", "--json", str(out))
    report = json.loads(out.read_text())
    assert report["precision"] == "bf16" and report["overrides"] == [o.removeprefix("--override=") for o in small]
    by_variant = {r["variant"]: r for r in report["results"]}
    assert set(by_variant) == {"none", "feat8", "feat16"} and by_variant["none"]["train_time_ratio"] == 1.0
    # one attention module in G and one in D at width 16: f, g, h (16 -> 2, no bias), v (2 -> 16) and gamma
    module = 4 * 16 * 2 + 1
    for variant in ("feat8", "feat16"):
        assert by_variant[variant]["g_parameters"] - by_variant["none"]["g_parameters"] == module
        assert by_variant[variant]["d_parameters"] - by_variant["none"]["d_parameters"] == module
        assert by_variant[variant]["train_iterations_per_s"] > 0 and by_variant[variant]["sample_img_per_s"] > 0
