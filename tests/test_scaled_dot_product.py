"""Scaled dot-product and multi-head attention (Vaswani et al. 2017, Eq. 1 and Sec. 3.2.2)."""

import math

import pytest
import torch

from attention_zoo.attention.scaled_dot_product import MultiHeadAttention, scaled_dot_product_attention


def qkv(batch=2, heads=3, queries=4, keys=6, d_k=8, d_v=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, heads, queries, d_k, generator=g),
        torch.randn(batch, heads, keys, d_k, generator=g),
        torch.randn(batch, heads, keys, d_v, generator=g),
    )


KEY_MASK = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])  # second sentence: 2 padded keys


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("key_mask", [None, KEY_MASK])
def test_fused_path_equals_the_reference_path(causal, key_mask):
    q, k, v = qkv(queries=6)
    fast, none = scaled_dot_product_attention(q, k, v, key_mask, causal)
    reference, weights = scaled_dot_product_attention(q, k, v, key_mask, causal, need_weights=True)
    assert none is None and weights.shape == (2, 3, 6, 6)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)


def test_reference_path_is_eq1_written_out():
    q, k, v = (t.double() for t in qkv())
    out, weights = scaled_dot_product_attention(q, k, v, need_weights=True)
    scores = torch.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(q.shape[-1])
    expected = torch.exp(scores) / torch.exp(scores).sum(-1, keepdim=True)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, torch.einsum("bhts,bhsd->bhtd", expected, v))


def test_weights_sum_to_one_and_padding_gets_exactly_zero():
    q, k, v = qkv()
    _, weights = scaled_dot_product_attention(q, k, v, KEY_MASK, need_weights=True)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 4))
    assert weights[1, :, :, 4:].eq(0).all()
    k2, v2 = k.clone(), v.clone()
    k2[1, :, 4:], v2[1, :, 4:] = 100.0, -100.0  # whatever sits in the padding
    for need_weights in (False, True):
        before, _ = scaled_dot_product_attention(q, k, v, KEY_MASK, need_weights=need_weights)
        after, _ = scaled_dot_product_attention(q, k2, v2, KEY_MASK, need_weights=need_weights)
        torch.testing.assert_close(before, after)


def test_causal_mask_hides_the_future():
    q, k, v = qkv(queries=6)
    out, weights = scaled_dot_product_attention(q, k, v, causal=True, need_weights=True)
    assert weights.triu(diagonal=1).eq(0).all()
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 3:], v2[:, :, 3:] = torch.randn_like(k2[:, :, 3:]), torch.randn_like(v2[:, :, 3:])
    changed, _ = scaled_dot_product_attention(q, k2, v2, causal=True)
    torch.testing.assert_close(changed[:, :, :3], out[:, :, :3], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(changed[:, :, 3:], out[:, :, 3:])


def test_causal_with_fewer_queries_than_keys_aligns_queries_at_the_end():
    """Incremental decoding: the last 2 queries of a 6-token prefix see keys 0..4 and 0..5."""
    q, k, v = qkv(queries=2)
    _, weights = scaled_dot_product_attention(q, k, v, causal=True, need_weights=True)
    assert weights[..., 0, 5].eq(0).all() and weights[..., 0, :5].gt(0).all() and weights[..., 1, :].gt(0).all()


def test_multi_head_equals_heads_computed_one_by_one():
    torch.manual_seed(0)
    mha = MultiHeadAttention(d_model=12, heads=3).eval()
    x, memory = torch.randn(2, 4, 12), torch.randn(2, 6, 12)
    out, weights = mha(x, memory, memory, key_mask=KEY_MASK, need_weights=True)
    heads = []
    for i in range(3):
        rows = slice(4 * i, 4 * (i + 1))

        def project(linear, inputs, rows=rows):
            return inputs @ linear.weight[rows].T + linear.bias[rows]

        scores = project(mha.w_q, x) @ project(mha.w_k, memory).transpose(1, 2) / 2.0  # √d_k = 2
        scores = scores.masked_fill(~KEY_MASK[:, None, :], float("-inf"))
        head_weights = torch.softmax(scores, -1)
        torch.testing.assert_close(weights[:, i], head_weights)
        heads.append(head_weights @ project(mha.w_v, memory))
    torch.testing.assert_close(out, mha.w_o(torch.cat(heads, dim=-1)), atol=1e-5, rtol=1e-5)
    fast, _ = mha(x, memory, memory, key_mask=KEY_MASK)
    torch.testing.assert_close(fast, out, atol=1e-5, rtol=1e-5)


def test_head_sizes_must_divide_or_be_given():
    with pytest.raises(ValueError, match="d_model=10 is not divisible by heads=3"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(10, 3, d_k=4, d_v=2)
    out, _ = mha(torch.randn(1, 2, 10), torch.randn(1, 5, 10), torch.randn(1, 5, 10))
    assert out.shape == (1, 2, 10) and mha.w_v.out_features == 6


def test_key_padding_and_causal_masks_both_apply():
    """A key is hidden when it is padding or in the future: the masks combine by AND."""
    q, k, v = qkv(queries=6)
    _, weights = scaled_dot_product_attention(q, k, v, KEY_MASK, causal=True, need_weights=True)
    assert weights[1, :, 5, 4:].eq(0).all()  # padding, although causally visible
    assert weights[0].triu(diagonal=1).eq(0).all()  # the future, although not padding
    assert weights[0, :, 5].gt(0).all() and weights[1, :, 5, :4].gt(0).all()


def test_multi_head_defaults_are_no_dropout_and_the_fused_path_without_weights():
    torch.manual_seed(0)
    attention = MultiHeadAttention(16, 2)
    x = torch.randn(2, 5, 16)
    out, weights = attention(x, x, x)  # training mode: dropout would change the output
    assert weights is None
    assert attention.attend(x, *attention.project_kv(x, x))[1] is None
    torch.testing.assert_close(out, attention.eval()(x, x, x)[0])
