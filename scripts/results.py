"""Run directories -> committed run records -> results tables.

    python scripts/results.py collect runs/resnet_cifar_cpu/2026-11-23_22-06-36-044154
        copies the small record of a finished run (resolved config, Hydra overrides, metrics.json,
        history.csv, train.log, curves.png, decoded translations and captions, eval.*.json re-evaluations, figures/*.png;
        never checkpoints or W&B folders)
        to results/runs/... (--no-figures leaves figures/ out, e.g. for the ablation runs of a grid)
    python scripts/results.py table results/resnet_cifar.spec.json
    python scripts/results.py wandb cifar_attention_cpu --runs runs --metrics test/acc best_val/acc
        aggregates the runs a spec names (mean ± std over seeds) into results/<name>.json and the
        table between the markers of results/<name>.md

A spec lists rows: {"label", "dataset", "metric" (dotted path in metrics.json, e.g. "test.acc"),
"scale" (e.g. 100 for percent; a metric may name another JSON file of the record first,
"eval.test2016.beam1.json:tok_bleu"), the runs as either "runs" (record folders) or "overrides"
(the command line that made them, e.g. ["experiment=cifar_attention_cpu", "block=se"]: every record
under runs/<experiment>/ whose .hydra/overrides.yaml holds these and otherwise only seed=, logger.
or resume= overrides, one per seed, in seed order; with "where": {"trainer.average_last_epochs": null},
only those whose resolved config.yaml holds these values, e.g. to keep records made before a
preset changed out), "paper", "paper_source", "note",
and optionally "cost": {"bench": a bench JSON under results/, "variant": its row} whose
parameters, MFLOPs per image and images/s join the row and its table (a "cost" column)}.
A spec's optional "defaults" holds the fields its rows share (e.g. dataset, metric, scale, note);
a row's own fields win. Several specs can fill one page: a spec's optional "page" names it
(default: its "name"), and its optional "section" suffixes every marker it fills
(``<!-- results-table:start:converged -->`` ...); the aggregated rows still go to <name>.json.
Every row shows mean ± std and the 95% t interval of its mean over seeds.
A spec with "in_progress": true (a grid still running) shows a row without a finished run yet as
such instead of stopping.
A spec's optional "comparisons": {"baseline": NAME or "against": [{"baseline": NAME, "rows": [NAMES]}, ...],
"budget": "after 4 epochs" | "converged (...)", "paired": true | false, "unpaired_reason": why the
seeds do not pair the runs} writes, between the readings markers of the page, each compared row's
difference from its baseline row (rows are named by their short "name", e.g. "plain", "SE"; without
"rows", every other row) under Welch's test and, where the seeds pair the runs, the paired
test, each Holm-corrected over the page's comparisons, with the smallest difference the seeds could
detect (attention_zoo/seed_statistics.py), and a reading that names the budget; and, between the
per-seed markers, every row's value per seed (with its per-seed difference from the first baseline
when the seeds pair); with "epoch_time": true, also every run's median epoch time (history.csv's
``time/epoch_s``) and its ratio to the first baseline's of the same seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import yaml

from attention_zoo.engine.run_record import collect, runs_with
from attention_zoo.page_sections import fill_between
from attention_zoo.seed_statistics import Difference, holm, paired, summarize, welch
from attention_zoo.wandb_records import comparison_table, group_runs

START, END = "<!-- results-table:start -->", "<!-- results-table:end -->"
PER_SEED_START, PER_SEED_END = "<!-- per-seed-table:start -->", "<!-- per-seed-table:end -->"
READINGS_START, READINGS_END = "<!-- readings:start -->", "<!-- readings:end -->"


def _get(tree: dict, dotted: str):
    for key in dotted.split("."):
        tree = tree[key]
    return tree


# overrides that do not change what a row compares: the seed it averages over, logging, resuming
RUN_ONLY_OVERRIDES = ("seed=", "logger.", "resume=")


def records_of(row: dict, base: Path, in_progress: bool = False) -> list[str]:
    """The record folders (relative to ``base``) of a row: its "runs", or those its "overrides" made
    (none yet only on a page whose grid is ``in_progress``)."""
    if "runs" in row:
        return row["runs"]
    experiment = next((o.split("=", 1)[1] for o in row["overrides"] if o.startswith("experiment=")), None)
    if experiment is None:
        raise SystemExit(f"row {row['label']!r}: its overrides {row['overrides']} need an experiment=... entry.")
    found = [
        d
        for d in runs_with(base / "runs" / experiment, row["overrides"], RUN_ONLY_OVERRIDES)
        if (d / "metrics.json").is_file() and _made_with(d, row.get("where", {}))
    ]
    if not found and not in_progress:
        raise SystemExit(
            f"row {row['label']!r}: no run record under {base / 'runs' / experiment} has the overrides "
            f"{row['overrides']}; collect finished runs with `python scripts/results.py collect RUN_DIR`."
        )
    by_seed: dict[int, list[Path]] = {}
    for record in found:
        by_seed.setdefault(json.loads((record / "metrics.json").read_text())["seed"], []).append(record)
    repeated = {seed: [d.name for d in dirs] for seed, dirs in by_seed.items() if len(dirs) > 1}
    if repeated:
        raise SystemExit(f'row {row["label"]!r}: more than one record per seed {repeated}; remove the extra ones or list "runs".')
    return [str(by_seed[seed][0].relative_to(base)) for seed in sorted(by_seed)]


def _made_with(record: Path, where: dict) -> bool:
    """Whether the record's resolved config.yaml holds every dotted key of ``where`` at its value."""
    if not where:
        return True
    config = yaml.safe_load((record / "config.yaml").read_text())
    for dotted, value in where.items():
        try:
            if _get(config, dotted) != value:
                return False
        except (KeyError, TypeError):  # a key the record lacks never matches
            return False
    return True


