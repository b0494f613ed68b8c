"""SAGAN as a task of the one trainer: TTUR parameter groups, one discriminator then one generator
update per batch (each touching only its own player), the moving average of G, evaluation in a
fixed classifier's feature space, per-epoch sample grids, the attention figure, and exact resume."""

import csv
import json
import shutil
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from attention_zoo.engine.optim import build_optimizer, build_schedule
from attention_zoo.engine.trainer import Trainer, TrainerConfig
from attention_zoo.models.sagan import SAGAN, SAGANConfig
from attention_zoo.tasks.generation import GenerationTask
from attention_zoo.wandb_records import logged_history
from conftest import REPO, SMOKE, entrypoint_env, load_script, run_dirs, run_train

gan_noise = load_script("gan_noise")

GAN_SMOKE = [
    "experiment=sagan",
    "trainer=smoke",
    "model.g_width=16",
    "model.d_width=16",
    "model.z_dim=16",
    "data.val_size=20",
    "data.batch_size=16",
    "data.eval_batch_size=64",
]
TTUR = {"name": "adam", "lr": 1e-4, "betas": [0.0, 0.9], "eps": 1e-8, "weight_decay": 0.0, "group_lr": {"discriminator": 4e-4}}


@pytest.fixture(scope="module")
def work(tiny_data_root, tmp_path_factory):
    """The environment and a trained tiny CIFAR classifier run (the metrics' feature network)."""
    root = tmp_path_factory.mktemp("sagan")
    env = entrypoint_env(tiny_data_root, root)
    run_train(env, *SMOKE, "trainer.epochs=1", "task.figure_images=[]")
    (classifier,) = run_dirs(root / "runs", "resnet_cifar")
    return SimpleNamespace(env=env, runs=root / "runs", classifier=classifier)


def tiny_gan(ema_decay=None, attention_at=(16,)) -> SAGAN:
    torch.manual_seed(0)
    return SAGAN(SAGANConfig(z_dim=8, g_width=16, d_width=16, attention_at=list(attention_at), ema_decay=ema_decay))


def test_ttur_gives_each_player_its_learning_rate_and_adam_betas():
    gan = tiny_gan()
    optimizer = build_optimizer(gan, TTUR)
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert groups["generator"]["lr"] == 1e-4 and groups["discriminator"]["lr"] == 4e-4
    assert all(group["betas"] == (0.0, 0.9) for group in optimizer.param_groups)
    assert {id(p) for p in groups["generator"]["params"]} == {id(p) for p in gan.generator.parameters()}
    assert {id(p) for p in groups["discriminator"]["params"]} == {id(p) for p in gan.discriminator.parameters()}


def test_an_unknown_group_is_refused_naming_the_models_groups():
    expected = "optim.group_lr names critic; this model's parameter groups are: generator, discriminator"
    with pytest.raises(ValueError, match=expected):
        build_optimizer(tiny_gan(), {**TTUR, "group_lr": {"critic": 1e-3}})


class Recording(GenerationTask):
    """The task, with a snapshot of both players before each loss and after the last update."""

    def __init__(self, gan):  # no feature network: training only
        self.d_steps, self.snapshots = 1, []
        self.gan = gan

    def snapshot(self):
        return {name: [p.detach().clone() for p in params] for name, params in self.gan.named_parameter_groups().items()}

    def training_steps(self, model, batch):
        for out in super().training_steps(model, batch):
            self.snapshots.append(self.snapshot())
            yield out
        self.snapshots.append(self.snapshot())


def changed(before, after) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, after))


