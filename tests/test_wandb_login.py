"""W&B never blocks a run: wandb resolves the credentials itself (a `wandb login` netrc counts,
whatever host it names), and a server out of reach within logger.init_timeout means offline."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, SMOKE, run_dirs, run_train

PROBE = "from attention_zoo.engine.wandb_logger import has_credentials; print(has_credentials())"


def _has_credentials(env) -> str:
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    ).stdout.strip()


def test_a_netrc_as_wandb_login_writes_it_counts_as_logged_in(train_env, tmp_path):
    env = {**train_env, "HOME": str(tmp_path), "WANDB_MODE": "online"}
    env.pop("WANDB_BASE_URL", None)
    assert _has_credentials(env) == "False"
    write = (
        "import wandb; from wandb.sdk.lib.wbauth import write_netrc_auth; "
        "write_netrc_auth(host=wandb.Settings().base_url, api_key='k' * 40)"
    )  # what `wandb login` calls
    subprocess.run([sys.executable, "-c", write], env=env, check=True, timeout=120)
    assert "api.wandb.ai" not in (tmp_path / ".netrc").read_text()  # wandb 0.31's default host is another one
    assert _has_credentials(env) == "True"


@pytest.mark.slow  # waits out the W&B init timeout: `make test-slow`
def test_a_key_with_an_unreachable_server_falls_back_to_offline_within_the_timeout(train_env, tmp_path):
    env = {
        **train_env,
        "HOME": str(tmp_path),
        "WANDB_MODE": "online",
        "WANDB_API_KEY": "k" * 40,
        "WANDB_BASE_URL": "http://127.0.0.1:9",
    }  # nothing listens on port 9
    start = time.monotonic()
    proc = run_train(env, *SMOKE, "trainer.epochs=1", "logger.init_timeout=3")
    assert time.monotonic() - start < 90
    assert "logging offline instead" in proc.stdout + proc.stderr and "wandb sync" in proc.stdout + proc.stderr
    (run_dir,) = run_dirs(Path(env["ATTN_ZOO_RUNS"]), "resnet_cifar")
    assert list((run_dir / "wandb").glob("offline-run-*"))
