"""The runs W&B recorded, read back: offline run files, or the W&B server.

An offline run is read straight from its ``run-<id>.wandb`` file (this wandb release ships no
reader for it): a 7-byte header (``:W&B``, magic, version) followed by records in the LevelDB log
format (32 KiB blocks; each chunk: crc32c (4), length (2, little-endian), type (1: full, 2: first,
3: middle, 4: last)); every assembled record is a ``wandb_internal_pb2.Record``.

``group_runs`` pulls every run of a W&B group (an experiment) into one comparison table, through
the public API when online, else from the offline runs under a folder:

    python -m attention_zoo.wandb_records cifar_attention_cpu --runs runs/ --metrics test/acc best_val/acc
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
    raise ValueError(f"No run record in {run_file}: the run file is incomplete.")


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


def logged_summary(run_folder: Path) -> dict:
    """The run's final summary (``run.summary`` and the last value of each logged key)."""
    (run_file,) = Path(run_folder).glob("run-*.wandb")
    summary: dict = {}
    for record in read_records(run_file):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                summary[key] = _unwrap(json.loads(item.value_json))
    return summary


def _unwrap(value):
    """A metric summarized by define_metric is stored as {"max": v} (or min, last, mean): v."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("last", "min", "max", "mean", "best"):
        return next(iter(value.values()))
    return value


def offline_runs(root: Path) -> list[dict]:
    """Every offline run under ``root``: logged_run() plus its summary, oldest first."""
    runs = []
    for folder in sorted(Path(root).glob("**/wandb/offline-run-*"), key=lambda f: f.name):
        if list(folder.glob("run-*.wandb")):
            runs.append({**logged_run(folder), "summary": logged_summary(folder), "source": str(folder)})
    return runs


def group_runs(group: str, root: Path | None = None, path: str | None = None) -> list[dict]:
    """The runs of W&B group ``group``: from the server (``path`` = "entity/project") when given
    and credentials exist, else the offline runs under ``root``."""
    if path is not None:
        import wandb

        from attention_zoo.engine.wandb_logger import has_credentials

        if has_credentials():
            return [
                {
                    "id": r.id,
                    "name": r.name,
                    "group": r.group,
                    "job_type": r.job_type,
                    "tags": list(r.tags),
                    "config": dict(r.config),
                    "summary": dict(r.summary),
                    "source": r.url,
                }
                for r in wandb.Api().runs(path, filters={"group": group})
            ]
    if root is None:
        raise ValueError("No W&B server to ask (no entity/project or no credentials): give the folder of the offline runs.")
    return [run for run in offline_runs(root) if run["group"] == group]


def comparison_table(runs: list[dict], metrics: list[str]) -> str:
    """A markdown table, one row per run: name, seed, job type and the ``metrics`` of its summary."""
    header = ["run", "seed", "job_type", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        values = [_cell(run["summary"].get(m)) for m in metrics]
        lines.append(f"| {run['name']} | {run['config'].get('seed', '')} | {run['job_type']} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="The runs of one W&B group, side by side (server or offline files).")
    parser.add_argument("group", help="the W&B group: an experiment name, e.g. cifar_attention_cpu")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder searched for offline runs")
    parser.add_argument("--wandb-path", help="entity/project on the W&B server (online)")
    parser.add_argument("--metrics", nargs="+", default=["test/acc"], help="summary keys, e.g. test/bleu best_val/bleu")
    args = parser.parse_args(argv)
    runs = group_runs(args.group, args.runs, args.wandb_path)
    if not runs:
        raise SystemExit(f"No runs of group {args.group!r} (searched {args.wandb_path or args.runs}).")
    print(comparison_table(runs, args.metrics))


if __name__ == "__main__":
    main()
