"""SAGAN's self-attention module (Zhang et al. 2019, Sec. 3) against its equations."""

import pytest
import torch

from attention_zoo.attention.sagan import SelfAttention2d


def by_the_equations(module: SelfAttention2d, x: torch.Tensor) -> torch.Tensor:
    """Eqs. 1-3 written position by position: s_ij = f(x_i)ᵀg(x_j), β_{j,i} = softmax over i,
    o_j = W_v Σ_i β_{j,i} W_h x_i, y_j = γ o_j + x_j."""
    w_f, w_g, w_h, w_v = (getattr(module, k).weight[:, :, 0, 0] for k in "fghv")
    b, c, height, width = x.shape
    positions = x.flatten(2)  # (B, C, N)
    out = torch.empty_like(positions)
    for batch in range(b):
        for j in range(height * width):
            scores = torch.stack([(w_f @ positions[batch, :, i]) @ (w_g @ positions[batch, :, j]) for i in range(height * width)])
            beta = torch.exp(scores) / torch.exp(scores).sum()
            context = sum(beta[i] * (w_h @ positions[batch, :, i]) for i in range(height * width))
            out[batch, :, j] = module.gamma * (w_v @ context) + positions[batch, :, j]
    return out.view(b, c, height, width)


def test_a_new_module_is_the_identity_map():
    torch.manual_seed(0)
    module = SelfAttention2d(16)
    x = torch.randn(2, 16, 4, 4)
    assert float(module.gamma.detach()) == 0.0
    assert torch.equal(module(x), x)


def test_the_module_equals_its_equations_on_random_inputs():
    torch.manual_seed(0)
    module = SelfAttention2d(16, spectral_norm=False)
    with torch.no_grad():
        module.gamma.fill_(0.7)
    x = torch.randn(2, 16, 3, 3)
    assert torch.allclose(module(x), by_the_equations(module, x), atol=1e-5)


def test_each_query_weighs_the_key_positions_and_the_weights_sum_to_one():
    torch.manual_seed(0)
    module = SelfAttention2d(16, spectral_norm=False)
    x = torch.randn(1, 16, 3, 4)
    beta = module.attention(x)  # (B, N_query, N_key)
    assert beta.shape == (1, 12, 12)
    assert torch.allclose(beta.sum(dim=-1), torch.ones(1, 12))
    # a key position whose key is made much larger along every query's direction takes the weight
    queries = module.g(x).flatten(2)[0]  # (C̄, N)
    direction = torch.linalg.lstsq(module.f.weight[:, :, 0, 0], queries.mean(dim=1, keepdim=True)).solution[:, 0]
    boosted = x.clone()
    boosted[0, :, 1, 2] += 50 * direction / direction.norm()
    after = module.attention(boosted)[0, :, 1 * 4 + 2]
    assert (after > module.attention(x)[0, :, 6]).float().mean() > 0.5


def test_the_query_and_key_maps_are_not_interchangeable():
    torch.manual_seed(0)
    module = SelfAttention2d(16, spectral_norm=False)
    with torch.no_grad():
        module.gamma.fill_(1.0)
    x = torch.randn(1, 16, 3, 3)
    swapped = SelfAttention2d(16, spectral_norm=False)
    swapped.load_state_dict(module.state_dict())
    with torch.no_grad():
        swapped.f.weight.copy_(module.g.weight), swapped.g.weight.copy_(module.f.weight)
    assert not torch.allclose(module(x), swapped(x), atol=1e-4)


def test_spectral_normalization_bounds_every_map_by_one():
    torch.manual_seed(0)
    module = SelfAttention2d(32)
    x = torch.randn(4, 32, 4, 4)
    for _ in range(30):  # one power iteration per training forward
        module(x)
    for name in "fghv":
        sigma = torch.linalg.matrix_norm(getattr(module, name).weight[:, :, 0, 0], ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=1e-3)


def test_gamma_is_learned_and_channels_must_divide():
    module = SelfAttention2d(16, spectral_norm=False)
    module(torch.randn(1, 16, 2, 2)).sum().backward()
    assert module.gamma.grad is not None and module.gamma.grad != 0
    with pytest.raises(ValueError, match="divisible by the reduction"):
        SelfAttention2d(12)
