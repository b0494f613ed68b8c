"""Run one experiment for each option of a config group, one after another, resumably.

    python scripts/run_variants.py --experiment generalized_attention_cpu --group attention \\
        --variants all_terms self_without_e1 encdec_without_e1 [-- extra overrides]
    python scripts/run_variants.py --experiment cifar_attention_cpu --group block \\
        --variants none se cbam --seeds 0 1 2

With --seeds, every variant runs once per seed (seed by seed: all variants of seed 0 first,
so that a stopped grid has whole comparisons). For each run: a finished run (metrics.json) under
runs/<experiment>/ with the same overrides
is kept and skipped, and so is a run record committed under results/runs/<experiment>/ (by
``scripts/results.py collect``, which keeps .hydra/overrides.yaml) with the same overrides, so that a fresh clone
goes on with the grid rather than repeating it; an unfinished run (last.pt without metrics.json)
is resumed; otherwise a new run starts. A finished run or record counts only if its resolved
config.yaml equals the config the command composes today, settings of the environment aside
(paths, logger, device, ...): a record made before a default changed (an init, a scale, a
decoding rule) is named with the settings that differ and run again. So the command can be stopped
at any time and started again to go on where it was,
which a Hydra multirun (``-m attention=a,b,c``) cannot. Stops at the first run that fails.
With --collect, each run that finishes is copied at once into the records (``scripts/results.py
collect``): commit them, and a fresh checkout goes on from the last finished run. With --tables
SPEC..., the results pages of those specs are made again after each collected run
(``scripts/results.py table``; a grid still running wants specs marked "in_progress"), so that the
records and the pages that cite them are committed together.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from attention_zoo.engine.run_record import collect, runs_with
from attention_zoo.train import CONFIG_DIR, config_differences

RESULTS_SCRIPT = Path(__file__).with_name("results.py")


def split_finished(run_dirs: list[Path]) -> tuple[list[Path], list[Path]]:
    """(finished: metrics.json says completed, unfinished: a last.pt to resume) of ``run_dirs``,
    order kept; a run that failed before its first checkpoint is neither."""
    finished = [d for d in run_dirs if _status(d) == "completed"]
    return finished, [d for d in run_dirs if d not in finished and (d / "last.pt").is_file()]


def _status(run_dir: Path) -> str | None:
    metrics = run_dir / "metrics.json"
    return json.loads(metrics.read_text()).get("status") if metrics.is_file() else None


def composed(overrides: list[str]) -> dict:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)


def same_settings(run_dirs: list[Path], config: dict, label: str) -> list[Path]:
    """The runs of ``run_dirs`` made with ``config`` (see the module docstring); the others are named."""
    kept = []
    for run_dir in run_dirs:
        stored = run_dir / "config.yaml"
        differ = (
            list(config_differences(config, yaml.safe_load(stored.read_text()))) if stored.is_file() else ["config.yaml missing"]
        )
        if differ:
            print(f"[{label}] {run_dir} was made with other settings ({', '.join(differ[:6])}); not counted", flush=True)
        else:
            kept.append(run_dir)
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--group", required=True, help="config group whose options are the variants, e.g. attention")
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, help="run each variant with each seed (default: the config's seed)")
    parser.add_argument("--records", default="results/runs", help="committed run records to count as finished runs")
    parser.add_argument("--collect", action="store_true", help="copy each run that finishes into --records")
    parser.add_argument("--tables", nargs="+", default=[], help="results specs to make again after each --collect")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides for every run (after --)")
    args = parser.parse_args()
    experiment_dir = Path(os.environ.get("ATTN_ZOO_RUNS", "runs")) / args.experiment
    seeds = [[f"seed={seed}"] for seed in args.seeds] if args.seeds else [[]]
    for seed in seeds:
        for variant in args.variants:
            wanted = [f"experiment={args.experiment}", f"{args.group}={variant}", *seed, *args.overrides]
            label = " ".join([variant, *seed])
            config = composed(wanted)
            finished, unfinished = split_finished(runs_with(experiment_dir, wanted))
            finished += split_finished(runs_with(Path(args.records) / args.experiment, wanted))[0]
            finished = same_settings(finished, config, label)
            if finished:
                print(f"[{label}] done: {finished[-1]}", flush=True)
                continue
            resume = [f"resume={unfinished[-1]}"] if unfinished else []
            print(f"[{label}] {'resuming ' + str(unfinished[-1]) if unfinished else 'starting'}", flush=True)
            code = subprocess.call([sys.executable, "-m", "attention_zoo.train", *wanted, *resume])
            if code != 0:
                print(f"[{label}] exited with {code}; stopping. Run the same command again to go on.", flush=True)
                return code
            if args.collect:
                (done,) = split_finished(runs_with(experiment_dir, wanted))[0][-1:]
                print(f"[{label}] collected: {collect(done, Path(args.records))}", flush=True)
                if args.tables and subprocess.call([sys.executable, str(RESULTS_SCRIPT), "table", *args.tables]) != 0:
                    print(f"[{label}] the tables of {args.tables} could not be made; the grid goes on.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
