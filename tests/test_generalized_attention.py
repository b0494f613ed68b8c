"""Generalized attention (Zhu et al. 2019, Sec. 3): each term against its formula written out."""

import math

import pytest
import torch

from attention_zoo.attention.generalized import GeneralizedAttention, build_attention, parse_terms
from attention_zoo.attention.positions import sinusoid
from attention_zoo.attention.scaled_dot_product import MultiHeadAttention

D, H = 16, 2
DK = D // H


def inputs(queries=3, keys=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, queries, D, generator=g).double(), torch.randn(2, keys, D, generator=g).double()


def module(attention_type, seed=0):
    torch.manual_seed(seed)
    return GeneralizedAttention(D, H, attention_type).double().eval()


def test_e1_only_equals_scaled_dot_product_attention():
    generalized = module("1000")
    transformer = MultiHeadAttention(D, H).double().eval()
    transformer.load_state_dict(generalized.state_dict())
    z, x = inputs()
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    out, weights = generalized(z, x, x, key_mask=mask, need_weights=True)
    expected, expected_weights = transformer(z, x, x, key_mask=mask, need_weights=True)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights, expected_weights)
    assert type(build_attention("1000", D, H)) is MultiHeadAttention  # the fused path for the paper's type
    assert type(build_attention("0100", D, H)) is GeneralizedAttention


@pytest.mark.parametrize("attention_type", ["1111", "1010", "0101", "0100", "0010", "0001"])
@pytest.mark.parametrize("offset", [0, 4])
def test_logits_are_the_sum_of_the_selected_terms_written_out(attention_type, offset):
    """E1 = z_iᵀU_mᵀV_m^C x_j, E2 = z_iᵀU_mᵀV_m^R R_{j-i}, E3 = u_mᵀV_m^C x_j, E4 = v_mᵀV_m^R R_{j-i},
    with query i at position offset + i, summed over the selected terms and divided by √d_k."""
    attention = module(attention_type)
    e1, e2, e3, e4 = parse_terms(attention_type)
    z, x = inputs()
    expected = torch.zeros(2, H, 3, 5, dtype=torch.float64)
    for b in range(2):
        for m in range(H):
            rows = slice(m * DK, (m + 1) * DK)
            for i in range(3):
                for j in range(5):
                    query = attention.w_q.weight[rows] @ z[b, i] + attention.w_q.bias[rows]
                    key = attention.w_k.weight[rows] @ x[b, j] + attention.w_k.bias[rows]
                    total = 0.0
                    if e2 or e4:
                        r = attention.w_r.weight[rows] @ sinusoid(torch.tensor([j - (offset + i)]), D)[0].double()
                    total += (query @ key) if e1 else 0.0
                    total += (query @ r) if e2 else 0.0
                    total += (attention.u[m] @ key) if e3 else 0.0
                    total += (attention.v[m] @ r) if e4 else 0.0
                    expected[b, m, i, j] = total / math.sqrt(DK)
    k, _ = attention.project_kv(x, x)
    logits = attention.logits(z, k, query_offset=offset)
    torch.testing.assert_close(logits.expand_as(expected), expected)


def test_key_content_only_gives_every_query_the_same_weights():
    z, x = inputs()
    _, weights = module("0010")(z, x, x, need_weights=True)
    torch.testing.assert_close(weights[:, :, 0], weights[:, :, 2])


def test_relative_position_only_depends_on_the_distance_alone():
    z, x = inputs(queries=5)
    attention = module("0001")
    k, _ = attention.project_kv(x, x)
    logits = attention.logits(z, k)[0, 0]  # (T, S), the same for every sentence
    torch.testing.assert_close(logits[:-1, :-1], logits[1:, 1:])  # Toeplitz: constant along diagonals
    other_z, other_x = inputs(queries=5, seed=1)
    torch.testing.assert_close(attention.logits(other_z, attention.project_kv(other_x, other_x)[0])[0, 0], logits)


def test_weights_sum_to_one_and_padding_gets_zero_for_every_subset():
    z, x = inputs()
    mask = torch.tensor([[True] * 5, [True] * 2 + [False] * 3])
    for bits in range(1, 16):
        attention_type = format(bits, "04b")
        _, weights = module(attention_type)(z, x, x, key_mask=mask, causal=False, need_weights=True)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, H, 3, dtype=torch.float64))
        assert weights[1, ..., 2:].eq(0).all(), attention_type


@pytest.mark.parametrize("bad", ["0000", "101", "10a1", "11111"])
def test_bad_attention_types_name_the_terms(bad):
    with pytest.raises(ValueError, match="E1 query-key content"):
        parse_terms(bad)


def test_attend_defaults_are_no_mask_no_weights_offset_zero_and_no_dropout():
    """Cross-attention calls ``attend`` with its defaults: not causal, positions from 0, no dropout."""
    z, x = inputs()
    attention = module("1111").train()
    k, v = attention.project_kv(x, x)
    out, weights = attention.attend(z, k, v)
    assert weights is None
    expected, expected_weights = attention.attend(z, k, v, None, False, True, 0)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out, attention.eval().attend(z, k, v)[0])  # training mode, yet no dropout
    torch.testing.assert_close(attention.logits(z, k), attention.logits(z, k, query_offset=0))
    torch.testing.assert_close(expected_weights, torch.softmax(attention.logits(z, k, 0), -1).expand_as(expected_weights))
    assert build_attention("0100", D, H).dropout == 0.0 and build_attention("1000", D, H).dropout == 0.0


def test_causal_attention_with_fewer_queries_than_keys_hides_the_future():
    """Incremental decoding: the last 3 of 5 positions attend to keys 0..2+i, with the relative terms."""
    z, x = inputs(queries=3, keys=5)
    attention = module("1111")
    k, v = attention.project_kv(x, x)
    _, weights = attention.attend(z, k, v, causal=True, need_weights=True, query_offset=2)
    visible = torch.ones(3, 5, dtype=torch.bool).tril(diagonal=2)  # query i at position 2 + i
    logits = attention.logits(z, k, query_offset=2).masked_fill(~visible, float("-inf"))
    torch.testing.assert_close(weights, torch.softmax(logits, -1).expand_as(weights))
    assert weights[..., ~visible].eq(0).all()