def test_a_batch_updates_the_discriminator_then_the_generator_each_alone(tmp_path):
    gan = tiny_gan(ema_decay=0.5)
    task = Recording(gan)
    optimizer = build_optimizer(gan, TTUR)
    schedule = build_schedule(optimizer, {"name": "constant"}, 1, 1)
    data = SimpleNamespace(num_train_batches=1)
    config = TrainerConfig(epochs=1, progress_bar=False)
    trainer = Trainer(config, gan, task, data, optimizer, schedule, tmp_path, torch.device("cpu"))
    ema_before = [p.detach().clone() for p in gan.generator_ema.parameters()]
    batch = (torch.rand(8, 3, 32, 32) * 2 - 1, torch.randint(10, (8,)))
    out = trainer._optimizer_step(batch)
    before_d, before_g, after = task.snapshots
    assert changed(before_d["discriminator"], before_g["discriminator"])  # the D step moved D ...
    assert not changed(before_d["generator"], before_g["generator"])  # ... and not G
    assert changed(before_g["generator"], after["generator"])  # the G step moved G ...
    assert not changed(before_g["discriminator"], after["discriminator"])  # ... and not D, which it goes through
    assert all(p.requires_grad for p in gan.discriminator.parameters())  # D is trainable again for the next batch
    # the moving average after G's update: ema = 0.5 ema + 0.5 G
    for averaged, old, current in zip(gan.generator_ema.parameters(), ema_before, gan.generator.parameters()):
        assert torch.allclose(averaged, 0.5 * old + 0.5 * current)
    assert {"d_loss", "d_real", "d_fake", "loss"} <= out.sums.keys() and trainer.state.step == 1


def test_several_discriminator_steps_split_the_batch():
    gan = tiny_gan()
    task = Recording(gan)
    task.d_steps = 2
    outputs = list(task.training_steps(gan, (torch.zeros(6, 3, 32, 32), torch.arange(6))))
    assert [out.count for out in outputs] == [3, 3, 3]  # two D steps of 3 images, then G on 3


def test_evaluation_samples_the_moving_average_with_fixed_noise(work):
    gan = tiny_gan(ema_decay=0.9)
    task = GenerationTask(feature_classifier=str(work.classifier))
    real = [(torch.rand(20, 3, 32, 32) * 2 - 1, torch.arange(20) % 10)]
    first = task.evaluate(gan, real)
    assert first == task.evaluate(gan, real)  # the same weights score the same: the noise is fixed
    with torch.no_grad():
        gan.generator.out_conv.parametrizations.weight.original.mul_(-3)  # G, not its average, changes
    assert task.evaluate(gan, real) == first
    with torch.no_grad():
        gan.generator_ema.out_conv.parametrizations.weight.original.mul_(-3)
    assert task.evaluate(gan, real) != first
    assert set(first) == {"fid", "precision", "recall"}


def test_the_test_split_adds_the_published_metrics_when_inception_weights_are_given(work, inception_file):
    gan = tiny_gan()
    task = GenerationTask(feature_classifier=str(work.classifier), inception_weights=str(inception_file))
    real = [(torch.rand(10, 3, 32, 32) * 2 - 1, torch.arange(10))]
    assert set(task.evaluate(gan, real, split="val")) == {"fid", "precision", "recall"}  # Inception: test only
    scores = task.evaluate(gan, real, split="test")
    assert {"inception_fid", "inception_score", "inception_score_std"} <= set(scores)


def test_the_feature_network_must_exist_and_the_message_says_how_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make feature-classifier"):
        GenerationTask(feature_classifier=str(tmp_path / "nowhere.pt"))


def test_the_minus_one_one_normalization_maps_pixels_onto_the_tanh_range(tiny_data_root, compose_cfg):
    from omegaconf import OmegaConf

    from attention_zoo.build import build_data

    overrides = ["experiment=sagan", f"paths.data_dir={tiny_data_root}", "data.val_size=20"]
    cfg = OmegaConf.to_container(compose_cfg(overrides), resolve=True)
    data = build_data({**cfg["data"], "cache_dir": str(tiny_data_root / "cache")}, seed=0)
    pixels = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 2, 1).expand(1, 3, 2, 1)
    assert data.normalize(pixels).flatten().tolist() == [-1, 1, -1, 1, -1, 1]
    images, _ = next(data.train_batches(0))
    assert images.min() >= -1 and images.max() <= 1
    with pytest.raises(ValueError, match="Unknown data.normalize 'zero_one'; valid: mean_std, minus_one_one"):
        build_data({**cfg["data"], "cache_dir": str(tiny_data_root / "cache"), "normalize": "zero_one"}, seed=0)


