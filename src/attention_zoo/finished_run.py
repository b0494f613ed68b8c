"""Reopen a finished run: its resolved config, data and model with the weights its test used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from attention_zoo.build import build_data, build_model
from attention_zoo.engine import checkpoint


def load_run(
    run_dir: Path,
    data_root: Path | None = None,
    device: str | torch.device = "cpu",
    weights: str | None = None,
    test_set: str | None = None,
) -> tuple[DictConfig, Any, nn.Module]:
    """(config, data, model) of ``run_dir`` with the weights its test used (``averaged.pt`` when the
    run averaged checkpoints, else ``best.pt``), or the checkpoint file named by ``weights``, loaded,
    in eval mode. ``data_root`` replaces the data folder the run used (e.g. when reading the run
    record on another machine); ``test_set`` another Multi30k test set than the run's."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} holds no config.yaml: pass a run directory (runs/<experiment>/<time>).")
    cfg = OmegaConf.load(run_dir / "config.yaml")
    if data_root is not None:
        cfg.data.root = str(data_root)
    if test_set is not None:
        cfg.data.test_set = test_set
    data = build_data(cfg.data, cfg.seed)
    model = build_model(cfg.model, data)
    path = Path(run_dir) / weights if weights else weights_used(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint in the run directory.")
    model.load_state_dict(checkpoint.load(path, device)["model"])
    return cfg, data, model.to(device).eval()


def weights_used(run_dir: Path) -> Path:
    """The checkpoint a run's test used: averaged.pt when it averaged checkpoints, else best.pt."""
    averaged = Path(run_dir) / checkpoint.AVERAGED
    return averaged if averaged.is_file() else Path(run_dir) / checkpoint.BEST
