import pytest
import torch

from attention_zoo.attention import build_block_attention
from attention_zoo.attention.cbam import CBAM, ChannelAttention, SpatialAttention
from attention_zoo.attention.squeeze_excitation import SqueezeExcitation


def _mlp(module: ChannelAttention, z: torch.Tensor) -> torch.Tensor:
    """W_1 δ(W_0 z) of Eq. 2 written with the module's weights."""
    first, second = module.mlp[0], module.mlp[2]
    return torch.relu(z @ first.weight.T + first.bias) @ second.weight.T + second.bias


def test_channel_attention_equals_eq_2_for_each_pooling():
    torch.manual_seed(0)
    x = torch.randn(3, 32, 5, 6)
    avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
    for pooling, logits in (
        ("avg", lambda m: _mlp(m, avg)),
        ("max", lambda m: _mlp(m, mx)),
        ("avg+max", lambda m: _mlp(m, avg) + _mlp(m, mx)),
    ):
        module = ChannelAttention(32, reduction=4, pooling=pooling)
        weights = module(x)
        assert weights.shape == (3, 32, 1, 1)
        assert torch.allclose(weights[:, :, 0, 0], torch.sigmoid(logits(module)), atol=1e-6)


def test_spatial_attention_equals_eq_3_and_kernel_size_switch():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 9)
    for k in (3, 7):
        module = SpatialAttention(kernel_size=k)
        assert module.conv.weight.shape == (1, 2, k, k)
        pooled = torch.stack([x.mean(dim=1), x.amax(dim=1)], dim=1)  # (B, 2, H, W)
        expected = torch.sigmoid(torch.nn.functional.conv2d(pooled, module.conv.weight, module.conv.bias, padding=k // 2))
        weights = module(x)
        assert weights.shape == (2, 1, 9, 9)
        assert torch.allclose(weights, expected, atol=1e-6)


def test_cbam_keeps_shape_and_maps_lie_in_open_unit_interval():
    torch.manual_seed(0)
    module = CBAM(16, reduction=4)
    x = torch.randn(4, 16, 8, 8)
    assert module(x).shape == x.shape
    for weights in (module.channel(x), module.spatial(x)):
        assert ((weights > 0) & (weights < 1)).all()


@pytest.mark.parametrize("arrangement", ["channel_spatial", "spatial_channel", "parallel"])
def test_each_arrangement_applies_the_maps_in_its_order(arrangement):
    torch.manual_seed(0)
    module = CBAM(16, reduction=4, arrangement=arrangement)
    x = torch.randn(2, 16, 6, 6)
    channel, spatial = module.channel, module.spatial
    if arrangement == "channel_spatial":  # Eq. 1
        f1 = x * channel(x)
        expected = f1 * spatial(f1)
    elif arrangement == "spatial_channel":
        f1 = x * spatial(x)
        expected = f1 * channel(f1)
    else:
        expected = x * channel(x) * spatial(x)
    assert torch.allclose(module(x), expected, atol=1e-6)


def test_arrangements_compute_different_things_with_the_same_weights():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6, 6)
    reference = CBAM(16, reduction=4)
    outputs = []
    for arrangement in ("channel_spatial", "spatial_channel", "parallel"):
        module = CBAM(16, reduction=4, arrangement=arrangement)
        module.load_state_dict(reference.state_dict())
        outputs.append(module(x))
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[0], outputs[2])


def test_se_equals_cbam_with_average_pooling_and_no_spatial_part():
    torch.manual_seed(0)
    se = SqueezeExcitation(32, reduction=8)
    cbam = CBAM(32, reduction=8, channel_pooling="avg", spatial=False)
    with torch.no_grad():
        cbam.channel.mlp[0].weight.copy_(se.fc1.weight)
        cbam.channel.mlp[0].bias.copy_(se.fc1.bias)
        cbam.channel.mlp[2].weight.copy_(se.fc2.weight)
        cbam.channel.mlp[2].bias.copy_(se.fc2.bias)
    x = torch.randn(3, 32, 7, 7)
    assert torch.allclose(se(x), cbam(x), atol=1e-6)
    s = torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean(dim=(2, 3))))))  # Hu et al. Eq. 2-3
    assert torch.allclose(se(x), x * s[:, :, None, None], atol=1e-6)


def test_factory_builds_se_and_cbam_with_options_and_rejects_bad_ones():
    cbam = build_block_attention("cbam", 64, reduction=16, spatial_kernel=3, channel_pooling="max")
    assert cbam.channel.mlp[0].out_features == 4 and cbam.spatial.conv.kernel_size == (3, 3) and cbam.channel.pooling == "max"
    assert isinstance(build_block_attention("se", 16), SqueezeExcitation)
    assert build_block_attention("se", 16).fc1.out_features == 1  # 16 channels / r 16: one hidden unit, never zero
    with pytest.raises(ValueError, match="valid: avg, max, avg\\+max"):
        CBAM(16, channel_pooling="mean")
    with pytest.raises(ValueError, match="valid: 3, 7"):
        CBAM(16, spatial_kernel=5)
    with pytest.raises(ValueError, match="valid: channel_spatial, spatial_channel, parallel"):
        CBAM(16, arrangement="serial")
    with pytest.raises(ValueError, match="valid: cbam, none, se"):
        build_block_attention("cbam-typo", 16)


