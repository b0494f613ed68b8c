"""The Optuna search (attention_zoo/search.py): its files compose, a trial's epochs reach the
pruner through the storage, and a 3-trial study with trainer=smoke resumes from its storage and
becomes a record and a results page; every committed search page is what its records give."""

import json
import subprocess
import sys

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir

from attention_zoo import search, search_record
from attention_zoo.train import CONFIG_DIR, RunPruned, search_reporter
from conftest import REPO, SMOKE

SEARCHES = sorted((REPO / "sweeps" / "optuna").glob("*.yaml"))


@pytest.mark.parametrize("path", SEARCHES, ids=[p.stem for p in SEARCHES])
def test_each_search_file_composes_at_the_ends_of_its_space(path):
    spec = search.load_search(path)
    assert spec["storage"] == f"sqlite:///runs/search/{path.stem}.db"
    for end in (0, -1):
        sampled = [
            f"{name}={p['choices'][end] if p['type'] == 'categorical' else (p['low'], p['high'])[end]}"
            for name, p in spec["params"].items()
        ]
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            compose("train", overrides=[f"experiment={spec['experiment']}", *spec["overrides"], *sampled])


def test_a_search_file_with_a_bad_name_says_what_is_valid(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"experiment": "x", "n_trials": 1, "params": {}, "sampler": {"name": "cmaes"}}))
    with pytest.raises(ValueError, match="valid: tpe, random, grid"):
        search.load_search(path)
    path.write_text(yaml.safe_dump({"experiment": "x"}))
    with pytest.raises(ValueError, match="needs n_trials, params"):
        search.load_search(path)


def test_a_restarted_seeded_search_draws_new_trials(tmp_path):
    spec = search.load_search(REPO / "sweeps" / "optuna" / "transformer_short.yaml")
    spec |= {"storage": f"sqlite:///{tmp_path}/s.db", "sampler": {"name": "tpe", "seed": 0}}

    def draw_and_finish() -> dict:  # one worker process: load the study, run one trial
        study = search.make_study(spec)
        trial = study.ask()
        params = {name: search.suggest(trial, name, param) for name, param in spec["params"].items()}
        study.tell(trial, 1.0)
        return params

    first, after_restart = draw_and_finish(), draw_and_finish()
    assert first != after_restart  # the restarted sampler does not repeat trial 0
    spec["storage"] = f"sqlite:///{tmp_path}/again.db"
    assert draw_and_finish() == first  # and the seed still makes the search reproducible


def test_a_trials_epochs_reach_the_pruner_through_the_storage(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(
        study_name="s",
        storage=storage,
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    first = study.ask()
    for epoch, value in ((1, 0.80), (2, 0.90)):
        first.report(value, epoch)
    study.tell(first, 0.90)
    second = study.ask()
    pruner = {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0}
    report = search_reporter({"storage": storage, "study": "s", "trial_id": second._trial_id, "pruner": pruner}, "acc")
    report({"epoch": 1, "val/acc": 0.85})  # above the median at epoch 1: goes on
    with pytest.raises(RunPruned, match="after epoch 2"):
        report({"epoch": 2, "val/acc": 0.10})  # below it at epoch 2: pruned
    assert study.trials[1].intermediate_values == {1: 0.85, 2: 0.10}
    assert search_reporter({"storage": None}, "acc") is None  # outside a search: no reporting


def test_a_three_trial_smoke_study_resumes_from_its_storage(train_env, tmp_path):
    runs = tmp_path / "search"
    spec = {
        "experiment": "resnet_cifar",
        "overrides": SMOKE[1:],
        "n_trials": 3,
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        "runs_dir": str(runs),
        "params": {"optim.lr": {"type": "float", "low": 1.0e-4, "high": 0.3, "log": True}},
    }
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(spec))

    def search_command(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "attention_zoo.search", str(path), *args, "--", "trainer.epochs=2"]
        return subprocess.run(command, cwd=REPO, env=train_env, capture_output=True, text=True, timeout=900)

    first = search_command("--n-trials", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(list(runs.glob("smoke/trial_*"))) == 2
    again = search_command()  # the file's budget of 3: one trial left
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 3 trials finished" in again.stderr and sorted(p.name for p in runs.glob("smoke/trial_*")) == [
        "trial_0",
        "trial_1",
        "trial_2",
    ]  # only the missing trial ran
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{runs}/smoke.db")
    assert [t.state.name for t in study.trials].count("COMPLETE") + [t.state.name for t in study.trials].count("PRUNED") == 3
    for trial in study.trials:
        metrics = json.loads((runs / "smoke" / f"trial_{trial.number}" / "metrics.json").read_text())
        assert metrics["status"] == {"COMPLETE": "completed", "PRUNED": "pruned"}[trial.state.name]
        assert len(trial.intermediate_values) == metrics["epochs"]  # every epoch reported
        if trial.state.name == "COMPLETE":
            assert trial.value == metrics["best_val"]["value"]  # the objective is validation, not test
    summary = json.loads((runs / "smoke" / "summary.json").read_text())
    assert summary["best"]["value"] == study.best_value and len(summary["trials"]) == 3

    page = search_record.record(runs / "smoke", tmp_path / "results")  # what --record commits
    records = tmp_path / "results" / "search" / "smoke"
    assert sorted(p.name for p in records.iterdir()) == ["summary.json", "trial_0", "trial_1", "trial_2"]
    assert not list(records.glob("**/*.pt")) and (records / "trial_0" / "history.csv").is_file()
    text = page.read_text()
    best = study.best_trial
    assert f"**Best trial**: [trial_{best.number}](search/smoke/trial_{best.number}), validation acc {best.value:.2f}" in text
    rows = [line for line in text.splitlines() if line.startswith("| [trial_")]
    assert len(rows) == 3 and all(f"{t.params['optim.lr']:.4g}" in rows[t.number] for t in study.trials)
    page.write_text(text.replace(search_record.START, "# my reading\n" + search_record.START))
    search_record.record(runs / "smoke", tmp_path / "results")  # filled again: the reading outside the markers stays
    assert page.read_text().startswith("# Search: smoke") and "# my reading" in page.read_text()


COMMITTED = sorted((REPO / "results" / "search").glob("*/summary.json"))


@pytest.mark.parametrize("summary", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_a_committed_search_page_is_what_its_records_give(summary):
    record_dir = summary.parent
    page = REPO / "results" / f"search_{record_dir.name}.md"
    text = page.read_text()
    generated = text.split(search_record.START + "\n", 1)[1].split(search_record.END, 1)[0]
    assert generated == search_record.page_body(record_dir, page)
    trials = json.loads(summary.read_text())["trials"]
    assert sorted(p.name for p in record_dir.glob("trial_*")) == sorted(f"trial_{t['number']}" for t in trials)
    assert not list(record_dir.glob("**/*.pt"))  # records, never checkpoints
