"""Every `python -m attention_zoo.train` line of the README's code blocks composes as written
(multirun lines with the first value of each swept setting; lines that need a finished run,
`resume=runs/...<time>`, are left out), and every `make` target it names exists."""

import re
import shlex
import subprocess

import pytest

from conftest import REPO

README = (REPO / "README.md").read_text()


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("python -m attention_zoo.train") and "<time>" not in line:
                lines.append(line)
    return lines


def _first_of_sweep(override: str) -> str:
    key, _, value = override.partition("=")
    return f"{key}={value.split(',')[0]}" if "," in value and not value.startswith("[") else override


@pytest.mark.parametrize("command", _commands())
def test_readme_train_command_composes(command, compose_cfg):
    args = [a for a in shlex.split(command)[3:] if a not in ("-m", "--cfg", "job")]
    cfg = compose_cfg([_first_of_sweep(a) for a in args])
    assert cfg.experiment_name


def test_the_readme_lists_more_than_a_handful_of_commands():
    assert len(_commands()) >= 20


def test_every_make_target_the_readme_names_exists():
    targets = set(re.findall(r"`make ([a-z][a-z0-9-]+)", README)) | set(
        re.findall(r"^make ([a-z][a-z0-9-]+)", README, flags=re.M)
    )
    listed = subprocess.run(["make", "-pRrq", "-f", "Makefile"], cwd=REPO, capture_output=True, text=True).stdout
    defined = set(re.findall(r"^([a-z][a-z0-9-]+):", listed, flags=re.M))
    assert targets and targets <= defined, targets - defined