def test_defaults_are_the_papers():
    """Woo et al.: reduction r = 16, both poolings, a 7x7 spatial kernel, channel then spatial (Sec. 4.1)."""
    assert ChannelAttention(64).mlp[0].out_features == 4 and ChannelAttention(64).pooling == "avg+max"
    assert SpatialAttention().conv.kernel_size == (7, 7)
    cbam = CBAM(64)
    assert cbam.channel.mlp[0].out_features == 4 and cbam.spatial.conv.kernel_size == (7, 7)
    assert cbam.arrangement == "channel_spatial"
    assert SqueezeExcitation(64).fc1.out_features == 4


def test_the_hidden_layer_keeps_one_unit_when_channels_are_fewer_than_r():
    """C // r is 1 for ResNet-20's 16-channel stage at r = 16 and 0 below it; the MLP keeps at least one unit."""
    assert ChannelAttention(16).mlp[0].out_features == 1
    assert ChannelAttention(8).mlp[0].out_features == 1
    assert ChannelAttention(8, reduction=4).mlp[0].out_features == 2


def test_spatial_attention_is_the_same_on_a_channels_last_input():
    """The CPU path re-lays the pooled map out as channels_last for the kxk convolution: same values."""
    torch.manual_seed(0)
    module, x = CBAM(16, reduction=4), torch.randn(2, 16, 9, 9)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(module.spatial(channels_last), module.spatial(x))
    torch.testing.assert_close(module(channels_last), module(x))


@pytest.mark.parametrize("pooling", ["avg", "max", "avg+max"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_written_out_backward_equals_autograd_through_eq_1_to_3(pooling, channels_last):
    """The paper's order runs through _ChannelThenSpatial, whose backward is written by hand: its
    gradients (input, MLP, kxk conv) equal autograd's through the modules composed as in Eq. 1."""
    torch.manual_seed(0)
    module = CBAM(16, reduction=4, channel_pooling=pooling).double()
    x = torch.randn(3, 16, 5, 6, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weights = torch.randn(3, 16, 5, 6, dtype=torch.float64)  # a loss that weighs every output differently

    def gradients(forward):
        module.zero_grad()
        leaf = x.clone().requires_grad_()
        output = forward(leaf)
        (output * weights).sum().backward()
        return output, leaf.grad, [p.grad.clone() for p in module.parameters()]

    def composed(f):
        f1 = f * module.channel(f)
        return f1 * module.spatial(f1)

    fused, reference = gradients(module), gradients(composed)
    assert type(fused[0].grad_fn).__name__ == "_ChannelThenSpatialBackward"  # training runs the written-out backward
    torch.testing.assert_close(fused[0], reference[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(fused[1], reference[1], rtol=0, atol=1e-12)
    for got, expected in zip(fused[2], reference[2], strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_written_out_backward_passes_gradcheck():
    """Against finite differences too, and a retained graph can be differentiated again (gradcheck does)."""
    torch.manual_seed(0)
    module = CBAM(8, reduction=4, spatial_kernel=3).double()
    assert torch.autograd.gradcheck(module, (torch.randn(2, 8, 3, 4, dtype=torch.float64, requires_grad=True),))


def test_written_out_backward_runs_under_bf16_autocast():
    """bf16 autocast (trainer.precision=bf16) makes the MLP and the convolution bf16: the backward
    casts its gradients to each graph's dtype and returns the input's."""
    torch.manual_seed(0)
    module, x = CBAM(16, reduction=4), torch.randn(2, 16, 6, 6, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = module(x)
    output.float().square().sum().backward()
    assert x.grad.dtype == torch.float32 and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_in_evaluation_the_modules_run_so_hooks_on_the_maps_fire():
    """Figures hook the spatial module's output M_s (viz/image_attention.py); without grad the
    paper's order composes the modules, and the hooked map is the M_s of Eq. 1's F'."""
    torch.manual_seed(0)
    module, x = CBAM(16, reduction=4), torch.randn(2, 16, 6, 6)
    seen = []
    module.spatial.register_forward_hook(lambda m, i, out: seen.append(out))
    with torch.no_grad():
        module(x)
        f1 = x * module.channel(x)
        torch.testing.assert_close(
            seen[0], module.spatial.from_pooled(torch.cat([f1.mean(1, keepdim=True), f1.amax(1, keepdim=True)], 1))
        )


def test_under_torch_compile_the_paper_order_is_composed_by_autograd(monkeypatch):
    """trainer.compile traces the modules composed as in Eq. 1 (inductor fuses them), not the
    written-out backward: same values as the eager path."""
    torch.manual_seed(0)
    module, x = CBAM(16, reduction=4), torch.randn(2, 16, 6, 6)
    eager = module(x)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    f1 = x * module.channel(x)
    torch.testing.assert_close(module(x), f1 * module.spatial(f1))
    torch.testing.assert_close(module(x), eager)
