"""Hyperparameter search with Optuna around the one entrypoint: a search space, a sampler, a pruner
that reads each epoch's validation value, a budget of trials, and a storage that resumes and that
several workers can share.

    python -m attention_zoo.search sweeps/optuna/rnnsearch.yaml             # or attention-zoo-search
    python -m attention_zoo.search sweeps/optuna/rnnsearch.yaml --storage postgresql://host/db   # shared by workers
    python -m attention_zoo.search sweeps/optuna/rnnsearch.yaml --report    # best trial, importances, every trial
    python -m attention_zoo.search sweeps/optuna/rnnsearch.yaml --report --record   # + results/search_<study>.md

A search file (sweeps/optuna/*.yaml) names the ``experiment``, fixed ``overrides``, ``n_trials``,
the ``sampler`` (tpe | random | grid, with a seed), the ``pruner`` (median | none), the ``storage``
(default sqlite:///runs/search/<study>.db) and the ``params``, each ``{type: float | int, low,
high, log}`` or ``{type: categorical, choices}``. Anything after ``--`` is added to every trial.

Each trial runs ``python -m attention_zoo.train experiment=<...> <sampled overrides>`` in its own
process and run directory, runs/search/<study>/trial_<n>/. The run reports each epoch's validation
value to its trial through the storage (``search.*`` in the run config), and the pruner may stop
it there (metrics.json status ``pruned``). The objective is the best validation value of the
task's monitored metric: the search never reads the test split. The budget counts the trials the
storage holds as complete or pruned, so a search started again runs only what is left, and
workers on one storage share one budget. Workers send heartbeats: a trial whose worker died is
failed once its heartbeat is older than the grace period, and the next worker runs it again,
resuming its run directory from its last checkpoint. A seeded sampler's seed is offset by the
number of trials already stored, so a restarted search draws new trials rather than its first ones
again; workers started at the same moment on one storage share an offset, so give them different
seeds (or none).

Why not hydra-optuna-sweeper: its 1.3.0 pins optuna < 3 and its SQLite storage fails under
SQLAlchemy 2.x, so this module drives Optuna directly.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.storages import RetryFailedTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from attention_zoo.choices import check_choice
from attention_zoo.search_record import record

log = logging.getLogger("attention_zoo.search")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
PARAM_TYPES = ("float", "int", "categorical")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
DEFAULTS = {
    "overrides": [],
    "direction": "maximize",
    "sampler": {"name": "tpe", "seed": 0},
    "pruner": {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 1},
    "heartbeat_s": 60,
    "grace_s": 180,
    "runs_dir": "runs/search",
}


def load_search(path: str | Path) -> dict[str, Any]:
    """The search file with its defaults filled in, every name checked."""
    spec = {**DEFAULTS, "study": Path(path).stem, **yaml.safe_load(Path(path).read_text())}
    missing = [key for key in ("experiment", "n_trials", "params") if key not in spec]
    if missing:
        raise ValueError(f"{path}: the search file needs {', '.join(missing)} (see attention_zoo/search.py).")
    check_choice(f"{path}: sampler.name", spec["sampler"]["name"], SAMPLERS)
    check_choice(f"{path}: pruner.name", spec["pruner"]["name"], PRUNERS)
    check_choice(f"{path}: direction", spec["direction"], ("maximize", "minimize"))
    for name, param in spec["params"].items():
        check_choice(f"{path}: params.{name}.type", param.get("type"), PARAM_TYPES)
    spec.setdefault("storage", f"sqlite:///{spec['runs_dir']}/{spec['study']}.db")
    return spec


def suggest(trial: optuna.Trial, name: str, param: dict) -> Any:
    if param["type"] == "categorical":
        return trial.suggest_categorical(name, param["choices"])
    suggest_number = trial.suggest_float if param["type"] == "float" else trial.suggest_int
    return suggest_number(name, param["low"], param["high"], log=param.get("log", False))


def make_study(spec: dict) -> optuna.Study:
    """The study in ``spec["storage"]``, created on first use; heartbeats let workers retry a dead worker's trial."""
    if spec["storage"].startswith("sqlite:///"):
        Path(spec["storage"].removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(
        spec["storage"],
        heartbeat_interval=spec["heartbeat_s"],
        grace_period=spec["grace_s"],
        failed_trial_callback=RetryFailedTrialCallback(max_retry=2),
    )
    study = optuna.create_study(
        study_name=spec["study"],
        storage=storage,
        pruner=build_pruner(spec["pruner"]),
        direction=spec["direction"],
        load_if_exists=True,
    )
    # A seeded sampler restarted on a stored study would draw its first trials again: offset the seed
    # by the trials already stored, which keeps a resumed search reproducible and its draws new.
    study.sampler = build_sampler(spec, offset=len(study.trials))
    return study


def build_sampler(spec: dict, offset: int = 0) -> optuna.samplers.BaseSampler:
    """The search file's sampler, its seed (if any) plus ``offset``."""
    sampler = spec["sampler"]
    seed = None if sampler.get("seed") is None else sampler["seed"] + offset
    if sampler["name"] == "grid":
        space = {name: p["choices"] for name, p in spec["params"].items() if p["type"] == "categorical"}
        if len(space) != len(spec["params"]):
            raise ValueError("sampler grid needs every parameter categorical (a list of choices).")
        return optuna.samplers.GridSampler(space, seed=seed)
    if sampler["name"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def build_pruner(pruner: dict) -> optuna.pruners.BasePruner:
    """The pruner of a search file; the storage does not keep it, so each trial's run builds it too."""
    check_choice("pruner.name", pruner["name"], PRUNERS)
    if pruner["name"] == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=pruner["n_startup_trials"], n_warmup_steps=pruner["n_warmup_steps"])


def trial_dir(spec: dict, number: int) -> Path:
    return Path(spec["runs_dir"]) / spec["study"] / f"trial_{number}"


def run_trial(spec: dict, trial: optuna.Trial, extra: list[str]) -> float:
    """One training run for ``trial``: its best validation value, or TrialPruned."""
    sampled = [f"{name}={suggest(trial, name, param)}" for name, param in spec["params"].items()]
    run_dir = trial_dir(spec, trial.number)
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    retried = RetryFailedTrialCallback.retried_trial_number(frozen)
    resume = []
    if retried is not None and (trial_dir(spec, retried) / "last.pt").is_file():
        resume = [f"resume={trial_dir(spec, retried)}"]  # the dead worker's run goes on from its checkpoint
    command = [
        sys.executable,
        "-m",
        "attention_zoo.train",
        f"experiment={spec['experiment']}",
        *spec["overrides"],
        *extra,
        *sampled,
        *resume,
        f"hydra.run.dir={run_dir}",
        f"search.storage={spec['storage']}",
        f"search.study={spec['study']}",
        f"search.trial_id={trial._trial_id}",  # Optuna's storage key of this trial
        "search.pruner={" + ",".join(f"{key}:{value}" for key, value in spec["pruner"].items()) + "}",
        "logger.job_type=sweep-trial",
        f"logger.group=search-{spec['study']}",
    ]
    log.info("trial %d: %s", trial.number, " ".join(sampled + resume))
    code = subprocess.call(command)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    status = metrics.get("status")
    if status == "pruned":
        raise optuna.TrialPruned(metrics.get("reason", "pruned"))
    if code != 0 or status != "completed" or metrics["best_val"]["value"] is None:
        raise RuntimeError(f"trial {trial.number} failed (exit code {code}, status {status}): see {run_dir}/train.log")
    return float(metrics["best_val"]["value"])  # selection on validation only


def search(spec: dict, extra: list[str]) -> optuna.Study:
    study = make_study(spec)
    done = sum(t.state in FINISHED for t in study.trials)
    log.info("study %s in %s: %d of %d trials finished", spec["study"], spec["storage"], done, spec["n_trials"])
    if done < spec["n_trials"]:
        study.optimize(
            lambda trial: run_trial(spec, trial, extra),
            n_trials=2 * (spec["n_trials"] - done),  # attempts of this worker: trials that keep failing end it
            callbacks=[MaxTrialsCallback(spec["n_trials"], states=FINISHED)],
            catch=(RuntimeError,),  # a failed trial is recorded as failed; the search goes on
        )
    return study


def report(study: optuna.Study, spec: dict) -> dict:
    """Best trial, the importance of each parameter, and every trial; written beside the study."""
    trials = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "epochs_reported": len(t.intermediate_values),
            "retry_of": RetryFailedTrialCallback.retried_trial_number(t),  # a dead worker's trial, run again
            "notes": t.user_attrs,
        }
        for t in study.trials
    ]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    summary: dict[str, Any] = {
        key: spec[key] for key in ("study", "experiment", "overrides", "direction", "sampler", "pruner", "n_trials")
    }
    summary["space"] = spec["params"]
    if complete:
        best = study.best_trial
        summary["best"] = {"number": best.number, "value": best.value, "params": best.params}
    if len(complete) >= 2 and len(spec["params"]) >= 1:
        # PED-ANOVA asks what it takes to reach the top quantile; Optuna's default top 10% is a single
        # trial in a small study, and its authors advise at least 5 trials above it: take the top
        # 5 (at most the top half).
        quantile = min(0.5, max(0.1, 5 / len(complete)))
        evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile)
        summary["importance"] = optuna.importance.get_param_importances(study, evaluator=evaluator)
        summary["importance_method"] = (
            f"PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator, target_quantile {quantile:.2f}: what it "
            f"takes to be in the top {math.ceil(quantile * len(complete))} of the {len(complete)} complete trials)"
        )
    summary["trials"] = trials
    path = Path(spec["runs_dir"]) / spec["study"] / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info("wrote %s", path)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s SEARCH_FILE [options] [-- overrides]",
    )
    parser.add_argument("search_file", type=Path)
    parser.add_argument("--n-trials", type=int, help="the budget of finished trials (default: the file's n_trials)")
    parser.add_argument(
        "--storage", help="an Optuna storage URL shared by the workers (default: the file's, or SQLite under runs/search)"
    )
    parser.add_argument("--report", action="store_true", help="only write and print the summary of the study so far")
    parser.add_argument(
        "--record",
        action="store_true",
        help="after the search (or with --report): copy the trials' run records and the summary to results/search/<study>/ "
        "and write results/search_<study>.md (attention_zoo/search_record.py)",
    )
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    overrides = argv[split + 1 :]  # Hydra overrides for every trial, after --
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    spec = load_search(args.search_file)
    if args.n_trials is not None:
        spec["n_trials"] = args.n_trials
    if args.storage:
        spec["storage"] = args.storage
    study = make_study(spec) if args.report else search(spec, overrides)
    summary = report(study, spec)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("trials", "space")}, indent=2, default=str))
    if args.record:
        log.info("wrote %s and the trials' records beside it", record(Path(spec["runs_dir"]) / spec["study"]))


if __name__ == "__main__":
    main()
