"""The one entrypoint: compose the config, build data/model/task, fit, test, report.

    python -m attention_zoo.train experiment=resnet_cifar_cpu
    python -m attention_zoo.train -m experiment=resnet_cifar optim.lr=0.05,0.1 seed=0,1
    python -m attention_zoo.train experiment=resnet_cifar_cpu resume=auto
    torchrun --standalone --nproc_per_node=2 -m attention_zoo.train experiment=rnnsearch_cpu

Each run directory receives: config.yaml (the resolved config actually used), model_inputs.json
(tokenizers, class names, image statistics: see portable.py), .hydra/,
train.log, history.csv (per epoch), metrics.json (final test metrics, best validation,
wall time, hardware, versions, git commit, seed), last.pt/best.pt checkpoints, curves.png,
the task's figures under figures/ (e.g. alignment matrices), and the offline W&B run under wandb/.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from attention_zoo.build import build_data, build_model, build_task
from attention_zoo.config_check import LENGTH_DEPENDENT_SCHEDULES, check_config
from attention_zoo.engine import checkpoint, distributed
from attention_zoo.engine.distributed import Distributed
from attention_zoo.engine.optim import build_optimizer, build_schedule
from attention_zoo.engine.run_record import HISTORY, METRICS, carry_earlier_logs, write_history, write_json_atomic
from attention_zoo.engine.runtime import git_commit, hardware_summary, matmul_gflops, resolve_device
from attention_zoo.engine.seeding import seed_everything
from attention_zoo.engine.trainer import (
    NonFiniteLossError,
    Trainer,
    TrainerConfig,
    TrainingInterrupted,
    batches_per_epoch,
)
from attention_zoo.engine.wandb_logger import WandbLogger
from attention_zoo.portable import export, write_model_inputs
from attention_zoo.viz.curves import plot_history

log = logging.getLogger("attention_zoo.train")
# The config tree: configs/ at the root of a checkout (editable install), else the copy a wheel
# installs beside this package (pyproject.toml maps configs/ to attention_zoo/configs).
CONFIG_DIR = next(
    (d for d in (Path(__file__).resolve().parents[2] / "configs", Path(__file__).resolve().parent / "configs") if d.is_dir()),
    Path(__file__).resolve().parent / "configs",
)

# Settings that describe where and how a run executes rather than what it computes.
ENVIRONMENT_KEYS = (
    "resume",
    "search.",
    "paths.",
    "logger.",
    "data.root",
    "data.cache_dir",
    "trainer.device",
    "trainer.progress_bar",
    "trainer.kill_at_step",
    "trainer.sync_batchnorm",  # how a data-parallel run executes, like the number of processes (not in the config)
    "trainer.checkpoint_every_minutes",
    "trainer.log_every_steps",
    "task.figure_sentences",
    "task.figure_images",
    "task.figure_queries",
)
# A resumed run takes these from the new command line, and may extend its budget; every other
# setting must match the checkpoint.
RESUME_MAY_CHANGE = (*ENVIRONMENT_KEYS, "trainer.epochs", "trainer.max_steps", "trainer.max_train_minutes")
# Facts about a run kept beside its config in each checkpoint (not settings): its W&B run, which a
# resumed segment goes on logging to, and the machine's fp32 matmul speed as each segment started.
RUN_FACTS = ("wandb_id", "matmul_gflops_at_starts")


def main() -> None:
    """The console entry. Under torchrun, the processes first agree on rank 0's run folder (Hydra
    composes the config in each of them, and a timestamped folder could differ between them)."""
    sys.argv.extend(distributed.agree_on_run_stamp())
    hydra_main()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweep = hydra_cfg.mode == RunMode.MULTIRUN
    overrides = list(hydra_cfg.overrides.task)
    run_name = hydra_cfg.job.override_dirname or cfg.experiment_name
    if sweep and cfg.resume == "auto":
        raise ValueError("resume=auto would resume the same run in every job of a multirun; pass resume=<run dir> per job.")
    if cfg.resume is None and (run_dir / checkpoint.LAST).is_file():
        cfg.resume = str(resume_in_place(run_dir))  # a job started again in its own folder (a requeued cluster job)
    try:
        return run(cfg, run_dir, run_name=run_name, overrides=overrides, sweep_dir=hydra_cfg.sweep.dir if sweep else None)
    except BaseException as err:
        if distributed.from_environment().is_main:
            mark_unfinished(run_dir, err)
        raise


def log_artifacts(logger: WandbLogger, run_dir: Path, history: list[dict], test: dict) -> None:
    """logger.artifacts=true: the model (one exported file, portable.py) and the run record
    (metrics.json, history.csv, config.yaml) as W&B Artifacts of this run."""
    write_history(history, run_dir / HISTORY)
    model_file = export(run_dir, run_dir / "model.pt")
    logger.log_artifact(f"model-{logger.run_id}", "model", [model_file], metadata={"test": test})
    logger.log_artifact(f"results-{logger.run_id}", "results", [run_dir / METRICS, run_dir / HISTORY, run_dir / "config.yaml"])


def prepare_data_parallel(model: torch.nn.Module, group: Distributed, trainer_cfg: TrainerConfig, seed: int):
    """Before DDP wraps ``model``: SyncBatchNorm if asked for (GPU only: PyTorch's kernel has no
    CPU path), and a random stream of each process's own for dropout and sampling (the weights
    are rank 0's: DDP broadcasts them)."""
    if trainer_cfg.sync_batchnorm:
        if not group.active:
            log.warning("trainer.sync_batchnorm=true has no effect in a single process.")
        elif next(model.parameters()).device.type != "cuda":
            raise ValueError(
                "trainer.sync_batchnorm=true needs GPUs (PyTorch's SyncBatchNorm has no CPU kernel); on the CPU each "
                "process normalizes its own shard: drop the option."
            )
        else:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if group.active:
        seed_everything(seed + group.rank, trainer_cfg.deterministic)
    return model


