import pytest
import torch
from torch.nn import functional as F

from attention_zoo.attention.non_local import INSTANTIATIONS, NonLocalBlock


def _trained_like(block: NonLocalBlock) -> NonLocalBlock:
    """A block whose output path is live (BN scale 1, eval statistics), to test the whole of Eq. 1 and 6."""
    torch.nn.init.ones_(block.bn.weight)
    return block.eval()


@pytest.mark.parametrize("instantiation", INSTANTIATIONS)
@pytest.mark.parametrize("dims,shape", [(2, (2, 8, 6, 5)), (3, (2, 8, 3, 4, 4))])
def test_a_fresh_block_is_the_identity_map(instantiation, dims, shape):
    torch.manual_seed(0)
    block = NonLocalBlock(8, instantiation, dims=dims)
    x = torch.randn(*shape)
    assert torch.equal(block(x), x)  # W_z's BN starts at scale 0 (Sec. 3.3)
    assert torch.equal(block.train()(x), x)


@pytest.mark.parametrize("scale", [True, False])
def test_embedded_gaussian_equals_softmax_attention_written_out(scale):
    """With 1/sqrt(C') inside the exponent (the authors' USE_SCALE) or without it (the paper's text);
    weights drawn at std 0.5 so that the softmax is far from uniform and the factor shows."""
    torch.manual_seed(0)
    block = _trained_like(NonLocalBlock(8, "embedded_gaussian", scale=scale, conv_init_std=0.5))
    x = torch.randn(2, 8, 4, 5)
    B, C, H, W = x.shape
    theta = torch.einsum("oc,bchw->bhwo", block.theta.weight[:, :, 0, 0], x).reshape(B, H * W, -1) + block.theta.bias
    phi = torch.einsum("oc,bchw->bhwo", block.phi.weight[:, :, 0, 0], x).reshape(B, H * W, -1) + block.phi.bias
    g = torch.einsum("oc,bchw->bhwo", block.g.weight[:, :, 0, 0], x).reshape(B, H * W, -1) + block.g.bias
    z = torch.zeros(B, H * W, C)
    for b in range(B):
        for i in range(H * W):
            f = torch.exp(theta[b, i] @ phi[b].T * (theta.shape[-1] ** -0.5 if scale else 1.0))  # (N,) Eq. 3
            y_i = (f[:, None] * g[b]).sum(0) / f.sum()  # Eq. 1 with C(x) = Σ_j f
            z[b, i] = block.w_z.weight[:, :, 0, 0] @ y_i + block.w_z.bias
    bn = block.bn
    z = (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    expected = z.transpose(1, 2).reshape(B, C, H, W) + x
    assert torch.allclose(block(x), expected, atol=1e-5)


def test_gaussian_uses_raw_features_and_rows_sum_to_one():
    torch.manual_seed(0)
    block = NonLocalBlock(6, "gaussian")
    assert block.theta is None and block.phi is None
    x = torch.randn(2, 6, 3, 3)
    flat = x.flatten(2).transpose(1, 2)  # (B, N, C)
    weights = block.attention(x)
    assert torch.allclose(weights, torch.softmax(flat @ flat.transpose(1, 2), dim=-1), atol=1e-6)  # Eq. 2
    assert torch.allclose(weights.sum(-1), torch.ones(2, 9), atol=1e-6)


def test_dot_product_is_normalized_by_the_number_of_positions():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 4)
    for subsample, n in ((False, 16), (True, 4)):
        block = NonLocalBlock(8, "dot_product", subsample=subsample)
        theta = block.theta(x).flatten(2).transpose(1, 2)  # (B, 16, 4)
        phi = block.phi(x)
        phi = (F.max_pool2d(phi, 2) if subsample else phi).flatten(2)  # (B, 4, N)
        weights = block.attention(x)
        assert weights.shape == (2, 16, n)
        assert torch.allclose(weights, theta @ phi / n, atol=1e-6)  # Eq. 4, C(x) = N


def test_concatenation_equals_relu_of_w_f_on_the_concatenated_pair():
    torch.manual_seed(0)
    block = NonLocalBlock(8, "concatenation")
    x = torch.randn(1, 8, 3, 3)
    theta = block.theta(x).flatten(2)[0].T  # (N, 4)
    phi = block.phi(x).flatten(2)[0].T
    w_f = block.w_f.reshape(-1)  # [a; b], (8,)
    expected = (
        torch.stack([torch.stack([F.relu(w_f @ torch.cat([theta[i], phi[j]])) for j in range(9)]) for i in range(9)]) / 9
    )  # Eq. 5, C(x) = N
    assert torch.allclose(block.attention(x)[0], expected, atol=1e-6)


def test_spacetime_block_attends_across_frames_and_subsamples_space_only():
    torch.manual_seed(0)
    block = _trained_like(NonLocalBlock(8, "embedded_gaussian", subsample=True, dims=3))
    x = torch.randn(2, 8, 3, 4, 4)  # (B, C, T, H, W)
    weights = block.attention(x)
    assert weights.shape == (2, 3 * 16, 3 * 4)  # queries: every (t, h, w); keys: every t, 2x2-pooled space
    out = block(x)
    assert out.shape == x.shape
    x2 = x.clone()
    x2[:, :, 2] += 1.0  # change the last frame only
    assert not torch.allclose(block(x2)[:, :, 0], out[:, :, 0])  # the first frame's output sees it: non-local in time


def test_bad_settings_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid: gaussian, embedded_gaussian, dot_product, concatenation"):
        NonLocalBlock(8, "softmax")
    with pytest.raises(ValueError, match="dims must be 2 .* or 3"):
        NonLocalBlock(8, dims=1)


def test_the_authors_init_draws_the_projections_at_std_0_01_and_zeroes_their_biases():
    torch.manual_seed(0)
    block = NonLocalBlock(64, "embedded_gaussian")
    for proj in (block.theta, block.phi, block.g, block.w_z):
        assert proj.weight.std().item() == pytest.approx(0.01, rel=0.1) and proj.weight.mean().abs() < 2e-3
        assert torch.equal(proj.bias, torch.zeros_like(proj.bias))
    default = NonLocalBlock(64, "embedded_gaussian", conv_init_std=None)  # PyTorch's: U(±1/sqrt(fan_in))
    assert default.theta.weight.std().item() == pytest.approx((1 / 64) ** 0.5 / 3**0.5, rel=0.1)


def test_defaults_are_the_bottleneck_of_sec_3_3_and_the_authors_scale():
    """θ, φ, g halve the channels (at least one); the embedded Gaussian divides by sqrt(C') by default."""
    block = NonLocalBlock(16)
    assert block.theta.out_channels == block.phi.out_channels == block.g.out_channels == 8
    assert block.w_z.in_channels == 8 and block.scale == pytest.approx(8**-0.5)
    assert NonLocalBlock(3).g.out_channels == 1 and NonLocalBlock(1).g.out_channels == 1
    assert NonLocalBlock(16, scale=False).scale == 1.0 and NonLocalBlock(16, "dot_product").scale == 1.0


def test_the_concatenation_weights_start_at_std_one_over_sqrt_c_prime():
    """w_f = [a; b] ~ N(0, 1/C'): a unit-variance pairwise term for unit-variance θ, φ (the paper gives no init)."""
    torch.manual_seed(0)
    w_f = NonLocalBlock(512, "concatenation").w_f  # C' = 256: 512 draws
    assert w_f.shape == (2, 256)
    assert w_f.std().item() == pytest.approx(256**-0.5, rel=0.1)
