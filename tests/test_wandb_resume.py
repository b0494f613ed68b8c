"""A resumed run goes on in its W&B run online; offline (where wandb cannot resume) it is a new
W&B run tagged with the one it continues (the offline case end to end: test_entrypoint's resume test)."""

import pytest

from attention_zoo.engine import wandb_logger


class _Run:
    id = "new-run"

    def define_metric(self, *args, **kwargs):
        pass


@pytest.fixture
def init_calls(monkeypatch):
    import wandb

    calls = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs) or _Run())
    monkeypatch.setattr(wandb_logger, "has_credentials", lambda: True)
    return calls


CFG = {"project": "p", "tags": ["paper"]}


def test_online_a_resumed_run_continues_its_wandb_run(init_calls, tmp_path):
    wandb_logger.WandbLogger({**CFG, "mode": "online"}, tmp_path, {}, "bleu", "max", run_id="abc123")
    (call,) = init_calls
    assert call["id"] == "abc123" and call["resume"] == "allow" and call["tags"] == ["paper"]


def test_offline_a_resumed_run_is_a_new_wandb_run_naming_the_one_it_continues(init_calls, tmp_path):
    wandb_logger.WandbLogger({**CFG, "mode": "offline"}, tmp_path, {}, "bleu", "max", run_id="abc123")
    (call,) = init_calls
    assert call["id"] is None and call["resume"] is None and call["tags"] == ["paper", "resumes:abc123"]


def test_a_fresh_run_gets_no_id_and_no_resume_tag(init_calls, tmp_path):
    wandb_logger.WandbLogger({**CFG, "mode": "online"}, tmp_path, {}, "bleu", "max")
    (call,) = init_calls
    assert call["id"] is None and call["resume"] is None and call["tags"] == ["paper"]
