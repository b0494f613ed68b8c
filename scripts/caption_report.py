"""Re-evaluate a finished captioning run (Show-Attend-Tell) with the current metrics.

python scripts/caption_report.py evaluate runs/show_attend_tell_scenes/<run> [--split test] [--beam 3] [--weights last.pt]
    decodes the split with the run's best.pt (or the checkpoint file --weights names, e.g. last.pt:
    the last epoch instead of the one validation BLEU selected) at the given beam width (default:
    the run's task.test_beam) and writes eval.<split>.beam<K>.json (eval.<split>.beam<K>.last.json
    for --weights last.pt; caption metrics, localization on the scenes set, decoding time,
    hardware) into the run directory. Use it for runs that finished before a metric was added
    (e.g. localization_previous_step), or to report another selection rule beside the run's.
python scripts/caption_report.py where runs/show_attend_tell_scenes/<run>
    scenes runs: where the attention peak of each colour word falls (the named object,
    another object of the image, or the background), by the phrase's place in the caption
    (1st, 2nd, 3rd object named); writes eval.test.where.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from pathlib import Path

import torch

from attention_zoo.build import build_task
from attention_zoo.data.scenes import COLOURS, SHAPES
from attention_zoo.engine.runtime import hardware_summary
from attention_zoo.finished_run import load_run, weights_used


def evaluate(run: Path, split: str, beam: int | None, weights: str | None = None) -> dict:
    cfg, data, model = load_run(run, weights=weights)
    if beam is not None:
        cfg.task.test_beam = beam
    task = build_task(cfg.task, data, None)
    start = time.perf_counter()
    metrics = task.evaluate(model, data.eval_batches(split), split=split)
    seconds = time.perf_counter() - start
    used_beam = task.test_beam if split == "test" else 1
    report = {
        "run": str(run),
        "checkpoint": weights or weights_used(run).name,
        "split": split,
        "beam": used_beam,
        **metrics,
        "decode_seconds": round(seconds, 1),
        "hardware": hardware_summary(next(model.parameters()).device),
    }
    suffix = f".{Path(weights).stem}" if weights else ""
    (run / f"eval.{split}.beam{used_beam}{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def peak_target(alpha: torch.Tensor, named, objects, image_size: int) -> str:
    """'named', 'other' or 'background': where the attention peak's cell centre falls. alpha: (L,)."""
    side = math.isqrt(alpha.numel())
    row, col = divmod(int(alpha.argmax()), side)
    x, y = ((col + 0.5) * image_size / side, (row + 0.5) * image_size / side)
    inside = [o for o in objects if o.box[0] <= x < o.box[2] and o.box[1] <= y < o.box[3]]
    return "named" if named in inside else "other" if inside else "background"


@torch.no_grad()
def where(run: Path) -> dict:
    cfg, data, model = load_run(run)
    if data.objects is None:
        raise SystemExit(f"{run} is not a scenes run: only the generated scenes set has object boxes.")
    task = build_task(cfg.task, data, None)
    counts = Counter()
    for batch in data.eval_batches("test"):
        annotations = model.encode(batch["src"])["annotations"]  # (B, L, D)
        for index, hyp in zip(batch["index"].tolist(), task.decode(model, annotations, task.test_beam)):
            words, objects = data.encoder.token_strings(hyp.tokens), data.objects["test"][index]
            by_name, place = {(o.colour, o.shape): o for o in objects}, 0
            for t, (word, following) in enumerate(zip(words, words[1:])):
                if word in COLOURS and following in SHAPES:
                    place += 1
                    named = by_name.get((word, following))
                    target = (
                        peak_target(hyp.attention[t], named, objects, cfg.data.scenes_image_size)
                        if named
                        else "object not in image"
                    )
                    counts[f"phrase {place}", target] += 1
    places = sorted({p for p, _ in counts})
    report = {
        "run": str(run),
        "checkpoint": weights_used(run).name,
        "beam": task.test_beam,
        "by_phrase": {
            p: {
                "colour words": sum(n for (q, _), n in counts.items() if q == p),
                **{
                    target: round(n / sum(m for (q, _), m in counts.items() if q == p), 4)
                    for (q, target), n in sorted(counts.items())
                    if q == p
                },
            }
            for p in places
        },
    }
    (run / "eval.test.where.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("evaluate", help="re-decode a split with the run's best.pt and score it")
    ev.add_argument("run", type=Path)
    ev.add_argument("--split", default="test", choices=("val", "test"))
    ev.add_argument("--beam", type=int, help="beam width for the test split (default: the run's task.test_beam)")
    ev.add_argument("--weights", help="a checkpoint file of the run (e.g. last.pt) instead of the one its test used")
    wh = commands.add_parser("where", help="where the attention peak of each colour word falls, by phrase")
    wh.add_argument("run", type=Path)
    args = parser.parse_args()
    report = evaluate(args.run, args.split, args.beam, args.weights) if args.command == "evaluate" else where(args.run)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
