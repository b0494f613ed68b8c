import pytest
import torch

from attention_zoo.data.text import BOS, EOS, PAD
from attention_zoo.models.rnnsearch import RNNSearch, RNNSearchConfig
from attention_zoo.models.seq2seq import Seq2Seq, Seq2SeqConfig, reverse_padded
from attention_zoo.tasks.decoding import beam_search, greedy_decode


def _model(kind="lstm", seed=0):
    torch.manual_seed(seed)
    if kind == "rnnsearch":
        # PyTorch's init: the paper's N(0, 0.01²) weights make near-uniform outputs whose ties decoding tests cannot use
        model = RNNSearch(
            RNNSearchConfig(
                src_vocab=30, tgt_vocab=25, embed_dim=16, hidden_dim=24, attention_dim=20, maxout_dim=12, init="pytorch"
            )
        )
    else:
        model = Seq2Seq(
            Seq2SeqConfig(src_vocab=30, tgt_vocab=25, embed_dim=16, hidden_dim=24, num_layers=2, cell=kind, init_range=0.3)
        )
    return model.eval()


def _source(seed=1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([6, 3, 5, 1])
    src = torch.randint(4, 30, (4, 6), generator=g)
    src[torch.arange(6)[None, :] >= lengths[:, None]] = PAD
    return src, lengths


@torch.no_grad()
def _sequence_log_prob(model, src, src_len, tokens, limit):
    """log p(tokens, <eos> | src) under teacher forcing; an <eos> forced at the length limit counts 0."""
    tgt = torch.tensor([[BOS, *tokens, EOS]])
    per_token = torch.log_softmax(model(src, src_len, tgt[:, :-1]), -1)[0].gather(1, tgt[0, 1:, None])[:, 0]
    if len(tokens) + 1 >= limit:
        per_token = per_token[:-1]
    return float(per_token.sum())


def test_reverse_padded_reverses_only_the_real_tokens():
    src, lengths = _source()
    rev = reverse_padded(src, lengths)
    for row, n in enumerate(lengths.tolist()):
        assert rev[row, :n].tolist() == src[row, :n].flip(0).tolist()
        assert (rev[row, n:] == PAD).all()


@pytest.mark.parametrize("kind", ["lstm", "rnnsearch"])
def test_padding_does_not_change_the_output(kind):
    model = _model(kind)
    src, lengths = _source()
    wider = torch.cat([src, torch.full((4, 3), PAD)], 1)
    tgt_in = torch.randint(4, 25, (4, 5))
    assert torch.allclose(model(src, lengths, tgt_in), model(wider, lengths, tgt_in), atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnnsearch"])
def test_beam_one_equals_greedy(kind):
    model = _model(kind)
    src, lengths = _source()
    greedy = greedy_decode(model, src, lengths, max_len_a=2, max_len_b=3)
    # the exact stop rule searches on past an early <eos> even at beam 1; first_k stops like greedy
    beam = beam_search(model, src, lengths, beam=1, length_penalty=0.6, max_len_a=2, max_len_b=3, stop="first_k")
    assert [h.tokens for h in greedy] == [h.tokens for h in beam]


@pytest.mark.parametrize("kind", ["lstm", "rnnsearch"])
def test_beam_scores_are_the_models_sequence_log_probabilities(kind):
    model = _model(kind)
    src, lengths = _source()
    for hyp, row in zip(beam_search(model, src, lengths, beam=4, length_penalty=0.0, max_len_a=1.5, max_len_b=10), range(4)):
        limit = int(1.5 * lengths[row] + 10)
        expected = _sequence_log_prob(model, src[row : row + 1, : lengths[row]], lengths[row : row + 1], hyp.tokens, limit)
        assert hyp.score == pytest.approx(expected, abs=1e-4)


def test_length_limit_is_enforced():
    model = _model()
    src, lengths = _source()
    for decode in (lambda: greedy_decode(model, src, lengths, 1.0, 2), lambda: beam_search(model, src, lengths, 3, 0.0, 1.0, 2)):
        for hyp, n in zip(decode(), lengths.tolist()):
            assert len(hyp.tokens) < n + 2


def test_rnnsearch_attention_weights_sum_to_one_and_skip_padding():
    model = _model("rnnsearch")
    src, lengths = _source()
    hyps = greedy_decode(model, src, lengths)
    for hyp, n in zip(hyps, lengths.tolist()):
        assert hyp.attention.shape == (len(hyp.tokens) + 1, 6)
        assert torch.allclose(hyp.attention.sum(-1), torch.ones(len(hyp.tokens) + 1), atol=1e-6)
        assert (hyp.attention[:, n:] == 0).all()
    beam_hyp = beam_search(model, src, lengths, beam=3)[1]
    assert beam_hyp.attention.shape == (len(beam_hyp.tokens) + 1, 6) and (beam_hyp.attention[:, 3:] == 0).all()
