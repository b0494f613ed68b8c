"""Translation: teacher-forced cross-entropy training; decoding and BLEU evaluation.

Validation (every epoch) decodes greedily and scores sacreBLEU, which picks the best epoch;
the final test decodes with beam search (``test_beam``) and writes the detokenized
translations next to the run's metrics. ``figures`` then draws the alignment matrices of a few
test sentences (Bahdanau et al. 2015, Fig. 3) for models that attend.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.choices import check_choice
from attention_zoo.data.text import BOS, PAD
from attention_zoo.engine.trainer import StepOutput
from attention_zoo.metrics.bleu import translation_scores
from attention_zoo.tasks.decoding import beam_search, greedy_decode
from attention_zoo.viz.attention import plot_alignment, plot_heads

log = logging.getLogger(__name__)
# token: the loss is the mean over target tokens (fairseq, Vaswani et al.); sentence: summed over
# each sentence's tokens and averaged over sentences (Sutskever et al. 2014, Bahdanau et al. 2015)
LOSS_NORMALIZATIONS = ("token", "sentence")


class TranslationTask:
    monitor = "bleu"
    monitor_mode = "max"
    unit = "tok"

    def __init__(
        self,
        data,
        output_dir: str | Path | None = None,
        label_smoothing: float = 0.0,
        test_beam: int = 5,
        length_penalty: float = 0.0,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        figure_sentences: Sequence[int] = (),
        beam_stop: str = "exact",
        loss_normalization: str = "token",
    ):
        check_choice("task.loss_normalization", loss_normalization, LOSS_NORMALIZATIONS)
        self.data, self.output_dir = data, Path(output_dir) if output_dir else None
        self.label_smoothing, self.test_beam, self.length_penalty = label_smoothing, test_beam, length_penalty
        self.max_len_a, self.max_len_b, self.beam_stop = max_len_a, max_len_b, beam_stop
        self.loss_normalization = loss_normalization
        self.test_details: dict = {}
        self.test_outputs: tuple[list[int], list[str], list[str]] | None = None  # (rows, hypotheses, references)
        n_test = len(data.references[data.test_split])
        if any(not 0 <= i < n_test for i in figure_sentences):
            raise ValueError(
                f"task.figure_sentences={list(figure_sentences)} must index the {n_test} {data.test_split} sentences "
                f"(0..{n_test - 1}); set task.figure_sentences=[] to draw no alignment figures."
            )
        self.figure_sentences = list(figure_sentences)

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        tgt_in, tgt_out = batch["tgt"][:, :-1], batch["tgt"][:, 1:]  # (B, T-1) each
        logits = model(batch["src"], batch["src_len"], tgt_in)  # (B, T-1, V)
        loss = F.cross_entropy(
            logits.flatten(0, 1).float(), tgt_out.flatten(), ignore_index=PAD, label_smoothing=self.label_smoothing
        )
        tokens = int(tgt_out.ne(PAD).sum())
        if self.loss_normalization == "sentence":
            # Gradient of Σ_tokens loss / sentences (Sutskever et al. Sec. 3.4); the value stays the
            # per-token mean, so train/loss is comparable across presets.
            scale = tokens / tgt_out.shape[0]
            loss = loss + (scale - 1) * (loss - loss.detach())
        return StepOutput(loss=loss, count=tokens)

    def evaluate(self, model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], split: str = "val") -> dict[str, float]:
        """Loss and perplexity under teacher forcing, then BLEU/chrF of decoded output."""
        beam = self.test_beam if split == "test" else 1
        metrics, rows, hypotheses = self.translate(model, batches, beam)
        split_name = self.data.test_split if split == "test" else "val"
        references = [self.data.references[split_name][row] for row in rows]  # all of them, but for smoke runs
        scores = translation_scores(hypotheses, references, self.data.cfg.tgt)
        if split == "test":
            self.test_outputs = (rows, hypotheses, references)
        if split == "test" and self.output_dir is not None:
            (self.output_dir / f"translations.{split_name}.{self.data.cfg.tgt}").write_text("\n".join(hypotheses) + "\n")
        signature = scores.pop("bleu_signature")
        if split == "test":
            log.info("sacreBLEU signature: %s", signature)
            self.test_details = {  # how the test numbers were made: metrics.json records it
                "test_set": split_name,
                "bleu_signature": signature,
                "beam": beam,
                "length_penalty": self.length_penalty,
                "beam_stop": self.beam_stop,
                "max_len": [self.max_len_a, self.max_len_b],
            }
        return {**metrics, **scores}

    def prediction_table(self, model: nn.Module) -> tuple[list[str], list[list]] | None:
        """The last test decoding, one row per sentence: source, reference, hypothesis, sentence chrF."""
        if self.test_outputs is None:
            return None
        from sacrebleu import sentence_chrf

        sources = self.data.sources[self.data.test_split]
        rows = [
            [row, sources[row], reference, hypothesis, round(sentence_chrf(hypothesis, [reference]).score, 2)]
            for row, hypothesis, reference in zip(*self.test_outputs)
        ]
        return ["index", "source", "reference", "hypothesis", "chrF"], rows

    def beam_search(self, model: nn.Module, src: torch.Tensor, src_len: torch.Tensor, beam: int):
        return beam_search(model, src, src_len, beam, self.length_penalty, self.max_len_a, self.max_len_b, self.beam_stop)

    @torch.no_grad()
    def translate(
        self, model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], beam: int
    ) -> tuple[dict[str, float], list[int], list[str]]:
        """Teacher-forced loss/perplexity of the batches, the sentences they held (indices in the
        split, in corpus order) and their detokenized translations, decoded greedily (beam 1) or
        with beam search."""
        nll, tokens, outputs = 0.0, 0, {}
        for batch in batches:
            tgt_in, tgt_out = batch["tgt"][:, :-1], batch["tgt"][:, 1:]
            logits = model(batch["src"], batch["src_len"], tgt_in).float()
            nll += float(F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD, reduction="sum"))
            tokens += int(tgt_out.ne(PAD).sum())
            if beam > 1:
                hyps = self.beam_search(model, batch["src"], batch["src_len"], beam)
            else:
                hyps = greedy_decode(model, batch["src"], batch["src_len"], self.max_len_a, self.max_len_b)
            for row, hyp in zip(batch["index"].tolist(), hyps):
                outputs[row] = self.data.tgt_encoder.decode(hyp.tokens)
        rows = sorted(outputs)
        return {"loss": nll / tokens, "ppl": math.exp(min(nll / tokens, 50))}, rows, [outputs[i] for i in rows]

    @torch.no_grad()
    def figures(self, model: nn.Module) -> dict[str, Path]:
        """Alignment matrices (Bahdanau Fig. 3) of the ``figure_sentences`` of the test set as the
        model translates them with beam search: <run>/figures/alignment_<test set>_<i>.png, by W&B key.
        Models without attention (seq2seq) draw none. Models that expose ``attention_weights``
        (the Transformer) also draw every head of their last layer's attentions for the first
        sentence (Vaswani et al. Figs. 3-5): figures/heads_<kind>_<test set>_<i>.png."""
        if self.output_dir is None or not self.figure_sentences:
            return {}
        device = next(model.parameters()).device
        test = self.data.test_split
        batch = self.data.batch(test, self.figure_sentences)
        src, src_len = batch["src"].to(device), batch["src_len"].to(device)
        model.eval()
        hyps = self.beam_search(model, src, src_len, self.test_beam)
        figures = {}
        for row, hyp, source, length in zip(self.figure_sentences, hyps, batch["src"], batch["src_len"].tolist()):
            if hyp.attention is None:
                return {}
            name = f"alignment_{test}_{row}"
            figures[f"figures/{name}"] = plot_alignment(
                hyp.attention[:, :length],  # (T + 1, S): the <eos> step included, padding dropped
                self.data.src_encoder.token_strings(source[:length].tolist()),
                [*self.data.tgt_encoder.token_strings(hyp.tokens), "<eos>"],
                self.output_dir / "figures" / f"{name}.png",
                title=f"{test} #{row}, beam {self.test_beam}",
            )
        if hasattr(model, "attention_weights"):
            figures.update(self._head_figures(model, batch, hyps[0]))
        return figures

    def _head_figures(self, model: nn.Module, batch: dict[str, torch.Tensor], hyp) -> dict[str, Path]:
        """The last layer's heads of each attention kind, for the first figure sentence and the
        model's own translation of it (teacher-forced)."""
        device = next(model.parameters()).device
        row, length = self.figure_sentences[0], int(batch["src_len"][0])
        src = batch["src"][:1, :length].to(device)
        tgt_in = torch.tensor([[BOS, *hyp.tokens]], device=device)  # (1, T): predicts hyp.tokens + <eos>
        weights = model.attention_weights(src, batch["src_len"][:1].to(device), tgt_in)
        source = self.data.src_encoder.token_strings(src[0].tolist())
        inputs = ["<bos>", *self.data.tgt_encoder.token_strings(hyp.tokens)]
        outputs = [*self.data.tgt_encoder.token_strings(hyp.tokens), "<eos>"]
        axes = {"encoder_self": (source, source), "decoder_self": (inputs, outputs), "encoder_decoder": (source, outputs)}
        figures = {}
        for kind, layers in weights.items():
            keys, queries = axes[kind]
            name = f"heads_{kind}_{self.data.test_split}_{row}"
            figures[f"figures/{name}"] = plot_heads(
                layers[-1][0],
                keys,
                queries,
                self.output_dir / "figures" / f"{name}.png",
                title=f"{self.data.test_split} #{row}: {kind.replace('_', '-')} attention, layer {len(layers)}, every head",
            )
        return figures
