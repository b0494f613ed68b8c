"""Config -> objects: the string-keyed factories behind the Hydra groups data/, model/, task/."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from attention_zoo.data.captions import CaptionConfig, CaptionData
from attention_zoo.data.cifar import CifarConfig, CifarData
from attention_zoo.data.translation import TranslationConfig, TranslationData
from attention_zoo.data.videos import VideoConfig, VideoData
from attention_zoo.models.c2d import C2D
from attention_zoo.models.resnet import CifarResNet, ResNetConfig
from attention_zoo.models.rnnsearch import RNNSearch, RNNSearchConfig
from attention_zoo.models.sagan import SAGAN, SAGANConfig
from attention_zoo.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attention_zoo.models.show_attend_tell import ShowAttendTell, ShowAttendTellConfig
from attention_zoo.models.transformer import Transformer, TransformerConfig
from attention_zoo.tasks.captioning import CaptioningTask
from attention_zoo.tasks.classification import ClassificationTask
from attention_zoo.tasks.generation import GenerationTask
from attention_zoo.tasks.translation import TranslationTask
from attention_zoo.tasks.video_classification import VideoClassificationTask


def _fields(cfg: Mapping[str, Any], drop: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in drop}


def _resnet_config(cfg: Mapping[str, Any]) -> ResNetConfig:
    options = _fields(cfg, ("name",))
    options["widths"] = tuple(options["widths"])
    options["non_local_stages"] = tuple(options["non_local_stages"])
    options["deformable_stages"] = tuple(options.get("deformable_stages", ()))
    options["non_local_after_blocks"] = tuple(tuple(pair) for pair in options.get("non_local_after_blocks", ()))
    return ResNetConfig(**options)


def _vocab_sizes(data) -> dict[str, int]:
    return {"src_vocab": data.src_encoder.vocab_size, "tgt_vocab": data.tgt_encoder.vocab_size}


def _transformer(cfg: Mapping[str, Any], data) -> nn.Module:
    joint = data.cfg.tokenizer != "moses" and data.cfg.joint_vocab
    if cfg["share_embeddings"] == "all" and not joint:
        raise ValueError(
            "model.share_embeddings=all ties the source and target embeddings and needs one vocabulary for both "
            f"languages, but data.tokenizer={data.cfg.tokenizer} data.joint_vocab={data.cfg.joint_vocab}. Set "
            "data.tokenizer=bpe data.joint_vocab=true, or model.share_embeddings=decoder."
        )
    options = _fields(cfg, ("name",))
    options["attention_types"] = dict(options["attention_types"])
    return Transformer(TransformerConfig(**_vocab_sizes(data), **options))


DATA: dict[str, Callable] = {
    "captions": lambda cfg, seed: CaptionData(CaptionConfig(**_fields(cfg, ("kind",))), seed=seed),
    "cifar": lambda cfg, seed: CifarData(CifarConfig(**_fields(cfg, ("kind",))), seed=seed),
    "multi30k": lambda cfg, seed: TranslationData(TranslationConfig(**_fields(cfg, ("kind",))), seed=seed),
    "videos": lambda cfg, seed: VideoData(VideoConfig(**_fields(cfg, ("kind",))), seed=seed),
}
MODELS: dict[str, Callable] = {
    "cifar_resnet": lambda cfg, data: CifarResNet(_resnet_config(cfg)),
    "c2d": lambda cfg, data: C2D(_resnet_config(cfg)),
    "seq2seq": lambda cfg, data: Seq2Seq(Seq2SeqConfig(**_vocab_sizes(data), **_fields(cfg, ("name",)))),
    "rnnsearch": lambda cfg, data: RNNSearch(RNNSearchConfig(**_vocab_sizes(data), **_fields(cfg, ("name",)))),
    "transformer": _transformer,
    "show_attend_tell": lambda cfg, data: ShowAttendTell(
        ShowAttendTellConfig(vocab_size=data.encoder.vocab_size, **_fields(cfg, ("name",)))
    ),
    "sagan": lambda cfg, data: SAGAN(SAGANConfig(**_fields(cfg, ("name",)))),
}
TASKS: dict[str, Callable] = {
    "captioning": lambda cfg, data, run_dir, device: CaptioningTask(data, run_dir, **_fields(cfg, ("name",))),
    "classification": lambda cfg, data, run_dir, device: ClassificationTask(data, run_dir, **_fields(cfg, ("name",))),
    "generation": lambda cfg, data, run_dir, device: GenerationTask(data, run_dir, device=device, **_fields(cfg, ("name",))),
    "translation": lambda cfg, data, run_dir, device: TranslationTask(data, run_dir, **_fields(cfg, ("name",))),
    "video_classification": lambda cfg, data, run_dir, device: VideoClassificationTask(data, run_dir, **_fields(cfg, ("name",))),
}


def _pick(registry: dict[str, Callable], key: str, what: str) -> Callable:
    if key not in registry:
        raise ValueError(f"Unknown {what} {key!r}; valid: {', '.join(sorted(registry))}.")
    return registry[key]


def build_data(cfg: Mapping[str, Any], seed: int):
    return _pick(DATA, cfg["kind"], "data.kind")(cfg, seed)


# settings that only one model has, and the config group that sets them
MODEL_ONLY = {
    "attention_types": (("transformer",), "attention"),
    "block_attention": (("cifar_resnet", "c2d"), "block"),
    "non_local_stages": (("cifar_resnet", "c2d"), "block"),
    "attention_at": (("sagan",), "gan_attention"),
}


def build_model(cfg: Mapping[str, Any], data) -> nn.Module:
    for key, (models, group) in MODEL_ONLY.items():
        if key in cfg and cfg["name"] not in models:
            raise ValueError(
                f"The {group} variants ({group}=..., model.{key}) apply to model={'|'.join(models)}, not {cfg['name']}."
            )
    return _pick(MODELS, cfg["name"], "model.name")(cfg, data)


def build_task(cfg: Mapping[str, Any], data, run_dir: Path | None, device=None):
    """``device``: where a task's own networks run (the generation task's feature classifier)."""
    return _pick(TASKS, cfg["name"], "task.name")(cfg, data, run_dir, device)