def aggregate(row: dict, base: Path, in_progress: bool = False) -> dict:
    """One results row: the spec's fields plus the measured mean/std and the runs' facts; on a page
    whose grid is ``in_progress``, a row without a finished run yet has no value and no runs."""
    records = records_of(row, base, in_progress)
    if not records:
        return {"label": row["label"], "name": row.get("name"), "dataset": row["dataset"], "metric": row["metric"],
                "value": None, "seeds": [], "values": [], "runs": [], "paper_value": row.get("paper"),
                "paper_source": row.get("paper_source"), "note": row.get("note")}  # fmt: skip
    runs = [json.loads((base / run / "metrics.json").read_text()) for run in records]
    file, _, dotted = row["metric"].rpartition(":")
    sources = [json.loads((base / run / file).read_text()) for run in records] if file else runs
    scale = row.get("scale", 1)
    values = [_get(m, dotted) * scale for m in sources]
    summary = summarize(values)
    hardware = sorted(
        {
            f"{m['hardware'].get('gpu') or m['hardware']['cpu']} "
            f"({m['hardware']['device']}, {m['hardware']['cpu_threads']} threads)"
            for m in runs
        }
    )
    # the machine's speed as each run (records from 2026-12-02 on), and each resumed segment (from 2026-12-03), started
    starts = [m["hardware"].get("matmul_gflops_at_starts", [m["hardware"].get("matmul_gflops_at_start")]) for m in runs]
    speeds = [speed for run_starts in starts for speed in run_starts if speed is not None]
    if speeds:
        low, high = f"{min(speeds):.0f}", f"{max(speeds):.0f}"
        hardware.append(f"fp32 matmul {low if low == high else f'{low}-{high}'} GFLOP/s at start")
    return {
        "experiment": runs[0]["experiment"],
        "label": row["label"],
        "name": row.get("name"),
        "dataset": row["dataset"],
        "metric": row["metric"],
        "value": round(statistics.mean(values), 2),
        "std": round(summary.std, 2) if summary.std is not None else None,
        "ci95": [round(summary.low, 2), round(summary.high, 2)] if summary.low is not None else None,
        "seeds": [m["seed"] for m in runs],
        "values": [round(v, 2) for v in values],
        "epochs": sorted({m["epochs"] for m in runs}),
        "wall_time_min": round(statistics.mean(m["wall_time_s"] for m in runs) / 60, 1),
        "hardware": hardware,
        "git_commit": sorted({m["git_commit"] for m in runs}),
        "runs": records,
        **({"overrides": row["overrides"]} if "overrides" in row else {}),
        "paper_value": row.get("paper"),
        "paper_source": row.get("paper_source"),
        "note": row.get("note"),
        **bench_cost(row.get("cost"), base),
    }


COST_FIELDS = ("parameters", "mflops_per_image", "train_img_per_s", "eval_img_per_s", "train_time_ratio")


