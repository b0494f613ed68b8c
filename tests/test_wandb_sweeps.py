"""The W&B sweep files (sweeps/wandb/*.yaml): each one's command, filled as a W&B agent fills it,
composes with Hydra, optimizes the validation value of its task, and tags its trials."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from attention_zoo.train import CONFIG_DIR
from conftest import REPO

SWEEPS = sorted((REPO / "sweeps" / "wandb").glob("*.yaml"))
MONITOR = {"classification": "acc", "translation": "bleu", "captioning": "bleu4"}


def sampled(space: dict, choice: int):
    """The ``choice``-th value of a parameter's values, or alternately its lower and upper bound."""
    return space["values"][choice % len(space["values"])] if "values" in space else (space["min"], space["max"])[choice % 2]


def agent_command(sweep: dict, choice: int) -> list[str]:
    """The command line a W&B agent would run, with the ``choice``-th sample of every parameter."""
    args = [f"{key}={sampled(space, choice)}" for key, space in sweep["parameters"].items()]  # ${args_no_hyphens}
    filled = {"${env}": [], "${interpreter}": ["python"], "${args_no_hyphens}": args}
    return [part for item in sweep["command"] for part in filled.get(item, [item])]


def test_there_is_one_sweep_per_paper():
    assert {p.stem for p in SWEEPS} >= {"resnet_cifar", "cbam", "nonlocal", "seq2seq", "rnnsearch", "transformer"}
    assert {p.stem for p in SWEEPS} >= {"generalized_attention", "show_attend_tell"}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_a_sweeps_command_composes_and_optimizes_validation(path: Path):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] in ("grid", "random", "bayes") and sweep["metric"]["goal"] == "maximize"
    for choice in (0, 1):
        command = agent_command(sweep, choice)
        assert command[:3] == ["python", "-m", "attention_zoo.train"]
        overrides = command[3:]
        assert "logger.job_type=sweep-trial" in overrides
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides)  # an unknown key or option fails here
        for key, space in sweep["parameters"].items():
            if key in ("block", "attention"):  # config groups: the option's own file is merged
                continue
            node = cfg
            for part in key.split("."):
                node = node[part]
            assert node == sampled(space, choice), key
        assert sweep["metric"]["name"] == f"val/{MONITOR[cfg.task.name]}"  # never the test split
        assert cfg.logger.group == cfg.experiment_name
