"""Data-parallel training over several processes (torchrun, or SLURM tasks through submitit).

    torchrun --standalone --nproc_per_node=2 -m attention_zoo.train experiment=rnnsearch_cpu

How a run is split (see the Trainer for the step itself):

- every process computes the same global batch order (a pure function of seed and epoch) and
  builds only its own contiguous shard of each batch (``Distributed.rows`` / ``take``), so the
  global batch, the number of steps and the schedule are those of one process, and a resumed run
  starts mid-epoch exactly where it stopped;
- each process's loss is rescaled so that the gradient DDP averages is the mean over the *global*
  items (target tokens, images): ``loss_r * count_r * world / global_count``, as fairseq
  normalizes by the global number of target tokens;
- rank 0 alone evaluates, writes the run folder, checkpoints and W&B; the others receive its
  validation numbers; every process stores its RNG state in the checkpoint and restores its own.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

RUN_STAMP_ENV = "ATTN_ZOO_RUN_STAMP"  # the run folder's timestamp, chosen by rank 0 (configs/train.yaml)
# Rank 0 evaluates (beam search over a whole split) while the others wait in a collective.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=3)


@dataclass(frozen=True)
class Distributed:
    """This process's place among ``world_size`` data-parallel processes (1 = no distribution)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    # ------------------------------------------------------------------ shards of a batch
    def rows(self, items: Sequence) -> Sequence:
        """This process's contiguous share of ``items`` (sizes differ by at most one)."""
        if not self.active:
            return items
        if len(items) < self.world_size:
            raise ValueError(
                f"A batch of {len(items)} items cannot be split over {self.world_size} processes; "
                "raise the batch size (data.batch_size or data.max_tokens) or use fewer processes."
            )
        base, extra = divmod(len(items), self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return items[start : start + base + (self.rank < extra)]

    def take(self, batch: Any) -> Any:
        """This process's rows of every tensor of ``batch`` (a tensor, tuple, list or dict of them)."""
        if not self.active:
            return batch
        if isinstance(batch, torch.Tensor):
            return self.rows(batch)
        if isinstance(batch, dict):
            return {key: self.take(value) for key, value in batch.items()}
        return type(batch)(self.take(value) for value in batch)

    # ------------------------------------------------------------------ collectives
    def sum(self, values: Sequence[float], device: torch.device) -> list[float]:
        """Element-wise sum of ``values`` over the processes (float64)."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process (any picklable object)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order, on every process."""
        if not self.active:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values


SINGLE_PROCESS = Distributed()


def from_environment() -> Distributed:
    """Join the process group that the launcher describes, once: torchrun's RANK/WORLD_SIZE/
    LOCAL_RANK, or a submitit job of several tasks (``hydra/launcher=slurm``: one task per GPU),
    whose environment submitit translates. gloo on the CPU, nccl on GPUs (one per local rank)."""
    if "RANK" not in os.environ and submitit_tasks() > 1:
        import submitit

        # RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT; every task sees the node's GPUs and takes its local rank's
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return SINGLE_PROCESS
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return Distributed(rank, world_size, local_rank)


def submitit_tasks() -> int:
    """Tasks of this submitit job (a SLURM job, or the local executor's dry run of one)."""
    return int(os.environ.get("SLURM_NTASKS") or os.environ.get("SUBMITIT_LOCAL_NTASKS") or 1)


def agree_on_run_stamp() -> list[str]:
    """Before Hydra composes the config in each process: make every rank use rank 0's timestamp
    for the run folder (``RUN_STAMP_ENV``), and keep the others from writing Hydra's files or
    logging into it. Returns the extra Hydra overrides for this process."""
    group = from_environment()
    if not group.active:
        return []
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    os.environ.setdefault(RUN_STAMP_ENV, group.broadcast(stamp))
    if group.is_main:
        return []
    return ["hydra.output_subdir=null", "hydra.job_logging.root.handlers=[console]"]


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