@pytest.fixture(scope="module")
def gan_run(work):
    run_train(work.env, *GAN_SMOKE, f"task.feature_classifier={work.classifier}", "model.ema_decay=0.9")
    (run,) = run_dirs(work.runs, "sagan")
    return run


def test_a_run_records_its_scores_feature_network_samples_and_attention(gan_run, work):
    metrics = json.loads((gan_run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"fid", "precision", "recall"} and metrics["best_val"]["metric"] == "fid"
    network = metrics["test_details"]["feature_network"]
    assert network["path"] == str(work.classifier) and len(network["weights_sha256"]) == 64
    assert metrics["test_details"]["samples"] == 40  # as many as the tiny test split's images
    assert sorted(p.name for p in (gan_run / "figures" / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert (gan_run / "figures" / "generator_attention.png").is_file()
    rows = list(csv.DictReader(open(gan_run / "history.csv")))
    assert {"train/d_loss", "train/d_real", "train/d_fake", "train/loss", "val/fid", "val/precision"} <= rows[0].keys()
    (offline,) = gan_run.glob("wandb/offline-run-*")
    logged = logged_history(offline)
    assert sum("figures/samples" in row for row in logged) == 2  # one grid per epoch
    assert any("figures/generator_attention" in row for row in logged)
    assert json.loads((gan_run / "model_inputs.json").read_text())["task"] == "generation"


def test_predict_refuses_a_gan_and_says_how_to_sample(gan_run):
    proc = subprocess.run(
        [sys.executable, "-m", "attention_zoo.predict", str(gan_run), "x.jpg"], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 2 and "is a generation model" in proc.stderr and "sampler()" in proc.stderr


def test_gan_noise_gives_back_the_recorded_test_at_the_runs_noise_seed_and_scores_other_draws(gan_run, tmp_path):
    gan_noise.main([str(gan_run), "--noise-seeds", "0", "1", "--json", str(tmp_path / "noise.json")])
    (result,) = json.loads((tmp_path / "noise.json").read_text())["runs"]
    recorded = json.loads((gan_run / "metrics.json").read_text())["test"]
    assert result["own_seed"]["noise_seed"] == 2019
    assert all(result["own_seed"][m] == pytest.approx(recorded[m], rel=1e-5, abs=1e-6) for m in ("fid", "precision", "recall"))
    draws = [result["draws"][seed]["fid"] for seed in ("0", "1")]
    assert len(set(draws)) == 2 and recorded["fid"] not in draws  # other noise, other images, other scores
    assert result["mean"]["fid"] == pytest.approx(sum(draws) / 2)
    assert result["std"]["fid"] == pytest.approx(abs(draws[0] - draws[1]) / 2**0.5)


def test_gan_noise_stops_when_its_own_seed_does_not_give_back_the_record(gan_run, tmp_path):
    altered = shutil.copytree(gan_run, tmp_path / "run", ignore=shutil.ignore_patterns("wandb", "figures"))
    metrics = json.loads((altered / "metrics.json").read_text())
    metrics["test"]["fid"] += 0.01  # as if the record came from other weights or data
    (altered / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="re-scored at its own noise seed 2019.*not the weights or data its test used"):
        gan_noise.main([str(altered), "--noise-seeds", "0"])


def _comparable(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = [{k: v for k, v in row.items() if not k.startswith("time/")} for row in csv.DictReader(open(run_dir / "history.csv"))]
    return metrics["test"], metrics["best_val"], rows


def test_sigkill_and_resume_equals_an_uninterrupted_run(gan_run, work):
    common = [*GAN_SMOKE, f"task.feature_classifier={work.classifier}", "model.ema_decay=0.9"]
    common.append("trainer.checkpoint_every_minutes=0")
    killed = run_train(work.env, *common, "experiment_name=sagan_broken", "trainer.kill_at_step=6", check=False)
    assert killed.returncode == -signal.SIGKILL  # mid-epoch 2 (4 batches an epoch)
    run_train(work.env, *common, "experiment_name=sagan_broken", "resume=auto")
    resumed = run_dirs(work.runs, "sagan_broken")[-1]
    assert _comparable(resumed) == _comparable(gan_run)
