"""Every experiment and group option composes; bad configs fail with messages naming valid options."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO, SMOKE, run_train

CONFIGS = REPO / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
GROUP_OPTIONS = [
    (group.name, option.stem)
    for group in sorted(CONFIGS.iterdir())
    if group.is_dir() and group.name != "experiment"
    for option in sorted(group.glob("*.yaml"))
]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_resolves(compose_cfg, experiment):
    cfg = compose_cfg([f"experiment={experiment}"])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["experiment_name"] == experiment
    if "num_classes" in resolved["model"]:
        assert resolved["model"]["num_classes"] == resolved["data"]["num_classes"]


# Options that only make sense together with the translation data, model and task.
TRANSLATION = {
    ("data", "multi30k"),
    ("model", "seq2seq"),
    ("model", "rnnsearch"),
    ("model", "transformer"),
    ("task", "translation"),
}
CAPTIONING = {("data", "flickr8k"), ("data", "scenes"), ("model", "show_attend_tell"), ("task", "captioning")}


@pytest.mark.parametrize("group,option", GROUP_OPTIONS)
def test_every_group_option_composes(compose_cfg, group, option):
    context = ["data=multi30k", "model=seq2seq", "task=translation"] if (group, option) in TRANSLATION else []
    if (group, option) in CAPTIONING:
        context = ["data=scenes", "model=show_attend_tell", "task=captioning"]
    if group in ("attention", "ablation", "speedup"):  # variants of the Transformer
        context = ["experiment=transformer_cpu"]
    cfg = compose_cfg([*context, f"{group}={option}"])
    OmegaConf.to_container(cfg, resolve=True)


def test_each_table_3_ablation_changes_only_what_it_names_and_none_is_the_base(compose_cfg):
    from attention_zoo.train import config_differences

    def resolved(*overrides):
        return OmegaConf.to_container(compose_cfg(["experiment=transformer_cpu", *overrides]), resolve=True)

    base = resolved()
    changed = {
        "none": set(),
        "heads_1": {"model.heads"},
        "heads_4": {"model.heads"},
        "heads_16": {"model.heads"},
        "dk_16": {"model.d_k"},
        "no_dropout": {"model.dropout", "model.attention_dropout"},
        "no_label_smoothing": {"task.label_smoothing"},
        "learned_positions": {"model.positions"},
        "pre_ln": {"model.norm_first"},
    }
    assert sorted(changed) == sorted(o for g, o in GROUP_OPTIONS if g == "ablation")
    for option, keys in changed.items():
        assert set(config_differences(resolved(f"ablation={option}"), base)) == keys, option


def test_each_speedup_changes_only_what_it_names_and_keeps_the_rate_per_token(compose_cfg):
    """The ladder's rows differ from transformer_cpu in one respect each. short_warmup is Eq. 3 with
    warmup 400: after step 800 its rate equals the baseline's; big_batch keeps the rate as a
    function of tokens seen (warmup over the same 1.6M batch tokens, same peak)."""
    from attention_zoo.engine.optim import inverse_sqrt_factor
    from attention_zoo.train import config_differences

    def resolved(*overrides):
        return OmegaConf.to_container(compose_cfg(["experiment=transformer_cpu", *overrides]), resolve=True)

    base = resolved()
    assert config_differences(resolved("speedup=none"), base) == {}
    assert config_differences(resolved("speedup=pre_ln"), base) == {"model.norm_first": (False, True)}
    assert config_differences(resolved("speedup=bf16"), base) == {"trainer.precision": ("auto", "bf16")}
    short, big = resolved("speedup=short_warmup"), resolved("speedup=big_batch")
    assert set(config_differences(short, base)) == {"optim.lr", "schedule.warmup_steps"}
    assert set(config_differences(big, base)) == {"data.max_tokens", "schedule.warmup_steps"}

    def rate(cfg, step):
        return cfg["optim"]["lr"] * inverse_sqrt_factor(step, cfg["schedule"]["warmup_steps"])

    assert short["optim"]["lr"] > base["optim"]["lr"] and rate(short, 400) > rate(base, 400)
    for step in (800, 1000, 4000):
        assert rate(short, step) == pytest.approx(rate(base, step), rel=1e-3)
    ratio = big["data"]["max_tokens"] // base["data"]["max_tokens"]
    for step in (100, 400, 1000, 3000):  # big's step s has seen the tokens of the baseline's step ratio * s
        assert rate(big, step) == pytest.approx(rate(base, ratio * step), rel=0.01)  # steps count from 1


def test_cpu_experiment_keeps_he_schedule_fractions(compose_cfg):
    cfg = compose_cfg(["experiment=resnet_cifar_cpu"])
    assert [m / cfg.trainer.epochs for m in cfg.schedule.milestones] == [0.5, 0.75]
    paper = compose_cfg(["experiment=resnet_cifar"])
    assert paper.trainer.epochs == 164 and list(paper.schedule.milestones) == [82, 123]


def test_data_root_follows_the_environment(compose_cfg, monkeypatch):
    monkeypatch.setenv("ATTN_ZOO_DATA", "/somewhere/data")
    cfg = compose_cfg([])
    assert cfg.data.root == "/somewhere/data"


@pytest.mark.parametrize(
    "override,expected",
    [
        ("experiment=resnet_cifar_typo", "Available options"),
        ("optim=lion", "Available options"),
        ("optim.lrr=0.1", "Key 'lrr' is not in struct"),
        ("model.shortcut=C", "valid: A, B"),
        ("data.source=hdf5", "valid: auto, pickle, jpeg"),
        ("trainer.precision=fp8", "valid: auto, fp32, bf16, fp16"),
        ("logger.mode=sometimes", "valid: online, offline, disabled"),
    ],
)
def test_bad_config_exits_nonzero_naming_the_valid_options(train_env, override, expected):
    proc = run_train(train_env, *SMOKE, override, check=False, timeout=120)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr


BAD_VALUES = [
    ("optim.lr=abc", "optim.lr='abc' (str): must be a number > 0"),
    ("optim.lr=-0.1", "optim.lr=-0.1 (float): must be a number > 0"),
    ("data.batch_size=0", "data.batch_size=0 (int): must be an integer >= 1"),
    ("data.batch_size=-4", "data.batch_size=-4 (int): must be an integer >= 1"),
    ("trainer.epochs=0", "trainer.epochs=0 (int): must be an integer >= 1"),
    ("trainer.compile=true", "trainer.compile=True (bool): must be one of none, model, attention"),
    ("trainer.epochs=-1", "trainer.epochs=-1 (int): must be an integer >= 1"),
    ("trainer.max_steps=0", "trainer.max_steps=0 (int): must be an integer >= 1 or null"),
    ("model.widths=[4,8,16] model.depth=2.5", "model.depth=2.5 (float): must be an integer >= 1"),
]


@pytest.mark.parametrize(("override", "expected"), BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_every_bad_value_stops_the_entrypoint_naming_it_before_data_is_read(train_env, override, expected):
    proc = run_train(train_env, *SMOKE, *override.split(), check=False, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and expected in output, output[-2000:]
    assert "cifar10:" not in output  # the data module never ran (it logs its split sizes)
    (metrics,) = Path(train_env["ATTN_ZOO_RUNS"]).glob("**/metrics.json")  # the failed start, marked as such
    assert json.loads(metrics.read_text())["status"] == "failed"


def test_every_preset_passes_the_value_checks(compose_cfg):
    from attention_zoo.config_check import invalid_settings

    for experiment in sorted(p.stem for p in (REPO / "configs" / "experiment").glob("*.yaml")):
        assert invalid_settings(OmegaConf.to_container(compose_cfg([f"experiment={experiment}"]), resolve=True)) == [], experiment


def test_a_time_budget_is_refused_with_a_schedule_laid_out_over_the_planned_steps(compose_cfg):
    from attention_zoo.config_check import invalid_settings

    def problems(overrides):
        return invalid_settings(OmegaConf.to_container(compose_cfg(overrides), resolve=True))

    assert problems(["experiment=transformer_cpu", "trainer.max_train_minutes=30"]) == []  # inverse_sqrt: no total
    (line,) = problems(["experiment=resnet_cifar_cpu", "schedule=cosine", "trainer.max_train_minutes=30"])
    assert "schedule=cosine" in line and "inverse_sqrt" in line
    (line,) = problems(["experiment=transformer_cpu", "trainer.max_train_minutes=0"])
    assert line.startswith("trainer.max_train_minutes=0")


def test_a_setting_added_later_counts_as_the_value_older_records_used():
    from attention_zoo.train import config_differences

    older = {"data": {"kind": "multi30k", "src": "de"}}  # recorded before data.test_set existed
    assert config_differences({"data": {"kind": "multi30k", "src": "de", "test_set": "test2016"}}, older) == {}
    now = {"data": {"kind": "multi30k", "src": "de", "test_set": "test2017"}}
    assert config_differences(now, older) == {"data.test_set": ("test2016", "test2017")}
