import itertools
import math
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

from attention_zoo.data.cifar import random_crop_flip
from attention_zoo.engine import checkpoint
from attention_zoo.engine.optim import build_optimizer, build_schedule, inverse_sqrt_factor
from attention_zoo.engine.seeding import capture_rng_state, derived_generator, restore_rng_state
from attention_zoo.engine.trainer import NonFiniteLossError, StepOutput, Trainer, TrainerConfig
from attention_zoo.models.resnet import CifarResNet, ResNetConfig
from attention_zoo.tasks.classification import ClassificationTask


def _lrs(schedule_cfg, steps, steps_per_epoch=10, optim_cfg=None):
    model = nn.Linear(2, 2)
    opt = build_optimizer(model, optim_cfg or {"name": "sgd", "lr": 1.0, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0})
    sched = build_schedule(opt, schedule_cfg, steps_per_epoch, steps)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_multistep_drops_at_epoch_milestones_counted_in_steps():
    lrs = _lrs({"name": "multistep", "milestones": [2, 3.5], "gamma": 0.1}, steps=50)
    assert lrs[19] == 1.0 and lrs[20] == pytest.approx(0.1)
    assert lrs[34] == pytest.approx(0.1) and lrs[35] == pytest.approx(0.01)


def test_inverse_sqrt_is_vaswani_eq3_scaled_to_its_peak():
    d_model, warmup = 512, 4000
    for step in (1, 100, 4000, 10000, 100000):
        paper = d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)
        peak = d_model**-0.5 * warmup**-0.5
        assert inverse_sqrt_factor(step - 1, warmup) == pytest.approx(paper / peak)
    assert inverse_sqrt_factor(3999, 4000) == pytest.approx(1.0)


def test_cosine_and_warmup():
    lrs = _lrs({"name": "cosine", "warmup_steps": 5, "min_lr_ratio": 0.0}, steps=105)
    assert lrs[0] == pytest.approx(0.2) and lrs[4] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)), abs=1e-6)
    assert lrs[-1] < 0.01


def test_every_optimizer_builds_and_unknown_names_list_valid_ones():
    model = nn.Linear(2, 2)
    for cfg in (
        {"name": "adam", "lr": 1e-3, "betas": [0.9, 0.98], "eps": 1e-9, "weight_decay": 0.0},
        {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.98], "eps": 1e-9, "weight_decay": 0.1, "decay_norm_and_bias": False},
        {"name": "adadelta", "lr": 1.0, "rho": 0.95, "eps": 1e-6, "weight_decay": 0.0},
        {"name": "rmsprop", "lr": 1e-3, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0},
        {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    ):
        opt = build_optimizer(model, cfg)
        assert opt.param_groups[0]["lr"] == cfg["lr"]
    adamw = build_optimizer(
        model, {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.98], "eps": 1e-9, "weight_decay": 0.1, "decay_norm_and_bias": False}
    )
    assert [g["weight_decay"] for g in adamw.param_groups] == [0.1, 0.0]  # bias spared
    with pytest.raises(ValueError, match="valid: sgd, adam, adamw, adadelta, rmsprop"):
        build_optimizer(model, {"name": "lion", "lr": 1.0, "weight_decay": 0.0})
    with pytest.raises(ValueError, match="valid: constant, multistep"):
        build_schedule(torch.optim.SGD(model.parameters(), lr=1.0), {"name": "linear"}, 1, 1)


