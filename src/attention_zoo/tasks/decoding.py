"""Greedy and batched beam-search decoding for any model with the step interface.

A model provides ``encode(src, src_len) -> memory``, ``start(memory) -> state`` and
``step(prev (B,), state, memory) -> (log_probs (B, V), state, attention (B, S) or None)``;
memory and state are dicts of tensors with the batch in dim 0, so beams are formed and
reordered by indexing dim 0.

Length rule: a hypothesis for a source of n tokens ends by ``max_len_a * n + max_len_b``
tokens (EOS forced there). Beam scores are normalized by the GNMT length penalty
lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, Eq. 14), used by Vaswani et al. Sec. 6.1 with α = 0.6;
α = 0 ranks by total log-probability. With beam 1 the search makes greedy's choices exactly.

When a sentence's search stops (``stop``):
- ``exact`` (default): once no live hypothesis can still beat the best finished one. Log-
  probabilities only fall as a hypothesis grows and lp only grows, so a live hypothesis of
  log-probability s ends at most at s / lp(limit); the search goes on while that bound beats
  the best finished score (the rule of fairseq's ``early_stopping=False``, and the one the
  GNMT length penalty needs: a longer hypothesis can overtake shorter finished ones).
- ``first_k``: once ``beam`` hypotheses have finished, however good the live ones still are.
  It drops live beams that could still win and so favours short output; the translation
  results committed before this rule became the default were decoded with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attention_zoo.choices import check_choice
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
            break  # every row has ended
    steps = torch.stack(tokens, 1).tolist()  # (B, T)
    results = []
    for row in range(batch):
        length = steps[row].index(EOS) if EOS in steps[row] else len(steps[row])
        attn = torch.stack([a[row] for a in attentions[: length + 1]]) if attentions[0] is not None else None
        results.append(Hypothesis(steps[row][:length], float(scores[row]), attn))
    return results


BEAM_STOPS = ("exact", "first_k")


def length_penalty_factor(length: int | torch.Tensor, alpha: float):
    """lp(Y) = ((5 + |Y|) / 6)^α, |Y| counting the <eos> (Wu et al. 2016, Eq. 14)."""
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(
    model,
    src,
    src_len,
    beam: int,
    length_penalty: float = 0.0,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    stop: str = "exact",
) -> list[Hypothesis]:
    """Best finished hypothesis per sentence, by log-probability / ((5 + |Y|) / 6)^length_penalty."""
    check_choice("beam stop rule", stop, BEAM_STOPS)
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
    done = [False] * batch
    best_bound = length_penalty_factor(limits.view(batch, beam)[:, 0].float(), length_penalty).tolist()  # lp(limit) (B,)
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
                if score == float("-inf") or done[b] or kept == beam or (stop == "first_k" and len(finished[b]) >= beam):
                    break  # the rest of this sentence's candidates score lower, or none is needed
                origin = int(source_beam[b, j])
                if int(token[b, j]) == EOS:
                    words = history[origin].tolist()
                    attn = attn_history[origin] if attn_history is not None else None
                    finished[b].append(Hypothesis(words, score / length_penalty_factor(len(words) + 1, length_penalty), attn))
                else:
                    keep_beam.append(origin), keep_token.append(int(token[b, j])), keep_score.append(score)
                    kept += 1
            live = keep_score[len(keep_score) - kept :]
            while kept < beam:  # a finished (or exhausted) sentence keeps dead placeholder beams
                keep_beam.append(b * beam), keep_token.append(EOS), keep_score.append(float("-inf"))
                kept += 1
            done[b] = done[b] or _search_over(finished[b], live, beam, stop, best_bound[b])
        if all(done):
            break  # every sentence is done
        order = torch.tensor(keep_beam, device=device)
        prev = torch.tensor(keep_token, device=device)
        scores = torch.tensor(keep_score, device=device).view(batch, beam)
        state = _index(state, order)
        history = torch.cat([history.index_select(0, order), prev[:, None]], 1)
        if attn_history is not None:
            attn_history = attn_history.index_select(0, order)
    return [max(f, key=lambda h: h.score) for f in finished]


def _search_over(finished: list[Hypothesis], live_scores: list[float], beam: int, stop: str, lp_at_limit: float) -> bool:
    """Whether a sentence's search may stop, given its finished hypotheses and the total
    log-probabilities of its live ones (see the module docstring)."""
    if not live_scores:
        return True
    if stop == "first_k":
        return len(finished) >= beam
    return bool(finished) and max(h.score for h in finished) >= max(live_scores) / lp_at_limit
