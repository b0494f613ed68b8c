"""Speed of our Transformer: training beside ``torch.nn.Transformer``, decoding with and without the KV cache.

    python scripts/bench_transformer.py                                         # experiment transformer_cpu
    python scripts/bench_transformer.py --compile                               # + ours under torch.compile
    python scripts/bench_transformer.py --bf16                                  # + ours under bf16 autocast
    python scripts/bench_transformer.py --checkpoint runs/transformer_cpu/<run>/averaged.pt \\
        --json results/bench/transformer_cpu.json

Training: target tokens/s of our model and of a ``torch.nn.Transformer`` model built at the same
dimensions (d_model, heads, d_ff, layers, dropout, post/pre-LN) with the same tied embeddings,
positional encoding, batches, label-smoothed loss and optimizer; the two alternate step by step
so that both see the same machine load. ``--compile`` adds a third model, ours under
``torch.compile`` (inductor, ``trainer.compile=model``), from the same initial weights; its
warm-up steps (compilation, and recompilation for new batch shapes) are reported apart.
``--bf16`` adds ours under bf16 autocast (``trainer.precision=bf16``: the matmuls in bf16, weights
and optimizer in fp32), also from the same initial weights: fast on CPUs with AMX or AVX-512 BF16.
Decoding: sentences/s of greedy and beam search with the key/value cache and with the decoder
re-run over the prefix at every step (``model.kv_cache``).
Pass a trained --checkpoint: decoding speed depends on output lengths.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable

import torch
from bench_timing import rates_in_turns
from bench_translation import time_decoding
from hydra import compose, initialize_config_dir
from torch import nn

from attention_zoo.build import build_data, build_model, build_task
from attention_zoo.engine import checkpoint
from attention_zoo.engine.optim import build_optimizer
from attention_zoo.engine.runtime import autocast, hardware_summary, resolve_device
from attention_zoo.engine.trainer import compile_model
from attention_zoo.models.transformer import Transformer
from attention_zoo.train import CONFIG_DIR


class TorchTransformer(nn.Module):
    """``torch.nn.Transformer`` between our embedding and output layers (the same on both sides)."""

    def __init__(self, shell: Transformer):
        super().__init__()
        cfg = shell.cfg
        shell.encoder, shell.decoder = nn.ModuleList(), nn.ModuleList()  # keep only its embeddings and output
        self.embedding = shell
        self.core = nn.Transformer(
            cfg.d_model,
            cfg.heads,
            cfg.encoder_layers,
            cfg.decoder_layers,
            cfg.d_ff,
            cfg.dropout,
            batch_first=True,
            norm_first=cfg.norm_first,
        )

    def forward(self, src, src_len, tgt_in):
        padding = torch.arange(src.shape[1], device=src.device)[None, :] >= src_len[:, None]  # (B, S) True at <pad>
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], device=src.device)
        x = self.embedding._embed(self.embedding.src_embed, src)
        y = self.embedding._embed(self.embedding.tgt_embed, tgt_in)
        out = self.core(x, y, tgt_mask=causal, src_key_padding_mask=padding, memory_key_padding_mask=padding, tgt_is_causal=True)
        return self.embedding._logits(out)


COMPILED = "ours, torch.compile"
BF16 = "ours, bf16 autocast"


def time_training_side_by_side(models: dict[str, nn.Module], cfg, data, device, steps: int, warmup: int) -> dict:
    """Target tokens/s of each model on the same training batches, the models taking turns (bench_timing.py).
    The model named BF16 computes its loss under bf16 autocast, as the trainer does."""
    task = build_task(cfg.task, data, None)
    optimizers = {name: build_optimizer(model, cfg.optim) for name, model in models.items()}
    train_batches = data.train_batches(0)
    batches = [{k: v.to(device) for k, v in next(train_batches).items()} for _ in range(warmup + steps)]

    def step_of(name: str) -> Callable[[int], int]:
        def step(i: int) -> int:
            with autocast(device, torch.bfloat16 if name == BF16 else None):
                out = task.training_step(models[name].train(), batches[i])
            optimizers[name].zero_grad(set_to_none=True)
            out.loss.backward()
            optimizers[name].step()
            return int(out.count)

        return step

    rates, warmup_s = rates_in_turns({name: step_of(name) for name in models}, steps, warmup, device)
    report = {
        "train_tgt_tok_per_s": rates,
        "ours_over_torch": round(rates["ours"] / rates["torch.nn.Transformer"], 3),
        "timed_steps": steps,
        "warmup_steps": warmup,
        "warmup_s": {name: round(seconds, 1) for name, seconds in warmup_s.items()},
    }
    if COMPILED in rates:
        report["compiled_over_eager"] = round(rates[COMPILED] / rates["ours"], 3)
    if BF16 in rates:
        report["bf16_over_fp32"] = round(rates[BF16] / rates["ours"], 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="transformer_cpu")
    parser.add_argument("--checkpoint", help="trained weights to decode with (a run's averaged.pt or best.pt)")
    parser.add_argument("--override", action="append", default=[], help="a Hydra override")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (more with --compile: shapes vary)")
    parser.add_argument("--compile", action="store_true", help="also time ours under torch.compile (trainer.compile=model)")
    parser.add_argument("--bf16", action="store_true", help="also time ours under bf16 autocast (trainer.precision=bf16)")
    parser.add_argument("--decode-sentences", type=int, default=400, help="sentences to decode (0: time training only)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={args.experiment}", *args.override])
    if cfg.model.name != "transformer":
        parser.error(f"--experiment {args.experiment} is a {cfg.model.name} experiment; pick a transformer one.")
    device = resolve_device(args.device)
    torch.manual_seed(cfg.seed)
    data = build_data(cfg.data, cfg.seed)
    ours = build_model(cfg.model, data).to(device)
    reference = TorchTransformer(build_model(cfg.model, data)).to(device)
    models = {"ours": ours, "torch.nn.Transformer": reference}
    if args.compile:
        models[COMPILED] = copy.deepcopy(ours)
        compile_model(models[COMPILED], "model")
    if args.bf16:
        models[BF16] = copy.deepcopy(ours)
    report = {
        "experiment": args.experiment,
        "overrides": args.override,
        "hardware": hardware_summary(device),
        "parameters": {
            "ours": sum(p.numel() for p in ours.parameters()),
            "torch.nn.Transformer": sum(p.numel() for p in reference.parameters()),
        },
        **time_training_side_by_side(models, cfg, data, device, args.steps, args.warmup),
    }
    if args.checkpoint:
        ours.load_state_dict(checkpoint.load(args.checkpoint, device)["model"])
    report["decode_checkpoint"] = args.checkpoint or "none (untrained weights: output lengths are not representative)"
    report["decode"] = {}
    for cache in (True, False) if args.decode_sentences > 0 else ():
        ours.cfg.kv_cache = cache
        report["decode"]["kv_cache" if cache else "no_cache"] = time_decoding(
            ours, cfg, data, device, args.decode_sentences, cfg.task.test_beam
        )
    print(f"{args.experiment} on {device}, {torch.get_num_threads()} threads")
    print(
        f"train target tok/s: ours {report['train_tgt_tok_per_s']['ours']:.0f}, torch.nn.Transformer "
        f"{report['train_tgt_tok_per_s']['torch.nn.Transformer']:.0f} (ratio {report['ours_over_torch']:.2f})"
    )
    if args.compile:
        print(
            f"compiled: {report['train_tgt_tok_per_s'][COMPILED]:.0f} tok/s ({report['compiled_over_eager']:.2f}x eager) after "
            f"{report['warmup_s'][COMPILED]:.0f} s of warm-up steps (eager: {report['warmup_s']['ours']:.0f} s)"
        )
    if args.bf16:
        print(f"bf16 autocast: {report['train_tgt_tok_per_s'][BF16]:.0f} tok/s ({report['bf16_over_fp32']:.2f}x fp32)")
    for name, rates in report["decode"].items():
        print(f"decode {name}: " + ", ".join(f"{k} {v['sent_per_s']:.1f} sent/s" for k, v in rates.items() if k != "sentences"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
