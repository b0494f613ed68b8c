"""Cost of each CNN attention variant (configs/block) in the CIFAR ResNet: parameters, FLOPs,
training and inference images/s, and the overhead ratio against the plain ResNet.

    python scripts/bench_cnn_attention.py                       # every configs/block option, ResNet-20
    python scripts/bench_cnn_attention.py --variants none se cbam --steps 10 --json out.json

FLOPs are those of torch.utils.flop_counter for one 32x32 image in the forward pass: convolutions
and matrix products (2 per multiply-add), not the element-wise sigmoid, pooling or softmax,
which are cheap in FLOPs but not in time on a CPU; the images/s columns measure those.
Images are random (the model's cost does not depend on their content); the model, batch size
and memory format are the experiment's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch
from bench_timing import rates_in_turns
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from attention_zoo.build import build_model
from attention_zoo.engine.runtime import autocast, autocast_dtype, hardware_summary, resolve_device
from attention_zoo.engine.trainer import COMPILE_MODES, compile_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def build(variant: str, depth: int, num_classes: int) -> torch.nn.Module:
    model_cfg = OmegaConf.merge(
        OmegaConf.load(CONFIGS / "model" / "resnet.yaml"), OmegaConf.load(CONFIGS / "block" / f"{variant}.yaml")
    )
    model_cfg.depth, model_cfg.num_classes = depth, num_classes
    return build_model(OmegaConf.to_container(model_cfg), data=None)


def images_per_s(
    models: dict[str, torch.nn.Module],
    batch: int,
    steps: int,
    warmup: int,
    train: bool,
    device: torch.device,
    nhwc: bool,
    precision: str,
) -> dict[str, float]:
    """Images/s of each model on the same random batch, the models taking turns (bench_timing.py),
    under the autocast of ``precision`` (as ``trainer.precision``)."""
    amp_dtype = autocast_dtype(precision, device)
    memory_format = torch.channels_last if nhwc else torch.contiguous_format
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (batch,), device=device)
    optimizers = {name: torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) for name, model in models.items()}

    def step_of(name: str) -> Callable[[int], int]:
        def step(_: int) -> int:
            model = models[name].train(train)
            if train:
                with autocast(device, amp_dtype):
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                optimizers[name].zero_grad(set_to_none=True)
                loss.backward()
                optimizers[name].step()
            else:
                with torch.no_grad(), autocast(device, amp_dtype):
                    model(x)
            return batch

        return step

    return rates_in_turns({name: step_of(name) for name in models}, steps, warmup, device)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=sorted(p.stem for p in (CONFIGS / "block").glob("*.yaml")))
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--contiguous", action="store_true", help="NCHW instead of channels_last (the CPU preset's format)")
    parser.add_argument("--compile", default="none", choices=COMPILE_MODES, help="as trainer.compile: torch.compile in place")
    parser.add_argument(
        "--precision", default="fp32", choices=["fp32", "bf16"], help="as trainer.precision: bf16 = bf16 autocast"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if "none" in args.variants:  # the baseline first: the ratios divide by it
        args.variants = ["none", *[v for v in args.variants if v != "none"]]
    device = resolve_device(args.device)
    channels_last = not args.contiguous
    results, models = [], {}
    for variant in args.variants:
        torch.manual_seed(0)
        model = build(variant, args.depth, 10).to(device)
        model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        with FlopCounterMode(display=False) as counter:
            model.eval()(torch.randn(1, 3, 32, 32, device=device))
        compile_model(model, args.compile)  # compiled in the warm-up steps, which are not timed
        models[variant] = model
        parameters = sum(p.numel() for p in model.parameters())
        mflops = round(counter.get_total_flops() / 1e6, 2)
        results.append({"variant": variant, "parameters": parameters, "mflops_per_image": mflops})
    timing = (args.steps, args.warmup)
    train = images_per_s(models, args.batch_size, *timing, True, device, channels_last, args.precision)
    evaluation = images_per_s(models, 2 * args.batch_size, *timing, False, device, channels_last, args.precision)
    for r in results:
        r["train_img_per_s"], r["eval_img_per_s"] = train[r["variant"]], evaluation[r["variant"]]
    base = next((r for r in results if r["variant"] == "none"), None)
    if base:
        for r in results:
            r["train_time_ratio"] = round(base["train_img_per_s"] / r["train_img_per_s"], 3)
            r["eval_time_ratio"] = round(base["eval_img_per_s"] / r["eval_img_per_s"], 3)
    report = {
        "model": f"ResNet-{args.depth}",
        "batch_size": args.batch_size,
        "channels_last": channels_last,
        "compile": args.compile,
        "precision": args.precision,
        "steps": args.steps,
        "timing": "interleaved: the variants take turns step by step",
        "hardware": hardware_summary(device),
        "results": results,
    }
    print(
        f"ResNet-{args.depth}, batch {args.batch_size}, {'channels_last' if channels_last else 'NCHW'}"
        f", compile={args.compile}, {args.precision}, {device}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'variant':<22}{'params':>9}{'MFLOPs':>9}{'train img/s':>12}{'eval img/s':>11}{'train x':>9}{'eval x':>8}")
    for r in results:
        print(
            f"{r['variant']:<22}{r['parameters']:>9}{r['mflops_per_image']:>9.1f}{r['train_img_per_s']:>12.1f}"
            f"{r['eval_img_per_s']:>11.1f}{r.get('train_time_ratio', float('nan')):>9.2f}"
            f"{r.get('eval_time_ratio', float('nan')):>8.2f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
