"""Beam search against exhaustive search on a tiny vocabulary, with the length penalty on.

The toy model is a table of next-token log-probabilities indexed by (position, previous token):
every hypothesis's score is known in closed form, so the best one can be found by enumerating
all 2^0 + ... + 2^4 = 31 of them.
"""

import itertools

import pytest
import torch

from attention_zoo.data.text import BOS, EOS
from attention_zoo.tasks.decoding import beam_search, greedy_decode, length_penalty_factor

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


@pytest.mark.parametrize("stop", ["exact", "first_k"])
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_a_beam_wide_enough_finds_the_exhaustive_optimum(alpha, stop):
    """Beam 16 holds every prefix of the longest hypotheses. Under first_k the first 16 finished are
    the 15 shorter ones and the best of the 16 longest, so it finds the optimum too, as long as it
    never counts an impossible (-inf) candidate as finished."""
    for seed in range(30):
        model = TableModel(seed)
        words, score = exhaustive_best(model, alpha)
        hyp = _decode(model, beam=16, alpha=alpha, stop=stop)
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


class BatchTableModel(torch.nn.Module):
    """One TableModel per sentence: sentence b (src[b, 0] = seed) decodes with table ``seed``, and
    every step attends uniformly over its S source positions."""

    def __init__(self, seeds):
        super().__init__()
        self.tables = torch.stack([TableModel(seed).table for seed in seeds])  # (N, LIMIT, V, V)

    def encode(self, src, src_len):
        return {"which": src[:, 0], "src": src}

    def start(self, memory):
        return {"pos": torch.zeros(len(memory["which"]), dtype=torch.long)}

    def step(self, prev, state, memory):
        log_probs = self.tables[memory["which"], state["pos"], prev.clamp(min=EOS)]
        attention = torch.full(memory["src"].shape, 1.0 / memory["src"].shape[1])  # (B, S)
        return log_probs, {"pos": state["pos"] + 1}, attention


def _sentences(seeds):
    src = torch.tensor(seeds)[:, None].repeat(1, 3)  # (B, 3): the seed, as a 3-token source
    return src, torch.full((len(seeds),), 3)


@pytest.mark.parametrize("decode", ["greedy", "exact", "first_k"])
def test_a_batch_decodes_each_sentence_as_if_it_were_alone(decode):
    """Sentences that finish early must neither gain score nor candidates while the others go on."""
    seeds = list(range(12))
    model = BatchTableModel(seeds)

    def run(which):
        src, src_len = _sentences(which)
        if decode == "greedy":
            return greedy_decode(model, src, src_len, max_len_a=0.0, max_len_b=LIMIT)
        return beam_search(model, src, src_len, 2, 0.6, max_len_a=0.0, max_len_b=LIMIT, stop=decode)

    together = run(seeds)
    lengths = {len(hyp.tokens) for hyp in together}
    assert len(lengths) > 1  # the batch really mixes early and late finishers
    for seed, hyp in zip(seeds, together):
        (alone,) = run([seed])
        assert hyp.tokens == alone.tokens and hyp.score == pytest.approx(alone.score, abs=1e-6), seed
        assert torch.equal(hyp.attention, alone.attention)


def test_greedy_score_is_the_log_probability_of_its_tokens_and_eos():
    model = BatchTableModel(list(range(12)))
    src, src_len = _sentences(list(range(12)))
    for seed, hyp in zip(range(12), greedy_decode(model, src, src_len, max_len_a=0.0, max_len_b=LIMIT)):
        table, prev, total = model.tables[seed], BOS, 0.0
        for pos, token in enumerate([*hyp.tokens, EOS]):
            total += float(table[pos, max(prev, EOS), token]) if pos + 1 < LIMIT else 0.0
            prev = token
        assert hyp.score == pytest.approx(total, abs=1e-5)


@pytest.mark.parametrize("decode", ["greedy", "beam"])
def test_a_zero_length_limit_still_allows_the_eos_step(decode):
    """max_len_a * n + max_len_b = 0 is floored to 1 step: the empty hypothesis, with the <eos>
    step's attention (1, S); never a word."""
    model = BatchTableModel([0, 1, 2])
    src, src_len = _sentences([0, 1, 2])
    if decode == "greedy":
        hyps = greedy_decode(model, src, src_len, max_len_a=0.0, max_len_b=0)
    else:
        hyps = beam_search(model, src, src_len, 3, 0.6, max_len_a=0.0, max_len_b=0)
    for hyp in hyps:
        assert hyp.tokens == [] and hyp.attention.shape == (1, 3) and hyp.score == 0.0
