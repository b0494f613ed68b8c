"""What every run leaves in its directory, independent of W&B: metrics.json and history.csv; and
finding runs by the overrides of their command line."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

METRICS = "metrics.json"
HISTORY = "history.csv"


def _write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(payload: Mapping[str, Any], path: Path) -> None:
    _write_atomic(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


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
