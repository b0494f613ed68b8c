"""Greedy and batched beam-search decoding for any model with the step interface.

A model provides ``encode(src, src_len) -> memory``, ``start(memory) -> state`` and
``step(prev (B,), state, memory) -> (log_probs (B, V), state, attention (B, S) or None)``;
memory and state are dicts of tensors with the batch in dim 0, so beams are formed and
reordered by indexing dim 0.

Length rule: a hypothesis for a source of n tokens ends by ``max_len_a * n + max_len_b``
tokens (EOS forced there). Beam scores are normalized by the GNMT length penalty
lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, Eq. 14), used by Vaswani et al. Sec. 6.1 with α = 0.6;
α = 0 ranks by total log-probability. A sentence's search stops once it holds ``beam``
finished hypotheses. With beam 1 the search makes greedy's choices exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attention_zoo.data.text import BOS, EOS


@dataclass
class Hypothesis:
    tokens: list[int]  # without <bos>/<eos>
    score: float  # normalized log-probability
    attention: torch.Tensor | None  # (len(tokens) + 1, S) weights per output step (incl. <eos>), or None


def _index(tree: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v.index_select(0, idx) for k, v in tree.items()}


def _length_limits(src_len: torch.Tensor, a: float, b: int) -> torch.Tensor:
    return (a * src_len.float() + b).floor().long().clamp(min=1)  # (B,)


def _force_eos(log_probs: torch.Tensor, at_limit: torch.Tensor) -> torch.Tensor:
    """Rows where ``at_limit``: only <eos> is possible."""
    forced = torch.full_like(log_probs, float("-inf"))
    forced[:, EOS] = 0.0
    return torch.where(at_limit[:, None], forced, log_probs)


@torch.no_grad()
def greedy_decode(model, src, src_len, max_len_a: float = 1.5, max_len_b: int = 10) -> list[Hypothesis]:
    batch = src.shape[0]
    memory = model.encode(src, src_len)
    state = model.start(memory)
    limits = _length_limits(src_len, max_len_a, max_len_b)
    prev = torch.full((batch,), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    tokens, attentions, scores = [], [], torch.zeros(batch, device=src.device)
    for t in range(int(limits.max())):
        log_probs, state, attention = model.step(prev, state, memory)
        log_probs = _force_eos(log_probs, t + 1 >= limits)
        best, prev = log_probs.max(dim=-1)
        scores += torch.where(done, 0.0, best)
        tokens.append(torch.where(done, EOS, prev))
        attentions.append(attention)
        done |= prev == EOS
        if done.all():
            break
    steps = torch.stack(tokens, 1).tolist()  # (B, T)
    results = []
    for row in range(batch):
        length = steps[row].index(EOS) if EOS in steps[row] else len(steps[row])
        attn = torch.stack([a[row] for a in attentions[: length + 1]]) if attentions[0] is not None else None
        results.append(Hypothesis(steps[row][:length], float(scores[row]), attn))
    return results


@torch.no_grad()
def beam_search(
    model, src, src_len, beam: int = 5, length_penalty: float = 0.0, max_len_a: float = 1.5, max_len_b: int = 10
) -> list[Hypothesis]:
    """Best finished hypothesis per sentence, by log-probability / ((5 + |Y|) / 6)^length_penalty."""
    batch, device = src.shape[0], src.device
    memory = model.encode(src, src_len)
    expand = torch.arange(batch, device=device).repeat_interleave(beam)  # (B*K,) sentence of each beam
    memory = _index(memory, expand)
    state = model.start(memory)
    limits = _length_limits(src_len, max_len_a, max_len_b).repeat_interleave(beam)  # (B*K,)
    scores = torch.full((batch, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive
    prev = torch.full((batch * beam,), BOS, dtype=torch.long, device=device)
    history = torch.empty(batch * beam, 0, dtype=torch.long, device=device)  # (B*K, t)
    attn_history = None  # (B*K, t, S)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    for t in range(int(limits.max())):
        log_probs, state, attention = model.step(prev, state, memory)  # (B*K, V)
        log_probs = _force_eos(log_probs, t + 1 >= limits)
        vocab = log_probs.shape[-1]
        candidates = (scores.view(-1, 1) + log_probs).view(batch, beam * vocab)
        top_scores, top_index = candidates.topk(2 * beam, dim=-1)  # (B, 2K): enough to refill after EOS
        source_beam = top_index // vocab + torch.arange(batch, device=device)[:, None] * beam  # (B, 2K) flat index
        token = top_index % vocab
        if attention is not None:
            step_attn = attention[:, None, :]
            attn_history = step_attn if attn_history is None else torch.cat([attn_history, step_attn], 1)
        keep_beam, keep_token, keep_score = [], [], []
        for b in range(batch):
            kept = 0
            for j in range(2 * beam):
                score = float(top_scores[b, j])
                if score == float("-inf") or len(finished[b]) >= beam or kept == beam:
                    break
                origin = int(source_beam[b, j])
                if int(token[b, j]) == EOS:
                    words = history[origin].tolist()
                    attn = attn_history[origin] if attn_history is not None else None
                    finished[b].append(Hypothesis(words, score / ((5 + len(words) + 1) / 6) ** length_penalty, attn))
                else:
                    keep_beam.append(origin), keep_token.append(int(token[b, j])), keep_score.append(score)
                    kept += 1
            while kept < beam:  # a finished (or exhausted) sentence keeps dead placeholder beams
                keep_beam.append(b * beam), keep_token.append(EOS), keep_score.append(float("-inf"))
                kept += 1
        if all(len(f) >= beam for f in finished):
            break
        order = torch.tensor(keep_beam, device=device)
        prev = torch.tensor(keep_token, device=device)
        scores = torch.tensor(keep_score, device=device).view(batch, beam)
        state = _index(state, order)
        history = torch.cat([history.index_select(0, order), prev[:, None]], 1)
        if attn_history is not None:
            attn_history = attn_history.index_select(0, order)
    return [max(f, key=lambda h: h.score) for f in finished]