def resume_in_place(run_dir: Path) -> Path:
    """A run folder that already holds last.pt belongs to a job started again (SLURM requeues a
    preempted or timed-out job with the same command and folder): it goes on from its checkpoint."""
    metrics = run_dir / METRICS
    if metrics.is_file() and json.loads(metrics.read_text()).get("status") == "completed":
        raise ValueError(f"{run_dir} holds a finished run (metrics.json says completed); give the new run another folder.")
    log.warning("%s already holds %s: resuming that run in place.", run_dir, checkpoint.LAST)
    return run_dir


class RunPruned(Exception):
    """A search's pruner stopped this run after an epoch (see attention_zoo/search.py)."""


def search_reporter(search: dict, monitor: str):
    """Inside a search trial (``search.storage`` set): a callback that reports each epoch's
    validation value to the Optuna trial and raises RunPruned when the pruner says so."""
    if not search.get("storage"):
        return None
    import optuna

    from attention_zoo.search import build_pruner

    study = optuna.load_study(study_name=search["study"], storage=search["storage"], pruner=build_pruner(search["pruner"]))
    trial = optuna.trial.Trial(study, int(search["trial_id"]))

    def report(row: dict) -> None:
        value = row.get(f"val/{monitor}")
        if value is None:
            return
        trial.report(value, step=int(row["epoch"]))
        if trial.should_prune():
            raise RunPruned(f"pruned by the search after epoch {row['epoch']} (val/{monitor}={value:.4f})")

    return report


def mark_unfinished(run_dir: Path, err: BaseException) -> None:
    """A run that ends without its test writes metrics.json with status interrupted (Ctrl-C,
    SIGTERM: resumable from its last.pt) or failed, and why, so that neither resume=auto nor a
    grid takes it for a finished run."""
    if (run_dir / METRICS).exists():
        return
    interrupted = isinstance(err, SystemExit) and err.code in (128 + 2, 128 + 15)
    reason = f"exit code {err.code}" if isinstance(err, SystemExit) else f"{type(err).__name__}: {err}"
    write_json_atomic(
        {
            "status": "interrupted" if interrupted else "failed",
            "reason": reason[:2000],
            "checkpoint": str(run_dir / checkpoint.LAST) if (run_dir / checkpoint.LAST).exists() else None,
        },
        run_dir / METRICS,
    )


