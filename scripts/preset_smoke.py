"""Does a preset train at its full size? A few hundred optimizer steps of an experiment on the
real data, through the project's own trainer step (loss, clipping, schedule), without
evaluation: the loss at each step, NaN/inf checks, seconds per step. Writes
results/presets_smoke/<preset>.json and the table of results/presets_smoke.md.

    python scripts/preset_smoke.py --experiment seq2seq --steps 200 [-- hydra overrides]
    python scripts/preset_smoke.py --table          # only rebuild the page from the JSON files

A smoke run says a preset builds, fits in memory and starts to learn; it says nothing about
where it ends. Step times are those of this machine (its hardware is in each JSON file).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from attention_zoo.build import build_data, build_model, build_task
from attention_zoo.engine.optim import build_optimizer, build_schedule
from attention_zoo.engine.runtime import git_commit, hardware_summary, resolve_device
from attention_zoo.engine.seeding import seed_everything
from attention_zoo.engine.trainer import Trainer, TrainerConfig
from attention_zoo.page_sections import write_section

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "presets_smoke"
PAGE = REPO / "results" / "presets_smoke.md"
START, END = "<!-- smoke:start -->", "<!-- smoke:end -->"


def smoke(experiment: str, steps: int, overrides: list[str], run_dir: Path) -> dict:
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", *overrides])
    seed_everything(cfg.seed, False)
    trainer_cfg = TrainerConfig(**{**cfg.trainer, "progress_bar": False})
    device = resolve_device(trainer_cfg.device)
    data = build_data(cfg.data, cfg.seed)
    model = build_model(cfg.model, data).to(device)
    if trainer_cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    task = build_task(cfg.task, data, run_dir)
    optimizer = build_optimizer(model, cfg.optim)
    total_steps = trainer_cfg.epochs * data.num_train_batches
    schedule = build_schedule(optimizer, cfg.schedule, data.num_train_batches, total_steps)
    trainer = Trainer(trainer_cfg, model, task, data, optimizer, schedule, run_dir, device)
    model.train()
    losses, d_losses, seconds, epoch = [], [], [], 0  # d_losses: a GAN's discriminator loss
    while len(losses) < steps:
        for batch in data.train_batches(epoch):
            batch = trainer._to_device(batch)
            start = time.perf_counter()
            out = trainer._optimizer_step(batch)  # raises NonFiniteLossError on NaN/inf
            seconds.append(time.perf_counter() - start)
            losses.append(out.sums["loss"] / out.count)  # a GAN: the generator's loss
            if "d_loss" in out.sums:
                d_losses.append(out.sums["d_loss"] / out.count)
            if len(losses) == steps:
                break
        epoch += 1
    window = max(steps // 10, 1)
    record = {
        "experiment": experiment,
        "overrides": overrides,
        "steps": steps,
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_first": statistics.mean(losses[:window]),
        "loss_last": statistics.mean(losses[-window:]),
        "all_finite": all(math.isfinite(x) for x in losses + d_losses),
        "lr_last": optimizer.param_groups[0]["lr"],
        "s_per_step": statistics.median(seconds[1:] or seconds),
        "losses": [round(x, 4) for x in losses],
        "updates_per_epoch": data.num_train_batches,
        "updates_planned": total_steps,
        "hardware": hardware_summary(device),
        "torch": torch.__version__,
        "git_commit": git_commit(),
        "command": f"python scripts/preset_smoke.py --experiment {experiment} --steps {steps} {' '.join(overrides)}".strip(),
    }
    if d_losses:
        record |= {
            "d_loss_first": statistics.mean(d_losses[:window]),
            "d_loss_last": statistics.mean(d_losses[-window:]),
            "d_losses": [round(x, 4) for x in d_losses],
        }
    return record


def table() -> None:
    rows = [
        "| preset | overrides | parameters | updates run | train loss, first → last 10% | finite | s / update "
        "| planned updates | time for the plan at this speed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(OUT.glob("*.json")):
        r = json.loads(path.read_text())
        hours = r["s_per_step"] * r["updates_planned"] / 3600
        loss = f"{r['loss_first']:.3f} → {r['loss_last']:.3f}"
        if "d_loss_first" in r:
            loss = f"G {loss}; D {r['d_loss_first']:.3f} → {r['d_loss_last']:.3f}"
        rows.append(
            f"| `{r['experiment']}` | {' '.join(r['overrides']) or '—'} | {r['parameters'] / 1e6:.2f}M | {r['steps']} | "
            f"{loss} | {'yes' if r['all_finite'] else '**no**'} | "
            f"{r['s_per_step']:.2f} | {r['updates_planned']:,} | {hours:.1f} h |"
        )
    write_section(PAGE, START, END, "\n".join(rows) + "\n", "Paper presets, run briefly")
    print(f"wrote {PAGE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--table", action="store_true", help="only rebuild results/presets_smoke.md")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not args.table:
        run_dir = REPO / "runs" / "preset_smoke" / args.experiment
        run_dir.mkdir(parents=True, exist_ok=True)
        record = smoke(args.experiment, args.steps, args.overrides, run_dir)
        OUT.mkdir(parents=True, exist_ok=True)
        name = "_".join([args.experiment, *(o.replace("=", "-").replace("/", "-") for o in args.overrides)])
        (OUT / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(
            f"{args.experiment}: loss {record['loss_first']:.3f} -> {record['loss_last']:.3f}, "
            f"{record['s_per_step']:.2f} s/update"
        )
    table()


if __name__ == "__main__":
    main()
