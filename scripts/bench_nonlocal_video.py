"""Training speed of C2D with 0, 1 and 5 spacetime non-local blocks (`experiment=nonlocal_video_cpu`,
`video_nonlocal=none|nl1|nl5`): seconds per Adam step on a batch of random clips of the preset's
shape, the minutes an epoch and a run take at that rate, and the parameters.

    python scripts/bench_nonlocal_video.py --json results/bench/nonlocal_video_cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from attention_zoo.build import build_model
from attention_zoo.engine.runtime import hardware_summary

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["none", "nl1", "nl5"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = []
    for variant in args.variants:
        with initialize_config_dir(str(CONFIGS), version_base="1.3"):
            cfg = compose("train", overrides=["experiment=nonlocal_video_cpu", f"video_nonlocal={variant}"])
        cfg = OmegaConf.to_container(cfg, resolve=True)
        data, epochs = cfg["data"], cfg["trainer"]["epochs"]
        torch.manual_seed(0)
        model = build_model(cfg["model"], None)
        optimizer = torch.optim.Adam(model.parameters(), cfg["optim"]["lr"])
        clips = torch.randn(data["batch_size"], 3, data["frames"], data["size"], data["size"])
        labels = torch.randint(data["num_classes"], (data["batch_size"],))
        times = []
        for _ in range(args.steps + 1):  # the first step warms up
            start = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(clips), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        step = sum(times[1:]) / args.steps
        batches = -(-data["clips"]["train"] // data["batch_size"])
        results.append(
            {
                "variant": variant,
                "non_local_blocks": len(cfg["model"]["non_local_after_blocks"]) or (1 if cfg["model"]["non_local_stages"] else 0),
                "parameters": sum(p.numel() for p in model.parameters()),
                "s_per_step": round(step, 3),
                "epoch_min": round(batches * step / 60, 1),
                "run_min": round(epochs * batches * step / 60),
            }
        )
        print(results[-1], flush=True)
    if args.json:
        report = {"experiment": "nonlocal_video_cpu", "hardware": hardware_summary(torch.device("cpu")), "results": results}
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
