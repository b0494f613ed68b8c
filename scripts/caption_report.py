"""Re-evaluate a finished captioning run (Show-Attend-Tell) with the current metrics.

    python scripts/caption_report.py evaluate runs/show_attend_tell_scenes/<run> [--split test] [--beam 3]
        decodes the split with the run's best.pt at the given beam width (default: the run's
        task.test_beam) and writes eval.<split>.beam<K>.json (caption metrics, localization on
        the scenes set, decoding time, hardware) into the run directory. Use it for runs that
        finished before a metric was added (e.g. localization_previous_step).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from attention_zoo.build import build_task
from attention_zoo.engine.runtime import hardware_summary
from attention_zoo.finished_run import load_run, weights_used


def evaluate(run: Path, split: str, beam: int | None) -> dict:
    cfg, data, model = load_run(run)
    if beam is not None:
        cfg.task.test_beam = beam
    task = build_task(cfg.task, data, None)
    start = time.perf_counter()
    metrics = task.evaluate(model, data.eval_batches(split), split=split)
    seconds = time.perf_counter() - start
    used_beam = task.test_beam if split == "test" else 1
    report = {
        "run": str(run), "checkpoint": weights_used(run).name, "split": split, "beam": used_beam, **metrics,
        "decode_seconds": round(seconds, 1), "hardware": hardware_summary(next(model.parameters()).device),
    }
    (run / f"eval.{split}.beam{used_beam}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("evaluate", help="re-decode a split with the run's best.pt and score it")
    ev.add_argument("run", type=Path)
    ev.add_argument("--split", default="test", choices=("val", "test"))
    ev.add_argument("--beam", type=int, help="beam width for the test split (default: the run's task.test_beam)")
    args = parser.parse_args()
    print(json.dumps(evaluate(args.run, args.split, args.beam), indent=2))


if __name__ == "__main__":
    main()
