"""Captioning: Show-Attend-Tell's training objective, decoding and COCO-metric evaluation.

Soft attention minimizes, per caption (Eq. 14),

    -log p(y | a) + λ Σ_i (1 - Σ_t α_ti)²        (the doubly stochastic penalty)

Hard attention follows Eq. 11-12: it maximizes log p(y | s̃, a) of sampled locations s̃ and
pushes their log-probability log p(s̃ | a) by the reward log p(y | s̃, a) minus a moving-average
baseline b (b ← 0.9 b + 0.1 log p(y | s̃, a) per batch), with an entropy bonus λ_e H[s̃]. Captions
that used the expected context (probability 0.5) contribute only their likelihood. The penalty of
Eq. 14 applies to both. Everything is summed over captions and divided by the number of target
tokens, so that the loss stays on the per-token scale the trainer reports. The REINFORCE and
entropy terms enter the gradient only: the loss value logged for hard attention is the same
-log p(y | s̃, a) + λ penalty as for soft attention, not the surrogate's meaningless value.

Validation decodes greedily and scores BLEU-1..4, METEOR, ROUGE-L, CIDEr (and SPICE) with
pycocoevalcap against all references; the best epoch is picked by BLEU-4, as the paper early-
stops on BLEU (Sec. 5.2). The test decodes with beam search and writes the captions. On the
scenes set it also scores attention localization (metrics/localization.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.data.text import PAD
from attention_zoo.engine.trainer import StepOutput, unwrap
from attention_zoo.metrics.caption import caption_scores
from attention_zoo.metrics.localization import SceneCaptionScores
from attention_zoo.tasks.decoding import beam_search, greedy_decode
from attention_zoo.viz.caption_attention import plot_caption_attention

log = logging.getLogger(__name__)
TABLE_IMAGES = 32  # test images in the W&B predictions table


def doubly_stochastic_penalty(alphas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_i (1 - Σ_t α_ti)² per caption (Eq. 14). alphas (B, T, L), mask (B, T) -> (B,)."""
    coverage = (alphas * mask[:, :, None]).sum(dim=1)  # (B, L) Σ_t α_ti over real steps
    return ((1 - coverage) ** 2).sum(dim=-1)


