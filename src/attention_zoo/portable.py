"""A trained model without its training data: load a run folder or one exported file.

A run folder holds what its model needs: ``config.yaml`` (the resolved config), the weights the
test used (``averaged.pt``, ``best.pt`` or ``last.pt``, as metrics.json's ``test_weights`` says)
and ``model_inputs.json`` (the tokenizers or vocabulary, the class names, the image size and
pixel statistics), written by the entrypoint when the run starts.

    attention-zoo-export runs/transformer_cpu/<run> -o transformer.pt
    python -m attention_zoo.portable runs/transformer_cpu/<run> -o transformer.pt

The exported file is one dict of tensors, strings and numbers, which loads with
``torch.load(path, weights_only=True)``: weights, config, model inputs, where the weights came
from and the versions (torch, attention_zoo, git commit) that made them.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from attention_zoo.build import build_data, build_model
from attention_zoo.data.text import encoder_from_state
from attention_zoo.engine import checkpoint
from attention_zoo.engine.run_record import METRICS, write_json_atomic
from attention_zoo.finished_run import weights_used

log = logging.getLogger(__name__)
MODEL_INPUTS = "model_inputs.json"
EXPORT_FORMAT = "attention-zoo-model/1"


@dataclass
class TrainedModel:
    config: dict  # the run's resolved config
    inputs: dict  # model_inputs.json: tokenizers, classes, image size and statistics
    model: nn.Module  # in eval mode, on the device asked for
    source: str  # where the weights came from, for the user and the record

    @property
    def task(self) -> str:
        return self.inputs["task"]

    def encoder(self, key: str):
        """The tokenizer or vocabulary ``key`` ("src", "tgt" or "words") of model_inputs.json."""
        return encoder_from_state(self.inputs[key])


def write_model_inputs(data, run_dir: Path, task: str | None = None) -> None:
    """The data's model inputs; a generation run marks itself (its data is a classifier's)."""
    inputs = data.model_inputs()
    if task == "generation":
        inputs["task"] = "generation"
    write_json_atomic(inputs, run_dir / MODEL_INPUTS)


def load(path: str | Path, device: torch.device | None = None) -> TrainedModel:
    """A run folder or an exported file, as a model ready to predict (on the CPU unless ``device``)."""
    path = Path(path)
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - torch's advice (weights_only=False) is not passed on
            raise ValueError(
                f"{path} is not a model file written by attention-zoo-export, or it is damaged ({type(err).__name__})."
            ) from None
        if not isinstance(stored, dict) or stored.get("format") != EXPORT_FORMAT:
            raise ValueError(f"{path} is not a file written by attention-zoo-export (no format {EXPORT_FORMAT!r} in it).")
        config, inputs, weights, source = stored["config"], stored["inputs"], stored["weights"], stored["weights_from"]
    elif (path / "config.yaml").is_file():
        config = OmegaConf.to_container(OmegaConf.load(path / "config.yaml"))
        inputs = run_model_inputs(path, config)
        weights, source = tested_weights(path)
    else:
        raise FileNotFoundError(
            f"No trained model at {path}: pass a run folder (it holds config.yaml and best.pt or last.pt, e.g. "
            "runs/<experiment>/<time>) or a file written by attention-zoo-export."
        )
    model = build_model(model_config(config), data_view(config, inputs))
    model.load_state_dict(weights)
    return TrainedModel(config, inputs, model.to(device or torch.device("cpu")).eval(), source)


def run_model_inputs(run_dir: Path, config: dict) -> dict:
    """model_inputs.json of a run; for a run made before it existed, rebuilt from the training
    data once (its tokenizers come from the cached corpus) and written beside the run."""
    stored = run_dir / MODEL_INPUTS
    if stored.is_file():
        return json.loads(stored.read_text())
    log.warning("%s has no %s (made by an older commit): rebuilding it from the training data.", run_dir, MODEL_INPUTS)
    try:
        data = build_data(config["data"], config["seed"])
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{run_dir} has no {MODEL_INPUTS} (it was made before runs stored their tokenizers and image statistics), "
            f"and rebuilding it needs the training data, which is missing: {err}"
        ) from None
    write_model_inputs(data, run_dir, task=config["task"]["name"])
    return json.loads(stored.read_text())


def tested_weights(run_dir: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The weights the run's test used (averaged.pt or best.pt), else the last ones."""
    path = weights_used(run_dir)
    if not path.is_file():
        path = run_dir / checkpoint.LAST
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} holds no weights (averaged.pt, best.pt or last.pt): the run saved no checkpoint yet.")
    return checkpoint.load(path, torch.device("cpu"))["model"], str(path)


def model_config(config: dict) -> dict:
    """The model config to build from: pretrained encoder weights are not fetched (the run's weights replace them)."""
    model = dict(config["model"])
    if "encoder_weights" in model:
        model["encoder_weights"] = None
    return model


def data_view(config: dict, inputs: dict) -> SimpleNamespace:
    """What build_model reads from a data module (vocabulary sizes, tokenizer settings), from model_inputs.json."""
    view = SimpleNamespace(cfg=SimpleNamespace(**config["data"]))
    for key, name in (("src", "src_encoder"), ("tgt", "tgt_encoder"), ("words", "encoder")):
        if key in inputs:
            setattr(view, name, encoder_from_state(inputs[key]))
    return view


def export(run_dir: Path, out: Path) -> Path:
    """One self-contained file of the run's model (see the module docstring)."""
    config = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    weights, source = tested_weights(run_dir)
    metrics = json.loads((run_dir / METRICS).read_text()) if (run_dir / METRICS).is_file() else {}
    bundle: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "config": config,
        "inputs": run_model_inputs(run_dir, config),
        "weights": weights,
        "weights_from": source,
        "versions": {
            "torch": str(torch.__version__),
            "attention_zoo": version("attention-zoo"),
            "git_commit": metrics.get("git_commit"),
        },
        "test": metrics.get("test", {}),
    }
    checkpoint.save_atomic(bundle, out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export a run's model to one file that loads without the training data.")
    parser.add_argument("run_dir", type=Path, help="a run folder, e.g. runs/transformer_cpu/<time>")
    parser.add_argument("-o", "--output", type=Path, help="the file to write (default: <run_dir>/model.pt)")
    args = parser.parse_args(argv)
    if not (args.run_dir / "config.yaml").is_file():
        parser.error(f"{args.run_dir} is not a run folder (no config.yaml in it).")
    out = export(args.run_dir, args.output or args.run_dir / "model.pt")
    print(out)


if __name__ == "__main__":
    main()