def test_deformable_offset_layers_learn_at_their_multiple_of_the_rate_through_the_schedule():
    """mmdetection's DCN ResNets: the offset (and modulation) layers at 0.1x the network's rate, kept by
    the schedule; every other parameter at the rate, in one group as before, with its weight decay."""
    model = CifarResNet(ResNetConfig(depth=8, deformable_stages=(3,), deformable_offset_lr_mult=0.1))
    offsets = {id(p) for name, p in model.named_parameters() if ".offset." in name}
    assert len(offsets) == 4  # two deformable convolutions in ResNet-8's stage 3, weight and bias each
    opt = build_optimizer(model, {"name": "sgd", "lr": 0.2, "momentum": 0.9, "nesterov": False, "weight_decay": 1e-4})
    sched = build_schedule(opt, {"name": "multistep", "milestones": [1], "gamma": 0.1}, 1, 2)
    rest, scaled = opt.param_groups
    assert {id(p) for p in scaled["params"]} == offsets and not offsets & {id(p) for p in rest["params"]}
    assert len(rest["params"]) + len(scaled["params"]) == len(list(model.parameters()))
    assert (rest["lr"], scaled["lr"]) == (0.2, pytest.approx(0.02))
    assert rest["weight_decay"] == scaled["weight_decay"] == 1e-4
    opt.step(), sched.step()
    assert (rest["lr"], scaled["lr"]) == (pytest.approx(0.02), pytest.approx(0.002))
    plain = build_optimizer(
        CifarResNet(ResNetConfig(depth=8)), {"name": "sgd", "lr": 0.2, "momentum": 0.9, "nesterov": False, "weight_decay": 1e-4}
    )
    assert len(plain.param_groups) == 1


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    checkpoint.save_atomic({"rng": capture_rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    restore_rng_state(checkpoint.load(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_derived_generator_is_a_pure_function_of_its_keys():
    a = torch.rand(3, generator=derived_generator(0, 4, 7))
    assert torch.equal(a, torch.rand(3, generator=derived_generator(0, 4, 7)))
    assert not torch.equal(a, torch.rand(3, generator=derived_generator(0, 7, 4)))


def test_random_crop_flip_equals_cropping_the_padded_image():
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = random_crop_flip(images, derived_generator(0, 1), pad=2)
    padded = nn.functional.pad(images, (2, 2, 2, 2))
    flips = []
    for i in range(len(images)):
        crops = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        plain = any(torch.equal(out[i], c) for c in crops)
        mirrored = any(torch.equal(out[i], c.flip(2)) for c in crops)
        assert plain or mirrored
        flips.append(mirrored and not plain)
    assert 0 < sum(flips) < len(images)  # each image draws its own flip


def test_checkpoint_survives_sigkill_during_save(tmp_path):
    """A writer killed at random moments never leaves a torn checkpoint; temporaries are cleaned."""
    target = tmp_path / "last.pt"
    writer = (
        "import sys, torch\n"
        "from attention_zoo.engine.checkpoint import save_atomic\n"
        "i = 0\n"
        "while True:\n"
        "    save_atomic({'i': i, 'x': torch.full((2_000_000,), float(i))}, sys.argv[1])\n"
        "    if i == 0: print('saved', flush=True)\n"
        "    i += 1\n"
    )
    for delay in (0.05, 0.13, 0.21, 0.37):
        proc = subprocess.Popen([sys.executable, "-c", writer, str(target)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "saved"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = checkpoint.load(target)
        assert torch.all(state["x"] == state["i"])  # complete and self-consistent
    checkpoint.save_atomic({"i": -1}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class _ListData:
    """One fixed batch repeated: the overfit-one-batch setting."""

    def __init__(self, batch, repeats):
        self.batch, self.num_train_batches = batch, repeats

    def train_batches(self, epoch, start=0):
        for _ in range(start, self.num_train_batches):
            yield self.batch

    def val_batches(self):
        return [self.batch]

    def test_batches(self):
        return [self.batch]


def _trainer(tmp_path, model, data, lr=0.05, **cfg):
    opt = build_optimizer(model, {"name": "adam", "lr": lr, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0})
    sched = build_schedule(opt, {"name": "constant"}, data.num_train_batches, 10**6)
    trainer_cfg = TrainerConfig(progress_bar=False, **cfg)
    return Trainer(trainer_cfg, model, ClassificationTask(), data, opt, sched, tmp_path, torch.device("cpu"))


def test_overfit_one_batch_drives_the_loss_near_zero(tmp_path):
    torch.manual_seed(0)
    batch = (torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,)))
    model = CifarResNet(ResNetConfig(depth=8, widths=(8, 16, 32)))
    trainer = _trainer(tmp_path, model, _ListData(batch, repeats=60), lr=0.01, epochs=1)
    trainer.fit()
    assert trainer.state.history[0]["train/loss"] < 1.0
    final = trainer.evaluate([batch])
    assert final["loss"] < 0.05 and final["acc"] == 1.0


def test_smoke_limits_cut_each_epoch_and_each_evaluation_to_their_first_batches(tmp_path):
    class CountingTask(ClassificationTask):
        def evaluate(self, model, batches, split="val"):
            self.evaluated = sum(1 for _ in batches)
            return {"loss": 1.0 / (1 + self.evaluated), "acc": 0.5}

    batch = (torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)))
    data = _ListData(batch, repeats=7)
    data.val_batches = data.test_batches = lambda: [batch] * 5
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    trainer = _trainer(tmp_path, model, data, epochs=3, limit_train_batches=2, limit_eval_batches=3)
    trainer.task = CountingTask()
    state = trainer.fit()
    assert state.step == 6 and state.epoch == 3 and [row["step"] for row in state.history] == [2, 4, 6]
    assert trainer.task.evaluated == 3
    trainer.test()
    assert trainer.task.evaluated == 3
    unlimited = _trainer(tmp_path / "all", model, data, epochs=1)
    unlimited.task = CountingTask()
    unlimited.fit()
    assert unlimited.state.step == 7 and unlimited.task.evaluated == 5


def test_nan_loss_stops_with_step_and_last_good_checkpoint(tmp_path):
    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            out = self.net(x)
            return out * float("nan") if self.calls == 8 else out

    batch = (torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)))
    trainer = _trainer(tmp_path, Exploding(), _ListData(batch, repeats=5), epochs=3)
    with pytest.raises(NonFiniteLossError, match=r"Loss is nan at step 7 \(epoch 2, batch 2\).*Last good checkpoint: .*last\.pt"):
        trainer.fit()
    good = checkpoint.load(tmp_path / "last.pt")
    assert good["train_state"]["step"] == 5 and all(torch.isfinite(v).all() for v in good["model"].values())


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    class Plateau(ClassificationTask):
        def evaluate(self, model, batches, split="val"):
            return {"loss": 1.0, "acc": 0.5}  # never improves after the first epoch

    batch = (torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)))
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    trainer = _trainer(tmp_path, model, _ListData(batch, repeats=2), epochs=50, early_stopping_patience=2)
    trainer.task = Plateau()
    state = trainer.fit()
    assert state.epoch == 3 and state.best_epoch == 1 and state.bad_epochs == 2
    assert checkpoint.load(tmp_path / "best.pt")["epoch"] == 1


