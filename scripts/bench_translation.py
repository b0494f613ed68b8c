"""Training and decoding speed of the translation models at their experiment configs.

    python scripts/bench_translation.py                                  # seq2seq_cpu and rnnsearch_cpu
    python scripts/bench_translation.py --experiment rnnsearch_cpu \\
        --checkpoint rnnsearch_cpu=runs/rnnsearch_cpu/<run>/best.pt --json results/bench/rnnsearch_cpu.json

Per experiment, on Multi30k (the copy under $ATTN_ZOO_DATA) with the experiment's model, data
and optimizer settings:
- training target tokens/s (the unit the trainer logs) over timed optimizer steps after warm-up;
- the padding share of the training batches (token budget with length bucketing), beside the
  share the same number of batches would have if filled in random order;
- decoding sentences/s on the first validation sentences, greedy and beam 5. Decoding speed
  depends on output lengths, so pass the run's --checkpoint: an untrained model emits
  max-length gibberish and is timed only when no checkpoint is given (and says so).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import torch
from hydra import compose, initialize_config_dir
from torch import nn

from attention_zoo.build import build_data, build_model, build_task
from attention_zoo.data.text import padding_share
from attention_zoo.engine import checkpoint
from attention_zoo.engine.optim import build_optimizer
from attention_zoo.engine.runtime import hardware_summary, resolve_device
from attention_zoo.tasks.decoding import beam_search, greedy_decode
from attention_zoo.train import CONFIG_DIR

EXPERIMENTS = ("seq2seq_cpu", "rnnsearch_cpu")


def random_order_padding_share(data, batches: list[list[int]]) -> float:
    """Padding share of as many batches of the same sizes, filled with sentences in random order."""
    src, tgt = data.ids["train"]["src"], data.ids["train"]["tgt"]
    order = torch.randperm(len(src), generator=torch.Generator().manual_seed(0)).tolist()
    shuffled, start = [], 0
    for rows in batches:
        shuffled.append(order[start : start + len(rows)])
        start += len(rows)
    return padding_share(shuffled, [len(s) for s in src], [len(t) + 2 for t in tgt])


def time_training(model: nn.Module, cfg, data, device: torch.device, steps: int, warmup: int) -> dict:
    task = build_task(cfg.task, data, None)
    optimizer = build_optimizer(model, cfg.optim)
    batches = (batch for epoch in itertools.count() for batch in data.train_batches(epoch))
    model.train()
    elapsed = tokens = sentences = 0.0
    for i in range(warmup + steps):
        batch = {k: v.to(device) for k, v in next(batches).items()}
        start = time.perf_counter()
        out = task.training_step(model, batch)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if cfg.trainer.grad_clip_norm:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.grad_clip_norm)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            elapsed, tokens, sentences = elapsed + time.perf_counter() - start, tokens + out.count, sentences + len(batch["src"])
    return {
        "train_tgt_tok_per_s": round(tokens / elapsed, 1),
        "train_sent_per_s": round(sentences / elapsed, 1),
        "step_ms": round(1000 * elapsed / steps, 1),
        "timed_steps": steps,
    }


@torch.no_grad()
def time_decoding(model: nn.Module, cfg, data, device: torch.device, sentences: int, beam: int) -> dict:
    batches, count = [], 0
    for batch in data.eval_batches("val"):
        if count >= sentences:
            break
        batches.append({k: v.to(device) for k, v in batch.items()})
        count += len(batch["src"])
    model.eval()
    rates = {}
    for name, decode in (
        ("greedy", lambda b: greedy_decode(model, b["src"], b["src_len"], cfg.task.max_len_a, cfg.task.max_len_b)),
        (
            f"beam{beam}",
            lambda b: beam_search(
                model, b["src"], b["src_len"], beam, cfg.task.length_penalty, cfg.task.max_len_a, cfg.task.max_len_b
            ),
        ),
    ):
        start, out_tokens = time.perf_counter(), 0
        for batch in batches:
            out_tokens += sum(len(h.tokens) + 1 for h in decode(batch))
        seconds = time.perf_counter() - start
        rates[name] = {"sent_per_s": round(count / seconds, 1), "mean_output_tokens": round(out_tokens / count, 1)}
    return {"sentences": count, **rates}


def bench(experiment: str, overrides: list[str], checkpoint_path: str | None, device: torch.device, args) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}", *overrides])
    torch.manual_seed(cfg.seed)
    data = build_data(cfg.data, cfg.seed)
    model = build_model(cfg.model, data).to(device)
    report = {
        "experiment": experiment,
        "overrides": overrides,
        "parameters": sum(p.numel() for p in model.parameters()),
        "max_tokens": cfg.data.max_tokens,
        "train_batches": data.num_train_batches,
        "padding_share": round(data.train_padding_share, 4),
        "padding_share_random_order": round(random_order_padding_share(data, data.train_batch_rows), 4),
        **time_training(model, cfg, data, device, args.steps, args.warmup),
    }
    if checkpoint_path:
        model.load_state_dict(checkpoint.load(checkpoint_path, device)["model"])
    report["decode_checkpoint"] = checkpoint_path or "none (untrained weights: output lengths are not representative)"
    report["decode"] = time_decoding(model, cfg, data, device, args.decode_sentences, args.beam)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", action="append", help=f"default: {', '.join(EXPERIMENTS)}")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="EXPERIMENT=PATH",
        help="trained weights to decode with (a run's best.pt)",
    )
    parser.add_argument("--override", action="append", default=[], help="a Hydra override for every experiment")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--decode-sentences", type=int, default=400)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    experiments = args.experiment or list(EXPERIMENTS)
    checkpoints = dict(spec.partition("=")[::2] for spec in args.checkpoint)
    unknown = sorted(set(checkpoints) - set(experiments))
    if unknown or not all(checkpoints.values()):
        parser.error(f"--checkpoint takes EXPERIMENT=PATH for one of {', '.join(experiments)}; got {args.checkpoint}")
    device = resolve_device(args.device)
    results = [bench(exp, args.override, checkpoints.get(exp), device, args) for exp in experiments]
    report = {"hardware": hardware_summary(device), "threads": torch.get_num_threads(), "results": results}
    print(f"Multi30k de-en, {device}, {torch.get_num_threads()} threads")
    print(
        f"{'experiment':<16}{'params':>9}{'train tok/s':>13}{'padding':>9}{'(random)':>9}{'greedy sent/s':>15}{'beam sent/s':>13}"
    )
    for r in results:
        beam = next(v for k, v in r["decode"].items() if k.startswith("beam"))
        print(
            f"{r['experiment']:<16}{r['parameters'] / 1e6:>8.2f}M{r['train_tgt_tok_per_s']:>13.0f}"
            f"{100 * r['padding_share']:>8.1f}%{100 * r['padding_share_random_order']:>8.1f}%"
            f"{r['decode']['greedy']['sent_per_s']:>15.1f}{beam['sent_per_s']:>13.1f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
