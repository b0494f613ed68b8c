"""Every experiment preset beside its paper: results/presets.md (and presets.json) from the
configs, the real batcher on the real data, and the papers' settings in scripts/presets_paper.yaml.

    python scripts/presets.py                  # = make presets: reads $ATTN_ZOO_DATA (../shared/data here)
    python scripts/presets.py --no-data        # only the settings that the configs alone decide

For each preset: the model, its parameters, the batch (images, or sentences and real tokens per
step, measured on the training split), optimizer steps per epoch and in all, warmup, schedule,
optimizer, loss normalization, init, regularization and decoding. The settings read from the
config alone ("config" fields) are what tests/test_presets.py recomputes to catch a preset that
drifted from the committed table; the measured ones ("data" fields) need the real data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from attention_zoo.page_sections import write_section

REPO = Path(__file__).resolve().parents[1]
PAPER = Path(__file__).with_name("presets_paper.yaml")
START, END = "<!-- presets:start -->", "<!-- presets:end -->"
CONFIG_FIELDS = ("model", "epochs", "batch", "optimizer", "schedule", "warmup", "loss", "init", "regularization", "decoding")
DATA_FIELDS = ("parameters", "batch_measured", "steps_per_epoch", "steps")
LABELS = {
    "model": "model",
    "parameters": "parameters",
    "batch": "batch (config)",
    "batch_measured": "batch (measured)",
    "steps_per_epoch": "updates / epoch",
    "epochs": "epochs",
    "steps": "updates in all",
    "warmup": "warmup",
    "schedule": "schedule",
    "optimizer": "optimizer",
    "loss": "loss normalization",
    "init": "init",
    "regularization": "regularization",
    "decoding": "decoding (test)",
}


def _g(x: float) -> str:
    return f"{x:g}"


def describe_model(m: dict) -> str:
    name = m["name"]
    if name == "cifar_resnet":
        text = f"ResNet-{m['depth']} (widths {m['widths']}, shortcut {m['shortcut']})"
        if m["block_attention"] != "none":
            text += f" + {m['block_attention']} {m['block_attention_options'] or ''}".rstrip()
        if m["non_local_stages"] and m.get("non_local_kind") == "generalized":
            terms = m["non_local_options"].get("attention_type")
            text += f" + generalized attention {terms} at stages {m['non_local_stages']} ({m['non_local_placement']})"
        elif m["non_local_stages"]:
            instantiation = m["non_local_options"].get("instantiation")
            text += f" + non-local {instantiation} at stages {m['non_local_stages']} ({m['non_local_placement']})"
        if m.get("deformable_stages"):
            text += f" + deformable conv v{2 if m['deformable_modulated'] else 1} at stages {m['deformable_stages']}"
        return text
    if name == "seq2seq":
        layers = f"{m['num_layers']}x{m['hidden_dim']} {m['cell'].upper()}"
        return f"{layers}, {m['embed_dim']}-d embeddings, reversed source: {m['reverse_source']}"
    if name == "rnnsearch":
        return (
            f"bi-GRU {m['hidden_dim']}, {m['embed_dim']}-d embeddings, attention {m['attention_dim']}, maxout {m['maxout_dim']}"
        )
    if name == "transformer":
        ln = "pre-LN" if m["norm_first"] else "post-LN"
        return (
            f"Transformer {m['encoder_layers']}+{m['decoder_layers']} layers, d {m['d_model']}, {m['heads']} heads, "
            f"FFN {m['d_ff']}, {ln}, tied: {m['share_embeddings']}, terms {dict(m['attention_types'])}"
        )
    if name == "show_attend_tell":
        return (
            f"{m['encoder']} ({'fine-tuned' if m['fine_tune_encoder'] else 'frozen'}, weights {m['encoder_weights']}) "
            f"+ LSTM {m['hidden_dim']}, {m['attention']} attention {m['attention_dim']}, embeddings {m['embed_dim']}"
        )
    if name == "c2d":
        blocks = len(m["non_local_after_blocks"]) if m["non_local_after_blocks"] else "placed"
        where = f"{blocks} spacetime non-local blocks" if m["non_local_stages"] else "no non-local block"
        return f"C2D: ResNet-{m['depth']} per frame, {where}, mean over time and space"
    if name == "sagan":
        where = ", ".join(f"{s}x{s}" for s in m["attention_at"]) or "none"
        ema = f", EMA of G {_g(m['ema_decay'])}" if m["ema_decay"] else ""
        networks = f"SN-ResNet G {m['g_width']} / projection D {m['d_width']} channels, z {m['z_dim']}"
        return f"{networks}, self-attention at {where}{ema}"
    return name


def describe_batch(d: dict) -> str:
    if d["kind"] == "cifar":
        return f"{d['batch_size']} images" + (", 4-px pad/crop + flip" if d["augment"] else "")
    if d["kind"] == "multi30k":
        tok = (
            f"{d['tokenizer']}"
            + (f" {d['vocab_size']}" if d["tokenizer"] != "moses" else "")
            + (" joint" if d.get("joint_vocab") else "")
        )
        cap = f", <= {d['max_sentences']} sentences" if d.get("max_sentences") else ""
        return f"<= {d['max_tokens']} padded tokens a side{cap} ({tok})"
    if d["kind"] == "videos":
        return f"{d['batch_size']} clips of {d['frames']} frames at {d['size']}x{d['size']}"
    if d.get("group_by") == "image":
        return f"{d['batch_size'] // 5} images x their 5 captions"
    return f"{d['batch_size']} captions of one length"


def describe_schedule(s: dict, epochs: int) -> str:
    name = s["name"]
    if name == "multistep":
        return f"x{_g(s['gamma'])} at epochs {s['milestones']}"
    if name == "cosine":
        return f"cosine to {_g(s['min_lr_ratio'])} x peak"
    if name == "inverse_sqrt":
        return "Eq. 3 of Vaswani et al.: linear warmup, then ∝ step^-0.5"
    if name == "onecycle":
        start, end = 1 / s["div_factor"], 1 / (s["div_factor"] * s["final_div_factor"])
        return (
            f"one-cycle: {_g(start)} x peak up to the peak over {_g(100 * s['pct_start'])}% of training, "
            f"cosine down to {_g(end)} x peak (momentum cycled 0.95-0.85)"
        )
    return name


def describe_optimizer(o: dict, clip) -> str:
    name = o["name"]
    extra = {
        "sgd": f"momentum {_g(o.get('momentum', 0))}" + (" Nesterov" if o.get("nesterov") else ""),
        "adam": f"betas {o.get('betas')}, eps {_g(o.get('eps', 0))}",
        "adamw": f"betas {o.get('betas')}",
        "adadelta": f"rho {_g(o.get('rho', 0))}, eps {_g(o.get('eps', 0))}",
        "rmsprop": f"alpha {_g(o.get('alpha', 0))}",
    }
    text = f"{name} lr {_g(o['lr'])}, {extra.get(name, '')}, wd {_g(o.get('weight_decay', 0))}"
    if o.get("group_lr"):
        text += ", " + ", ".join(f"{group} lr {_g(lr)}" for group, lr in o["group_lr"].items())
    return text + (f", grad norm clip {_g(clip)}" if clip else "")


def describe_loss(t: dict) -> str:
    if t["name"] in ("classification", "video_classification"):
        return (
            "cross-entropy, mean over "
            + ("clips" if t["name"] == "video_classification" else "images")
            + (f", label smoothing {_g(t['label_smoothing'])}" if t.get("label_smoothing") else "")
        )
    if t["name"] == "translation":
        return {"token": "mean over target tokens", "sentence": "summed per sentence, mean over sentences"}[
            t["loss_normalization"]
        ]
    if t["name"] == "generation":
        return f"hinge (Eq. 4), mean over images; {t['d_steps_per_g_step']} D step(s) per G step"
    return "summed per caption, divided by target tokens"


def describe_init(m: dict) -> str:
    name = m["name"]
    if name in ("cifar_resnet", "c2d"):
        text = "He normal (fan-out) convolutions, BN (1, 0)"
        if m["non_local_stages"]:
            o = m["non_local_options"]
            text += (
                f"; non-local θ φ g W_z ~ N(0, {o.get('conv_init_std')}²), BN scale 0, 1/sqrt(C') scale: {o.get('scale', True)}"
            )
        return text
    if name == "seq2seq":
        return f"U(-{_g(m['init_range'])}, {_g(m['init_range'])})"
    if name == "rnnsearch":
        return {
            "bahdanau": "App. B.1: orthogonal recurrent, W_a U_a ~ N(0, 0.001²), v_a and biases 0, others N(0, 0.01²)",
            "pytorch": "PyTorch defaults",
        }[m["init"]]
    if name == "transformer":
        return "Xavier-uniform weights, embeddings N(0, d^-0.5)"
    if name == "sagan":
        return "PyTorch defaults, spectral norm on every conv/linear, cBN gains and biases 0, γ = 0"
    return "PyTorch defaults (encoder: its weights)"


def describe_regularization(cfg: dict) -> str:
    m, t, o = cfg["model"], cfg["task"], cfg["optim"]
    parts = []
    if "dropout" in m:
        parts.append(
            f"dropout {_g(m['dropout'])}" + (f" (attention {_g(m['attention_dropout'])})" if "attention_dropout" in m else "")
        )
    if t.get("label_smoothing"):
        parts.append(f"label smoothing {_g(t['label_smoothing'])}")
    if o.get("weight_decay"):
        parts.append(f"weight decay {_g(o['weight_decay'])}")
    if t["name"] == "captioning":
        parts.append(f"doubly stochastic λ {_g(t['doubly_stochastic'])}")
    if m["name"] == "sagan":
        parts.append("spectral normalization in G and D")
    if cfg["trainer"].get("early_stopping_patience"):
        parts.append(f"early stopping {cfg['trainer']['early_stopping_patience']} epochs")
    if cfg["trainer"].get("average_last_epochs"):
        parts.append(f"average of the last {cfg['trainer']['average_last_epochs']} epochs")
    return ", ".join(parts) or "none"


def describe_decoding(cfg: dict) -> str:
    t = cfg["task"]
    if t["name"] in ("classification", "video_classification"):
        return "argmax"
    if t["name"] == "generation":
        return "samples of " + ("G's moving average" if cfg["model"]["ema_decay"] else "G") + ", eval-mode BatchNorm"
    text = f"beam {t['test_beam']}, stop {t['beam_stop']}"
    if t["name"] == "translation":
        text += f", length penalty {_g(t['length_penalty'])}, max {_g(t['max_len_a'])}·|x| + {t['max_len_b']}"
    elif cfg["model"]["attention"] == "hard":
        text += f", hard attention: {cfg['model']['hard_decode']} context"
    return text


def config_fields(cfg: dict) -> dict[str, str]:
    """The settings the config alone decides."""
    warmup = cfg["schedule"].get("warmup_steps") or 0
    if cfg["schedule"]["name"] == "onecycle":
        warmup = f"{_g(100 * cfg['schedule']['pct_start'])}% of the updates (one-cycle)"
    return {
        "model": describe_model(cfg["model"]),
        "epochs": str(cfg["trainer"]["epochs"])
        + (f" (max {cfg['trainer']['max_steps']} updates)" if cfg["trainer"].get("max_steps") else ""),
        "batch": describe_batch(cfg["data"]),
        "optimizer": describe_optimizer(cfg["optim"], cfg["trainer"].get("grad_clip_norm")),
        "schedule": describe_schedule(cfg["schedule"], cfg["trainer"]["epochs"]),
        "warmup": warmup if isinstance(warmup, str) else f"{warmup} updates" if warmup else "none",
        "loss": describe_loss(cfg["task"]),
        "init": describe_init(cfg["model"]),
        "regularization": describe_regularization(cfg),
        "decoding": describe_decoding(cfg),
    }


def data_fields(cfg) -> dict[str, str]:
    """Parameters and the batches of the real training split (builds the data module and model)."""
    from attention_zoo.build import build_data, build_model

    container = OmegaConf.to_container(cfg, resolve=True)
    if container["model"]["name"] == "show_attend_tell":
        container["model"]["encoder_weights"] = None  # the same parameters; ImageNet weights are not needed to count them
    data = build_data(container["data"], cfg.seed)
    model = build_model(container["model"], data)
    steps_per_epoch = data.num_train_batches
    total = steps_per_epoch * cfg.trainer.epochs
    if cfg.trainer.max_steps:
        total = min(total, cfg.trainer.max_steps)
    fields = {
        "parameters": f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M",
        "steps_per_epoch": str(steps_per_epoch),
        "steps": f"{total:,}",
    }
    if container["data"]["kind"] == "multi30k":
        train = data.ids["train"]
        rows = data.train_batch_rows
        src = statistics.mean(sum(len(train["src"][i]) for i in b) for b in rows)
        tgt = statistics.mean(sum(len(train["tgt"][i]) + 1 for i in b) for b in rows)
        fields["batch_measured"] = (
            f"{statistics.mean(map(len, rows)):.0f} sentences, {src:,.0f} source + {tgt:,.0f} target tokens"
        )
    elif container["data"]["kind"] == "captions":
        fields["batch_measured"] = f"{len(data.train_pairs) / steps_per_epoch:.1f} captions on average"
    else:
        unit = "clips" if container["data"]["kind"] == "videos" else "images"
        fields["batch_measured"] = f"{container['data']['batch_size']} {unit} of {len(data.train.labels):,}"
    return fields


def compose_preset(name: str, overrides: list[str] = ()):
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        return compose("train", overrides=[f"experiment={name}", *overrides])


def build_table(with_data: bool) -> dict:
    paper = yaml.safe_load(PAPER.read_text())
    table = {}
    for group, spec in paper.items():
        presets = {}
        for preset in spec["presets"]:
            cfg = compose_preset(preset)
            row = config_fields(OmegaConf.to_container(cfg, resolve=True))
            if with_data:
                try:
                    row.update(data_fields(cfg))
                except Exception as err:  # noqa: BLE001 - a preset whose data is not here says why
                    row.update({f: "not measured" for f in DATA_FIELDS}, data_error=f"{type(err).__name__}: {str(err)[:200]}")
            presets[preset] = row
        table[group] = {"title": spec["title"], "paper": spec["paper"], "presets": presets, "departures": spec["departures"]}
    return table


def markdown(table: dict) -> str:
    lines = []
    for group in table.values():
        presets = list(group["presets"])
        lines += [
            f"### {group['title']}",
            "",
            "| setting | paper | " + " | ".join(f"`{p}`" for p in presets) + " |",
            "|---|---|" + "---|" * len(presets),
        ]
        for key in (
            "model",
            "parameters",
            "batch",
            "batch_measured",
            "steps_per_epoch",
            "epochs",
            "steps",
            "warmup",
            "schedule",
            "optimizer",
            "loss",
            "init",
            "regularization",
            "decoding",
        ):
            cells = [str(group["presets"][p].get(key, "")).replace("|", "/") for p in presets]
            lines.append(f"| {LABELS[key]} | {group['paper'].get(key, '')} | " + " | ".join(cells) + " |")
        lines.append("")
        for preset in presets:
            error = group["presets"][preset].get("data_error")
            if error:
                lines.append(f"- `{preset}`: not measured here, the data did not load ({error}).")
        lines += [f"- `{preset}`: {why}" for preset, why in group["departures"].items()] + [""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-data", action="store_true", help="only the config-derived settings")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "presets.md")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    table = build_table(with_data=not args.no_data)
    args.out.with_suffix(".json").write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    write_section(args.out, START, END, markdown(table), "Presets beside their papers")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
