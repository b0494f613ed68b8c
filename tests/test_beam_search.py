"""Beam search against exhaustive search on a tiny vocabulary, with the length penalty on.

The toy model is a table of next-token log-probabilities indexed by (position, previous token):
every hypothesis's score is known in closed form, so the best one can be found by enumerating
all 2^0 + ... + 2^4 = 31 of them.
"""

import itertools

import pytest
import torch

from attention_zoo.data.text import BOS, EOS
from attention_zoo.tasks.decoding import beam_search, length_penalty_factor

WORDS = (4, 5)  # the only tokens the table gives probability to, besides <eos>
LIMIT = 5  # at most 4 words + <eos>


class TableModel(torch.nn.Module):
    """log p(y_t | y_{t-1}, t) from a fixed random table: (LIMIT, V, V) with V = 6."""

    def __init__(self, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(LIMIT, 6, 6, generator=g) * 2.0
        logits[..., :EOS] = float("-inf")  # <pad>, <unk>, <bos> are never produced
        self.table = torch.log_softmax(logits, -1)

    def encode(self, src, src_len):
        return {"rows": torch.zeros(len(src), 1)}

    def start(self, memory):
        return {"pos": torch.zeros(len(memory["rows"]), dtype=torch.long)}

    def step(self, prev, state, memory):
        return self.table[state["pos"], prev.clamp(min=EOS)], {"pos": state["pos"] + 1}, None


def exhaustive_best(model: TableModel, alpha: float) -> tuple[list[int], float]:
    """argmax over every hypothesis of log p(Y) / lp(Y); the <eos> forced at the limit costs 0."""
    best = ([], float("-inf"))
    for n in range(LIMIT):
        for words in itertools.product(WORDS, repeat=n):
            prev, total = BOS, 0.0
            for pos, token in enumerate([*words, EOS]):
                if pos + 1 < LIMIT:
                    total += float(model.table[pos, max(prev, EOS), token])
                prev = token
            score = total / length_penalty_factor(n + 1, alpha)
            if score > best[1]:
                best = (list(words), score)
    return best


def _decode(model, beam, alpha, stop="exact"):
    src, src_len = torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, dtype=torch.long)
    return beam_search(model, src, src_len, beam, alpha, max_len_a=0.0, max_len_b=LIMIT, stop=stop)[0]


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_a_beam_wide_enough_finds_the_exhaustive_optimum(alpha):
    for seed in range(20):
        model = TableModel(seed)
        words, score = exhaustive_best(model, alpha)
        hyp = _decode(model, beam=16, alpha=alpha)  # 16 = every prefix of the longest hypotheses
        assert hyp.tokens == words and hyp.score == pytest.approx(score, abs=1e-5), seed


def test_exact_stopping_keeps_a_live_beam_that_wins_and_first_k_drops_it():
    model = TableModel(5)  # chosen so that every rule below gives a different answer
    best, _ = exhaustive_best(model, 0.6)
    assert best == [4, 5, 4, 5]
    assert exhaustive_best(model, 0.0)[0] == [5]  # without the length penalty the short one wins
    assert _decode(model, beam=2, alpha=0.6).tokens == best
    assert _decode(model, beam=2, alpha=0.6, stop="first_k").tokens == [5]  # stopped at 2 finished


def test_exact_stopping_never_scores_below_first_k():
    for seed in range(30):
        model = TableModel(seed)
        for beam in (1, 2, 3):
            exact, first_k = _decode(model, beam, 0.6), _decode(model, beam, 0.6, stop="first_k")
            assert exact.score >= first_k.score - 1e-6


def test_unknown_stop_rule_is_named():
    with pytest.raises(ValueError, match="valid: exact, first_k"):
        _decode(TableModel(0), beam=2, alpha=0.6, stop="early")


def test_length_penalty_is_gnmt_eq14_by_hand():
    """lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, Eq. 14): the exhaustive test above ranks with this
    same function, so its formula is pinned here by hand values."""
    assert length_penalty_factor(1, 0.6) == pytest.approx(1.0)
    assert length_penalty_factor(7, 0.6) == pytest.approx(2.0**0.6)
    assert length_penalty_factor(13, 1.0) == pytest.approx(3.0)
    assert length_penalty_factor(9, 0.0) == 1.0
