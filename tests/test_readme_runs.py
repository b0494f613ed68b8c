"""Slow (make test-slow): every `python -m attention_zoo.train` line of the README runs end to end,
as written plus `trainer=smoke`, on tiny data the test writes (CIFAR-10/100 folders, a Multi30k
corpus, Flickr8k in Karpathy's format; the scenes are generated). The fast suite only checks that
the lines compose (test_readme_commands.py).

The only other overrides are the ones tiny data needs (a validation split and figure indices that
fit a few images or sentences) and, for captioning, SPICE off (a minute of Java per evaluation).
Offline (CI), a preset that asks for ImageNet weights (`experiment=show_attend_tell`) must stop
with the message that names the two ways out; it then runs with `model.encoder_weights=null`.
`--cfg job` prints instead of training; `resume=auto` runs after a first run of its experiment; a
placeholder path (`/path/to/...`) stands for a file the user brings.
"""

import json
import shlex
from pathlib import Path

import pytest

from captioning_fixtures import write_flickr8k
from conftest import entrypoint_env, run_dirs, run_train, write_image_folder
from multi30k_corpus import write_corpus
from test_readme_commands import _commands, _first_of_sweep

FITS_TINY_DATA = {  # by the experiment's data: what a dataset of a few dozen items needs
    "cifar": ["data.val_size=20"],
    "multi30k": ["task.figure_sentences=[0]", "data.download=false"],
    "captions": ["task.figure_images=[0]", "task.spice=false"],
}
RUNNABLE = [c for c in _commands() if "/path/to/" not in c]


@pytest.fixture(scope="module")
def readme_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    data = root / "data"
    write_image_folder(data / "cifar10-jpeg", {"train": 12, "test": 4})
    write_image_folder(data / "cifar100-jpeg", {"train": 12, "test": 4})
    write_corpus(data)
    write_flickr8k(data, "karpathy", n_per_split=4)
    return entrypoint_env(data, root)


def _data_kind(args: list[str], env) -> str:
    one_job = [_first_of_sweep(a) for a in args if a != "-m"]
    printed = run_train(env, *one_job, "--cfg", "job", "--package", "data", timeout=120).stdout
    return next(line.split(":")[1].strip() for line in printed.splitlines() if line.startswith("kind:"))


@pytest.mark.slow
def test_the_readme_lists_runnable_commands():
    assert len(RUNNABLE) >= 19


@pytest.mark.slow
@pytest.mark.parametrize("command", RUNNABLE)
def test_readme_train_command_runs_with_trainer_smoke(command, readme_env):
    args = shlex.split(command)[3:]
    if "--cfg" in args:
        assert "experiment_name:" in run_train(readme_env, *args, timeout=120).stdout
        return
    runs = Path(readme_env["ATTN_ZOO_RUNS"])
    resume = "resume=auto" in args
    plain = [a for a in args if a != "resume=auto"]
    extra = ["trainer=smoke", *FITS_TINY_DATA[_data_kind(plain, readme_env)]]
    if resume:  # a first run to resume: stopped after 2 of its 8 steps
        run_train(readme_env, *plain, *extra, "trainer.kill_at_step=2", check=False)
    experiment = next(a.split("=", 1)[1] for a in args if a.startswith("experiment="))
    before = set(run_dirs(runs, experiment)) if (runs / experiment).exists() else set()
    proc = run_train(readme_env, *args, *extra, timeout=600, check=False)
    if proc.returncode != 0 and "Could not get the ImageNet weights" in proc.stderr:  # offline
        assert "model.encoder_weights=/path/to/" in proc.stderr and "model.encoder_weights=null" in proc.stderr
        before = set(run_dirs(runs, experiment))
        proc = run_train(readme_env, *args, *extra, "model.encoder_weights=null", timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    new = [d for d in run_dirs(runs, experiment) if d not in before]
    jobs = 1
    for arg in args if "-m" in args else []:
        jobs *= len(arg.split("=", 1)[1].split(",")) if "," in arg and "[" not in arg else 1
    assert len(new) == jobs
    for run_dir in new:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["limit_train_batches"] == 4, run_dir
        if resume:
            assert metrics["resumed_from"]
