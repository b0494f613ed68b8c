"""Speed of SAGAN's training and sampling for each attention placement (configs/gan_attention):
parameters and forward FLOPs of G and D, training iterations/s (one discriminator and one
generator update, as the trainer runs them), and sampling images/s of G in eval mode.

    python scripts/bench_sagan.py                                   # sagan_cpu, none / feat8 / feat16
    python scripts/bench_sagan.py --experiment sagan --steps 10 --json out.json
    python scripts/bench_sagan.py --precision bf16                  # under bf16 autocast (trainer.precision=bf16)

Images and labels are random (the cost does not depend on them). FLOPs are torch.utils.flop_counter's
for one image in the forward pass (2 per multiply-add; the softmax and normalizations are not counted).
``--precision`` is the trainer's (``trainer.precision``): training steps and sampling run under the
autocast it names, as in a run (bf16 is fast on CPUs with AMX or AVX-512 BF16, emulated elsewhere).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from attention_zoo.build import build_model
from attention_zoo.engine.optim import build_optimizer, build_schedule
from attention_zoo.engine.runtime import PRECISIONS, autocast, autocast_dtype, hardware_summary, resolve_device
from attention_zoo.engine.trainer import Trainer, TrainerConfig
from attention_zoo.tasks.generation import GenerationTask

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class TrainingOnly(GenerationTask):
    """The task's training steps without its feature network (not needed to time them)."""

    def __init__(self, d_steps_per_g_step: int):
        self.d_steps = d_steps_per_g_step


def compose_config(experiment: str, variant: str, overrides: list[str]) -> dict:
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", f"gan_attention={variant}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def forward_mflops(module: torch.nn.Module, *inputs) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module.eval()(*inputs)
    return round(counter.get_total_flops() / 1e6, 1)


def iterations_per_s(cfg: dict, model, device: torch.device, steps: int, warmup: int, precision: str) -> float:
    """D + G updates per second through the trainer's own step (the experiment's batch size)."""
    optimizer = build_optimizer(model, cfg["optim"])
    schedule = build_schedule(optimizer, cfg["schedule"], 1, steps + warmup)
    task = TrainingOnly(cfg["task"]["d_steps_per_g_step"])
    trainer_cfg = TrainerConfig(epochs=1, progress_bar=False, precision=precision)
    trainer = Trainer(trainer_cfg, model, task, None, optimizer, schedule, "/nonexistent", device)
    batch_size = cfg["data"]["batch_size"]
    batch = (torch.rand(batch_size, 3, 32, 32, device=device) * 2 - 1, torch.randint(10, (batch_size,), device=device))
    model.train()
    elapsed = 0.0
    for i in range(warmup + steps):
        start = time.perf_counter()
        trainer._optimizer_step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            elapsed += time.perf_counter() - start
    return round(steps / elapsed, 3)


def sampling_images_per_s(model, device: torch.device, batch: int, steps: int, precision: str) -> float:
    generator = model.sampler().eval()
    z = torch.randn(batch, model.cfg.z_dim, device=device)
    y = torch.randint(model.cfg.num_classes, (batch,), device=device)
    with torch.no_grad(), autocast(device, autocast_dtype(precision, device)):
        generator(z, y)  # warm-up
        start = time.perf_counter()
        for _ in range(steps):
            generator(z, y)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return round(batch * steps / (time.perf_counter() - start), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="sagan_cpu")
    parser.add_argument("--variants", nargs="+", default=["none", "feat8", "feat16"])
    parser.add_argument("--override", action="append", default=[], help="a Hydra override for every variant")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help="trainer.precision (default: auto)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    device = resolve_device(args.device)
    results = []
    for variant in args.variants:
        cfg = compose_config(args.experiment, variant, args.override)
        torch.manual_seed(0)
        model = build_model(cfg["model"], data=None).to(device)
        z, y = torch.randn(1, model.cfg.z_dim, device=device), torch.zeros(1, dtype=torch.long, device=device)
        results.append(
            {
                "variant": variant,
                "attention_at": cfg["model"]["attention_at"],
                "g_parameters": sum(p.numel() for p in model.generator.parameters()),
                "d_parameters": sum(p.numel() for p in model.discriminator.parameters()),
                "g_mflops_per_image": forward_mflops(model.generator, z, y),
                "d_mflops_per_image": forward_mflops(model.discriminator, torch.zeros(1, 3, 32, 32, device=device), y),
                "train_iterations_per_s": iterations_per_s(cfg, model, device, args.steps, args.warmup, args.precision),
                "sample_img_per_s": sampling_images_per_s(
                    model, device, cfg["data"]["eval_batch_size"], max(2, args.steps // 2), args.precision
                ),
            }
        )
    base = next((r for r in results if r["variant"] == "none"), None)
    for r in results if base else []:
        r["train_time_ratio"] = round(base["train_iterations_per_s"] / r["train_iterations_per_s"], 3)
    report = {
        "experiment": args.experiment,
        "batch_size": cfg["data"]["batch_size"],
        "overrides": args.override,
        "steps": args.steps,
        "precision": args.precision,
        "hardware": hardware_summary(device),
        "threads": torch.get_num_threads(),
        "results": results,
    }
    print(f"{args.experiment}, batch {cfg['data']['batch_size']}, {device}, {torch.get_num_threads()} threads, {args.precision}")
    header = f"{'variant':<8}{'G params':>10}{'D params':>10}{'G MFLOPs':>10}{'D MFLOPs':>10}"
    print(f"{header}{'it/s':>8}{'sample img/s':>14}{'x':>7}")
    for r in results:
        print(
            f"{r['variant']:<8}{r['g_parameters']:>10}{r['d_parameters']:>10}{r['g_mflops_per_image']:>10.1f}"
            f"{r['d_mflops_per_image']:>10.1f}{r['train_iterations_per_s']:>8.3f}{r['sample_img_per_s']:>14.1f}"
            f"{r.get('train_time_ratio', float('nan')):>7.2f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