def bench_cost(cost: dict | None, base: Path) -> dict:
    """The cost fields of ``cost["variant"]`` in the bench JSON ``cost["bench"]``, by name; {} without a cost."""
    if cost is None:
        return {}
    bench = json.loads((base / cost["bench"]).read_text())
    matches = [r for r in bench["results"] if r["variant"] == cost["variant"]]
    if not matches:
        raise SystemExit(
            f"{cost['bench']} has no variant {cost['variant']!r}; it has {[r['variant'] for r in bench['results']]}."
        )
    return {"cost_source": cost["bench"], **{field: matches[0][field] for field in COST_FIELDS}}


def markdown(rows: list[dict], metric_name: str) -> str:
    with_cost = any("parameters" in r for r in rows)
    cost_header = " params / MFLOPs / train img/s (bench) |" if with_cost else ""
    lines = [
        f"| model | data | {metric_name} (ours: mean ± std [95% CI]) | seeds | epochs | train time | hardware |"
        f"{cost_header} paper | run records |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if with_cost else ""),
    ]
    for r in rows:
        paper = "—" if r["paper_value"] is None else f"{r['paper_value']} ({r['paper_source']})"
        if r["value"] is None:  # seeds, epochs, train time, hardware, cost and records are empty too
            lines.append(f"| {r['label']} | {r['dataset']} | — (no finished run yet) |{' |' * (4 + with_cost)} {paper} | |")
            continue
        ours = f"{r['value']:.2f}" + (
            f" ± {r['std']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]" if r["std"] is not None else ""
        )
        links = ", ".join(f"[{Path(run).name}]({run})" for run in r["runs"])
        cost = ""
        if with_cost:
            cost = f" {r['parameters']:,} / {r['mflops_per_image']} / {r['train_img_per_s']} |" if "parameters" in r else " — |"
        lines.append(
            f"| {r['label']} | {r['dataset']} | {ours} | {', '.join(map(str, r['seeds']))} | "
            f"{', '.join(map(str, r['epochs']))} | {r['wall_time_min']} min | {'; '.join(r['hardware'])} |"
            f"{cost} {paper} | {links} |"
        )
    return "\n".join(lines)


def _mean_std(values: list[float], sign: bool = False) -> str:
    if not values:
        return "—"
    number = "{:+.2f}" if sign else "{:.2f}"
    return number.format(statistics.mean(values)) + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


def _by_name(rows: list[dict], name: str) -> dict:
    names = [r["name"] for r in rows]
    if None in names or name not in names:
        raise SystemExit(f'comparisons need a "name" on every row and a row named {name!r}; the names are {names}.')
    return rows[names.index(name)]


def _pairs(rows: list[dict], comparisons: dict) -> list[tuple[dict, dict]]:
    """(baseline row, compared row) for each comparison of the page, in the spec's order."""
    against = comparisons.get("against") or [{"baseline": comparisons["baseline"]}]
    pairs = []
    for block in against:
        base = _by_name(rows, block["baseline"])
        names = block.get("rows") or [r["name"] for r in rows if r is not base]
        pairs += [(base, _by_name(rows, name)) for name in names]
    return pairs


def _verdict_seeds(comparisons: dict) -> int:
    """Seeds a comparison needs before its reading may name a direction (default 2, the fewest a test allows)."""
    return comparisons.get("verdict_seeds", 2)


def compare(rows: list[dict], comparisons: dict) -> list[dict]:
    """Each comparison of the page (row − its baseline): Welch's test, and the paired test where the
    seeds pair the runs, each Holm-corrected over all the page's comparisons; the reading uses the
    test that fits the design. A direction becomes a verdict only from `"verdict_seeds"` seeds on
    (default 2, the fewest a test allows): a spec can ask for more, since one degree of freedom
    makes the interval's width a matter of luck."""
    pairs = _pairs(rows, comparisons)
    verdict_seeds = _verdict_seeds(comparisons)
    welchs: dict[int, Difference] = {}
    paireds: dict[int, Difference] = {}
    for i, (base, row) in enumerate(pairs):
        if len(base["values"]) >= 2 and len(row["values"]) >= 2:
            welchs[i] = welch(base["values"], row["values"])
        shared = set(base["seeds"]) & set(row["seeds"])
        if comparisons.get("paired") and len(shared) >= 2:
            paireds[i] = paired(dict(zip(base["seeds"], base["values"])), dict(zip(row["seeds"], row["values"])))
    holm(list(welchs.values()))
    holm(list(paireds.values()))
    readings = []
    for i, (base, row) in enumerate(pairs):
        w, p = welchs.get(i), paireds.get(i)
        decisive = p or w
        direction = decisive and f"{'higher' if decisive.mean > 0 else 'lower'} ({decisive.test})"
        if decisive is None:
            verdict = "not resolved (fewer than 2 seeds)"
        elif decisive.n < verdict_seeds:
            so_far = f"; so far {direction}" if decisive.resolved() else ""
            verdict = f"not resolved ({decisive.n} seeds; a verdict needs {verdict_seeds}{so_far})"
        elif decisive.resolved():
            verdict = direction
        else:
            verdict = "not resolved"
        readings.append(
            {
                "name": row["name"],
                "baseline": base["name"],
                "welch": w and w.__dict__,
                "paired": p and p.__dict__,
                "reading": verdict,
            }
        )
    return readings


