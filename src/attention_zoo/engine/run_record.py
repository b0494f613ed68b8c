"""What every run leaves in its directory, independent of W&B: metrics.json and history.csv."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

METRICS = "metrics.json"
HISTORY = "history.csv"


def write_json_atomic(payload: Mapping[str, Any], path: Path) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def write_history(rows: Iterable[Mapping[str, Any]], path: Path) -> None:
    """One row per epoch; columns are the union of every row's keys, in first-seen order."""
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_history(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]
