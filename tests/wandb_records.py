"""Read what a W&B offline run recorded, straight from its ``run-<id>.wandb`` file.

The file is a 7-byte header (``:W&B``, magic, version) followed by records in the LevelDB
log format (32 KiB blocks; each chunk: crc32c (4), length (2, little-endian), type (1:
full, 2: first, 3: middle, 4: last)); every assembled record is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # too small for a chunk header: zero padding
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def logged_history(run_folder: Path) -> list[dict]:
    """Every ``run.log`` row of an offline run folder (``wandb/offline-run-*``), decoded."""
    (run_file,) = Path(run_folder).glob("run-*.wandb")
    rows = []
    for record in read_records(run_file):
        if record.WhichOneof("record_type") != "history":
            continue
        row: dict = {}
        for item in record.history.item:
            *parents, leaf = list(item.nested_key) or [item.key]  # media: (key, field) pairs, e.g. (name, "_type")
            node = row
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = json.loads(item.value_json)
        rows.append(row)
    return rows


def logged_run(run_folder: Path) -> dict:
    """The run's identity and config as W&B recorded them at init."""
    (run_file,) = Path(run_folder).glob("run-*.wandb")
    for record in read_records(run_file):
        if record.WhichOneof("record_type") == "run":
            run = record.run
            config = {item.key: json.loads(item.value_json) for item in run.config.update}
            return {
                "id": run.run_id,
                "project": run.project,
                "group": run.run_group,
                "job_type": run.job_type,
                "name": run.display_name,
                "tags": list(run.tags),
                "config": config,
            }
    raise AssertionError(f"no run record in {run_file}")


def defined_metrics(run_folder: Path) -> dict[str, int]:
    """``define_metric`` calls: metric name -> summary flags (wandb_internal_pb2.MetricSummary)."""
    (run_file,) = Path(run_folder).glob("run-*.wandb")
    return {
        record.metric.name: record.metric.summary
        for record in read_records(run_file)
        if record.WhichOneof("record_type") == "metric"
    }


def logged_table(run_folder: Path, key: str) -> dict:
    """The wandb.Table logged under ``key``: {"columns": [...], "data": [[...], ...]}. In the run's
    own copy an image cell reads "Image"; the images are files of the run_table artifact (below)."""
    (row,) = [r for r in logged_history(run_folder) if key in r]
    assert row[key]["_type"] == "table-file"
    return json.loads((Path(run_folder) / "files" / row[key]["path"]).read_text())


def logged_artifacts(run_folder: Path) -> dict[str, dict]:
    """Artifacts the run logged: name -> {"type", "files"}."""
    (run_file,) = Path(run_folder).glob("run-*.wandb")
    return {
        record.artifact.name: {"type": record.artifact.type, "files": sorted(m.path for m in record.artifact.manifest.contents)}
        for record in read_records(run_file)
        if record.WhichOneof("record_type") == "artifact"
    }