class CaptioningTask:
    monitor = "bleu4"
    monitor_mode = "max"
    unit = "tok"

    def __init__(
        self,
        data,
        output_dir: str | Path | None = None,
        doubly_stochastic: float = 1.0,
        reinforce_weight: float = 1.0,
        entropy_weight: float = 0.01,
        baseline_decay: float = 0.9,
        test_beam: int = 3,
        max_len: int = 30,
        figure_images: Sequence[int] = (),
        failure_cases: int = 0,
        spice: bool | None = None,
        beam_stop: str = "exact",
    ):
        self.data, self.output_dir = data, Path(output_dir) if output_dir else None
        self.doubly_stochastic, self.reinforce_weight, self.entropy_weight = doubly_stochastic, reinforce_weight, entropy_weight
        self.baseline_decay, self.test_beam, self.max_len, self.spice = baseline_decay, test_beam, max_len, spice
        self.beam_stop = beam_stop
        n_test = len(data.references["test"])
        if any(not 0 <= i < n_test for i in figure_images):
            raise ValueError(f"task.figure_images={list(figure_images)} must index the {n_test} test images; [] draws none.")
        self.figure_images = list(figure_images)
        self.failure_cases = failure_cases
        self.test_cider: dict[int, float] = {}  # test image -> its CIDEr, from the last test evaluation
        self.test_captions: dict[int, str] = {}  # test image -> its caption, from the last test evaluation

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        captions_in, targets = batch["captions"][:, :-1], batch["captions"][:, 1:]  # (B, T) each
        mask = targets.ne(PAD)  # (B, T)
        out = model(batch["src"], captions_in, batch.get("caption_image"), lengths=mask.sum(1))
        token_nll = F.cross_entropy(out["logits"].flatten(0, 1).float(), targets.flatten(), reduction="none").view_as(targets)
        log_p_y = -(token_nll * mask).sum(dim=1)  # (B,) log p(y | a) of each caption
        tokens = int(mask.sum())
        objective = -log_p_y.sum() + self.doubly_stochastic * doubly_stochastic_penalty(out["alphas"], mask).sum()
        if "log_p_locations" in out:  # gradient only: the reported loss stays -log p(y|s̃,a) + λ penalty
            surrogate = self._hard_attention_terms(model, out, log_p_y.detach(), mask)
            objective = objective - (surrogate - surrogate.detach())
        return StepOutput(
            loss=objective / tokens, count=tokens, sums={"nll": float(-log_p_y.detach().sum())}
        )  # train/nll per token

    def _hard_attention_terms(self, model: nn.Module, out: dict, reward: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """λ_r Σ (log p(y|s̃) - b) log p(s̃|a) + λ_e Σ H[s̃] over the captions that sampled (Eq. 12);
        updates the baseline b with this batch's mean reward."""
        sampled = ~out["expected"]  # (B,)
        if not sampled.any():
            return torch.zeros((), device=reward.device)
        baseline = unwrap(model).reward_baseline  # (a buffer; DDP broadcasts rank 0's before each forward)
        log_p_s = (out["log_p_locations"] * mask).sum(dim=1)  # (B,) log p(s̃ | a)
        entropy = (out["entropies"] * mask).sum(dim=1)  # (B,)
        terms = self.reinforce_weight * (reward - baseline) * log_p_s + self.entropy_weight * entropy
        with torch.no_grad():
            baseline.mul_(self.baseline_decay).add_((1 - self.baseline_decay) * reward[sampled].mean())
        return (terms * sampled).sum()

    @torch.no_grad()
    def decode(self, model: nn.Module, src: torch.Tensor, beam: int) -> list:
        no_length = torch.zeros(len(src), dtype=torch.long, device=src.device)
        if beam == 1:
            return greedy_decode(model, src, no_length, max_len_a=0.0, max_len_b=self.max_len + 1)
        return beam_search(model, src, no_length, beam, 0.0, max_len_a=0.0, max_len_b=self.max_len + 1, stop=self.beam_stop)

    def evaluate(self, model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], split: str = "val") -> dict[str, float]:
        beam = self.test_beam if split == "test" else 1
        loss_sum = tokens = 0
        localizes = self.data.objects is not None and model.cfg.attention != "none"
        scene_scores = SceneCaptionScores(self.data.cfg.scenes_image_size) if localizes else None
        indices, captions = [], []
        for batch in batches:
            src = model.encode(batch["src"])["annotations"]  # (B, L, D): the encoder runs once for loss and decoding
            targets = batch["captions"][:, 1:]
            out = model(src, batch["captions"][:, :-1], lengths=targets.ne(PAD).sum(1))
            loss_sum += float(
                F.cross_entropy(out["logits"].flatten(0, 1).float(), targets.flatten(), ignore_index=PAD, reduction="sum")
            )
            tokens += int(targets.ne(PAD).sum())
            for index, hyp in zip(batch["index"].tolist(), self.decode(model, src, beam)):
                words = self.data.encoder.token_strings(hyp.tokens)
                indices.append(index), captions.append(self.data.encoder.decode(hyp.tokens))
                if scene_scores is not None:
                    scene_scores.add(words, hyp.attention, self.data.objects[split][index])
        references = [self.data.references[split][i] for i in indices]
        cider_each: list[float] = []
        metrics = {"loss": loss_sum / tokens, **caption_scores(captions, references, self.spice, cider_each)}
        if scene_scores is not None:
            metrics.update(scene_scores.summary())
        if split == "test":
            self.test_cider, self.test_captions = dict(zip(indices, cider_each)), dict(zip(indices, captions))
        if split == "test" and self.output_dir is not None:
            records = [
                {"index": i, "caption": c, "cider": round(d, 4), "references": r}
                for i, c, d, r in zip(indices, captions, cider_each, references)
            ]
            (self.output_dir / f"captions.test.beam{beam}.json").write_text(json.dumps(records, indent=1) + "\n")
        return metrics

    def failure_images(self) -> list[int]:
        """The ``failure_cases`` test images with the lowest CIDEr in the last test evaluation."""
        return sorted(self.test_cider, key=lambda i: (self.test_cider[i], i))[: self.failure_cases]

    def prediction_table(self, model: nn.Module, limit: int = TABLE_IMAGES) -> tuple[list[str], list[list]] | None:
        """The first ``limit`` test images: image, caption, references, CIDEr, and the per-word
        attention overlay of the caption (None without attention)."""
        if not self.test_captions:
            return None
        import tempfile

        from attention_zoo.data.images import read_rgb

        indices = sorted(self.test_captions)[:limit]
        device = next(model.parameters()).device
        model.eval()
        attends = model.cfg.attention != "none"
        hyps = self.decode(model, self.data.batch("test", indices)["src"].to(device), self.test_beam) if attends else []
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for k, (index, image) in enumerate(zip(indices, self.data.pixels("test", indices))):
                overlay = None
                if attends:
                    words = [*self.data.encoder.token_strings(hyps[k].tokens), "<eos>"]
                    overlay = read_rgb(plot_caption_attention(image, words, hyps[k].attention, Path(tmp) / f"{index}.png"))
                references = " | ".join(self.data.references["test"][index])
                rows.append([index, image, self.test_captions[index], references, round(self.test_cider[index], 4), overlay])
        return ["index", "image", "caption", "references", "CIDEr", "attention"], rows

    def figures(self, model: nn.Module) -> dict[str, Path]:
        """Per-word attention (Xu et al. Figs. 2-3) of the ``figure_images`` of the test split and of
        its ``failure_cases`` worst captions by CIDEr, decoded with beam search:
        <run>/figures/attention_test_<i>.png and failure_test_<i>.png, by W&B key."""
        chosen = [("attention", i, "") for i in self.figure_images]
        chosen += [("failure", i, f", failure case: CIDEr {self.test_cider[i]:.2f}") for i in self.failure_images()]
        if self.output_dir is None or not chosen or model.cfg.attention == "none":
            return {}
        device = next(model.parameters()).device
        model.eval()
        rows = [index for _, index, _ in chosen]
        hyps = self.decode(model, self.data.batch("test", rows)["src"].to(device), self.test_beam)
        figures = {}
        for (kind, index, note), image, hyp in zip(chosen, self.data.pixels("test", rows), hyps):
            words = [*self.data.encoder.token_strings(hyp.tokens), "<eos>"]
            name = f"{kind}_test_{index}"
            figures[f"figures/{name}"] = plot_caption_attention(
                image,
                words,
                hyp.attention,
                self.output_dir / "figures" / f"{name}.png",
                title=f"test image #{index}, beam {self.test_beam} ({model.cfg.attention} attention){note}",
            )
        return figures
