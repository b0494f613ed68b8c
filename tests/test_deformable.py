"""Deformable convolution (v1 and v2) against the plain convolution and against its sampling rule,
and its place in the CIFAR ResNet."""

import pytest
import torch
from torch.nn import functional as F

from attention_zoo.attention.deformable import DeformableConv2d, deformable_convolution
from attention_zoo.models.resnet import CifarResNet, ResNetConfig


@pytest.mark.parametrize("stride", [1, 2])
def test_v1_with_zero_offsets_is_the_plain_convolution(stride):
    torch.manual_seed(0)
    layer = DeformableConv2d(4, 6, stride=stride, modulated=False)
    x = torch.randn(2, 4, 7, 7)
    assert torch.allclose(layer(x), F.conv2d(x, layer.conv.weight, stride=stride, padding=1), atol=1e-5)


def test_v2_starts_at_half_the_plain_convolution_and_its_mask_scales_each_tap():
    torch.manual_seed(0)
    layer = DeformableConv2d(4, 6)
    x = torch.randn(2, 4, 5, 5)
    plain = F.conv2d(x, layer.conv.weight, padding=1)
    assert torch.allclose(layer(x), 0.5 * plain, atol=1e-5)  # Δm = sigmoid(0) at every tap
    with torch.no_grad():
        layer.offset.bias[18:] = 30.0  # Δm -> 1
    assert torch.allclose(layer(x), plain, atol=1e-4)
    with torch.no_grad():
        layer.offset.bias[18:] = -30.0
        layer.offset.bias[18 + 4] = 30.0  # only the centre tap (k = 4 of the 3x3 grid) kept
    centre = F.conv2d(x, layer.conv.weight[:, :, 1:2, 1:2])
    assert torch.allclose(layer(x), centre, atol=1e-4)


def test_an_integer_offset_samples_the_shifted_input():
    """Δp = (0, +1) at every tap reads x one column to the right of the regular grid: the taps
    of output column c read columns c..c+2 of x (zero outside it), not c-1..c+1."""
    torch.manual_seed(0)
    layer = DeformableConv2d(3, 5, modulated=False)
    with torch.no_grad():
        layer.offset.bias[1::2] = 1.0  # (dy, dx) pairs: every dx = +1
    x = torch.randn(1, 3, 6, 6)
    one_right = F.conv2d(F.pad(x, (0, 2, 1, 1)), layer.conv.weight)  # windows start at column c, not c - 1
    assert torch.allclose(layer(x), one_right, atol=1e-5)
    with torch.no_grad():
        layer.offset.bias[1::2] = 0.5  # half a pixel: the mean of the two neighbours (bilinear)
    half = 0.5 * (F.conv2d(x, layer.conv.weight, padding=1) + one_right)
    assert torch.allclose(layer(x), half, atol=1e-5)


def test_the_offsets_learn():
    torch.manual_seed(0)
    layer = DeformableConv2d(2, 2)
    layer(torch.randn(1, 2, 5, 5)).square().sum().backward()
    assert layer.offset.weight.grad.abs().sum() > 0


def test_the_resnet_makes_every_3x3_convolution_of_the_chosen_stages_deformable():
    torch.manual_seed(0)
    model = CifarResNet(ResNetConfig(depth=20, deformable_stages=(3,)))
    deformable = [name for name, m in model.named_modules() if isinstance(m, DeformableConv2d)]
    assert deformable == [f"stages.2.{b}.conv{c}" for b in range(3) for c in (1, 2)]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert all(float(m.offset.weight.detach().abs().sum()) == 0 for m in model.modules() if isinstance(m, DeformableConv2d))
    with pytest.raises(ValueError, match="deformable_stages must be among 1, 2, 3"):
        CifarResNet(ResNetConfig(depth=20, deformable_stages=(4,)))


def test_the_layer_has_no_bias_like_the_convolution_it_replaces():
    """The ResNet's 3x3 convolutions carry no bias (BatchNorm follows); the parameter count counts w_k and the offsets."""
    layer = DeformableConv2d(4, 6)
    assert layer.conv.bias is None
    taps = 9
    assert sum(p.numel() for p in layer.parameters()) == 6 * 4 * taps + (3 * taps * 4 * taps + 3 * taps)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("modulated", [True, False])
def test_the_sampling_equals_torchvisions_deform_conv2d_with_offsets_reaching_outside_the_map(stride, modulated):
    """Random offsets of a few pixels (many samples land outside the 9 x 7 map, or straddle its
    edge), random masks, a non-square map and kernel: the written-out sampling against
    torchvision.ops.deform_conv2d, value and gradients, in float64."""
    from torchvision.ops import deform_conv2d

    torch.manual_seed(0)
    x = torch.randn(3, 4, 9, 7, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 4, 3, 2, dtype=torch.float64, requires_grad=True)
    out_h, out_w = (9 + 2 - 3) // stride + 1, (7 + 2 - 2) // stride + 1
    offsets = (3 * torch.randn(3, 12, out_h, out_w, dtype=torch.float64)).requires_grad_()
    mask = torch.rand(3, 6, out_h, out_w, dtype=torch.float64).requires_grad_() if modulated else None
    ours = deformable_convolution(x, offsets, weight, stride, 1, mask)
    reference = deform_conv2d(x, offsets, weight, stride=stride, padding=1, mask=mask)
    assert torch.allclose(ours, reference, atol=1e-12)
    nhwc = [t.detach().contiguous(memory_format=torch.channels_last) for t in (x, weight)]  # the CPU presets' format
    assert torch.allclose(deformable_convolution(nhwc[0], offsets, nhwc[1], stride, 1, mask), reference, atol=1e-12)
    inputs = [t for t in (x, offsets, weight, mask) if t is not None]
    grad_out = torch.randn_like(ours)
    for g_ours, g_ref in zip(torch.autograd.grad(ours, inputs, grad_out), torch.autograd.grad(reference, inputs, grad_out)):
        assert torch.allclose(g_ours, g_ref, atol=1e-12)


def test_offsets_learn_at_a_tenth_of_the_rate_by_default_as_in_mmdetection():
    """mmdetection's DCN ResNets (mmcv's ``dcn_offset_lr_mult``) train the offset and modulation layers at
    0.1x the rate; at 1x the deformable ResNet-20 diverged (results/bench/deformable_offset_lr_1.0_diverged)."""
    from attention_zoo.engine.optim import build_optimizer

    assert DeformableConv2d(4, 4).offset.lr_mult == 0.1
    model = CifarResNet(ResNetConfig(depth=8, deformable_stages=(3,)))
    opt = build_optimizer(model, {"name": "sgd", "lr": 0.2, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0})
    assert [g["lr"] for g in opt.param_groups] == [0.2, pytest.approx(0.02)]