def run(cfg: DictConfig, run_dir: Path, run_name: str, overrides: list[str], sweep_dir: str | None = None):
    """Train and test one configuration; returns the best validation value of the monitored
    metric, which is what a Hydra sweeper optimizes: selection never sees the test split. A job
    of a sweep whose loss diverges records its failure and returns NaN, so the sweep goes on; a
    single run exits with code 1. Under torchrun every process trains its shards; rank 0 alone
    writes the run folder, checkpoints and W&B, and tests."""
    start = time.monotonic()
    group = distributed.from_environment()
    if not group.is_main:  # rank 0 reports; the others only warn
        logging.getLogger().setLevel(logging.WARNING)
    config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)
    check_config(config)  # every bad value named before any data is read
    commit = git_commit()  # the code this run starts from (HEAD may move while it trains)
    stored = None
    if cfg.resume:
        resume_path = find_resume_checkpoint(cfg.resume, Path(cfg.paths.runs_dir) / cfg.experiment_name, config)
        resume_path, stored = load_with_fallback(resume_path)
        check_resume_config(config, stored["config"], resume_path)
        check_resume_budget(config, stored["config"])
        log.info(
            "Resuming from %s (epoch %d, step %d).", resume_path, stored["train_state"]["epoch"], stored["train_state"]["step"]
        )
    if group.is_main:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)

    seed_everything(cfg.seed, cfg.trainer.deterministic)
    trainer_cfg = TrainerConfig(**cfg.trainer)
    device = resolve_device(trainer_cfg.device)
    if device.type == "cuda" and group.active:
        device = torch.device("cuda", group.local_rank)
    data = build_data(cfg.data, cfg.seed)
    data.shard = group
    if group.is_main:  # tokenizers, classes, image statistics: the model can be used without the data
        write_model_inputs(data, run_dir, task=cfg.task.name)
    model = build_model(cfg.model, data).to(device)
    model = prepare_data_parallel(model, group, trainer_cfg, cfg.seed)
    if hasattr(data, "prepare"):  # e.g. caching a frozen image encoder's features once
        data.prepare(model, device)
    if trainer_cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    task = build_task(cfg.task, data, run_dir, device)
    if group.active and hasattr(task, "training_steps"):
        raise ValueError(
            f"task={cfg.task.name} updates several players per batch, which this repository does not run data-parallel "
            "(DistributedDataParallel would need every player's parameters in each backward pass). Run it in one process."
        )
    optimizer = build_optimizer(model, cfg.optim)
    steps_per_epoch = batches_per_epoch(trainer_cfg, data.num_train_batches)
    total_steps = trainer_cfg.epochs * steps_per_epoch
    if trainer_cfg.max_steps is not None:
        total_steps = min(total_steps, trainer_cfg.max_steps)
    schedule = build_schedule(optimizer, cfg.schedule, steps_per_epoch, total_steps)
    n_params = sum(p.numel() for p in model.parameters())
    speed = matmul_gflops(device)  # the machine's speed now, recorded beside the wall time
    speeds = [*(stored["config"].get("matmul_gflops_at_starts", []) if stored else []), speed]  # one per segment
    log.info(
        "%s: %s, %.3fM parameters, device %s (%.1f GFLOP/s fp32 matmul now), run dir %s",
        cfg.experiment_name,
        cfg.model.name,
        n_params / 1e6,
        device,
        speed,
        run_dir,
    )

    logger_cfg = dict(config["logger"])
    logger_cfg["name"] = logger_cfg.get("name") or run_name
    if sweep_dir:
        logger_cfg["tags"] = [*logger_cfg.get("tags", []), f"sweep:{Path(sweep_dir).name}"]
        if logger_cfg.get("job_type") == "train":  # the default: a multirun job is a sweep trial
            logger_cfg["job_type"] = "sweep-trial"
    logger = WandbLogger(
        logger_cfg if group.is_main else {**logger_cfg, "mode": "disabled"},  # one W&B run: rank 0's
        run_dir,
        config,
        monitor=task.monitor,
        monitor_mode=task.monitor_mode,
        run_id=stored["config"].get("wandb_id") if stored else None,  # a resumed run goes on in the same W&B run
    )
    trainer = Trainer(
        trainer_cfg,
        model,
        task,
        data,
        optimizer,
        schedule,
        run_dir,
        device,
        logger=logger,
        run_config={**config, "wandb_id": logger.run_id, "matmul_gflops_at_starts": speeds},
        epoch_callback=search_reporter(config["search"], task.monitor) if group.is_main else None,
        group=group,
    )
    if stored is not None:
        trainer.load_state_dict(stored)
        if resume_path.parent.resolve() != run_dir.resolve():  # in place: already there
            for previous in [resume_path.parent / checkpoint.BEST, *resume_path.parent.glob(checkpoint.EPOCH.format("*"))]:
                if previous.exists():
                    shutil.copy2(previous, run_dir / previous.name)
            carry_earlier_logs(resume_path.parent, run_dir)

    exit_code, diverged = 0, False
    try:
        trainer.fit()
        if not group.is_main:  # rank 0 tests and writes the record
            return trainer.state.best_metric
        with trainer.stop_at_once_on_signal():  # test and figures: a signal stops at once, naming the resume command
            test = trainer.test()
            state = trainer.state
            summary = {f"test/{k}": v for k, v in test.items()}
            if state.best_metric is not None:
                summary[f"best_val/{task.monitor}"] = state.best_metric
                summary["best_val/epoch"] = state.best_epoch
            logger.summary(summary)
            logger.log(summary, step=state.step)
            curves = None
            if state.history:
                curves = plot_history(state.history, run_dir / "curves.png", metric=task.monitor, title=run_name)
            if curves:
                logger.log_images({"figures/curves": curves}, step=state.step)
            figures = task.figures(trainer.model) if hasattr(task, "figures") else {}
            if figures:
                logger.log_images(figures, step=state.step)
            table = task.prediction_table(trainer.model) if hasattr(task, "prediction_table") else None
            if table is not None:
                logger.log_table("test/predictions", *table, step=state.step)
        write_json_atomic(
            {
                "experiment": cfg.experiment_name,
                "status": "completed",
                "seed": cfg.seed,
                "test": test,
                "best_val": {"metric": task.monitor, "value": state.best_metric, "epoch": state.best_epoch},
                "final_val": {k[4:]: v for k, v in state.history[-1].items() if k.startswith("val/")} if state.history else {},
                "test_weights": trainer.test_weights,
                "test_details": getattr(task, "test_details", {}),
                # smoke runs: numbers from part of each epoch and part of val/test, not comparable
                "limit_train_batches": trainer_cfg.limit_train_batches,
                "limit_eval_batches": trainer_cfg.limit_eval_batches,
                "epochs": state.epoch,
                "steps": state.step,
                "wall_time_s": round(state.elapsed_s, 1),
                "wall_time_this_session_s": round(time.monotonic() - start, 1),
                "parameters": n_params,
                "hardware": {**hardware_summary(device), "matmul_gflops_at_start": speed, "matmul_gflops_at_starts": speeds},
                "git_commit": commit,
                "overrides": overrides,
                "resumed_from": str(resume_path) if stored else None,
                "wandb": {"mode": logger.mode, "id": logger.run_id, "group": logger_cfg.get("group")},
            },
            run_dir / METRICS,
        )
        log.info("test: %s", "  ".join(f"{k}={v:.4f}" for k, v in test.items()))
        if logger_cfg.get("artifacts") and logger.mode != "disabled":
            log_artifacts(logger, run_dir, state.history, test)
        if state.best_metric is None:
            log.warning("No validation value to return to a sweeper (no validation split); returning None.")
        return state.best_metric
    except TrainingInterrupted as stop:
        again = " ".join([*(o for o in overrides if not o.startswith("resume=")), f"resume={run_dir}"])
        log.warning(
            "Stopped by %s; checkpoint saved: %s. Continue with:\n  python -m attention_zoo.train %s",
            stop,
            trainer.last_checkpoint,
            again,
        )
        exit_code = 128 + stop.signum
    except RunPruned as pruned:
        log.warning("%s", pruned)
        state = trainer.state
        if not group.is_main:
            return state.best_metric
        write_json_atomic(
            {
                "status": "pruned",
                "reason": str(pruned),
                "seed": cfg.seed,
                "best_val": {"metric": task.monitor, "value": state.best_metric, "epoch": state.best_epoch},
                "epochs": state.epoch,
                "steps": state.step,
                "wall_time_s": round(state.elapsed_s, 1),
                "overrides": overrides,
            },
            run_dir / METRICS,
        )
        return state.best_metric
    except NonFiniteLossError as err:
        log.error("%s", err)
        if group.is_main:
            mark_unfinished(run_dir, err)  # status failed, naming the step and the last good checkpoint
        exit_code, diverged = 1, True
    except BaseException:
        exit_code = 1
        raise
    finally:
        if trainer.state.history and group.is_main:
            write_history(trainer.state.history, run_dir / HISTORY)
        logger.finish(exit_code=exit_code)
    if diverged and sweep_dir:  # one diverged trial must not end a sweep: the sweeper gets NaN and goes on
        log.warning("This job of the sweep diverged (metrics.json says why); returning NaN to the sweeper.")
        return float("nan")
    sys.exit(exit_code)


