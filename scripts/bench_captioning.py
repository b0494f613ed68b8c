"""Speed of Show-Attend-Tell: captions/s in training and in decoding, and what the feature cache buys.

    python scripts/bench_captioning.py                                 # experiment show_attend_tell_scenes
    python scripts/bench_captioning.py --checkpoint runs/show_attend_tell_scenes/<run>/best.pt
    python scripts/bench_captioning.py --override model.attention=hard --json out.json
    python scripts/bench_captioning.py --experiment show_attend_tell_cpu   # the real Flickr8k (needs its data)

Training: captions/s of the experiment's model (encoder fine-tuned, as configured). Decoding:
captions/s of greedy and beam search (the test's beam width) over the test images; their speed
depends on the caption lengths, so pass a trained run's --checkpoint (an untrained model's
greedy captions run to the maximum length, its beam captions end at once). Feature
cache: training captions/s with the encoder frozen, once reading images (the encoder runs
every step) and once reading the cached annotation vectors (``data.cache_features``), on the same
batches (the cache needs the encoder frozen, so this measures a frozen copy of the experiment's
encoder). Uses the generated scenes set unless the experiment names another data set.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from attention_zoo.build import build_data, build_model, build_task
from attention_zoo.engine import checkpoint
from attention_zoo.engine.optim import build_optimizer
from attention_zoo.engine.runtime import hardware_summary
from attention_zoo.train import CONFIG_DIR


def train_captions_per_s(model, task, batches: list[dict], optim_cfg, warmup: int) -> float:
    optimizer = build_optimizer(model, optim_cfg)
    model.train()
    elapsed, captions = 0.0, 0
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        loss = task.training_step(model, batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= warmup:
            elapsed, captions = elapsed + time.perf_counter() - start, captions + len(batch["index"])
    return round(captions / elapsed, 1)


def images_of(batch: dict) -> torch.Tensor:
    """The dataset index of each row of batch["src"]: one per caption, or one per image (group_by=image)."""
    if "caption_image" not in batch:
        return batch["index"]
    images = torch.empty(len(batch["src"]), dtype=torch.long)
    images[batch["caption_image"]] = batch["index"]
    return images


def decode_captions_per_s(model, task, src: torch.Tensor, beam: int) -> tuple[float, float]:
    """Captions/s of decoding ``src`` and the mean caption length in words."""
    model.eval()
    start = time.perf_counter()
    hypotheses = task.decode(model, src, beam)
    per_s = round(len(src) / (time.perf_counter() - start), 1)
    return per_s, round(sum(len(h.tokens) for h in hypotheses) / len(hypotheses), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="show_attend_tell_scenes")
    parser.add_argument("--override", action="append", default=[], help="a Hydra override, repeatable")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--decode-images", type=int, default=100)
    parser.add_argument("--checkpoint", help="trained weights (a run's best.pt) for the decoding measurement")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={args.experiment}", "task.figure_images=[]", *args.override])
    torch.manual_seed(0)
    data = build_data(cfg.data, cfg.seed)
    task = build_task(cfg.task, data, None)
    batches = [b for _, b in zip(range(args.warmup + args.steps), data.train_batches(epoch=0))]
    test_src = data.batch("test", list(range(min(args.decode_images, len(data.references["test"])))))["src"]

    model = build_model(cfg.model, data)
    report = {
        "experiment": args.experiment,
        "overrides": args.override,
        "attention": cfg.model.attention,
        "batch_size": cfg.data.batch_size,
        "hardware": hardware_summary(torch.device("cpu")),
    }
    report["train_captions_per_s"] = train_captions_per_s(model, task, batches, cfg.optim, args.warmup)
    if args.checkpoint:
        model.load_state_dict(checkpoint.load(args.checkpoint, torch.device("cpu"))["model"])
    report["decode_checkpoint"] = args.checkpoint or "none (untrained weights: caption lengths are not representative)"
    report["decode_captions_per_s"], report["decode_mean_words"] = {}, {}
    for name, beam in (("greedy", 1), (f"beam{task.test_beam}", task.test_beam)):
        report["decode_captions_per_s"][name], report["decode_mean_words"][name] = decode_captions_per_s(
            model, task, test_src, beam
        )

    cfg.model.fine_tune_encoder = False
    frozen = build_model(cfg.model, data)
    from_images = train_captions_per_s(frozen, task, batches, cfg.optim, args.warmup)
    data.cache_features(frozen.encoder, f"bench-{cfg.model.encoder}-seed{cfg.seed}")
    cached = [{**b, "src": data.features["train"][images_of(b)].float()} for b in batches]
    from_features = train_captions_per_s(frozen, task, cached, cfg.optim, args.warmup)
    report["frozen_encoder_train_captions_per_s"] = {
        "images": from_images,
        "cached_features": from_features,
        "speedup": round(from_features / from_images, 2),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
