"""The training loop: fit, validate every epoch, keep the best model, checkpoint, resume.

The loop is task-agnostic. A *data module* hands out batches (``train_batches(epoch, start)``
must be a pure function of the epoch and the run's seed, so that a resumed run can start in
the middle of an epoch without replaying it); a *task* turns a batch into a loss and a set
of evaluation metrics. See ``tasks/`` and ``data/`` for the two sides.

Under torchrun (``engine/distributed.py``) each process trains on its shard of every batch
through DistributedDataParallel; the per-step numbers (items, loss, the task's sums, stop and
checkpoint flags) are summed over the processes in one all-reduce before the backward pass, so
every process takes the same decisions at the same step.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

from attention_zoo.engine import checkpoint
from attention_zoo.engine.distributed import SINGLE_PROCESS, Distributed
from attention_zoo.engine.runtime import autocast, autocast_dtype
from attention_zoo.engine.seeding import capture_rng_state, restore_rng_state

log = logging.getLogger(__name__)


@dataclass
class StepOutput:
    """What a task returns for one training batch."""

    loss: torch.Tensor  # scalar, mean over the batch's items
    count: int  # items in the batch (images, target tokens)
    sums: dict[str, float] = field(default_factory=dict)  # summable stats, e.g. {"correct": 57}


class DataModule(Protocol):
    num_train_batches: int

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Any]: ...

    def val_batches(self) -> Iterable[Any] | None: ...

    def test_batches(self) -> Iterable[Any]: ...


class Task(Protocol):
    monitor: str  # validation metric that picks the best epoch, e.g. "acc"
    monitor_mode: str  # "max" or "min"
    unit: str  # what ``StepOutput.count`` counts, for throughput ("img", "tok")

    def training_step(self, model: nn.Module, batch: Any) -> StepOutput: ...

    # Optional, instead of training_step: a generator of several losses per batch, each followed by
    # an update before the next is computed (e.g. a GAN's discriminator, then its generator).
    # def training_steps(self, model: nn.Module, batch: Any) -> Iterator[StepOutput]: ...

    def evaluate(self, model: nn.Module, batches: Iterable[Any], split: str = "val") -> dict[str, float]: ...

    # Optional: figures after each epoch ({W&B key: image file}), e.g. a GAN's fixed-noise samples.
    # def epoch_figures(self, model: nn.Module, epoch: int) -> dict[str, Path]: ...


@dataclass
class TrainerConfig:
    epochs: int
    max_steps: int | None = None  # stop early after this many optimizer steps (smoke runs, budgets)
    max_train_minutes: float | None = None  # stop once training (not validation) has taken this long; closes the epoch
    limit_train_batches: int | None = None  # smoke runs: an epoch is the first N batches of its shuffled order
    limit_eval_batches: int | None = None  # smoke runs: validate and test on the first N batches only
    device: str = "auto"
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 elsewhere
    grad_clip_norm: float | None = None
    deterministic: bool = False
    channels_last: bool = False  # NHWC memory format for image models
    compile: str = "none"  # torch.compile (inductor), in place: none | model | attention (its attention modules only)
    log_every_steps: int = 50
    checkpoint_every_minutes: float = 10.0
    early_stopping_patience: int | None = None  # epochs without improvement of the monitored metric
    average_last_epochs: int | None = None  # test with the mean weights of the last N epochs instead of best.pt
    progress_bar: bool = True
    kill_at_step: int | None = None  # fault injection for the resume tests: SIGKILL self after this step
    sync_batchnorm: bool = False  # data-parallel runs on GPUs: BatchNorm statistics over the global batch


class NonFiniteLossError(RuntimeError):
    pass


class TrainingInterrupted(BaseException):
    """A stop by SIGINT/SIGTERM. A BaseException, as KeyboardInterrupt is: raised from a signal
    handler it may land inside code that catches Exception (logging's emit does), which must not
    swallow it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class TrainState:
    """Where training stands; everything a resumed run needs besides module/optimizer states."""

    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # next batch to train on within the epoch
    step: int = 0  # optimizer steps taken
    best_metric: float | None = None
    best_loss: float | None = None  # validation loss at the best epoch: breaks ties of the metric
    best_epoch: int | None = None
    bad_epochs: int = 0
    elapsed_s: float = 0.0  # training wall time summed over all sessions of the run
    epoch_sums: dict[str, float] = field(default_factory=dict)  # running train stats of this epoch
    epoch_timing: dict[str, float] = field(default_factory=dict)  # data-wait and step seconds, items
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    def __init__(
        self,
        cfg: TrainerConfig,
        model: nn.Module,
        task: Task,
        data: DataModule,
        optimizer: torch.optim.Optimizer,
        schedule,
        run_dir: str | Path,
        device: torch.device,
        logger=None,
        run_config: dict | None = None,
        epoch_callback=None,
        group: Distributed = SINGLE_PROCESS,
    ):
        """``epoch_callback(row)``: called with each epoch's history row once it is checkpointed
        (e.g. a search's pruner, which may raise to stop the run). ``group``: this process's place
        in a data-parallel run; ``data`` must already hand out this process's shards."""
        self.cfg = cfg
        self.model = model  # the module itself: checkpoints, evaluation
        compile_model(model, cfg.compile)
        self.group = group
        self.train_model = data_parallel(model, group, device)  # what training steps call
        self.task = task
        self.data = data
        self.optimizer = optimizer
        self.schedule = schedule
        self.run_dir = Path(run_dir)
        self.device = device
        self.logger = logger
        self.run_config = run_config or {}
        self.epoch_callback = epoch_callback
        self.amp_dtype = autocast_dtype(cfg.precision, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.state = TrainState()
        self.test_weights = ""  # which weights the test used, for the run record
        self._stop_signal: int | None = None
        self._stop_agreed = False  # every process stops before the next batch (the signal reached one)
        self._checkpoint_agreed = False  # every process saves after this batch (rank 0's clock says so)
        self._last_checkpoint_time = time.monotonic()
        self._session_start = time.monotonic()
        self._elapsed_at_session_start = 0.0

    # ------------------------------------------------------------------ checkpoints
    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / checkpoint.LAST

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / checkpoint.BEST

    def state_dict(self) -> dict:
        self.state.elapsed_s = self._elapsed()
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            "train_state": self.state.__dict__.copy(),
            "config": self.run_config,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        rng_of_ranks = state.get("rng_of_ranks", [state["rng"]])
        if len(rng_of_ranks) != self.group.world_size:
            log.warning(
                "The checkpoint was written by %d process(es), this run has %d: the global batches and the schedule "
                "are the same, but random draws (dropout, sampling) will not continue as in the original run.",
                len(rng_of_ranks),
                self.group.world_size,
            )
        restore_rng_state(rng_of_ranks[self.group.rank] if len(rng_of_ranks) == self.group.world_size else state["rng"])
        self.state = TrainState(**state["train_state"])
        self._elapsed_at_session_start = self.state.elapsed_s
        self._session_start = time.monotonic()

    def save_checkpoint(self) -> None:
        """Every process calls this at the same step; rank 0 writes, with each process's RNG state."""
        rng_of_ranks = self.group.gather(capture_rng_state())
        if self.group.is_main:
            checkpoint.rotate_and_save({**self.state_dict(), "rng_of_ranks": rng_of_ranks}, self.last_checkpoint)
        self._last_checkpoint_time = time.monotonic()

    def _elapsed(self) -> float:
        return self._elapsed_at_session_start + time.monotonic() - self._session_start

    @property
    def batches_per_epoch(self) -> int:
        return batches_per_epoch(self.cfg, self.data.num_train_batches)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainState:
        """Train until ``epochs`` (or ``max_steps``, ``max_train_minutes``, early stopping); return the
        final state. A time budget that runs out within an epoch closes that epoch there (validated,
        kept for averaging), so runs of different speed compare at equal training time."""
        previous_handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._session_start = time.monotonic()
        self._elapsed_at_session_start = self.state.elapsed_s
        try:
            while self.state.epoch < self.cfg.epochs and not self._budget_spent():
                self._train_epoch()
                if self.state.batch_in_epoch < self.batches_per_epoch:
                    if self._time_spent() and self.state.batch_in_epoch > 0:
                        log.info(
                            "Time budget of %g training minutes spent after %d of %d batches of epoch %d: it is the last.",
                            self.cfg.max_train_minutes,
                            self.state.batch_in_epoch,
                            self.batches_per_epoch,
                            self.state.epoch + 1,
                        )
                        self._end_epoch()
                    break  # max_steps ended the epoch early (its partial stats stay in the checkpoint), or time did
                self._end_epoch()
                if self._should_stop_early():
                    log.info("Early stopping: no %s improvement for %d epochs.", self.task.monitor, self.state.bad_epochs)
                    break
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
        self.save_checkpoint()
        return self.state

    def _budget_spent(self) -> bool:
        return (self.cfg.max_steps is not None and self.state.step >= self.cfg.max_steps) or self._time_spent()

    def _time_spent(self) -> bool:
        """Whether the training seconds (data wait + steps, summed over the finished epochs and this
        one, across resumed sessions) have reached ``max_train_minutes``."""
        if self.cfg.max_train_minutes is None:
            return False
        finished = sum(row["time/epoch_s"] for row in self.state.history)
        current = self.state.epoch_timing.get("data_s", 0.0) + self.state.epoch_timing.get("step_s", 0.0)
        return finished + current >= 60 * self.cfg.max_train_minutes

    def _train_epoch(self) -> None:
        state, cfg = self.state, self.cfg
        self.model.train()
        bar = tqdm(
            total=self.batches_per_epoch,
            initial=state.batch_in_epoch,
            desc=f"epoch {state.epoch + 1}/{cfg.epochs}",
            disable=not (cfg.progress_bar and self.group.is_main),
            mininterval=1.0 if os.isatty(2) else 30.0,
            dynamic_ncols=True,
            leave=False,
        )
        batches = self.data.train_batches(state.epoch, start=state.batch_in_epoch)
        timing = state.epoch_timing
        wait_start = time.perf_counter()
        for batch in batches:
            if self._stop_agreed or (self._stop_signal is not None and not self.group.active):
                self.save_checkpoint()
                raise TrainingInterrupted(self._stop_signal or signal.SIGTERM)
            batch = self._to_device(batch)
            step_start = time.perf_counter()
            out = self._optimizer_step(batch)
            step_end = time.perf_counter()
            _accumulate(timing, data_s=step_start - wait_start, step_s=step_end - step_start, items=out.count)
            _accumulate(state.epoch_sums, count=out.count, **out.sums)
            state.batch_in_epoch += 1
            bar.update(1)
            if state.step % cfg.log_every_steps == 0:
                loss = out.sums["loss"] / out.count
                bar.set_postfix(loss=f"{loss:.4f}", **{f"{self.task.unit}/s": f"{timing['items'] / timing['step_s']:.0f}"})
                self._log({"train/loss": loss, "train/lr": self.optimizer.param_groups[0]["lr"]})
            if cfg.kill_at_step is not None and state.step == cfg.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            if self._checkpoint_agreed:
                self.save_checkpoint()
            if self._budget_spent() or state.batch_in_epoch >= self.batches_per_epoch:
                break
            wait_start = time.perf_counter()
        bar.close()

    def _optimizer_step(self, batch) -> StepOutput:
        """One training step on this process's shard: one update, or, for a task with
        ``training_steps`` (a GAN: the discriminator's loss, then the generator's), one update per
        loss it yields, each loss computed after the previous update. Returns the numbers of the
        global batch: the last loss, and the sums of every update."""
        merged: StepOutput | None = None
        for out in self._losses(batch):
            out, loss = self._agree(out)
            loss_value = out.sums["loss"] / out.count
            if not math.isfinite(loss_value):
                where = self.last_checkpoint if self.last_checkpoint.exists() else "none yet"
                raise NonFiniteLossError(
                    f"Loss is {loss_value} at step {self.state.step + 1} (epoch {self.state.epoch + 1}, "
                    f"batch {self.state.batch_in_epoch + 1}); training stopped. Last good checkpoint: {where}. "
                    "Lower optim.lr, set trainer.grad_clip_norm, or use trainer.precision=fp32."
                )
            self.optimizer.zero_grad(set_to_none=True)  # parameters without a gradient are left alone
            self.scaler.scale(loss).backward()
            if self.cfg.grad_clip_norm:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            merged = out if merged is None else StepOutput(out.loss, out.count, {**merged.sums, **out.sums})
        if not isinstance(self.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.schedule.step()
        self.state.step += 1
        return merged

    def _losses(self, batch) -> Iterator[StepOutput]:
        """The task's loss(es) for ``batch``, each computed under autocast, none before the trainer asks."""
        if not hasattr(self.task, "training_steps"):
            with autocast(self.device, self.amp_dtype):
                out = self.task.training_step(self.train_model, batch)
            yield out
            return
        steps = self.task.training_steps(self.train_model, batch)
        while True:
            with autocast(self.device, self.amp_dtype):
                out = next(steps, None)
            if out is None:
                return
            yield out

    def _agree(self, out: StepOutput) -> tuple[StepOutput, torch.Tensor]:
        """Sum this step's numbers over the processes in one all-reduce: the global StepOutput
        (sums["loss"] = loss x items) and the loss to differentiate, rescaled so that DDP's mean
        of the processes' gradients is the gradient of the global per-item mean. Also agrees on
        stopping (a signal reached any process) and checkpointing (rank 0's clock)."""
        keys = sorted(out.sums)
        checkpoint_due = time.monotonic() - self._last_checkpoint_time > 60 * self.cfg.checkpoint_every_minutes
        local = [
            out.count,
            out.loss.item() * out.count,
            *(out.sums[k] for k in keys),
            float(self._stop_signal is not None),
            float(checkpoint_due and self.group.is_main),
        ]
        count, loss_sum, *sums, stop, save = self.group.sum(local, self.device)
        self._stop_agreed, self._checkpoint_agreed = stop > 0, save > 0
        loss = out.loss if not self.group.active else out.loss * (out.count * self.group.world_size / count)
        return StepOutput(loss=out.loss, count=int(count), sums={**dict(zip(keys, sums)), "loss": loss_sum}), loss

    def _end_epoch(self) -> None:
        state = self.state
        row: dict[str, float] = {"epoch": state.epoch + 1, "step": state.step}
        count = state.epoch_sums.pop("count")
        row.update({f"train/{k}": v / count for k, v in state.epoch_sums.items()})
        timing = state.epoch_timing
        row["train/lr"] = self.optimizer.param_groups[0]["lr"]
        row[f"time/train_{self.task.unit}_per_s"] = timing["items"] / (timing["data_s"] + timing["step_s"])
        row["time/data_wait_share"] = timing["data_s"] / (timing["data_s"] + timing["step_s"])
        row["time/epoch_s"] = timing["data_s"] + timing["step_s"]

        val_batches = self.data.val_batches()
        if val_batches is not None:
            val = self.group.broadcast(self.evaluate(val_batches) if self.group.is_main else None)  # rank 0 evaluates
            row.update({f"val/{k}": v for k, v in val.items()})
            self._track_best(val[self.task.monitor], val.get("loss"))
        if isinstance(self.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if val_batches is None:
                raise ValueError("schedule=plateau needs a validation split (data.val_size > 0).")
            self.schedule.step(row[f"val/{self.task.monitor}"])
        if self.cfg.average_last_epochs:
            self._keep_epoch_weights(state.epoch + 1)
        row["time/elapsed_s"] = self._elapsed()
        state.history.append(row)
        state.epoch += 1
        state.batch_in_epoch = 0
        state.epoch_sums = {}
        state.epoch_timing = {}
        log.info("epoch %d: %s", row["epoch"], "  ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "epoch"))
        self._log(row)
        if hasattr(self.task, "epoch_figures") and self.group.is_main:  # e.g. a GAN's fixed-noise samples
            figures = self.task.epoch_figures(self.model, row["epoch"])
            if figures and self.logger is not None:
                self.logger.log_images(figures, step=state.step)
        self.save_checkpoint()
        if self.epoch_callback is not None:
            self._call_on_every_rank(self.epoch_callback, row)

    def _call_on_every_rank(self, callback, row: dict) -> None:
        """``callback(row)`` on rank 0; an exception it raises (a pruned trial) is raised on every process."""
        error = None
        if self.group.is_main:
            try:
                callback(row)
            except Exception as err:  # noqa: BLE001 - handed to every process, then raised
                error = err
        error = self.group.broadcast(error)
        if error is not None:
            raise error

    def _track_best(self, value: float, loss: float | None) -> None:
        """A better monitored value wins; an equal one wins with a lower validation loss
        (BLEU or accuracy often plateau on small validation sets while the loss still falls)."""
        state = self.state
        sign = 1 if self.task.monitor_mode == "max" else -1
        tie_break = -loss if loss is not None else 0.0
        better = state.best_metric is None or (sign * value, tie_break) > (
            sign * state.best_metric,
            -state.best_loss if state.best_loss is not None else 0.0,
        )
        if better:
            state.best_metric, state.best_loss, state.best_epoch, state.bad_epochs = value, loss, state.epoch + 1, 0
            if self.group.is_main:
                checkpoint.save_atomic({"model": self.model.state_dict(), "epoch": state.epoch + 1}, self.best_checkpoint)
        else:
            state.bad_epochs += 1

    def _keep_epoch_weights(self, epoch: int) -> None:
        """Save this epoch's weights and drop the ones that fell out of the averaging window."""
        if not self.group.is_main:
            return
        checkpoint.save_atomic({"model": self.model.state_dict(), "epoch": epoch}, self.run_dir / checkpoint.EPOCH.format(epoch))
        (self.run_dir / checkpoint.EPOCH.format(epoch - self.cfg.average_last_epochs)).unlink(missing_ok=True)

    def _should_stop_early(self) -> bool:
        patience = self.cfg.early_stopping_patience
        return patience is not None and self.state.bad_epochs >= patience

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, batches: Iterable[Any], split: str = "val") -> dict[str, float]:
        if self.cfg.limit_eval_batches is not None:
            batches = itertools.islice(batches, self.cfg.limit_eval_batches)
        self.model.eval()
        with autocast(self.device, self.amp_dtype):
            metrics = self.task.evaluate(self.model, (self._to_device(b) for b in batches), split)
        self.model.train()
        return metrics

    def test(self) -> dict[str, float]:
        """Evaluate on the test split with the average of the last ``average_last_epochs`` epochs'
        weights if set, else the best-by-validation weights (the last ones if no validation)."""
        if self.cfg.average_last_epochs and self.state.epoch >= 1:
            last = self.state.epoch
            epochs = [e for e in range(last - self.cfg.average_last_epochs + 1, last + 1) if e >= 1]
            paths = [self.run_dir / checkpoint.EPOCH.format(e) for e in epochs]
            missing = [str(p) for p in paths if not p.exists()]
            if missing:
                raise FileNotFoundError(f"Checkpoint averaging needs {', '.join(missing)}; they were not kept.")
            averaged = checkpoint.average(paths)
            checkpoint.save_atomic({"model": averaged, "epochs": epochs}, self.run_dir / checkpoint.AVERAGED)
            self.model.load_state_dict(averaged)
            self.test_weights = f"average of epochs {epochs[0]}-{epochs[-1]}"
        elif self.best_checkpoint.exists():
            self.model.load_state_dict(checkpoint.load(self.best_checkpoint, self.device)["model"])
            self.test_weights = f"best validation epoch {self.state.best_epoch}"
        else:
            self.test_weights = f"last epoch {self.state.epoch}"
        log.info("Testing with the %s weights.", self.test_weights)
        return self.evaluate(self.data.test_batches(), split="test")

    # ------------------------------------------------------------------ helpers
    def _to_device(self, batch):
        memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format

        def move(x):
            if isinstance(x, torch.Tensor):
                x = x.to(self.device, non_blocking=True)
                return x.contiguous(memory_format=memory_format) if x.ndim == 4 else x
            if isinstance(x, dict):
                return {k: move(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return type(x)(move(v) for v in x)
            return x

        return move(batch)

    def _log(self, values: dict[str, float]) -> None:
        if self.logger is not None:
            self.logger.log(values, step=self.state.step)

    @contextlib.contextmanager
    def stop_at_once_on_signal(self) -> Iterator[None]:
        """After training (test, figures): SIGINT/SIGTERM stop at once with TrainingInterrupted;
        the training itself is complete and saved in last.pt."""

        def stop(signum, frame):
            log.warning(
                "Received %s after training (during the test); the trained state is in %s.",
                signal.Signals(signum).name,
                self.last_checkpoint,
            )
            raise TrainingInterrupted(signum)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:
        if self._stop_signal is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        log.warning("Received %s: saving a checkpoint after this step, then stopping.", signal.Signals(signum).name)
        self._stop_signal = signum


COMPILE_MODES = ("none", "model", "attention")


def data_parallel(model: nn.Module, group: Distributed, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel when ``group`` spans several processes (rank 0's
    initial weights and buffers are broadcast, gradients averaged in the backward pass)."""
    if not group.active:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (tasks reach its attributes through this)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def compile_model(model: nn.Module, mode: str) -> None:
    """torch.compile (inductor) in place, parameter names unchanged: the whole ``model``, or only
    the modules its ``attention_modules()`` names. On a CPU the backbone's convolutions are
    already library kernels and compiling them can cost time; the attention modules' pooling,
    gating and products are many small memory-bound operations, which compilation can fuse (the
    gain is not yet reproducible here: results/bench_cnn_attention.md)."""
    if mode == "model":
        model.compile()
    elif mode == "attention":
        for module in model.attention_modules() if hasattr(model, "attention_modules") else []:
            module.compile()


def batches_per_epoch(cfg: TrainerConfig, num_train_batches: int) -> int:
    """Optimizer steps in one epoch: all the data's batches, or the first ``limit_train_batches``."""
    limit = cfg.limit_train_batches
    return num_train_batches if limit is None else min(limit, num_train_batches)


def _accumulate(into: dict[str, float], **values: float) -> None:
    for key, value in values.items():
        into[key] = into.get(key, 0.0) + value


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
