import torch

from attention_zoo.attention.additive import AdditiveAttention


def _inputs(seed=0, b=3, s=7, q=5, k=6):
    g = torch.Generator().manual_seed(seed)
    query, keys = torch.randn(b, q, generator=g), torch.randn(b, s, k, generator=g)
    lengths = torch.tensor([7, 4, 1])
    mask = torch.arange(s)[None, :] < lengths[:, None]
    return query, keys, mask


def test_equals_bahdanau_eq6_written_out():
    torch.manual_seed(0)
    attn = AdditiveAttention(5, 6, 4)
    query, keys, _ = _inputs()
    context, weights = attn(query, keys, attn.project_keys(keys))
    W, U, v = attn.query_proj.weight, attn.key_proj.weight, attn.score.weight[0]
    for b in range(3):
        e = torch.stack([v @ torch.tanh(W @ query[b] + U @ keys[b, j]) for j in range(7)])
        alpha = e.exp() / e.exp().sum()
        assert torch.allclose(weights[b], alpha, atol=1e-6)
        assert torch.allclose(context[b], (alpha[:, None] * keys[b]).sum(0), atol=1e-6)


def test_weights_sum_to_one_and_padding_gets_exactly_zero():
    attn = AdditiveAttention(5, 6, 4, bias=True)
    query, keys, mask = _inputs()
    _, weights = attn(query, keys, attn.project_keys(keys), mask)
    assert torch.allclose(weights.sum(-1), torch.ones(3))
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()


def test_padded_positions_do_not_change_the_output():
    attn = AdditiveAttention(5, 6, 4)
    query, keys, mask = _inputs()
    noisy = keys.clone()
    noisy[~mask] = 1e3 * torch.randn_like(noisy[~mask])
    a = attn(query, keys, attn.project_keys(keys), mask)
    b = attn(query, noisy, attn.project_keys(noisy), mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
