"""Config -> objects: the string-keyed factories behind the Hydra groups data/, model/, task/."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from torch import nn

from attention_zoo.data.cifar import CifarConfig, CifarData
from attention_zoo.models.resnet import CifarResNet, ResNetConfig
from attention_zoo.tasks.classification import ClassificationTask


def _fields(cfg: Mapping[str, Any], drop: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in drop}


def _cifar(cfg: Mapping[str, Any], seed: int) -> CifarData:
    return CifarData(CifarConfig(**_fields(cfg, ("kind",))), seed=seed)


def _cifar_resnet(cfg: Mapping[str, Any]) -> nn.Module:
    options = _fields(cfg, ("name",))
    options["widths"] = tuple(options["widths"])
    return CifarResNet(ResNetConfig(**options))


def _classification(cfg: Mapping[str, Any]) -> ClassificationTask:
    return ClassificationTask(**_fields(cfg, ("name",)))


DATA: dict[str, Callable] = {"cifar": _cifar}
MODELS: dict[str, Callable] = {"cifar_resnet": _cifar_resnet}
TASKS: dict[str, Callable] = {"classification": _classification}


def _pick(registry: dict[str, Callable], key: str, what: str) -> Callable:
    if key not in registry:
        raise ValueError(f"Unknown {what} {key!r}; valid: {', '.join(sorted(registry))}.")
    return registry[key]


def build_data(cfg: Mapping[str, Any], seed: int):
    return _pick(DATA, cfg["kind"], "data.kind")(cfg, seed)


def build_model(cfg: Mapping[str, Any]) -> nn.Module:
    return _pick(MODELS, cfg["name"], "model.name")(cfg)


def build_task(cfg: Mapping[str, Any]):
    return _pick(TASKS, cfg["name"], "task.name")(cfg)
