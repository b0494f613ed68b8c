"""Every numeric setting's type and range, checked in one place before any data is loaded.

Hydra checks that groups, options and keys exist; this checks their values: ``optim.lr=abc``,
``data.batch_size=0`` or ``trainer.epochs=0`` stop the run here with the setting, its value and
what it must be, instead of a TypeError deep in the optimizer or a run that "completes" untrained.
A key that the composed config does not have (``model.d_model`` of a ResNet) is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from attention_zoo.engine.trainer import COMPILE_MODES

Rule = tuple[str, Callable[[Any], bool]]  # (what it must be, test)


def _number(
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> Rule:
    kind = "an integer" if integer else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    text = f"{kind}{' ' + ' and '.join(bounds) if bounds else ''}{' or null' if optional else ''}"

    def test(value: Any) -> bool:
        if value is None:
            return optional
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            return False
        if not math.isfinite(value):
            return False
        if low is not None and (value <= low if low_open else value < low):
            return False
        return high is None or (value < high if high_open else value <= high)

    return text, test


def _each(rule: Rule) -> Rule:
    text, test = rule
    return (
        f"a list of {text.removeprefix('a ').removeprefix('an ')}s",
        lambda v: isinstance(v, (list, tuple)) and all(map(test, v)),
    )


POSITIVE = _number(0, low_open=True)
NON_NEGATIVE = _number(0)
COUNT = _number(1, integer=True)
OPTIONAL_COUNT = _number(1, integer=True, optional=True)
PROBABILITY = _number(0, 1, high_open=True)
FRACTION = _number(0, 1)

RULES: dict[str, Rule] = {
    "seed": _number(0, integer=True),
    "logger.init_timeout": POSITIVE,
    # optimizer and schedule
    "optim.lr": POSITIVE,
    "optim.weight_decay": NON_NEGATIVE,
    "optim.momentum": PROBABILITY,
    "optim.betas": _each(PROBABILITY),
    "optim.eps": POSITIVE,
    "optim.rho": PROBABILITY,
    "optim.alpha": PROBABILITY,
    "schedule.warmup_steps": _number(0, integer=True),
    "schedule.milestones": _each(NON_NEGATIVE),
    "schedule.gamma": POSITIVE,
    "schedule.min_lr_ratio": FRACTION,
    "schedule.pct_start": _number(0, 1, low_open=True, high_open=True),
    "schedule.factor": _number(0, 1, low_open=True, high_open=True),
    "schedule.patience": _number(0, integer=True),
    # trainer
    "trainer.epochs": COUNT,
    "trainer.max_steps": OPTIONAL_COUNT,
    "trainer.max_train_minutes": _number(0, low_open=True, optional=True),
    "trainer.limit_train_batches": OPTIONAL_COUNT,
    "trainer.compile": (f"one of {', '.join(COMPILE_MODES)}", lambda v: v in COMPILE_MODES),
    "trainer.limit_eval_batches": OPTIONAL_COUNT,
    "trainer.grad_clip_norm": _number(0, low_open=True, optional=True),
    "trainer.log_every_steps": COUNT,
    "trainer.checkpoint_every_minutes": NON_NEGATIVE,  # 0: after every update
    "trainer.early_stopping_patience": OPTIONAL_COUNT,
    "trainer.average_last_epochs": OPTIONAL_COUNT,
    # data
    "data.batch_size": COUNT,
    "data.eval_batch_size": COUNT,
    "data.val_size": _number(0, integer=True),
    "data.limit_train": OPTIONAL_COUNT,
    "data.max_tokens": COUNT,
    "data.max_sentences": OPTIONAL_COUNT,
    "data.eval_max_tokens": COUNT,
    "data.max_train_len": COUNT,
    "data.min_freq": COUNT,
    "data.vocab_size": _number(8, integer=True),
    "data.max_len": COUNT,
    "data.image_size": COUNT,
    # models
    "model.depth": COUNT,
    "model.embed_dim": COUNT,
    "model.hidden_dim": COUNT,
    "model.attention_dim": COUNT,
    "model.maxout_dim": COUNT,
    "model.num_layers": COUNT,
    "model.d_model": COUNT,
    "model.heads": COUNT,
    "model.d_k": OPTIONAL_COUNT,
    "model.d_v": OPTIONAL_COUNT,
    "model.d_ff": COUNT,
    "model.encoder_layers": COUNT,
    "model.decoder_layers": COUNT,
    "model.max_positions": COUNT,
    "model.dropout": PROBABILITY,
    "model.attention_dropout": PROBABILITY,
    "model.init_range": POSITIVE,
    "model.expected_context_prob": FRACTION,
    # tasks
    "task.label_smoothing": PROBABILITY,
    "task.test_beam": COUNT,
    "task.length_penalty": NON_NEGATIVE,
    "task.max_len_a": NON_NEGATIVE,
    "task.max_len_b": COUNT,
    "task.max_len": COUNT,
    "task.doubly_stochastic": NON_NEGATIVE,
    "task.reinforce_weight": NON_NEGATIVE,
    "task.entropy_weight": NON_NEGATIVE,
    "task.baseline_decay": FRACTION,
}


# schedules whose rate at a step depends on the planned total: a new budget would move the rate
LENGTH_DEPENDENT_SCHEDULES = ("cosine", "onecycle")


def invalid_settings(config: Mapping[str, Any]) -> list[str]:
    """One line per setting of the resolved ``config`` that breaks its rule."""
    problems = []
    schedule = config.get("schedule", {}).get("name")
    if config.get("trainer", {}).get("max_train_minutes") is not None and schedule in LENGTH_DEPENDENT_SCHEDULES:
        problems.append(
            f"trainer.max_train_minutes with schedule={schedule}: the schedule is laid out over a number of steps that a "
            "time budget does not know; use inverse_sqrt, constant, multistep or plateau, or budget in trainer.epochs"
        )
    for key, (must_be, test) in RULES.items():
        node: Any = config
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            if not test(node):
                problems.append(f"{key}={node!r} ({type(node).__name__}): must be {must_be}")
    return problems


def check_config(config: Mapping[str, Any]) -> None:
    problems = invalid_settings(config)
    if problems:
        raise ValueError("Invalid settings; fix them on the command line or in the experiment file:\n  " + "\n  ".join(problems))