def test_a_task_with_several_losses_per_batch_updates_after_each_before_computing_the_next(tmp_path):
    """A two-player toy (a GAN's shape): the first loss moves only `a`, the second only `b` and is
    computed from the already updated `a`; with SGD the result is known in closed form."""

    class TwoPlayers(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Parameter(torch.tensor(1.0)), nn.Parameter(torch.tensor(2.0))

    class Alternating(ClassificationTask):
        def training_steps(self, model, batch):
            seen.append(model.a.item())
            yield StepOutput(loss=(model.a * model.b.detach()) ** 2 / 2, count=1, sums={"first": 1.0})
            seen.append(model.a.item())  # after the first update
            yield StepOutput(loss=(model.a.detach() - model.b) ** 2 / 2, count=1, sums={"second": 2.0})

    seen = []
    model = TwoPlayers()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = build_schedule(opt, {"name": "constant"}, 1, 10)
    data = _ListData((torch.zeros(1), torch.zeros(1)), repeats=1)
    data.val_batches = lambda: None
    trainer = Trainer(
        TrainerConfig(epochs=1, progress_bar=False), model, Alternating(), data, opt, sched, tmp_path, torch.device("cpu")
    )
    trainer.fit()
    a = 1.0 - 0.1 * (1.0 * 2.0**2)  # d/da (a b)^2 / 2 = a b^2
    b = 2.0 - 0.1 * (2.0 - a)  # d/db (a - b)^2 / 2 = b - a, with the updated a
    assert seen == [1.0, pytest.approx(a)]
    assert model.a.item() == pytest.approx(a) and model.b.item() == pytest.approx(b)
    row = trainer.state.history[0]
    assert trainer.state.step == 1 and row["train/first"] == 1.0 and row["train/second"] == 2.0
    assert row["train/loss"] == pytest.approx((a - 2.0) ** 2 / 2)  # the last loss is the one reported


def test_a_time_budget_closes_the_epoch_it_runs_out_in_and_counts_training_time_only(tmp_path, monkeypatch):
    """max_train_minutes: a fake clock ticks 1 s per reading, so each step costs 2 s of training
    (data wait + step); a 5 s budget ends epoch 1 after its 3rd of 10 batches. That partial epoch
    is validated and kept for averaging; validation time does not count; a resume trains no more."""
    ticks = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))
    evaluated = []

    class SlowValidation(ClassificationTask):
        def evaluate(self, model, batches, split="val"):
            for _ in range(100):  # 100 clock readings: would spend the budget if validation counted
                time.perf_counter()
            evaluated.append(split)
            return super().evaluate(model, batches, split)

    batch = (torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)))
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    trainer = _trainer(tmp_path, model, _ListData(batch, repeats=10), epochs=4, max_train_minutes=5 / 60, average_last_epochs=2)
    trainer.task = SlowValidation()
    state = trainer.fit()
    assert state.step == 3 and state.epoch == 1 and evaluated == ["val"]
    assert [(row["step"], row["time/epoch_s"]) for row in state.history] == [(3, 6.0)]
    assert (tmp_path / checkpoint.EPOCH.format(1)).exists()  # the closed partial epoch joins the average
    trainer.test()
    assert trainer.test_weights == "average of epochs 1-1"

    two_epochs = _trainer(tmp_path / "longer", model, _ListData(batch, repeats=10), epochs=4, max_train_minutes=45 / 60)
    two_epochs.task = SlowValidation()
    state = two_epochs.fit()  # 20 s a full epoch: 2 full epochs, then 3 steps of a third
    assert [row["step"] for row in state.history] == [10, 20, 23] and state.epoch == 3

    resumed = _trainer(tmp_path, model, _ListData(batch, repeats=10), epochs=4, max_train_minutes=5 / 60)
    resumed.load_state_dict(checkpoint.load(tmp_path / "last.pt"))
    assert resumed.fit().step == 3
