import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO, load_script

results = load_script("results", "results_script")


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
    assert (
        "| M | D | 91.00 ± 1.41 [78.29, 103.71] | 0, 1 |" in page and "old" not in page
    )  # t(1) interval and "prose stays" in page


def test_a_row_states_the_machine_speed_its_runs_and_their_resumed_segments_started_at(tmp_path):
    """Seed 1 ran in two segments (killed, resumed): both starts count, not only the last one."""
    base = tmp_path / "results"
    resumed = {"matmul_gflops_at_start": 81.0, "matmul_gflops_at_starts": [120.4, 81.0]}
    for seed, hardware in ((0, {"matmul_gflops_at_start": 40.2}), (1, resumed)):
        metrics_path = _run(base / "runs" / "exp" / f"s{seed}", seed, 0.9) / "metrics.json"
        metrics = json.loads(metrics_path.read_text())
        metrics["hardware"].update(hardware)
        metrics_path.write_text(json.dumps(metrics))
    row = {"label": "M", "dataset": "D", "metric": "test.acc", "runs": ["runs/exp/s0", "runs/exp/s1"]}
    assert results.aggregate(row, base)["hardware"] == ["CPU X (cpu, 2 threads)", "fp32 matmul 40-120 GFLOP/s at start"]
    row["runs"] = ["runs/exp/s0"]
    assert results.aggregate(row, base)["hardware"] == ["CPU X (cpu, 2 threads)", "fp32 matmul 40 GFLOP/s at start"]


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


def test_where_keeps_only_the_records_whose_config_holds_its_values(tmp_path):
    base = tmp_path / "results"
    runs = base / "runs" / "exp"
    for name, seed, acc, average in (
        ("old0", 0, 0.30, 5),
        ("new0", 0, 0.35, None),
        ("new1", 1, 0.36, None),
        ("bare", 2, 0.1, "-"),
    ):
        record = _run(runs / name, seed, acc)
        _overrides(record, "experiment=exp", "attention=all", f"seed={seed}")
        trainer = {"epochs": 6} if average == "-" else {"epochs": 6, "average_last_epochs": average}
        (record / "config.yaml").write_text(yaml.safe_dump({"trainer": trainer}))
    (base / "exp.md").write_text(f"{results.START}\n{results.END}\n")
    row = {"label": "all", "dataset": "D", "metric": "test.acc", "overrides": ["experiment=exp", "attention=all"]}
    (base / "exp.spec.json").write_text(json.dumps({"name": "exp", "metric_name": "acc", "rows": [row]}))
    with pytest.raises(SystemExit, match=r"more than one record per seed \{0: \['new0', 'old0'\]\}"):
        results.table(base / "exp.spec.json")
    for where, names in (
        ({"trainer.average_last_epochs": None}, ["new0", "new1"]),
        ({"trainer.average_last_epochs": 5}, ["old0"]),
    ):
        (base / "exp.spec.json").write_text(json.dumps({"name": "exp", "metric_name": "acc", "rows": [{**row, "where": where}]}))
        results.table(base / "exp.spec.json")
        (made,) = json.loads((base / "exp.json").read_text())
        assert [Path(r).name for r in made["runs"]] == names  # a record without the key ("bare") never matches