def _cells(d: dict | None) -> str:
    if d is None:
        return "— | — | —"
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] | {d['p']:.3f} ({d['p_holm']:.3f}) | {d['detectable']:.2f}"


def readings_markdown(readings: list[dict], comparisons: dict) -> str:
    budget = comparisons["budget"]
    lines = [
        f"| {budget} | Welch: difference [95% CI] | p (Holm) | detectable, 80% power "
        "| paired: difference [95% CI] | p (Holm) | detectable, 80% power | reading |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in readings:
        lines.append(
            f"| {r['name']} − {r['baseline']} | {_cells(r['welch'])} | {_cells(r['paired'])} | {r['reading']}, {budget} |"
        )
    lines.append("")
    if comparisons.get("paired"):
        lines.append("Seeds pair the runs (same initial backbone weights and data order); the reading uses the paired test.")
    else:
        lines.append(f"No paired test: {comparisons['unpaired_reason']} The reading uses Welch's test.")
    lines.append(
        "Holm's correction runs over all the comparisons of this table, per test. A reading is a direction only when "
        'the 95% interval excludes 0 and the Holm-corrected p is below 0.05; "not resolved" says these seeds cannot '
        'tell, not that the rows are equal. "detectable" is the smallest difference this many seeds would find '
        "with 80% power, at the observed spread."
    )
    if _verdict_seeds(comparisons) > 2:
        lines.append(
            f"A direction counts only from {_verdict_seeds(comparisons)} seeds on: with 2, the interval rests on one "
            'degree of freedom and a lucky agreement of two differences; until then a reading says "so far".'
        )
    return "\n".join(lines)


def per_seed_markdown(rows: list[dict], comparisons: dict) -> str:
    """Each row's value per seed; with seeds that pair the runs, also its per-seed difference from the baseline."""
    base = _pairs(rows, comparisons)[0][0]["name"]  # the first comparison's baseline
    baseline = dict(zip(_by_name(rows, base)["seeds"], _by_name(rows, base)["values"]))
    seeds = sorted({seed for r in rows for seed in r["seeds"]})
    if not seeds:
        return "No finished run yet."
    with_pairs = bool(comparisons.get("paired"))
    extra = f" − {base}, same seeds | seeds above {base} |" if with_pairs else ""
    lines = [
        f"| | {' | '.join(f'seed {s}' for s in seeds)} | mean ± std |{extra}",
        "|---|" + "---|" * (len(seeds) + 1 + 2 * with_pairs),
    ]
    for r in rows:
        value_of = dict(zip(r["seeds"], r["values"]))
        cells = [f"{value_of[s]:.2f}" if s in value_of else "—" for s in seeds]
        line = f"| {r['name']} | {' | '.join(cells)} | {_mean_std(r['values'])} |"
        if with_pairs:
            differences = [value_of[s] - baseline[s] for s in seeds if s in value_of and s in baseline]
            own = r["name"] == base or not differences
            line += " |" if own else f" {_mean_std(differences, sign=True)} |"
            line += " |" if own else f" {sum(d > 0 for d in differences)} of {len(differences)} |"
        lines.append(line)
    if comparisons.get("epoch_time"):
        lines += ["", *epoch_time_markdown(rows, base, seeds)]
    return "\n".join(lines)


def median_epoch_seconds(record: Path) -> float:
    """The median of ``time/epoch_s`` in a run's history.csv: robust to the epochs a pause or a busy core stretched."""
    with open(record / "history.csv", newline="") as f:
        times = [float(r["time/epoch_s"]) for r in csv.DictReader(f) if r.get("time/epoch_s")]
    if not times:
        raise SystemExit(f"{record / 'history.csv'} has no time/epoch_s column; the epoch-time table needs it.")
    return statistics.median(times)


def epoch_time_markdown(rows: list[dict], base: str, seeds: list[int]) -> list[str]:
    """Each row's median epoch time per seed and its ratio to the baseline's of the same seed: the training cost
    measured in the grid's own runs, beside the idle-machine bench."""
    baseline = dict(zip(_by_name(rows, base)["seeds"], _by_name(rows, base)["epoch_s_median"]))
    lines = [
        f"Median epoch time per seed (s; the median of `time/epoch_s` in each run's `history.csv`), "
        f"in brackets ÷ {base}'s of the same seed:",
        "",
        f"| | {' | '.join(f'seed {s}' for s in seeds)} | ÷ {base}, same seed |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for r in rows:
        time_of = dict(zip(r["seeds"], r["epoch_s_median"]))
        ratios = {} if r["name"] == base else {s: time_of[s] / baseline[s] for s in time_of if s in baseline}
        cells = [f"{time_of[s]:.1f}" + (f" ({ratios[s]:.2f}x)" if s in ratios else "") if s in time_of else "—" for s in seeds]
        low, high = (f"{min(ratios.values()):.2f}x", f"{max(ratios.values()):.2f}x") if ratios else ("", "")
        lines.append(f"| {r['name']} | {' | '.join(cells)} | {low if low == high else f'{low}-{high}'} |")
    return lines


def _marker(marker: str, section: str | None) -> str:
    return marker.replace(" -->", f":{section} -->") if section else marker


def table(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    base = spec_path.parent
    in_progress = bool(spec.get("in_progress"))
    rows = [aggregate({**spec.get("defaults", {}), **row}, base, in_progress) for row in spec["rows"]]
    page = base / f"{spec.get('page', spec['name'])}.md"
    section = spec.get("section")
    table_body = markdown(rows, spec["metric_name"]) + "\n"
    text = fill_between(page.read_text(), _marker(START, section), _marker(END, section), table_body, page)
    if "comparisons" in spec:
        if spec["comparisons"].get("epoch_time"):
            for row in rows:
                row["epoch_s_median"] = [round(median_epoch_seconds(base / run), 2) for run in row["runs"]]
        readings = compare(rows, spec["comparisons"])
        body = readings_markdown(readings, spec["comparisons"])
        text = fill_between(text, _marker(READINGS_START, section), _marker(READINGS_END, section), body + "\n", page)
        body = per_seed_markdown(rows, spec["comparisons"])
        text = fill_between(text, _marker(PER_SEED_START, section), _marker(PER_SEED_END, section), body + "\n", page)
        for row in rows:
            row["comparisons"] = [r for r in readings if r["name"] == row["name"]]
    (base / f"{spec['name']}.json").write_text(json.dumps(rows, indent=2) + "\n")  # both files only once both are made
    page.write_text(text)
    print(f"wrote {page} and {base / (spec['name'] + '.json')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    collect_cmd = sub.add_parser("collect")
    collect_cmd.add_argument("run_dirs", nargs="+", type=Path)
    collect_cmd.add_argument("--no-figures", action="store_true", help="leave the run's figures/ out of the record")
    table_cmd = sub.add_parser("table")
    table_cmd.add_argument("specs", nargs="+", type=Path)
    wandb_cmd = sub.add_parser("wandb", help="the runs of one W&B group side by side (server, or offline run files)")
    wandb_cmd.add_argument("group")
    wandb_cmd.add_argument("--runs", type=Path, default=Path("runs"))
    wandb_cmd.add_argument("--wandb-path", help="entity/project on the W&B server")
    wandb_cmd.add_argument("--metrics", nargs="+", default=["test/acc"])
    args = parser.parse_args()
    if args.command == "wandb":
        runs = group_runs(args.group, args.runs, args.wandb_path)
        print(comparison_table(runs, args.metrics) if runs else f"No runs of group {args.group!r}.")
    elif args.command == "collect":
        for run_dir in args.run_dirs:
            print(collect(run_dir, figures=not args.no_figures))
    else:
        for spec in args.specs:
            table(spec)


if __name__ == "__main__":
    main()
