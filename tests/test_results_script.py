import importlib.util
import json

import pytest

from conftest import REPO

spec = importlib.util.spec_from_file_location("results_script", REPO / "scripts" / "results.py")
results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results)


def _run(folder, seed, acc, status="completed"):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "experiment": "exp",
                "status": status,
                "seed": seed,
                "test": {"acc": acc},
                "epochs": 3,
                "wall_time_s": 120.0,
                "hardware": {"cpu": "CPU X", "device": "cpu", "cpu_threads": 2},
                "git_commit": "abc",
            }
        )
    )
    (folder / "history.csv").write_text("epoch,train/loss\n1,0.5\n")
    (folder / "translations.test2016.en").write_text("A dog.\n")
    (folder / "eval.test2016.beam1.json").write_text(json.dumps({"bleu": acc * 30}))
    (folder / "captions.test.beam3.json").write_text("[]")
    (folder / "figures").mkdir()
    (folder / "figures" / "alignment_test2016_0.png").write_bytes(b"\x89PNG")
    (folder / "last.pt").write_bytes(b"not collected")
    (folder / "wandb").mkdir()
    (folder / "wandb" / "run.wandb").write_bytes(b"not collected")
    return folder


def test_collect_copies_the_small_record_only(tmp_path):
    run = _run(tmp_path / "runs" / "exp" / "2026-01-01", 0, 0.9)
    target = results.collect(run, tmp_path / "results" / "runs")
    copied = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert copied == [
        "captions.test.beam3.json",
        "eval.test2016.beam1.json",
        "figures/alignment_test2016_0.png",
        "history.csv",
        "metrics.json",
        "translations.test2016.en",
    ]
    lean = results.collect(run, tmp_path / "lean", figures=False)
    assert not (lean / "figures").exists() and (lean / "captions.test.beam3.json").is_file()
    with pytest.raises(SystemExit, match="has not completed"):
        results.collect(_run(tmp_path / "runs" / "exp" / "b", 0, 0.9, status="running"), tmp_path / "out")


def test_table_aggregates_seeds_and_fills_the_marked_block(tmp_path):
    base = tmp_path / "results"
    for seed, acc in ((0, 0.90), (1, 0.92)):
        _run(base / "runs" / "exp" / f"s{seed}", seed, acc)
    (base / "exp.md").write_text(f"# Title\n\n{results.START}\nold\n{results.END}\n\nprose stays\n")
    (base / "exp.spec.json").write_text(
        json.dumps(
            {
                "name": "exp",
                "metric_name": "test acc. (%)",
                "rows": [
                    {
                        "label": "M",
                        "dataset": "D",
                        "metric": "test.acc",
                        "scale": 100,
                        "runs": ["runs/exp/s0", "runs/exp/s1"],
                        "paper": 91.25,
                        "paper_source": "P",
                    },
                    {"label": "M greedy", "dataset": "D", "metric": "eval.test2016.beam1.json:bleu", "runs": ["runs/exp/s0"]},
                ],
            }
        )
    )
    results.table(base / "exp.spec.json")
    row, greedy = json.loads((base / "exp.json").read_text())
    assert greedy["value"] == 27.0 and greedy["seeds"] == [0]  # read from the named file of the record
    assert row["value"] == 91.0 and row["std"] == pytest.approx(1.41, abs=0.01) and row["seeds"] == [0, 1]
    assert row["paper_value"] == 91.25 and row["wall_time_min"] == 2.0
    page = (base / "exp.md").read_text()
    assert "| M | D | 91.00 ± 1.41 | 0, 1 |" in page and "old" not in page and "prose stays" in page


def test_a_cost_entry_joins_the_bench_figures_to_the_row_and_table(tmp_path):
    base = tmp_path / "results"
    _run(base / "runs" / "exp" / "s0", 0, 0.9)
    (base / "bench").mkdir()
    fields = {
        "parameters": 272986,
        "mflops_per_image": 81.9,
        "train_img_per_s": 133.8,
        "eval_img_per_s": 483.7,
        "train_time_ratio": 1.54,
    }
    (base / "bench" / "b.json").write_text(json.dumps({"results": [{"variant": "cbam", **fields}]}))
    (base / "exp.md").write_text(f"{results.START}\n{results.END}\n")
    row = {"label": "M", "dataset": "D", "metric": "test.acc", "scale": 100, "runs": ["runs/exp/s0"]}
    (base / "exp.spec.json").write_text(
        json.dumps(
            {
                "name": "exp",
                "metric_name": "acc",
                "rows": [{**row, "cost": {"bench": "bench/b.json", "variant": "cbam"}}, {**row, "label": "N"}],
            }
        )
    )
    results.table(base / "exp.spec.json")
    with_cost, without = json.loads((base / "exp.json").read_text())
    assert {k: with_cost[k] for k in fields} == fields and with_cost["cost_source"] == "bench/b.json"
    assert "parameters" not in without
    page = (base / "exp.md").read_text()
    assert "| 272,986 / 81.9 / 133.8 |" in page and "| N | D | 90.00 | 0 | 3 | 2.0 min | CPU X (cpu, 2 threads) | — | — |" in page
    (base / "exp.spec.json").write_text(
        json.dumps({"name": "exp", "metric_name": "acc", "rows": [{**row, "cost": {"bench": "bench/b.json", "variant": "se"}}]})
    )
    with pytest.raises(SystemExit, match="no variant 'se'"):
        results.table(base / "exp.spec.json")


def _overrides(folder, *overrides):
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))