def test_a_grid_in_progress_shows_rows_without_runs_yet_and_reads_only_pairs_it_has(tmp_path):
    base = tmp_path / "results"
    runs = base / "runs" / "exp"
    grid = (("p0", "none", 0, 0.88), ("p1", "none", 1, 0.87), ("s0", "se", 0, 0.89), ("s1", "se", 1, 0.90))
    for name, block, seed, acc in grid:
        _overrides(_run(runs / name, seed, acc), "experiment=exp", f"block={block}", f"seed={seed}")
    markers = [results.START, results.END, results.READINGS_START, results.READINGS_END]
    markers += [results.PER_SEED_START, results.PER_SEED_END]
    (base / "exp.md").write_text("\n".join(results._marker(m, "grid") for m in markers) + "\n")
    rows = [
        {"label": f"L {name}", "name": name, "overrides": ["experiment=exp", f"block={block}"]}
        for name, block in (("plain", "none"), ("SE", "se"), ("CBAM", "cbam"))
    ]
    spec = {
        "name": "exp_grid",
        "page": "exp",
        "section": "grid",
        "metric_name": "acc",
        "defaults": {"dataset": "D", "metric": "test.acc", "scale": 100},
        "comparisons": {"budget": "after 60 epochs", "paired": True, "against": [{"baseline": "plain"}]},
        "rows": rows,
    }
    (base / "exp.spec.json").write_text(json.dumps(spec))
    with pytest.raises(SystemExit, match="no run record under .* has the overrides"):  # a finished page: every row has runs
        results.table(base / "exp.spec.json")
    (base / "exp.spec.json").write_text(json.dumps({**spec, "in_progress": True}))
    results.table(base / "exp.spec.json")
    plain, se, cbam = json.loads((base / "exp_grid.json").read_text())
    assert (se["seeds"], se["values"], cbam["value"], cbam["runs"]) == ([0, 1], [89.0, 90.0], None, [])
    page = (base / "exp.md").read_text()
    assert "| L CBAM | D | — (no finished run yet) | | | | | — | |" in page
    (se_line,) = [line for line in page.splitlines() if line.startswith("| SE − plain |")]
    assert se_line.count("+2.00 [") == 2  # Welch and paired over seeds 0 and 1 (differences +1 and +3)
    assert "| CBAM − plain | — | — | — | — | — | — | not resolved (fewer than 2 seeds), after 60 epochs |" in page
    assert "| CBAM | — | — | — | |" in page
    for record in runs.iterdir():  # before the first run ends
        (record / "metrics.json").unlink()
    results.table(base / "exp.spec.json")
    assert "No finished run yet." in (base / "exp.md").read_text()


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


def _comparison_spec(base, paired):
    """Runs of rows plain, A (seeds 0-2) and B (seed 1), a page with every marker, and the spec that compares them."""
    for name, seed, acc in (
        ("p0", 0, 0.70),
        ("p1", 1, 0.72),
        ("p2", 2, 0.71),
        ("a0", 0, 0.73),
        ("a1", 1, 0.735),
        ("a2", 2, 0.705),
        ("b1", 1, 0.74),
    ):
        _run(base / "runs" / "exp" / name, seed, acc)
    (base / "exp.md").write_text(PAGE)
    comparisons = {"baseline": "plain", "budget": "after 3 epochs", "paired": paired}
    if not paired:
        comparisons["unpaired_reason"] = "seed s gave the variants different initial weights."
    return {
        "name": "exp",
        "metric_name": "acc",
        "comparisons": comparisons,
        "defaults": {"dataset": "D", "metric": "test.acc", "scale": 100},
        "rows": [
            {"label": "P", "name": "plain", "runs": ["runs/exp/p0", "runs/exp/p1", "runs/exp/p2"]},
            {"label": "A", "name": "A", "runs": ["runs/exp/a0", "runs/exp/a1", "runs/exp/a2"]},
            {"label": "B", "name": "B", "runs": ["runs/exp/b1"]},
        ],
    }


def _make_table(base, spec):
    """Write the spec beside the page, fill the page from it, and give the page's text."""
    (base / "exp.spec.json").write_text(json.dumps(spec))
    results.table(base / "exp.spec.json")
    return (base / "exp.md").read_text()


def test_a_direction_from_fewer_seeds_than_the_spec_asks_for_a_verdict_stays_unresolved(tmp_path):
    base = tmp_path / "results"
    for name, seed, acc in (("p0", 0, 0.70), ("p1", 1, 0.72), ("a0", 0, 0.73), ("a1", 1, 0.751)):
        _run(base / "runs" / "exp" / name, seed, acc)  # paired differences +3.0 and +3.1: t(1) = 61, p = 0.010
    (base / "exp.md").write_text(PAGE)
    spec = {
        "name": "exp",
        "metric_name": "acc",
        "comparisons": {"baseline": "plain", "budget": "after 3 epochs", "paired": True},
        "defaults": {"dataset": "D", "metric": "test.acc", "scale": 100},
        "rows": [
            {"label": "P", "name": "plain", "runs": ["runs/exp/p0", "runs/exp/p1"]},
            {"label": "A", "name": "A", "runs": ["runs/exp/a0", "runs/exp/a1"]},
        ],
    }
    for verdict_seeds, reading in (
        (None, "higher (paired)"),  # the default: 2 seeds suffice
        (2, "higher (paired)"),
        (3, "not resolved (2 seeds; a verdict needs 3; so far higher (paired))"),
    ):
        spec["comparisons"].pop("verdict_seeds", None)
        if verdict_seeds:
            spec["comparisons"]["verdict_seeds"] = verdict_seeds
        (base / "exp.spec.json").write_text(json.dumps(spec))
        results.table(base / "exp.spec.json")
        (row,) = json.loads((base / "exp.json").read_text())[1]["comparisons"]
        assert row["paired"]["n"] == 2 and row["paired"]["p"] == pytest.approx(0.0104, abs=5e-4)
        assert row["reading"] == reading
        assert ("A direction counts only from 3 seeds on" in (base / "exp.md").read_text()) == (verdict_seeds == 3)


