"""The console scripts from a built wheel, outside the checkout: the wheel carries the configs.
Built without network (--no-build-isolation, with the test extras' setuptools >= 77)."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_the_console_scripts_of_a_built_wheel_find_their_configs_outside_the_checkout(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("attention_zoo-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("attention_zoo/configs/")}
    expected = {f"attention_zoo/configs/{p.relative_to(REPO / 'configs')}" for p in (REPO / "configs").rglob("*.yaml")}
    assert expected <= shipped  # every config, a new group folder included (pyproject.toml lists them)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "ATTN_ZOO_DATA": str(tmp_path / "data")}
    for script, args, expected_text in (
        ("attention-zoo-train", ["experiment=resnet_cifar", "--cfg", "job"], "experiment_name: resnet_cifar"),
        ("attention-zoo-search", ["--help"], "Optuna"),
        ("attention-zoo-predict", ["--help"], "Translate, caption or classify"),
        ("attention-zoo-export", ["--help"], "loads without the training data"),
    ):
        proc = subprocess.run(
            [str(target / "bin" / script), *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert expected_text in proc.stdout
    located = subprocess.run(
        [sys.executable, "-c", "from attention_zoo.train import CONFIG_DIR; print(CONFIG_DIR)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert Path(located.stdout.strip()) == target / "attention_zoo" / "configs"