def test_a_row_finds_its_records_by_overrides_one_per_seed_in_seed_order(tmp_path):
    base = tmp_path / "results"
    runs = base / "runs" / "exp"
    for name, seed, acc, extra in (
        ("a", 1, 0.92, ["block=se", "seed=1", "logger.mode=offline"]),
        ("b", 0, 0.90, ["block=se", "resume=runs/exp/x"]),
        ("c", 0, 0.50, ["block=none", "seed=0"]),
        ("d", 0, 0.10, ["block=se", "data=cifar100"]),
    ):  # another comparison
        _overrides(_run(runs / name, seed, acc), "experiment=exp", *extra)
    _overrides(_run(runs / "e", 2, 0.99, status="running"), "experiment=exp", "block=se", "seed=2")
    (runs / "e" / "metrics.json").unlink()  # an unfinished run holds no metrics.json
    (base / "exp.md").write_text(f"{results.START}\n{results.END}\n")
    row = {"label": "SE", "dataset": "D", "metric": "test.acc", "scale": 100, "overrides": ["experiment=exp", "block=se"]}
    (base / "exp.spec.json").write_text(json.dumps({"name": "exp", "metric_name": "acc", "rows": [row]}))
    results.table(base / "exp.spec.json")
    (made,) = json.loads((base / "exp.json").read_text())
    assert made["runs"] == ["runs/exp/b", "runs/exp/a"] and made["seeds"] == [0, 1] and made["value"] == 91.0
    assert made["overrides"] == ["experiment=exp", "block=se"]

    _overrides(_run(runs / "f", 1, 0.93), "experiment=exp", "block=se", "seed=1")
    with pytest.raises(SystemExit, match=r"more than one record per seed \{1: \['a', 'f'\]\}"):
        results.table(base / "exp.spec.json")
    (base / "exp.spec.json").write_text(
        json.dumps({"name": "exp", "metric_name": "acc", "rows": [{**row, "overrides": ["experiment=exp", "block=cbam"]}]})
    )
    with pytest.raises(SystemExit, match="no run record under .* has the overrides"):
        results.table(base / "exp.spec.json")


def test_spec_defaults_fill_the_rows_and_a_rows_own_field_wins(tmp_path):
    base = tmp_path / "results"
    _run(base / "runs" / "exp" / "s0", 0, 0.9)
    (base / "exp.md").write_text(f"{results.START}\n{results.END}\n")
    (base / "exp.spec.json").write_text(
        json.dumps(
            {
                "name": "exp",
                "metric_name": "acc",
                "defaults": {"dataset": "D", "metric": "test.acc", "scale": 100, "note": "n"},
                "rows": [
                    {"label": "A", "runs": ["runs/exp/s0"]},
                    {"label": "B", "runs": ["runs/exp/s0"], "scale": 1, "dataset": "E"},
                ],
            }
        )
    )
    results.table(base / "exp.spec.json")
    a, b = json.loads((base / "exp.json").read_text())
    assert (a["dataset"], a["value"], a["note"]) == ("D", 90.0, "n")
    assert (b["dataset"], b["value"], b["metric"]) == ("E", 0.9, "test.acc")


def test_per_seed_table_pairs_each_row_with_the_baseline_on_shared_seeds(tmp_path):
    base = tmp_path / "results"
    for name, seed, acc in (
        ("p0", 0, 0.70),
        ("p1", 1, 0.72),
        ("p2", 2, 0.71),
        ("a0", 0, 0.73),
        ("a2", 2, 0.705),
        ("b1", 1, 0.74),
    ):
        _run(base / "runs" / "exp" / name, seed, acc)
    page = f"{results.START}\n{results.END}\n\n{results.PER_SEED_START}\nold\n{results.PER_SEED_END}\nprose\n"
    (base / "exp.md").write_text(page)
    spec = {
        "name": "exp",
        "metric_name": "acc",
        "per_seed": {"baseline": "plain"},
        "defaults": {"dataset": "D", "metric": "test.acc", "scale": 100},
        "rows": [
            {"label": "P", "name": "plain", "runs": ["runs/exp/p0", "runs/exp/p1", "runs/exp/p2"]},
            {"label": "A", "name": "A", "runs": ["runs/exp/a0", "runs/exp/a2"]},
            {"label": "B", "name": "B", "runs": ["runs/exp/b1"]},
        ],
    }
    (base / "exp.spec.json").write_text(json.dumps(spec))
    results.table(base / "exp.spec.json")
    text = (base / "exp.md").read_text()
    assert "| | seed 0 | seed 1 | seed 2 | mean ± std | − plain, same seeds | seeds above plain |" in text
    assert "| plain | 70.00 | 72.00 | 71.00 | 71.00 ± 1.00 |  |  |" in text
    assert "| A | 73.00 | — | 70.50 | 71.75 ± 1.77 | +1.25 ± 2.47 | 1 of 2 |" in text  # +3.00 and -0.50
    assert "| B | — | 74.00 | — | 74.00 | +2.00 | 1 of 1 |" in text
    assert "old" not in text and text.endswith("prose\n")
    assert json.loads((base / "exp.json").read_text())[1]["values"] == [73.0, 70.5]

    (base / "exp.md").write_text(f"{results.START}\n{results.END}\n")  # no per-seed markers
    with pytest.raises(SystemExit, match="needs the markers <!-- per-seed-table:start -->"):
        results.table(base / "exp.spec.json")
    assert (base / "exp.md").read_text() == f"{results.START}\n{results.END}\n"  # left as it was
    (base / "exp.spec.json").write_text(json.dumps({**spec, "per_seed": {"baseline": "none"}}))
    (base / "exp.md").write_text(page)
    with pytest.raises(SystemExit, match=r"a row named 'none'; the names are \['plain', 'A', 'B'\]"):
        results.table(base / "exp.spec.json")