PAGE = (
    f"{results.START}\n{results.END}\n\n{results.READINGS_START}\nold\n{results.READINGS_END}\n\n"
    f"{results.PER_SEED_START}\nold\n{results.PER_SEED_END}\nprose\n"
)


def test_comparisons_give_welch_paired_holm_detectable_and_a_reading_with_its_budget(tmp_path):
    from scipy import stats

    base = tmp_path / "results"
    text = _make_table(base, _comparison_spec(base, paired=True))
    plain, a = [70.0, 72.0, 71.0], [73.0, 73.5, 70.5]
    assert "| P | D | 71.00 ± 1.00 [68.52, 73.48] |" in text  # t(2) interval: 71 ± 4.303 / sqrt(3)
    assert "| | seed 0 | seed 1 | seed 2 | mean ± std | − plain, same seeds | seeds above plain |" in text
    assert "| A | 73.00 | 73.50 | 70.50 | 72.33 ± 1.61 | +1.33 ± 1.76 | 2 of 3 |" in text  # +3.0, +1.5, -0.5
    assert "| B | — | 74.00 | — | 74.00 |" in text
    rows = json.loads((base / "exp.json").read_text())
    (reading,) = rows[1]["comparisons"]
    welch, pair = reading["welch"], reading["paired"]
    assert welch["p"] == pytest.approx(stats.ttest_ind(a, plain, equal_var=False).pvalue)
    assert pair["p"] == pytest.approx(stats.ttest_rel(a, plain).pvalue)
    assert pair["p_holm"] == pytest.approx(pair["p"])  # one testable comparison: Holm leaves it
    assert rows[2]["comparisons"][0]["reading"] == "not resolved (fewer than 2 seeds)"
    assert "| A − plain | +1.33 [" in text and "| not resolved, after 3 epochs |" in text
    assert "the reading uses the paired test" in text and text.count("old") == 0 and text.endswith("prose\n")


def test_the_epoch_time_table_gives_each_runs_median_epoch_and_its_ratio_to_the_baselines_same_seed(tmp_path):
    base = tmp_path / "results"
    spec = _comparison_spec(base, paired=True)
    assert "Median epoch time" not in _make_table(base, spec)  # only where the spec asks for it
    spec["comparisons"]["epoch_time"] = True
    with pytest.raises(SystemExit, match="p0/history.csv has no time/epoch_s column"):
        _make_table(base, spec)
    epoch_seconds = {
        "p0": [10, 11, 90],
        "p1": [20, 20],
        "p2": [10, 12],
        "a0": [15, 16, 17],
        "a1": [30, 30],
        "a2": [12],
        "b1": [25],
    }
    for name, times in epoch_seconds.items():  # p0's 90 s epoch (a pause) leaves its median at 11 s
        lines = "".join(f"{epoch},0.5,{seconds}\n" for epoch, seconds in enumerate(times, 1))
        (base / "runs" / "exp" / name / "history.csv").write_text("epoch,train/loss,time/epoch_s\n" + lines)
    text = _make_table(base, spec)
    assert "| | seed 0 | seed 1 | seed 2 | ÷ plain, same seed |" in text
    assert "| plain | 11.0 | 20.0 | 11.0 |  |" in text
    assert "| A | 16.0 (1.45x) | 30.0 (1.50x) | 12.0 (1.09x) | 1.09x-1.50x |" in text
    assert "| B | — | 25.0 (1.25x) | — | 1.25x |" in text
    assert json.loads((base / "exp.json").read_text())[1]["epoch_s_median"] == [16.0, 30.0, 12.0]


