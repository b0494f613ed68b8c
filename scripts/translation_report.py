"""Evaluate and draw finished translation runs (Bahdanau et al. 2015, Figs. 2 and 3).

    python scripts/translation_report.py evaluate runs/rnnsearch_cpu/<run> --beam 1
        decodes test2016 (or --split val) with the weights the run's test used (averaged.pt or best.pt; --weights best.pt
        picks another checkpoint of the run) at another beam width / length
        penalty; writes eval.<split>.beam<K>.json (scores, sacreBLEU signature, settings) and
        translations.<split>.beam<K>.<tgt> into the run directory.
    python scripts/translation_report.py by-length \\
        --run RNNsearch=results/runs/rnnsearch_cpu/<run> --run seq2seq=results/runs/seq2seq_cpu/<run> \\
        --out results/figures/bleu_by_source_length
        Fig. 2: sacreBLEU of each run's test2016 translations per source-length bucket (Moses words),
        one line per run, as <out>.png and the numbers as <out>.json. Needs only the run records
        (config.yaml + translations.test2016.<tgt>) and the raw Multi30k files.
    python scripts/translation_report.py alignments runs/rnnsearch_cpu/<run> [--sentences 9 16 27 37]
        Fig. 3: redraws the alignment matrices of a finished run from the weights its test used into <run>/figures/
        (a training run draws them itself at the end).
    python scripts/translation_report.py time-to runs/transformer_cpu/<run> --bleu 35
        from the run's history.csv: the first epoch whose validation BLEU (greedy, that epoch's
        weights) reaches the value, with the training minutes (sum of epoch times, validation
        excluded) and the wall minutes (validation included) until then; writes
        eval.time_to_bleu<value>.json into the run directory.
    python scripts/translation_report.py curves --run none=results/runs/transformer_cpu/<run> \
        --run pre_ln=results/runs/transformer_cpu/<run> --out results/figures/speedup_val_bleu
        validation BLEU (greedy, per-epoch weights) of several runs by epoch and by minutes of
        training, from their history.csv: <out>.png, the numbers as <out>.json, and the
        epoch-by-run table in Markdown on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf
from sacremoses import MosesTokenizer

from attention_zoo.build import build_task
from attention_zoo.data import multi30k
from attention_zoo.data.multi30k import load_pairs
from attention_zoo.engine.runtime import hardware_summary
from attention_zoo.finished_run import load_run, weights_used
from attention_zoo.metrics.bleu import bleu_by_length, translation_scores
from attention_zoo.train import CONFIG_DIR
from attention_zoo.viz.attention import pyplot, save_figure

DEFAULT_EDGES = (1, 8, 10, 12, 14, 16, 20)


def _bucket_label(bucket: dict) -> str:
    if bucket["max_len"] is None:
        return f"{bucket['min_len']}+"
    return f"{bucket['min_len']}-{bucket['max_len']}"


def by_length(runs: dict[str, Path], data_root: Path, edges: tuple[int, ...], out: Path) -> dict:
    configs = {label: OmegaConf.load(run / "config.yaml") for label, run in runs.items()}
    pairs = {(c.data.src, c.data.tgt) for c in configs.values()}
    if len(pairs) != 1:
        raise SystemExit(f"The runs translate different language pairs {sorted(pairs)}; compare runs of one pair.")
    ((src, tgt),) = pairs
    sources, references = load_pairs(data_root, "test2016", src, tgt, download=False)
    tokenizer = MosesTokenizer(lang=src)
    lengths = [len(tokenizer.tokenize(s, escape=False)) for s in sources]
    report = {"pair": f"{src}-{tgt}", "split": "test2016", "length_unit": f"Moses-tokenized {src} words", "runs": {}}
    for label, run in runs.items():
        path = run / f"translations.test2016.{tgt}"
        if not path.is_file():
            raise SystemExit(f"No test translations at {path}: is {run} a finished translation run?")
        hypotheses = path.read_text(encoding="utf-8").split("\n")[: len(references)]
        report["runs"][label] = {"run": str(run), "buckets": bleu_by_length(hypotheses, references, lengths, edges)}
    _plot(report, out.with_suffix(".png"))
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _plot(report: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, entry in report["runs"].items():
        buckets = [b for b in entry["buckets"] if b["bleu"] is not None]
        ax.plot(
            [f"{_bucket_label(b)}\n({b['sentences']})" for b in buckets], [b["bleu"] for b in buckets], marker="o", label=label
        )
    ax.set_xlabel(f"source length ({report['length_unit']}), sentences in brackets")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("sacreBLEU")
    ax.set_title(f"Multi30k {report['pair']} {report['split']}: BLEU by source length")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def alignments(run: Path, sentences: list[int] | None, data_root: Path | None) -> dict[str, Path]:
    cfg, data, model = load_run(run, data_root)
    if sentences is not None:
        cfg.task.figure_sentences = sentences
    elif "figure_sentences" not in cfg.task:  # a run from before the option existed: today's default
        cfg.task.figure_sentences = OmegaConf.load(CONFIG_DIR / "task" / "translation.yaml").figure_sentences
    figures = build_task(cfg.task, data, run).figures(model)
    if not figures:
        raise SystemExit(f"{cfg.model.name} has no attention to draw (or task.figure_sentences is empty).")
    return figures


def evaluate(
    run: Path,
    split: str,
    beam: int,
    length_penalty: float | None,
    data_root: Path | None,
    weights: str | None = None,
    beam_stop: str | None = None,
) -> dict:
    split = split if split == "val" else multi30k.split_name(split)
    cfg, data, model = load_run(run, data_root, weights=weights, test_set=None if split == "val" else split)
    if length_penalty is not None:
        cfg.task.length_penalty = length_penalty
    if beam_stop is not None or "beam_stop" not in cfg.task:  # a run from before the option: today's default
        cfg.task.beam_stop = beam_stop or "exact"
    task = build_task(cfg.task, data, None)
    start = time.perf_counter()
    metrics, _, hypotheses = task.translate(model, data.eval_batches(split), beam)
    seconds = time.perf_counter() - start
    scores = translation_scores(hypotheses, data.references[split], cfg.data.tgt)
    tag = (
        f"{split}.beam{beam}"
        + (f".lp{length_penalty:g}" if length_penalty is not None else "")
        + (f".{Path(weights).stem}" if weights else "")
        + (f".{beam_stop}" if beam_stop else "")
    )
    (run / f"translations.{tag}.{cfg.data.tgt}").write_text("\n".join(hypotheses) + "\n")
    report = {
        "run": str(run),
        "checkpoint": weights or weights_used(run).name,
        "split": split,
        "beam": beam,
        "length_penalty": cfg.task.length_penalty,
        "beam_stop": cfg.task.beam_stop,
        "max_len": [cfg.task.max_len_a, cfg.task.max_len_b],
        **metrics,
        **scores,
        "decode_seconds": round(seconds, 1),
        "hardware": hardware_summary(next(model.parameters()).device),
    }
    (run / f"eval.{tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _history(run: Path) -> list[dict]:
    """The run's history.csv rows, each with ``train_minutes``: the minutes of training (validation
    excluded) from the start until the end of that epoch."""
    with open(run / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    train_s = 0.0
    for row in rows:
        train_s += float(row["time/epoch_s"])
        row["train_minutes"] = train_s / 60
    return rows


def time_to(run: Path, bleu: float) -> dict:
    """The first epoch whose val/bleu reaches ``bleu``, and the minutes of training until its end."""
    rows = _history(run)
    report = {
        "run": str(run),
        "target_val_bleu": bleu,
        "reached": False,
        "epochs_run": len(rows),
        "best_val_bleu": max(float(r["val/bleu"]) for r in rows),
    }
    for row in rows:
        if float(row["val/bleu"]) >= bleu:
            report.update(
                reached=True,
                epoch=int(row["epoch"]),
                step=int(row["step"]),
                val_bleu=float(row["val/bleu"]),
                train_minutes=round(row["train_minutes"], 1),
                wall_minutes=round(float(row["time/elapsed_s"]) / 60, 1),
            )
            break
    (run / f"eval.time_to_bleu{bleu:g}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def curves(runs: dict[str, Path], out: Path) -> dict:
    """Per run, from history.csv: each epoch's step, validation sacreBLEU, training tokens/s and the
    minutes of training (validation excluded) until its end; drawn by epoch and by minutes."""
    report = {"metric": "val/bleu (greedy, that epoch's weights)", "runs": {}}
    for label, run in runs.items():
        epochs = [
            {
                "epoch": int(row["epoch"]),
                "step": int(row["step"]),
                "val_bleu": float(row["val/bleu"]),
                "train_tok_per_s": float(row["time/train_tok_per_s"]),
                "train_minutes": row["train_minutes"],
            }
            for row in _history(run)
        ]
        report["runs"][label] = {"run": str(run), "epochs": epochs}
    _plot_curves(report, out.with_suffix(".png"))
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def curves_markdown(report: dict) -> str:
    """Epochs down, runs across: validation BLEU, and the run's tokens/s that epoch in brackets."""
    labels = list(report["runs"])
    by_epoch = {label: {e["epoch"]: e for e in report["runs"][label]["epochs"]} for label in labels}
    epochs = sorted({epoch for table in by_epoch.values() for epoch in table})
    lines = ["| epoch | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for epoch in epochs:
        cells = [
            f"{by_epoch[label][epoch]['val_bleu']:.2f} ({by_epoch[label][epoch]['train_tok_per_s']:,.0f} tok/s)"
            if epoch in by_epoch[label]
            else ""
            for label in labels
        ]
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot_curves(report: dict, path: Path) -> None:
    plt = pyplot()
    fig, (by_epoch, by_minutes) = plt.subplots(1, 2, figsize=(10, 4.0), sharey=True)
    for label, entry in report["runs"].items():
        bleu = [e["val_bleu"] for e in entry["epochs"]]
        by_epoch.plot([e["epoch"] for e in entry["epochs"]], bleu, marker="o", label=label)
        by_minutes.plot([e["train_minutes"] for e in entry["epochs"]], bleu, marker="o", label=label)
    by_epoch.set_xlabel("epoch")
    by_minutes.set_xlabel("minutes of training (validation excluded)")
    by_epoch.set_ylabel("validation sacreBLEU (greedy)")
    for ax in (by_epoch, by_minutes):
        ax.grid(alpha=0.3)
    by_epoch.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    length = commands.add_parser("by-length", help="BLEU per source-length bucket of several runs (Fig. 2)")
    length.add_argument("--run", action="append", required=True, metavar="LABEL=RUN_DIR")
    length.add_argument("--out", type=Path, required=True, help="output path without suffix (.png and .json)")
    length.add_argument("--edges", type=int, nargs="+", default=DEFAULT_EDGES, help="bucket lower bounds")
    length.add_argument("--data-root", type=Path, default=Path(os.environ.get("ATTN_ZOO_DATA", "data")))
    evaluation = commands.add_parser("evaluate", help="decode a split with the best weights at another beam width")
    evaluation.add_argument("run", type=Path)
    evaluation.add_argument(
        "--split",
        choices=("val", *multi30k.TEST_SETS, *(multi30k.SPLIT_FILES[t] for t in multi30k.TEST_SETS)),
        default="test2016",
        help="val or a test set: test2016 test2017 test2017_mscoco test2018, or their file names (test_2017_flickr, ...)",
    )
    evaluation.add_argument("--beam", type=int, default=1, help="1 = greedy")
    evaluation.add_argument("--length-penalty", type=float, help="GNMT alpha; default: the run's")
    evaluation.add_argument("--data-root", type=Path, help="where multi30k/ lies, if not where the run found it")
    evaluation.add_argument("--weights", help="a checkpoint file of the run, e.g. best.pt; default: the weights its test used")
    evaluation.add_argument("--beam-stop", choices=("exact", "first_k"), help="beam search stop rule; default: the run's")
    align = commands.add_parser("alignments", help="alignment matrices of a run's test sentences (Fig. 3)")
    align.add_argument("run", type=Path)
    align.add_argument("--sentences", type=int, nargs="+", help="test2016 lines (0-based); default: the run's config")
    align.add_argument("--data-root", type=Path, help="where multi30k/ lies, if not where the run found it")
    reach = commands.add_parser("time-to", help="epoch and minutes until validation BLEU reaches a value")
    reach.add_argument("run", type=Path)
    reach.add_argument("--bleu", type=float, required=True)
    curve = commands.add_parser("curves", help="validation BLEU of several runs by epoch and by minutes of training")
    curve.add_argument("--run", action="append", required=True, metavar="LABEL=RUN_DIR")
    curve.add_argument("--out", type=Path, required=True, help="output path without suffix (.png and .json)")
    args = parser.parse_args(argv)
    runs = {}
    for spec in args.run if args.command in ("by-length", "curves") else []:  # LABEL=RUN_DIR options
        label, sep, folder = spec.partition("=")
        if not sep:
            parser.error(f"--run expects LABEL=RUN_DIR, got {spec!r}")
        runs[label] = Path(folder)
    if args.command == "time-to":
        print(json.dumps(time_to(args.run, args.bleu), indent=2))
    elif args.command == "curves":
        print(curves_markdown(curves(runs, args.out)))
        print(f"wrote {args.out.with_suffix('.png')} and {args.out.with_suffix('.json')}")
    elif args.command == "by-length":
        report = by_length(runs, args.data_root, tuple(args.edges), args.out)
        for label, entry in report["runs"].items():
            print(label, "  ".join(f"{_bucket_label(b)}: {b['bleu']:.1f}" for b in entry["buckets"] if b["bleu"] is not None))
        print(f"wrote {args.out.with_suffix('.png')} and {args.out.with_suffix('.json')}")
    elif args.command == "evaluate":
        report = evaluate(args.run, args.split, args.beam, args.length_penalty, args.data_root, args.weights, args.beam_stop)
        print(
            json.dumps(
                {k: report[k] for k in ("split", "beam", "loss", "ppl", "bleu", "tok_bleu", "chrf", "bleu_signature")}, indent=2
            )
        )
    else:
        for path in alignments(args.run, args.sentences, args.data_root).values():
            print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
