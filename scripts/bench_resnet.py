"""Training throughput of the CIFAR ResNet on this machine, and where the step time goes.

    python scripts/bench_resnet.py                      # ResNet-20, batch 128, real CIFAR-10 if found
    python scripts/bench_resnet.py --depth 56 --steps 30

Reports training images/s and the share of wall time spent waiting for the next batch
(augmentation + normalization in the main process), with the default memory format, with
channels_last, and with --compile also channels_last plus torch.compile (inductor; ``trainer.compile=model``),
whose compilation happens in the warm-up steps and is timed apart, and with --bf16 also both memory
formats under bf16 autocast (``trainer.precision=bf16``; fast on CPUs with AMX or AVX-512 BF16, slow
where bf16 is emulated). Uses the CIFAR-10 copy under
$ATTN_ZOO_DATA (or --data-root) through the same data module as training; with --synthetic, random
uint8 images of the same shape.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from attention_zoo.data.cifar import CifarConfig, CifarData, Split
from attention_zoo.engine.runtime import autocast, autocast_dtype, hardware_summary, resolve_device
from attention_zoo.engine.trainer import TrainerConfig, compile_model
from attention_zoo.models.resnet import CifarResNet, ResNetConfig
from attention_zoo.tasks.classification import ClassificationTask


def synthetic_splits() -> tuple[Split, Split]:
    """Random images of CIFAR-10's shapes: the same code path, no files needed."""
    g = torch.Generator().manual_seed(0)

    def split(n):
        return Split(
            torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g)
        )

    return split(50000), split(10000)


def measure(
    data: CifarData,
    depth: int,
    channels_last: bool,
    compiled: bool,
    precision: str,
    steps: int,
    warmup: int,
    device: torch.device,
) -> dict:
    torch.manual_seed(0)
    model = CifarResNet(ResNetConfig(depth=depth)).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    compile_model(model, "model" if compiled else "none")
    task = ClassificationTask()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    batches = data.train_batches(epoch=0)
    wait = busy = images = 0.0
    start = time.perf_counter()
    for i in range(warmup + steps):
        if i == warmup:
            warmup_s = time.perf_counter() - start
        t0 = time.perf_counter()
        x, y = next(batches)
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        t1 = time.perf_counter()
        with autocast(device, autocast_dtype(precision, device)):
            out = task.training_step(model, (x, y))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if i >= warmup:
            wait, busy, images = wait + t1 - t0, busy + t2 - t1, images + out.count
    return {
        "channels_last": channels_last,
        "compile": compiled,
        "precision": precision,
        "warmup_s": round(warmup_s, 1),
        "train_img_per_s": round(images / (wait + busy), 1),
        "data_wait_share": round(wait / (wait + busy), 4),
        "step_ms": round(1000 * (wait + busy) / steps, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default=TrainerConfig.device)
    parser.add_argument("--data-root", default=os.environ.get("ATTN_ZOO_DATA", "data"))
    parser.add_argument("--cache-dir", default=os.environ.get("ATTN_ZOO_CACHE", ".cache"))
    parser.add_argument("--synthetic", action="store_true", help="random images instead of the CIFAR-10 files")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--compile", action="store_true", help="also trainer.compile=model (~1 min)")
    parser.add_argument("--bf16", action="store_true", help="also both memory formats under bf16 autocast")
    args = parser.parse_args()

    cfg = CifarConfig(name="cifar10", root=args.data_root, cache_dir=args.cache_dir, batch_size=args.batch_size)
    data = CifarData(cfg, seed=0, splits=synthetic_splits() if args.synthetic else None)
    device = resolve_device(args.device)
    variants = [(False, False, "fp32"), (True, False, "fp32")]  # (channels_last, compile, precision)
    variants += [(True, True, "fp32")] if args.compile else []
    variants += [(False, False, "bf16"), (True, False, "bf16")] if args.bf16 else []
    variants += [(True, True, "bf16")] if args.compile and args.bf16 else []
    results = [measure(data, args.depth, *variant, args.steps, args.warmup, device) for variant in variants]
    report = {
        "model": f"ResNet-{args.depth}",
        "batch_size": args.batch_size,
        "data": "synthetic" if args.synthetic else f"cifar10 from {args.data_root}",
        "hardware": hardware_summary(device),
        "results": results,
    }
    print(f"ResNet-{args.depth}, batch {args.batch_size}, {report['data']}, {device}, {torch.get_num_threads()} threads")
    print(f"{'memory format':<31}{'train img/s':>12}{'data wait':>11}{'step ms':>9}{'warm-up s':>11}")
    for r in results:
        fmt = ("channels_last" if r["channels_last"] else "contiguous") + (" + compile" if r["compile"] else "")
        fmt += " + bf16 autocast" if r["precision"] == "bf16" else ""
        speed = f"{r['train_img_per_s']:>12.1f}{100 * r['data_wait_share']:>10.1f}%{r['step_ms']:>9.1f}"
        print(f"{fmt:<31}{speed}{r['warmup_s']:>11.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
