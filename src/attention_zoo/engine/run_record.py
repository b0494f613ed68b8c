"""What every run leaves in its directory, independent of W&B: metrics.json and history.csv; and
finding runs by the overrides of their command line."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

METRICS = "metrics.json"
HISTORY = "history.csv"
LOG = "train.log"
EARLIER_LOGS = "train.before-resume.log"  # a resumed run's log of the segments before it, oldest first
# what a run record keeps of a run (never checkpoints or W&B folders)
RECORD_FILES = ("config.yaml", ".hydra/overrides.yaml", METRICS, HISTORY, EARLIER_LOGS, LOG, "curves.png")


def _write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(payload: Mapping[str, Any], path: Path) -> None:
    _write_atomic(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def carry_earlier_logs(previous_dir: Path, run_dir: Path) -> None:
    """A run resumed into a new directory keeps the log of every segment before it: EARLIER_LOGS
    becomes the previous directory's EARLIER_LOGS followed by its train.log."""
    parts = [previous_dir / EARLIER_LOGS, previous_dir / LOG]
    text = "".join(part.read_text() for part in parts if part.exists())
    if text:
        _write_atomic(run_dir / EARLIER_LOGS, text)


def write_history(rows: Iterable[Mapping[str, Any]], path: Path) -> None:
    """One row per epoch; columns are the union of every row's keys, in first-seen order."""
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(path, buffer.getvalue())


def runs_with(experiment_dir: Path, overrides: Iterable[str], only_besides: tuple[str, ...] | None = None) -> list[Path]:
    """Run dirs under ``experiment_dir`` whose command line (``.hydra/overrides.yaml``) held all of
    ``overrides``, oldest first. With ``only_besides``, a run whose command line held any other
    override not starting with one of those prefixes (e.g. ``("seed=", "logger.")``) is left out."""
    wanted = set(overrides)
    matches = []
    for recorded in sorted(Path(experiment_dir).glob("*/.hydra/overrides.yaml")):
        held = set(yaml.safe_load(recorded.read_text()) or [])
        extra = held - wanted
        if wanted <= held and (only_besides is None or all(o.startswith(only_besides) for o in extra)):
            matches.append(recorded.parent.parent)
    return matches


def collect(run_dir: Path, results_dir: Path = Path("results/runs"), figures: bool = True) -> Path:
    """Copy the small record of a completed run to ``results_dir/<experiment>/<run name>``: the
    RECORD_FILES, decoded translations and captions, re-evaluations and (with ``figures``) figures/*.png."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if metrics.get("status") != "completed":
        raise SystemExit(f"{run_dir} has not completed (status {metrics.get('status')!r}); nothing collected.")
    target = results_dir / metrics["experiment"] / run_dir.name
    extras = [
        *run_dir.glob("translations.*"),
        *run_dir.glob("captions.*.json"),
        *run_dir.glob("eval.*.json"),
        *(run_dir.glob("figures/*.png") if figures else []),
    ]
    copy_record(run_dir, target, [str(p.relative_to(run_dir)) for p in extras])
    return target


def copy_record(run_dir: Path, target: Path, extras: Iterable[str] = ()) -> None:
    """Copy the RECORD_FILES and ``extras`` (paths relative to ``run_dir``) that ``run_dir`` holds to ``target``."""
    for name in (*RECORD_FILES, *extras):
        if (run_dir / name).exists():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_dir / name, target / name)
