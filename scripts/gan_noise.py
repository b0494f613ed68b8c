"""How much of a GAN run's test score is its noise draw: the run's test weights re-scored on the
test split with other noise seeds than its ``task.noise_seed``, under the run's precision.

    python scripts/gan_noise.py runs/sagan_cpu/RUN [RUN ...] --noise-seeds 0 1 2 3 4 \
        --data-root ../shared/data --json results/sagan_noise/seed0_noise_draws.json

A run's test FID, precision and recall come from one fixed draw of noise (experiments/sagan.md). This
re-scores its weights first at its own noise seed, which must give back the recorded test scores
(checked: otherwise it stops, since the re-scoring would not be the run's test), then at each seed of ``--noise-seeds``. The
spread over those draws is the estimator's sampling error for one set of weights, to set beside
the spread between training seeds on results/sagan.md. Needs the run folder's checkpoints (not in
the committed records) and its feature classifier.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from attention_zoo.build import build_task
from attention_zoo.engine.runtime import autocast, autocast_dtype, git_commit, hardware_summary
from attention_zoo.finished_run import load_run

METRICS = ("fid", "precision", "recall")


def rescore(run_dir: Path, noise_seeds: list[int], data_root: Path | None = None) -> dict:
    """{"run", "recorded", "own_seed", "draws": {seed: scores}, "mean", "std"} for one finished run."""
    cfg, data, model = load_run(run_dir, data_root)
    device = torch.device("cpu")
    task = build_task(cfg.task, data, None, device)
    dtype = autocast_dtype(cfg.trainer.precision, device)

    def test_scores(seed: int) -> dict[str, float]:
        task.noise_seed = seed
        with autocast(device, dtype):
            return task.evaluate(model, data.test_batches(), "test")

    own = test_scores(cfg.task.noise_seed)
    recorded = json.loads((Path(run_dir) / "metrics.json").read_text())["test"]
    if any(abs(own[m] - recorded[m]) > 1e-5 * abs(recorded[m]) + 1e-6 for m in METRICS):
        raise ValueError(
            f"{run_dir}: re-scored at its own noise seed {cfg.task.noise_seed}, it gives {scores_text(own)}, but its "
            f"record says {scores_text(recorded)}: these are not the weights or data its test used (check --data-root)."
        )
    draws = {seed: test_scores(seed) for seed in noise_seeds}
    summary = {m: [scores[m] for scores in draws.values()] for m in METRICS}
    return {
        "run": Path(run_dir).name,
        "seed": cfg.seed,
        "gan_attention": list(cfg.model.attention_at),
        "recorded": {m: recorded[m] for m in METRICS},
        "own_seed": {"noise_seed": cfg.task.noise_seed, **own},
        "draws": {str(seed): scores for seed, scores in draws.items()},
        "mean": {m: statistics.fmean(values) for m, values in summary.items()},
        "std": {m: statistics.stdev(values) if len(values) > 1 else 0.0 for m, values in summary.items()},
    }


def scores_text(scores: dict[str, float]) -> str:
    return " ".join(f"{m}={scores[m]:.4f}" for m in METRICS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished GAN run folders (runs/<experiment>/<time>)")
    parser.add_argument("--noise-seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-root", type=Path, help="the data folder, if not the one the runs read")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    started = time.time()
    report = {
        "command": "python scripts/gan_noise.py "
        + " ".join(str(r) for r in args.runs)
        + f" --noise-seeds {' '.join(map(str, args.noise_seeds))}",
        "git_commit": git_commit(),
        "hardware": hardware_summary(torch.device("cpu")),
        "runs": [],
    }
    for run in args.runs:
        result = rescore(run, args.noise_seeds, args.data_root)
        print(f"{result['run']} (seed {result['seed']}, attention at {result['gan_attention'] or 'none'})")
        print(f"  recorded:             {scores_text(result['recorded'])}")
        print(f"  noise {result['own_seed']['noise_seed']} (its own): {scores_text(result['own_seed'])}")
        for seed, scores in result["draws"].items():
            print(f"  noise {seed}:              {scores_text(scores)}")
        spread = " ".join(f"{m}={result['mean'][m]:.4f}±{result['std'][m]:.4f}" for m in METRICS)
        print(f"  over {len(result['draws'])} draws: {spread}", flush=True)
        report["runs"].append(result)
        report["wall_s"] = round(time.time() - started, 1)
        if args.json:  # after each run: a stopped re-scoring keeps the runs it finished
            args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
