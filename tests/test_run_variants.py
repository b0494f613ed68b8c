"""scripts/run_variants.py: one run per option of a config group, skipping finished runs and
resuming unfinished ones, so that a stopped grid goes on where it was."""

import json
import subprocess
import sys
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from conftest import REPO, SMOKE, run_dirs

EXPERIMENT = SMOKE[0].split("=")[1]


def run_variants(env, *variants, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """scripts/run_variants.py over ``optim`` options of the smoke experiment (``options``: its own flags)."""
    command = [sys.executable, "scripts/run_variants.py", "--experiment", EXPERIMENT, "--group", "optim", "--variants"]
    extra = ["--", *SMOKE[1:], "trainer.max_steps=2", "trainer.epochs=1"]
    return subprocess.run([*command, *variants, *options, *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_each_variant_runs_once_and_an_unfinished_one_is_resumed(train_env):
    first = run_variants(train_env, "sgd", "adam")
    assert first.returncode == 0, first.stderr[-3000:]
    runs = run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), EXPERIMENT)
    assert [OmegaConf.load(r / "config.yaml").optim.name for r in runs] == ["sgd", "adam"]
    (runs[1] / "metrics.json").unlink()  # as if the adam run had been stopped before its test
    second = run_variants(train_env, "sgd", "adam")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"[sgd] done: {runs[0]}" in second.stdout
    assert f"[adam] resuming {runs[1]}" in second.stdout
    resumed = run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), EXPERIMENT)[-1]
    assert json.loads((resumed / "metrics.json").read_text())["resumed_from"] == str(runs[1] / "last.pt")
    third = run_variants(train_env, "sgd", "adam")
    assert "[adam] done" in third.stdout and len(run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), EXPERIMENT)) == 3


def test_seeds_run_every_variant_per_seed_in_seed_order_and_are_skipped_when_done(train_env, tmp_path):
    records = tmp_path / "results" / "runs"
    extra = [*SMOKE[1:], "trainer.max_steps=1", "trainer.epochs=1", "task.figure_images=[]"]
    rows = [
        {"label": block, "name": block, "overrides": [f"experiment={EXPERIMENT}", f"block={block}", *extra]}
        for block in ("none", "se", "cbam")
    ]
    spec = {"name": "grid", "in_progress": True, "metric_name": "acc", "rows": rows}
    spec["defaults"] = {"dataset": "D", "metric": "test.acc", "scale": 100}
    (tmp_path / "results" / "grid.spec.json").parent.mkdir()
    (tmp_path / "results" / "grid.spec.json").write_text(json.dumps(spec))
    (tmp_path / "results" / "grid.md").write_text("<!-- results-table:start -->\n<!-- results-table:end -->\n")
    command = [
        sys.executable,
        "scripts/run_variants.py",
        "--experiment",
        EXPERIMENT,
        "--group",
        "block",
        "--variants",
        "none",
        "se",
        "--seeds",
        "0",
        "1",
        "--records",
        str(records),
        "--collect",
        "--tables",
        str(tmp_path / "results" / "grid.spec.json"),
        "--",
        *extra,
    ]
    first = subprocess.run(command, cwd=REPO, env=train_env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), EXPERIMENT)
    configs = [OmegaConf.load(r / "config.yaml") for r in runs]
    assert [(c.seed, c.model.block_attention) for c in configs] == [(0, "none"), (0, "se"), (1, "none"), (1, "se")]
    collected = sorted(p.parent.name for p in (records / EXPERIMENT).glob("*/metrics.json"))  # --collect: each at once
    assert collected == [r.name for r in runs] and first.stdout.count("collected:") == 4
    made = {row["name"]: row["seeds"] for row in json.loads((tmp_path / "results" / "grid.json").read_text())}
    assert made == {"none": [0, 1], "se": [0, 1], "cbam": []}  # --tables: the page follows each collected run
    assert "| cbam | D | — (no finished run yet) |" in (tmp_path / "results" / "grid.md").read_text()
    for run in runs:  # as on a fresh checkout: only the committed records are left
        (run / "metrics.json").unlink()
        (run / "last.pt").unlink()
    second = subprocess.run(command, cwd=REPO, env=train_env, capture_output=True, text=True, timeout=600)
    assert second.stdout.count("done:") == 4 and "[se seed=1] done" in second.stdout


def _committed_record(tmp_path, compose_cfg, wanted, name, **changes):
    """A record as scripts/results.py collect leaves it, its config.yaml composed from ``wanted``
    (then edited by ``changes``: dotted key -> value, as if made before a default changed)."""
    record = tmp_path / "records" / EXPERIMENT / name
    (record / ".hydra").mkdir(parents=True)
    (record / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*wanted, "logger.mode=offline"]))
    (record / "metrics.json").write_text(json.dumps({"status": "completed"}))
    config = compose_cfg(wanted)
    for key, value in changes.items():
        OmegaConf.update(config, key, value)
    OmegaConf.save(config, record / "config.yaml", resolve=True)
    return record


def test_a_committed_run_record_counts_as_finished(train_env, tmp_path, compose_cfg):
    wanted = [f"experiment={EXPERIMENT}", "optim=sgd", *SMOKE[1:], "trainer.max_steps=2", "trainer.epochs=1"]
    record = _committed_record(tmp_path, compose_cfg, wanted, "2026-01-01_00-00-00-000000", **{"paths.data_dir": "/elsewhere"})
    done = run_variants(train_env, "sgd", options=("--records", str(tmp_path / "records")))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"[sgd] done: {record}" in done.stdout  # where the data was read from does not matter
    assert not run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), EXPERIMENT)


def test_a_record_made_with_other_settings_is_run_again(train_env, tmp_path, compose_cfg):
    wanted = [f"experiment={EXPERIMENT}", "optim=sgd", *SMOKE[1:], "trainer.max_steps=2", "trainer.epochs=1"]
    record = _committed_record(tmp_path, compose_cfg, wanted, "2026-01-01_00-00-00-000000", **{"model.shortcut": "B"})
    again = run_variants(train_env, "sgd", options=("--records", str(tmp_path / "records")))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{record} was made with other settings (model.shortcut); not counted" in again.stdout
    assert len(run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), EXPERIMENT)) == 1