def find_resume_checkpoint(resume: str, experiment_runs: Path, config: dict | None = None) -> Path:
    """``resume``: a run directory (or its checkpoint file), or ``auto`` for the newest run of the
    experiment whose stored config computes the same thing as ``config`` (see RESUME_MAY_CHANGE)."""
    if resume == "auto":
        candidates = sorted(
            (_checkpoint_in(d) for d in {p.parent for p in experiment_runs.glob("**/last*.pt")}),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        if not candidates:
            raise FileNotFoundError(f"resume=auto: no {checkpoint.LAST} under {experiment_runs}; start a new run without resume.")
        for path in candidates:
            stored = path.parent / "config.yaml"
            if config is None or (
                stored.is_file()
                and not config_differences(config, OmegaConf.to_container(OmegaConf.load(stored)), RESUME_MAY_CHANGE)
            ):
                return path
        raise FileNotFoundError(
            f"resume=auto: none of the {len(candidates)} runs with a checkpoint under {experiment_runs} was made with this "
            f"config (the newest, {candidates[0].parent}, differs). Pass resume=<run dir>, or start a new run."
        )
    path = Path(resume)
    path = _checkpoint_in(path) if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(
            f"resume={resume}: no checkpoint at {path}. Pass a run directory that holds {checkpoint.LAST}, or resume=auto."
        )
    return path


def _checkpoint_in(run_dir: Path) -> Path:
    """last.pt, or last.prev.pt when a save was cut between the two renames that replace last.pt."""
    last = run_dir / checkpoint.LAST
    return last if last.is_file() or not (run_dir / checkpoint.PREVIOUS).is_file() else run_dir / checkpoint.PREVIOUS


def load_with_fallback(path: Path) -> tuple[Path, dict]:
    """The checkpoint at ``path``, or, when it is damaged, the previous one beside it (saying so)."""
    try:
        return path, checkpoint.load(path)
    except checkpoint.DamagedCheckpointError as err:
        previous = path.with_name(checkpoint.PREVIOUS)
        if not previous.is_file():
            raise
        log.warning("%s Falling back to the previous checkpoint, %s (one checkpoint interval earlier).", err, previous)
        return previous, checkpoint.load(previous)


def check_resume_config(current: dict, stored: dict, path: Path) -> None:
    """Refuse to resume under a config that computes something else than the stored run."""
    changed = config_differences(current, stored, RESUME_MAY_CHANGE)
    if changed:
        details = "; ".join(f"{k}: {before!r} -> {now!r}" for k, (before, now) in changed.items())
        overrides = path.parent / ".hydra" / "overrides.yaml"
        raise ValueError(
            f"Cannot resume {path}: the config differs from the checkpoint's at {details}. "
            f"Resume with the same experiment and overrides as the original run (listed in {overrides})."
        )


# Settings added after runs were recorded, with the value that those older runs used.
ADDED_SETTINGS = {
    "data.test_set": "test2016",
    "data.source": "files",
    "data.normalize": "mean_std",
    "model.non_local_kind": "non_local",
    "model.deformable_stages": [],
    "model.deformable_modulated": True,
    "trainer.max_train_minutes": None,
}


def config_differences(current: dict, stored: dict, may_differ: tuple[str, ...] = ENVIRONMENT_KEYS) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (stored value, current value)} where two resolved configs differ (a key one of
    them lacks counts, as None, unless ADDED_SETTINGS gives its older value), sorted by key,
    leaving out the keys that start with ``may_differ``."""
    now, before = _flatten(current), _flatten({k: v for k, v in stored.items() if k not in RUN_FACTS})
    for key, value in ADDED_SETTINGS.items():
        if key in now and key not in before:
            before[key] = value
    keys = sorted(key for key in now.keys() | before.keys() if now.get(key) != before.get(key) and not key.startswith(may_differ))
    return {key: (before.get(key), now.get(key)) for key in keys}


def check_resume_budget(current: dict, stored: dict) -> None:
    """Refuse to change the budget of a run whose schedule is laid out over that budget."""
    schedule = current["schedule"]["name"]
    changed = [
        f"trainer.{k}: {stored['trainer'].get(k)!r} -> {current['trainer'].get(k)!r}"
        for k in ("epochs", "max_steps")  # a time budget never meets these schedules: config_check refuses it
        if stored["trainer"].get(k) != current["trainer"].get(k)
    ]
    if changed and schedule in LENGTH_DEPENDENT_SCHEDULES:
        raise ValueError(
            f"Cannot resume with a new budget ({'; '.join(changed)}): the {schedule} schedule is laid out over the planned "
            "total, so the learning rate would jump. Resume with the original budget, or start a new run with the longer one."
        )


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


if __name__ == "__main__":
    main()
