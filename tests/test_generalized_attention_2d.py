"""Zhu et al.'s generalized attention over feature maps: each term against its formula written
out position by position, the two-dimensional relative encoding, key subsampling, the identity
at initialization, and the weights."""

import itertools
import math

import pytest
import torch

from attention_zoo.attention.generalized_2d import GeneralizedAttention2d
from attention_zoo.attention.positions import sinusoid

SUBSETS = ["1000", "0100", "0010", "0001", "1010", "0101", "1111"]


def by_the_formula(module: GeneralizedAttention2d, x: torch.Tensor) -> torch.Tensor:
    """Logits (B, h, N, M) term by term, for each query (y_i, x_i) and key (y_j, x_j) on the stride grid."""
    b, c, height, width = x.shape
    s, h, d = module.kv_stride, module.heads, module.d_k
    queries = list(itertools.product(range(height), range(width)))
    keys = list(itertools.product(range(0, height, s), range(0, width, s)))
    out = torch.zeros(b, h, len(queries), len(keys))

    def head(weight: torch.Tensor, vector: torch.Tensor, m: int) -> torch.Tensor:
        return (weight @ vector)[m * d : (m + 1) * d]

    for n in range(b):
        for m in range(h):
            for qi, (yi, xi) in enumerate(queries):
                z = x[n, :, yi, xi]
                for kj, (yj, xj) in enumerate(keys):
                    content = x[n, :, yj, xj]
                    total = 0.0
                    if module.e2 or module.e4:
                        rx = head(module.position_x.weight, sinusoid(torch.tensor([xj - xi]), module.position_dim)[0], m)
                        ry = head(module.position_y.weight, sinusoid(torch.tensor([yj - yi]), module.position_dim)[0], m)
                        relative = rx + ry  # V^R R_{j-i}, separate x and y encodings
                    if module.e1:
                        total += head(module.query.weight[:, :, 0, 0], z, m) @ head(module.key.weight[:, :, 0, 0], content, m)
                    if module.e2:
                        total += head(module.query.weight[:, :, 0, 0], z, m) @ relative
                    if module.e3:
                        total += module.u[m] @ head(module.key.weight[:, :, 0, 0], content, m)
                    if module.e4:
                        total += module.v[m] @ relative
                    out[n, m, qi, kj] = total / math.sqrt(d)
    return out


@pytest.mark.parametrize("attention_type", SUBSETS)
@pytest.mark.parametrize("kv_stride", [1, 2])
def test_each_term_and_subset_equals_its_formula(attention_type, kv_stride):
    torch.manual_seed(0)
    module = GeneralizedAttention2d(8, heads=2, attention_type=attention_type, kv_stride=kv_stride, position_dim=6)
    x = torch.randn(2, 8, 3, 4)
    logits = module.logits(x).expand(2, -1, -1, -1)
    assert torch.allclose(logits, by_the_formula(module, x), atol=1e-4)


def test_the_relative_encoding_is_shift_equivariant_in_both_directions():
    """Content moved by (dy, dx) gives the moved query the same logits on the moved keys."""
    torch.manual_seed(0)
    module = GeneralizedAttention2d(8, heads=2, attention_type="1111")
    x = torch.randn(1, 8, 5, 5)
    for dy, dx in [(0, 2), (1, 0), (2, 1)]:
        moved = torch.zeros_like(x)
        moved[:, :, dy:, dx:] = x[:, :, : 5 - dy, : 5 - dx]
        before, after = module.logits(x)[0], module.logits(moved)[0]  # (h, 25, 25)
        inside = [(y, xx) for y in range(5 - dy) for xx in range(5 - dx)]
        index = [y * 5 + xx for y, xx in inside]
        index_moved = [(y + dy) * 5 + xx + dx for y, xx in inside]
        assert torch.allclose(after[:, index_moved][:, :, index_moved], before[:, index][:, :, index], atol=1e-5)


def test_horizontal_and_vertical_offsets_are_told_apart():
    """E4 alone: the logit of a key one column right differs from one row down (not a 1D distance)."""
    torch.manual_seed(0)
    module = GeneralizedAttention2d(8, heads=2, attention_type="0001")
    logits = module.logits(torch.zeros(1, 8, 3, 3))[0]  # (h, 9, 9), query 4 is the centre
    assert not torch.allclose(logits[:, 4, 5], logits[:, 4, 7])  # (0, +1) against (+1, 0)
    assert torch.allclose(logits[:, 4, 5], logits[:, 0, 1])  # the same offset from another query


def test_a_new_module_is_the_identity_and_each_querys_weights_sum_to_one():
    torch.manual_seed(0)
    module = GeneralizedAttention2d(8, heads=2, kv_stride=2)
    x = torch.randn(2, 8, 5, 6)
    assert torch.equal(module(x), x)
    assert module.last_weights.shape == (2, 2, 30, 3 * 3)  # keys on every 2nd row and column
    assert torch.allclose(module.last_weights.sum(-1), torch.ones(2, 2, 30))


def test_the_output_is_the_weighted_values_projected_and_scaled_by_gamma():
    torch.manual_seed(0)
    module = GeneralizedAttention2d(8, heads=2, attention_type="1010")
    with torch.no_grad():
        module.gamma.fill_(0.5)
    x = torch.randn(1, 8, 3, 3)
    weights = torch.softmax(module.logits(x), dim=-1)[0]  # (h, 9, 9)
    values = (module.value.weight[:, :, 0, 0] @ x[0].flatten(1)).view(2, 4, 9)  # (h, d, 9)
    attended = torch.cat([values[m] @ weights[m].T for m in range(2)])  # (h·d, 9)
    expected = x[0].flatten(1) + 0.5 * module.out.weight[:, :, 0, 0] @ attended
    assert torch.allclose(module(x)[0].flatten(1), expected, atol=1e-5)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="divisible by heads"):
        GeneralizedAttention2d(10, heads=4)
    with pytest.raises(ValueError, match="at least one 1"):
        GeneralizedAttention2d(8, attention_type="0000")


def test_the_default_position_encoding_has_d_k_channels_rounded_up_to_even():
    """S(·) needs an even width (sin and cos pairs); by default it is d_k, or d_k + 1 when d_k is odd."""
    assert GeneralizedAttention2d(32, heads=4).position_dim == 8
    odd = GeneralizedAttention2d(20, heads=4)  # d_k = 5
    assert odd.position_dim == 6 and odd.position_x.in_features == odd.position_y.in_features == 6
    assert GeneralizedAttention2d(32, heads=4, position_dim=4).position_x.in_features == 4


def test_the_weights_are_kept_for_figures_only_after_a_forward():
    torch.manual_seed(0)
    module = GeneralizedAttention2d(16, heads=2, kv_stride=2)
    assert module.last_weights is None
    module(torch.randn(3, 16, 6, 5))
    assert module.last_weights.shape == (3, 2, 30, 9) and not module.last_weights.requires_grad


def test_the_relative_positions_are_built_on_the_modules_device():
    """The distance tables follow the parameters (a GPU run); the meta device shows it without a GPU."""
    module = GeneralizedAttention2d(16, heads=2, kv_stride=2).to("meta")
    out = module(torch.randn(2, 16, 6, 5, device="meta"))
    assert out.device.type == "meta" and out.shape == (2, 16, 6, 5)
