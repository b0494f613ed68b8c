"""Weights & Biases logging that never prompts and never blocks a run.

Modes: ``online``, ``offline`` (everything under the run directory, sync later) and ``disabled``.
Online falls back to offline, printing the ``wandb sync`` command, when wandb finds no
credentials (it resolves them itself: WANDB_API_KEY, its settings files, the netrc entry that
``wandb login`` writes for whatever host it uses), and when the server cannot be reached within
``init_timeout`` seconds. One W&B run per training run; Hydra multirun jobs share a group.
A resumed run goes on in its W&B run when online. Offline, wandb cannot resume (it ignores the
id, and ``wandb sync`` of two offline folders with one id keeps only one of them: wandb issues
3841, 5865), so each offline segment is its own W&B run, tagged ``resumes:<id>`` of the one before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from attention_zoo.choices import check_choice

log = logging.getLogger(__name__)

MODES = ("online", "offline", "disabled")


def has_credentials() -> bool:
    """Whether wandb itself finds an API key (environment, settings, netrc); never prompts."""
    import wandb

    try:
        return bool(wandb.login(prompt=False, verify=False))
    except Exception as err:  # noqa: BLE001 - any failure to find credentials means: log offline
        log.debug("wandb.login found no usable credentials: %s", err)
        return False


class WandbLogger:
    def __init__(
        self,
        cfg: Mapping[str, Any],
        run_dir: Path,
        config: dict,
        monitor: str,
        monitor_mode: str,
        run_id: str | None = None,
    ):
        """``cfg``: mode, project, entity, group, job_type, tags, name; ``config``: the resolved run config."""
        mode = cfg["mode"]
        check_choice("logger.mode", mode, MODES)
        if mode == "online" and not has_credentials():
            log.warning("No W&B credentials (WANDB_API_KEY or `wandb login`): logging offline instead.")
            mode = "offline"
        import wandb

        self._wandb = wandb
        try:
            self.run = self._init(cfg, run_dir, config, mode, run_id)
        except Exception as err:  # noqa: BLE001 - a W&B server out of reach must not stop training
            if mode != "online":
                raise
            log.warning(
                "W&B could not start online within %ss (%s: %s); logging offline instead.",
                cfg.get("init_timeout", 30),
                type(err).__name__,
                str(err)[:200],
            )
            mode = "offline"
            self.run = self._init(cfg, run_dir, config, mode, run_id)
        self.mode = mode
        # The dashboard summarises each validation metric by its best value, not its last.
        best = "max" if monitor_mode == "max" else "min"
        self.run.define_metric(f"val/{monitor}", summary=best)
        self.run.define_metric("val/loss", summary="min")
        self.run.define_metric("test/*", summary="last")

    def _init(self, cfg: Mapping[str, Any], run_dir: Path, config: dict, mode: str, run_id: str | None):
        wandb = self._wandb
        tags = list(cfg.get("tags") or [])
        if run_id and mode != "online":  # see the module docstring: a new W&B run that names the one it continues
            tags.append(f"resumes:{run_id}")
            run_id = None
        return wandb.init(
            project=cfg["project"],
            entity=cfg.get("entity"),
            group=cfg.get("group"),
            job_type=cfg.get("job_type"),
            tags=tags,
            name=cfg.get("name"),
            notes=cfg.get("notes"),
            config=config,
            dir=str(run_dir),
            mode=mode,
            id=run_id,
            resume="allow" if run_id else None,
            settings=wandb.Settings(
                silent=True, x_disable_stats=not cfg.get("system_metrics", True), init_timeout=float(cfg.get("init_timeout", 30))
            ),
        )

    @property
    def run_id(self) -> str | None:
        return None if self.mode == "disabled" else self.run.id

    def log(self, values: Mapping[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def log_images(self, images: Mapping[str, str | Path], step: int | None = None) -> None:
        """Log image files (figures) by key."""
        self.run.log({key: self._wandb.Image(str(path)) for key, path in images.items()}, step=step)

    def log_table(self, key: str, columns: list[str], rows: list[list], step: int | None = None) -> None:
        """A wandb.Table; tensor cells are images: uint8 (3, H, W) pictures or (H, W) maps."""

        def cell(value):
            if isinstance(value, torch.Tensor):
                array = value.permute(1, 2, 0).cpu().numpy() if value.ndim == 3 else value.cpu().numpy()
                return self._wandb.Image(array)
            return value

        self.run.log({key: self._wandb.Table(columns=columns, data=[[cell(v) for v in row] for row in rows])}, step=step)

    def log_artifact(self, name: str, kind: str, files: list[Path], metadata: dict | None = None) -> None:
        """``files`` as one W&B Artifact (uploaded when online; recorded in the offline run, sent by wandb sync)."""
        artifact = self._wandb.Artifact(name, type=kind, metadata=metadata or {})
        for path in files:
            artifact.add_file(str(path))
        self.run.log_artifact(artifact)

    def summary(self, values: Mapping[str, Any]) -> None:
        self.run.summary.update(dict(values))

    def finish(self, exit_code: int = 0) -> None:
        offline_dir = getattr(self.run, "dir", None)
        self.run.finish(exit_code=exit_code)
        if self.mode == "offline" and offline_dir:
            log.info("W&B run saved offline; upload it with:  wandb sync %s", Path(offline_dir).parent)
