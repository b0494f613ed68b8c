"""Use a trained model: translate sentences, caption images, classify images.

    attention-zoo-predict RUN "Ein Hund läuft im Park."            # translate (beam from the run's config)
    attention-zoo-predict RUN --file sentences.de > out.en            # a file; "-" or no input reads stdin
    attention-zoo-predict RUN photos/ --attention-dir overlays/       # caption (or classify) images and folders
    attention-zoo-predict RUN img.jpg --format jsonl --top-k 3        # JSON lines

RUN is a run folder or a file written by attention-zoo-export (portable.py). Decoding takes the
run's test settings (beam, length penalty, length limits) unless overridden here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.nn import functional as F

from attention_zoo import portable
from attention_zoo.data.images import IMAGE_SUFFIXES, image_files, read_rgb, to_square
from attention_zoo.data.text import pad_batch
from attention_zoo.engine.runtime import resolve_device
from attention_zoo.tasks.decoding import beam_search, greedy_decode

TASK_NAMES = {"translate": "translation", "caption": "captioning", "classify": "classification"}


class PredictInputError(ValueError):
    """An input the model cannot take, named with the fix."""


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------------- translation
def read_sentences(texts: list[str], file: str | None) -> list[str]:
    """The sentences given, or the lines of ``file`` ("-": standard input); an empty one is refused."""
    if texts and file:
        raise PredictInputError("Give sentences on the command line or --file, not both.")
    if not texts:
        stream = sys.stdin if file in (None, "-") else open(file, encoding="utf-8")  # noqa: SIM115 - closed below
        with stream:
            texts = [line.rstrip("\n") for line in stream]
    for number, text in enumerate(texts, 1):
        if not text.strip():
            raise PredictInputError(f"Input line {number} is empty: remove it or put a sentence on it.")
    return texts


def translate(trained: portable.TrainedModel, texts: list[str], args) -> Iterator[dict]:
    task, device = trained.config["task"], next(trained.model.parameters()).device
    src_encoder, tgt_encoder = trained.encoder("src"), trained.encoder("tgt")
    beam = args.beam or task["test_beam"]
    alpha = task["length_penalty"] if args.length_penalty is None else args.length_penalty
    for chunk in batched(texts, args.batch_size):
        ids = [src_encoder.encode(text) for text in chunk]
        src, src_len = pad_batch(ids, add_bos_eos=False).to(device), torch.tensor([len(i) for i in ids], device=device)
        with torch.no_grad():
            if beam > 1:
                hyps = beam_search(
                    trained.model, src, src_len, beam, alpha, task["max_len_a"], task["max_len_b"], task["beam_stop"]
                )
            else:
                hyps = greedy_decode(trained.model, src, src_len, task["max_len_a"], task["max_len_b"])
        for text, hyp in zip(chunk, hyps):
            yield {"input": text, "output": tgt_encoder.decode(hyp.tokens)}


# ---------------------------------------------------------------------------------- images
def load_images(paths: list[str], size: int) -> list[tuple[Path, torch.Tensor]]:
    """(path, uint8 (3, size, size)) of every image named or in a folder named."""
    if not paths:
        raise PredictInputError("Name at least one image file or folder.")
    images = []
    for path in image_files(paths):
        if not path.is_file():
            raise PredictInputError(f"No image at {path}: name image files or folders of them.")
        try:
            images.append((path, to_square(read_rgb(path), size)))
        except OSError as err:
            raise PredictInputError(f"Cannot read the image {path} ({err}): replace or remove it.") from None
    if not images:
        raise PredictInputError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(paths)}.")
    return images


def normalized(trained: portable.TrainedModel, pixels: torch.Tensor) -> torch.Tensor:
    mean, std = (torch.tensor(trained.inputs[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    return ((pixels.float() / 255 - mean) / std).to(next(trained.model.parameters()).device)


def caption(trained: portable.TrainedModel, paths: list[str], args) -> Iterator[dict]:
    from attention_zoo.viz.caption_attention import plot_caption_attention

    task, words = trained.config["task"], trained.encoder("words")
    beam = args.beam or task["test_beam"]
    images = load_images(paths, trained.inputs["image_size"])
    for chunk in batched(images, args.batch_size):
        pixels = torch.stack([p for _, p in chunk])  # (B, 3, S, S)
        with torch.no_grad():
            src = trained.model.encode(normalized(trained, pixels))["annotations"]  # (B, L, D)
            no_length = torch.zeros(len(src), dtype=torch.long, device=src.device)
            if beam > 1:
                hyps = beam_search(trained.model, src, no_length, beam, 0.0, 0.0, task["max_len"] + 1, task["beam_stop"])
            else:
                hyps = greedy_decode(trained.model, src, no_length, 0.0, task["max_len"] + 1)
        for (path, image), hyp in zip(chunk, hyps):
            row = {"input": str(path), "output": words.decode(hyp.tokens)}
            if args.attention_dir and hyp.attention is not None:
                tokens = [*words.token_strings(hyp.tokens), "<eos>"]
                png = plot_caption_attention(image, tokens, hyp.attention, args.attention_dir / f"{path.stem}.png")
                row["attention"] = str(png)
            yield row


def classify(trained: portable.TrainedModel, paths: list[str], args) -> Iterator[dict]:
    from attention_zoo.viz.image_attention import cbam_spatial_maps, grad_cam, plot_maps

    classes = trained.inputs["classes"]
    images = load_images(paths, trained.inputs["image_size"])
    for chunk in batched(images, args.batch_size):
        pixels = torch.stack([p for _, p in chunk])
        inputs = normalized(trained, pixels)
        with torch.no_grad():
            probs = F.softmax(trained.model(inputs).float(), dim=1)  # (B, K)
        top = probs.topk(min(args.top_k, len(classes)), dim=1)
        maps = {}
        if args.attention_dir:
            predicted = top.indices[:, 0]
            maps = {
                "Grad-CAM": grad_cam(trained.model, inputs, trained.model.stages[-1], predicted),
                **cbam_spatial_maps(trained.model, inputs),
            }
        for i, (path, _) in enumerate(chunk):
            row = {
                "input": str(path),
                "output": classes[int(top.indices[i, 0])],
                "top": [{"class": classes[int(k)], "p": round(float(p), 6)} for p, k in zip(top.values[i], top.indices[i])],
            }
            if maps:
                row["attention"] = str(
                    plot_maps(
                        pixels[i : i + 1],
                        {k: v[i : i + 1] for k, v in maps.items()},
                        [row["output"]],
                        args.attention_dir / f"{path.stem}.png",
                    )
                )
            yield row


def text_line(row: dict, task: str) -> str:
    """translation: the translation; captioning: path TAB caption; classification: path TAB class TAB p."""
    if task == "translation":
        return row["output"]
    if task == "classification":
        return f"{row['input']}\t{row['output']}\t{row['top'][0]['p']:.4f}"
    return f"{row['input']}\t{row['output']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Translate, caption or classify with a trained model (a run folder or an exported file)."
    )
    parser.add_argument("run", type=Path, help="a run folder (runs/<experiment>/<time>) or a file from attention-zoo-export")
    parser.add_argument("inputs", nargs="*", help="sentences (translation) or image files and folders")
    parser.add_argument("--file", help="translation: read sentences from this file, one per line ('-': standard input)")
    parser.add_argument("--task", choices=sorted(TASK_NAMES), help="refuse a model of another task")
    parser.add_argument("--beam", type=int, help="beam width (1 = greedy); default: the run's task.test_beam")
    parser.add_argument("--length-penalty", type=float, help="translation: GNMT alpha; default: the run's")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=5, help="classification: classes listed in JSON")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    parser.add_argument("--format", choices=("text", "jsonl"), default="text")
    parser.add_argument("--attention-dir", type=Path, help="captioning and classification: one attention PNG per image here")
    args = parser.parse_intermixed_args(argv)
    try:
        trained = portable.load(args.run, resolve_device(args.device))
        if trained.task not in TASK_NAMES.values():
            raise PredictInputError(
                f"{args.run} is a {trained.task} model; attention-zoo-predict translates, captions and classifies. "
                "Sample from a GAN in Python: attention_zoo.portable.load(run).model.sampler()(z, classes) (README: SAGAN)."
            )
        if args.task and TASK_NAMES[args.task] != trained.task:
            verb = {v: k for k, v in TASK_NAMES.items()}[trained.task]
            raise PredictInputError(
                f"{args.run} is a {trained.task} model: it can only {verb} (use --task {verb}, or another run)."
            )
        if trained.task == "translation":
            rows = translate(trained, read_sentences(args.inputs, args.file), args)
        else:
            if args.file:
                raise PredictInputError(
                    f"--file is for sentences; a {trained.task} model takes image files or folders as inputs."
                )
            rows = (caption if trained.task == "captioning" else classify)(trained, args.inputs, args)
        for row in rows:
            print(json.dumps(row, ensure_ascii=False) if args.format == "jsonl" else text_line(row, trained.task), flush=True)
    except (PredictInputError, FileNotFoundError, ValueError) as err:
        print(f"attention-zoo-predict: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
