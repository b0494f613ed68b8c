"""Weights & Biases logging that never prompts and never blocks a run.

Modes: ``online`` (falls back to ``offline`` when no credentials are found, printing the
``wandb sync`` command), ``offline`` (everything under the run directory, sync later) and
``disabled``. One W&B run per training run; Hydra multirun jobs share a group.
"""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

log = logging.getLogger(__name__)

MODES = ("online", "offline", "disabled")


def has_credentials() -> bool:
    """An API key in the environment or in ~/.netrc for the W&B host (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
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
        if mode not in MODES:
            raise ValueError(f"Unknown logger.mode {mode!r}; valid: {', '.join(MODES)}.")
        if mode == "online" and not has_credentials():
            log.warning("No W&B credentials (WANDB_API_KEY or `wandb login`): logging offline instead.")
            mode = "offline"
        self.mode = mode
        import wandb

        self._wandb = wandb
        self.run = wandb.init(
            project=cfg["project"],
            entity=cfg.get("entity"),
            group=cfg.get("group"),
            job_type=cfg.get("job_type"),
            tags=list(cfg.get("tags") or []),
            name=cfg.get("name"),
            notes=cfg.get("notes"),
            config=config,
            dir=str(run_dir),
            mode=mode,
            id=run_id,
            resume="allow" if run_id else None,
            settings=wandb.Settings(silent=True, x_disable_stats=not cfg.get("system_metrics", True)),
        )
        # The dashboard summarises each validation metric by its best value, not its last.
        best = "max" if monitor_mode == "max" else "min"
        self.run.define_metric(f"val/{monitor}", summary=best)
        self.run.define_metric("val/loss", summary="min")
        self.run.define_metric("test/*", summary="last")

    @property
    def run_id(self) -> str | None:
        return None if self.mode == "disabled" else self.run.id

    def log(self, values: Mapping[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def log_images(self, images: Mapping[str, str | Path], step: int | None = None) -> None:
        """Log image files (figures) by key."""
        self.run.log({key: self._wandb.Image(str(path)) for key, path in images.items()}, step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        self.run.summary.update(dict(values))

    def finish(self, exit_code: int = 0) -> None:
        offline_dir = getattr(self.run, "dir", None)
        self.run.finish(exit_code=exit_code)
        if self.mode == "offline" and offline_dir:
            log.info("W&B run saved offline; upload it with:  wandb sync %s", Path(offline_dir).parent)