def test_without_paired_seeds_the_page_says_why_and_shows_no_paired_numbers(tmp_path):
    base = tmp_path / "results"
    text = _make_table(base, _comparison_spec(base, paired=False))
    assert "No paired test: seed s gave the variants different initial weights. The reading uses Welch's test." in text
    assert "− plain, same seeds" not in text
    assert json.loads((base / "exp.json").read_text())[1]["comparisons"][0]["paired"] is None


def test_several_baselines_on_one_page_share_one_holm_family(tmp_path):
    base = tmp_path / "results"
    spec = _comparison_spec(base, paired=True)
    spec["comparisons"]["against"] = [{"baseline": "plain", "rows": ["A"]}, {"baseline": "A", "rows": ["plain"]}]
    text = _make_table(base, spec)
    rows = json.loads((base / "exp.json").read_text())
    forward, backward = rows[1]["comparisons"][0], rows[0]["comparisons"][0]
    assert backward["baseline"] == "A" and backward["paired"]["mean"] == pytest.approx(-forward["paired"]["mean"])
    assert forward["paired"]["p_holm"] == pytest.approx(min(1.0, 2 * forward["paired"]["p"]))  # two comparisons
    assert "| A − plain |" in text and "| plain − A |" in text


def test_comparisons_need_their_markers_and_a_baseline_row(tmp_path):
    base = tmp_path / "results"
    spec = _comparison_spec(base, paired=True)
    (base / "exp.md").write_text(f"{results.START}\n{results.END}\n")  # no readings markers
    with pytest.raises(SystemExit, match="needs the markers <!-- readings:start -->"):
        _make_table(base, spec)
    assert (base / "exp.md").read_text() == f"{results.START}\n{results.END}\n"  # left as it was
    spec["comparisons"]["baseline"] = "none"
    (base / "exp.md").write_text(PAGE)
    with pytest.raises(SystemExit, match=r"a row named 'none'; the names are \['plain', 'A', 'B'\]"):
        _make_table(base, spec)


def test_two_specs_fill_two_sections_of_one_page(tmp_path):
    base = tmp_path / "results"
    for seed, acc in ((0, 0.90), (1, 0.92)):
        _run(base / "runs" / "exp" / f"s{seed}", seed, acc)
    short, converged = (
        f"{results.START}\nold\n{results.END}",
        f"{results.START[:-4]}:converged -->\nold\n{results.END[:-4]}:converged -->",
    )
    (base / "page.md").write_text(f"# T\n\n{short}\n\nmiddle\n\n{converged}\n")
    for name, section, runs in (("page", None, ["runs/exp/s0"]), ("page_converged", "converged", ["runs/exp/s0", "runs/exp/s1"])):
        spec = {
            "name": name,
            "page": "page",
            "metric_name": "acc",
            "rows": [{"label": name, "dataset": "D", "metric": "test.acc", "runs": runs}],
        }
        if section:
            spec["section"] = section
        (base / f"{name}.spec.json").write_text(json.dumps(spec))
        results.table(base / f"{name}.spec.json")
    page = (base / "page.md").read_text()
    first, second = page.split("middle")
    assert "| page | D | 0.90 |" in first and "page_converged" not in first
    assert "| page_converged | D | 0.91 ± 0.01" in second and "old" not in page
    assert json.loads((base / "page_converged.json").read_text())[0]["seeds"] == [0, 1]


@pytest.mark.parametrize("spec_file", sorted(p.name for p in (REPO / "results").glob("*.spec.json")))
def test_every_committed_results_page_is_what_its_records_give(tmp_path, spec_file):
    """Regenerating a page from its spec and the committed run records changes nothing: no table on
    a results page states a number that its records do not hold (records under results/runs,
    benchmark costs under results/bench, read in place)."""
    source = REPO / "results"
    spec_json = json.loads((source / spec_file).read_text())
    page = f"{spec_json.get('page', spec_json['name'])}.md"
    for name in (spec_file, page, f"{spec_json['name']}.json"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    for folder in ("runs", "bench"):
        (tmp_path / folder).symlink_to(source / folder)
    results.table(tmp_path / spec_file)
    assert (tmp_path / page).read_text() == (source / page).read_text()
    assert json.loads((tmp_path / f"{spec_json['name']}.json").read_text()) == json.loads(
        (source / f"{spec_json['name']}.json").read_text()
    )
