"""A finished Optuna search as a committed record and a results page.

``python -m attention_zoo.search FILE --record`` copies, for every trial of the study, the small run
record (run_record.RECORD_FILES: resolved config, overrides, metrics.json, history.csv, train.log; never
checkpoints or W&B folders) to results/search/<study>/trial_<n>/, the study's summary.json beside
them, and writes the generated part of results/search_<study>.md from those committed files alone
(``page_body``), so a test can regenerate the page from a fresh clone. Text outside the markers
(the reading of the search) is kept.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from attention_zoo.engine.run_record import copy_record
from attention_zoo.page_sections import write_section

START, END = "<!-- search:start -->", "<!-- search:end -->"


def record(study_dir: Path, results_dir: Path = Path("results")) -> Path:
    """Copy the study's summary.json and every trial's record (any state: a pruned trial is evidence
    too) to results_dir/search/<study>/, then fill results_dir/search_<study>.md; returns the page."""
    summary = json.loads((study_dir / "summary.json").read_text())
    record_dir = results_dir / "search" / summary["study"]
    record_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(study_dir / "summary.json", record_dir / "summary.json")
    for trial in summary["trials"]:
        copy_record(study_dir / f"trial_{trial['number']}", record_dir / f"trial_{trial['number']}")
    page = results_dir / f"search_{summary['study']}.md"
    write_section(page, START, END, page_body(record_dir, page), f"Search: {summary['study']} ({summary['experiment']})")
    return page


def _val_curve(trial_dir: Path, metric: str) -> list[float]:
    history = trial_dir / "history.csv"
    if not history.is_file():
        return []
    with history.open() as f:
        return [float(row[f"val/{metric}"]) for row in csv.DictReader(f) if row.get(f"val/{metric}")]


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _note(trial: dict, trials: list[dict]) -> str:
    """Why a trial failed or was run again: the retry links and the notes left on the trial."""
    notes = [f"run again as trial {t['number']}" for t in trials if t.get("retry_of") == trial["number"]]
    if trial.get("retry_of") is not None:
        notes.append(f"trial {trial['retry_of']} run again (its worker stopped before it finished), resumed from its last.pt")
    notes += [f"{key.replace('_', ' ')}: {value}" for key, value in trial.get("notes", {}).items()]
    return "; ".join(notes)


def page_body(record_dir: Path, page: Path) -> str:
    """The generated part of the page: the search's setup, best trial, importances and every trial."""
    summary = json.loads((record_dir / "summary.json").read_text())
    trials = summary["trials"]
    metrics = {
        t["number"]: json.loads(p.read_text())
        for t in trials
        if (p := record_dir / f"trial_{t['number']}" / "metrics.json").is_file()
    }
    monitor = next((m["best_val"]["metric"] for m in metrics.values() if m.get("best_val")), "value")
    hardware = next((m["hardware"] for m in metrics.values() if "hardware" in m), {})
    states = [t["state"] for t in trials]
    hours = sum(m.get("wall_time_s", 0.0) for m in metrics.values()) / 3600
    link = lambda n: f"[trial_{n}]({(record_dir / f'trial_{n}').relative_to(page.parent)})"  # noqa: E731
    space = "; ".join(
        f"`{name}` {p['choices']}"
        if p["type"] == "categorical"
        else f"`{name}` {p['type']} [{p['low']}, {p['high']}]{' log' if p.get('log') else ''}"
        for name, p in summary["space"].items()
    )
    lines = [
        f"- Study `{summary['study']}`: `experiment={summary['experiment']}` "
        f"{' '.join(f'`{o}`' for o in summary['overrides'])}; search space: {space}.",
        f"- Objective: the best validation {monitor} over a trial's epochs ({summary['direction']}); "
        "the test split is never read for selection.",
        f"- Sampler {summary['sampler']['name']} (seed {summary['sampler'].get('seed')}); pruner "
        + ", ".join(f"{k} {v}" for k, v in summary["pruner"].items())
        + f"; budget {summary['n_trials']} finished trials.",
        f"- Trials: {states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
        f"{states.count('FAIL')} failed; {hours:.2f} h of training in all on {hardware.get('cpu_threads', '?')} "
        f"{hardware.get('device', '?')} threads ({hardware.get('cpu', '?')}, torch {hardware.get('torch', '?')}).",
        "",
    ]
    if "best" in summary:
        best = summary["best"]
        params = ", ".join(f"`{k}={_value(v)}`" for k, v in best["params"].items())
        lines += [
            f"**Best trial**: {link(best['number'])}, validation {monitor} {best['value']:.2f} "
            f"(epoch {metrics[best['number']]['best_val']['epoch']}), with {params}.",
            "",
        ]
    if "importance" in summary:
        lines += ["| hyperparameter | importance |", "|---|---|"]
        lines += [f"| `{k}` | {v:.3f} |" for k, v in summary["importance"].items()]
        lines += ["", f"Importance: {summary['importance_method']}.", ""]
    names = list(summary["space"])
    lines += [
        f"| trial | state | {' | '.join(f'`{n}`' for n in names)} | validation {monitor} per epoch | best | minutes | note |",
        "|---|---|" + "---|" * len(names) + "---|---|---|---|",
    ]
    for t in trials:
        run = metrics.get(t["number"], {})
        curve = ", ".join(f"{v:.2f}" for v in _val_curve(record_dir / f"trial_{t['number']}", monitor))
        best_value = run.get("best_val", {}).get("value")
        best = "" if best_value is None else f"{best_value:.2f}"
        cells = " | ".join(_value(t["params"].get(n, "")) for n in names)
        minutes = f"{run['wall_time_s'] / 60:.1f}" if "wall_time_s" in run else ""
        lines.append(
            f"| {link(t['number'])} | {t['state'].lower()} | {cells} | {curve} | {best} | {minutes} | {_note(t, trials)} |"
        )
    return "\n".join(lines) + "\n"
