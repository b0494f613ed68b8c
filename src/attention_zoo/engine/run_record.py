"""What every run leaves in its directory, independent of W&B: metrics.json and history.csv."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

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
