"""Optimizers and learning-rate schedules from config.

Every schedule except ``plateau`` is stepped once per optimizer step, so a resumed run
lands on exactly the learning rate an uninterrupted run would have used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta", "rmsprop")
SCHEDULES = ("constant", "multistep", "cosine", "onecycle", "inverse_sqrt", "plateau")


def build_optimizer(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """``cfg``: name, lr, weight_decay, decay_norm_and_bias, and the optimizer's own keys; and
    ``group_lr`` ({group: lr}) for a model whose ``named_parameter_groups()`` splits its
    parameters (a GAN's generator and discriminator: TTUR), each group without an entry at ``lr``."""
    name = cfg["name"]
    if hasattr(model, "named_parameter_groups"):
        params = _named_groups(model.named_parameter_groups(), cfg.get("group_lr") or {}, cfg["weight_decay"])
    elif cfg.get("group_lr"):
        raise ValueError(f"optim.group_lr={dict(cfg['group_lr'])} needs a model with named parameter groups (a GAN); drop it.")
    else:
        params = _param_groups(model, cfg["lr"], cfg["weight_decay"], cfg.get("decay_norm_and_bias", True))
    lr = cfg["lr"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"])
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, betas=tuple(float(b) for b in cfg["betas"]), eps=cfg["eps"])
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=cfg["rho"], eps=cfg["eps"])
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=cfg["alpha"], eps=cfg["eps"], momentum=cfg["momentum"])
    raise ValueError(f"Unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}.")


def _param_groups(model: nn.Module, lr: float, weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    """He et al. decay every weight; transformers usually spare norms and biases (1-D tensors).
    A module with an ``lr_mult`` attribute (a deformable convolution's offset layer) gets its
    parameters their own groups at ``lr_mult`` times the rate (mmcv's ``dcn_offset_lr_mult``)."""
    multiplied = {id(p): m.lr_mult for m in model.modules() if hasattr(m, "lr_mult") for p in m.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    if decay_norm_and_bias:
        groups = [{"params": trainable, "weight_decay": weight_decay}]
    else:
        decayed = [p for p in trainable if p.ndim > 1]
        spared = [p for p in trainable if p.ndim <= 1]
        groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": spared, "weight_decay": 0.0}]
    for group in list(groups):
        by_mult: dict[float, list[nn.Parameter]] = {}
        for p in group["params"]:
            if id(p) in multiplied:
                by_mult.setdefault(multiplied[id(p)], []).append(p)
        group["params"] = [p for p in group["params"] if id(p) not in multiplied]
        groups += [{"params": params, "weight_decay": group["weight_decay"], "lr": lr * mult} for mult, params in by_mult.items()]
    return groups


def _named_groups(groups: Mapping[str, list[nn.Parameter]], group_lr: Mapping[str, float], weight_decay: float) -> list[dict]:
    """One optimizer parameter group per named group. Adam keeps its moments and step count per
    parameter, so this is the same as one optimizer per group."""
    unknown = sorted(set(group_lr) - set(groups))
    if unknown:
        raise ValueError(f"optim.group_lr names {', '.join(unknown)}; this model's parameter groups are: {', '.join(groups)}.")
    return [
        {"params": params, "weight_decay": weight_decay, "name": name, **({"lr": group_lr[name]} if name in group_lr else {})}
        for name, params in groups.items()
    ]


def build_schedule(
    optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], steps_per_epoch: int, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """Learning-rate schedule; epoch-valued settings are converted to optimizer steps."""
    name = cfg["name"]
    warmup = int(cfg.get("warmup_steps", 0))
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _linear_warmup(step, warmup))
    if name == "multistep":
        milestones = [int(epoch * steps_per_epoch) for epoch in cfg["milestones"]]
        gamma = cfg["gamma"]

        def multistep(step: int) -> float:
            return _linear_warmup(step, warmup) * gamma ** sum(step >= m for m in milestones)

        return torch.optim.lr_scheduler.LambdaLR(optimizer, multistep)
    if name == "cosine":
        floor = cfg["min_lr_ratio"]

        def cosine(step: int) -> float:
            progress = min(1.0, max(0, step - warmup) / max(1, total_steps - warmup))
            return _linear_warmup(step, warmup) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=total_steps,
            pct_start=cfg["pct_start"],
            div_factor=cfg["div_factor"],
            final_div_factor=cfg["final_div_factor"],
        )
    if name == "inverse_sqrt":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: inverse_sqrt_factor(step, warmup))
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=cfg["mode"], factor=cfg["factor"], patience=cfg["patience"]
        )
    raise ValueError(f"Unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}.")


def inverse_sqrt_factor(step: int, warmup: int) -> float:
    """Eq. 3 of Vaswani et al. 2017 divided by its peak value, so that ``optim.lr`` is the peak.

    lrate = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), peaking at step == warmup;
    the d_model^-0.5 * warmup^-0.5 peak is folded into ``optim.lr``. Steps count from 1.
    """
    step = step + 1
    warmup = max(1, warmup)
    return min(step**-0.5, step * warmup**-1.5) * warmup**0.5


def _linear_warmup(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
