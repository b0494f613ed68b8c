import pytest
import torch
from torch import nn

from attention_zoo.attention import BLOCK_ATTENTION, build_block_attention
from attention_zoo.attention.deformable import DeformableConv2d
from attention_zoo.attention.generalized_2d import GeneralizedAttention2d
from attention_zoo.attention.non_local import NonLocalBlock
from attention_zoo.build import build_model
from attention_zoo.engine.seeding import own_random_stream
from attention_zoo.engine.trainer import compile_model
from attention_zoo.models.resnet import CifarResNet, PadChannelsShortcut, ResNetConfig
from conftest import REPO


@pytest.mark.parametrize("depth,millions", [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)])
def test_parameter_counts_match_he_et_al_table_6(depth, millions):
    model = CifarResNet(ResNetConfig(depth=depth))
    n = sum(p.numel() for p in model.parameters())
    assert n / 1e6 == pytest.approx(millions, abs=0.006 if depth < 110 else 0.03)


def test_resnet_20_parameters_counted_layer_by_layer():
    """Bias-free convolutions (BN follows each), BN's scale and shift, a 10-way linear layer; option B adds a
    1x1 projection + BN where the shape changes (16->32, 32->64)."""

    def convs_and_bns(c_in, c_out, k=3):
        return c_in * c_out * k * k + 2 * c_out

    stem = convs_and_bns(3, 16)
    stage1 = 3 * 2 * convs_and_bns(16, 16)
    stage2 = convs_and_bns(16, 32) + 5 * convs_and_bns(32, 32)
    stage3 = convs_and_bns(32, 64) + 5 * convs_and_bns(64, 64)
    option_a = stem + stage1 + stage2 + stage3 + 64 * 10 + 10
    assert option_a == 269_722
    for shortcut, expected in (("A", option_a), ("B", option_a + convs_and_bns(16, 32, 1) + convs_and_bns(32, 64, 1))):
        model = CifarResNet(ResNetConfig(depth=20, shortcut=shortcut))
        assert sum(p.numel() for p in model.parameters()) == expected


def test_layer_count_is_6n_plus_2():
    for depth in (20, 32, 56):
        model = CifarResNet(ResNetConfig(depth=depth))
        weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert len(weighted) == depth  # option A adds no shortcut convolutions


def test_forward_shapes_and_stage_resolutions():
    model = CifarResNet(ResNetConfig(depth=20, num_classes=100))
    x = torch.randn(2, 3, 32, 32)
    sizes = []
    hooks = [stage.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for stage in model.stages]
    assert model(x).shape == (2, 100)
    assert sizes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    for h in hooks:
        h.remove()


def test_option_a_shortcut_subsamples_and_zero_pads():
    shortcut = PadChannelsShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0


def test_option_b_uses_projection_only_where_shape_changes():
    model = CifarResNet(ResNetConfig(depth=20, shortcut="B"))
    projections = [b for stage in model.stages for b in stage if isinstance(b.shortcut, nn.Sequential)]
    assert len(projections) == 2
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_a_strided_block_downsamples_its_shortcut_even_when_the_width_stays(shortcut):
    """The identity shortcut is for blocks that keep both the width and the resolution: with constant widths,
    each stage's first block still halves H and W, so its shortcut must subsample too."""
    model = CifarResNet(ResNetConfig(depth=8, widths=(16, 16, 16), shortcut=shortcut))
    strided = [stage[0].shortcut for stage in model.stages[1:]]
    assert not any(isinstance(s, nn.Identity) for s in strided)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_attention_hook_applies_to_each_residual_branch_before_addition():
    calls = []

    class Recorder(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.channels = channels

        def forward(self, x):
            calls.append((self.channels, tuple(x.shape)))
            return torch.zeros_like(x)  # kill the branch: each block becomes relu(shortcut(x))

    BLOCK_ATTENTION["recorder"] = Recorder
    try:
        model = CifarResNet(ResNetConfig(depth=8, block_attention="recorder")).eval()
        x = torch.randn(1, 3, 32, 32)
        model(x)
        assert [c for c, _ in calls] == [16, 32, 64]
        stem = model.stem(x)
        expected = torch.relu(model.stages[0][0].shortcut(stem))
        assert torch.allclose(model.stages[0][0](stem), expected)
    finally:
        del BLOCK_ATTENTION["recorder"]


def test_bad_settings_name_the_valid_choices():
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(ResNetConfig(depth=21))
    with pytest.raises(ValueError, match="valid: A, B"):
        CifarResNet(ResNetConfig(shortcut="C"))
    with pytest.raises(ValueError, match="valid: cbam, none, se"):
        build_block_attention("cbam-typo", 16)
    with pytest.raises(ValueError, match="valid: before_last, every_other, all"):
        CifarResNet(ResNetConfig(non_local_stages=(2,), non_local_placement="last"))
    with pytest.raises(ValueError, match="among 1, 2, 3"):
        CifarResNet(ResNetConfig(non_local_stages=(4,)))
    with pytest.raises(ValueError, match=r"needs 2\+ blocks per stage"):
        CifarResNet(ResNetConfig(depth=8, non_local_stages=(1,)))


def _layout(model: CifarResNet) -> list[list[str]]:
    return [["NL" if isinstance(m, NonLocalBlock) else "B" for m in stage] for stage in model.stages]


def test_non_local_placements_follow_wang_et_al():
    one = CifarResNet(ResNetConfig(depth=20, non_local_stages=(2,)))
    assert _layout(one) == [["B"] * 3, ["B", "B", "NL", "B"], ["B"] * 3]  # right before the last block of the stage
    every_other = CifarResNet(ResNetConfig(depth=56, non_local_stages=(1, 2), non_local_placement="every_other"))
    assert [stage.count("NL") for stage in _layout(every_other)] == [4, 4, 0]  # after blocks 2, 4, 6, 8 of 9
    assert _layout(every_other)[0][:4] == ["B", "B", "NL", "B"]
    everywhere = CifarResNet(
        ResNetConfig(
            depth=20,
            non_local_stages=(1, 2),
            non_local_placement="all",
            non_local_options={"instantiation": "dot_product", "subsample": True},
        )
    )
    assert _layout(everywhere)[1] == ["B", "NL"] * 3
    blocks = [m for m in everywhere.modules() if isinstance(m, NonLocalBlock)]
    assert len(blocks) == 6 and all(b.instantiation == "dot_product" and b.pool is not None for b in blocks)
    assert [b.g.in_channels for b in blocks] == [16] * 3 + [32] * 3


def test_explicit_non_local_positions_override_the_placement_stage_by_stage():
    """(stage, 0-based block) pairs, as the video C2D's 5-block model uses them; blocks out of range are named."""
    config = ResNetConfig(depth=32, non_local_stages=(1, 2), non_local_after_blocks=((2, 3), (1, 4), (2, 0)))
    assert [config.non_local_after(stage) for stage in (1, 2, 3)] == [[4], [0, 3], []]
    assert _layout(CifarResNet(config))[1] == ["B", "NL", "B", "B", "B", "NL", "B"]
    with pytest.raises(ValueError, match=r"non_local_after_blocks \[\(2, 5\)\]: stage 2 has blocks 0\.\.4"):
        ResNetConfig(depth=32, non_local_stages=(2,), non_local_after_blocks=((2, 5),)).non_local_after(2)


def test_deformable_stages_default_to_the_modulated_v2():
    layers = [m for m in CifarResNet(ResNetConfig(depth=8, deformable_stages=(3,))).modules() if isinstance(m, DeformableConv2d)]
    assert len(layers) == 2 and all(layer.modulated is True for layer in layers)
    assert CifarResNet(ResNetConfig(depth=8, deformable_stages=(1, 2, 3)))(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    v1 = CifarResNet(ResNetConfig(depth=8, deformable_stages=(3,), deformable_modulated=False))
    assert all(m.modulated is False for m in v1.modules() if isinstance(m, DeformableConv2d))


def test_non_local_blocks_start_as_identity_so_the_network_computes_the_baseline():
    torch.manual_seed(0)
    plain = CifarResNet(ResNetConfig(depth=20)).eval()
    with_blocks = CifarResNet(ResNetConfig(depth=20, non_local_stages=(1, 2, 3), non_local_placement="all")).eval()
    baseline_state = {k: v for k, v in with_blocks.state_dict().items()}
    mapping = dict(zip([k for k in plain.state_dict()], [k for k in baseline_state if _is_baseline_key(with_blocks, k)]))
    plain.load_state_dict({k: baseline_state[v] for k, v in mapping.items()})
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(plain(x), with_blocks(x), atol=1e-5)


def _is_baseline_key(model: CifarResNet, key: str) -> bool:
    parts = key.split(".")
    if parts[0] != "stages":
        return True
    return not isinstance(model.stages[int(parts[1])][int(parts[2])], NonLocalBlock)


BLOCKS = sorted(p.stem for p in (REPO / "configs" / "block").glob("*.yaml"))


def _backbone_and_attention(model: CifarResNet) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The plain network's parameters in order, and the attention modules' (block attention and non-local)."""
    between = tuple(f"{name}." for name, m in model.named_modules() if isinstance(m, (NonLocalBlock, GeneralizedAttention2d)))
    backbone, attention = [], []
    for name, param in model.named_parameters():
        added = ".attention." in name or name.startswith(between) or ".offset." in name  # offsets: deformable convs
        (attention if added else backbone).append(param.detach())
    return backbone, attention


@pytest.mark.parametrize("block", [b for b in BLOCKS if b != "none"])
def test_a_seed_gives_every_attention_variant_the_plain_backbone(block, compose_cfg):
    """Paired seeds: the attention modules draw from streams of their own, so seed s starts every
    `block=` variant from the plain ResNet's weights (and the same data order): differences between
    variants of one seed are the attention's alone."""

    def build(block_name: str, seed: int) -> CifarResNet:
        torch.manual_seed(seed)
        return build_model(compose_cfg(["experiment=cifar_attention_cpu", f"block={block_name}"]).model, None)

    plain, _ = _backbone_and_attention(build("none", 3))
    backbone, attention = _backbone_and_attention(build(block, 3))
    assert attention and len(backbone) == len(plain)
    assert all(torch.equal(a, b) for a, b in zip(backbone, plain))
    again, other_seed = _backbone_and_attention(build(block, 3))[1], _backbone_and_attention(build(block, 4))[1]
    assert all(torch.equal(a, b) for a, b in zip(attention, again))  # the attention's own init is the seed's too
    if any(float(a.abs().sum()) > 0 for a in attention):  # deformable offsets start at zero whatever the seed
        assert any(not torch.equal(a, b) for a, b in zip(attention, other_seed) if a.numel() > 1)


@pytest.mark.parametrize(
    ("block", "kinds"),
    [
        ("none", []),
        ("se", ["SqueezeExcitation"] * 9),
        ("nonlocal_embedded", ["NonLocalBlock"]),
        ("generalized_e3", ["GeneralizedAttention2d"]),
        ("deformable_e3", ["GeneralizedAttention2d", *["DeformableConv2d"] * 6]),
    ],
)
def test_attention_modules_are_the_parts_the_plain_network_lacks(block, kinds, compose_cfg):
    model = build_model(compose_cfg(["experiment=cifar_attention_cpu", f"block={block}"]).model, None)
    assert [type(m).__name__ for m in model.attention_modules()] == kinds


def test_trainer_compile_attention_compiles_those_modules_only(monkeypatch, compose_cfg):
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: compiled.append(self))
    model = build_model(compose_cfg(["experiment=cifar_attention_cpu", "block=cbam"]).model, None)
    compile_model(model, "attention")
    assert compiled == model.attention_modules() and len(compiled) == 9
    compiled.clear()
    compile_model(model, "model")
    assert compiled == [model]
    compiled.clear()
    compile_model(model, "none")
    assert compiled == []


def test_each_attention_module_draws_from_the_stream_of_its_place():
    """Block i of stage s (0-based, n per stage) builds its attention in stream (seed, s·n + i), a non-local block
    after it in (seed, 1000 + s·n + i): the records of the CNN pages depend on these ids staying put."""
    torch.manual_seed(3)
    model = CifarResNet(ResNetConfig(depth=20, block_attention="se", non_local_stages=(2, 3)))
    blocks = [[m for m in stage if not isinstance(m, NonLocalBlock)] for stage in model.stages]
    non_local = [[m for m in stage if isinstance(m, NonLocalBlock)] for stage in model.stages]
    for s, width in enumerate((16, 32, 64)):
        for i in range(3):
            with own_random_stream(s * 3 + i):
                expected = build_block_attention("se", width)
            for name, value in expected.state_dict().items():
                assert torch.equal(blocks[s][i].attention.state_dict()[name], value), (s, i, name)
        if s > 0:  # before the last block: after block 1
            with own_random_stream(1000 + s * 3 + 1):
                expected = NonLocalBlock(width)
            assert torch.equal(non_local[s][0].theta.weight, expected.theta.weight), s


def test_only_the_networks_own_convolutions_get_he_init():
    """He et al. 2015 fan-out init (std sqrt(2 / (k² C_out))) for the backbone's convolutions, including a deformable
    layer's w_k; CBAM's gate keeps PyTorch's default (std 1/sqrt(3 fan_in)) and the offset predictor stays at zero."""
    torch.manual_seed(0)
    model = CifarResNet(ResNetConfig(depth=20, block_attention="cbam", deformable_stages=(3,)))
    last = model.stages[2][2]
    for conv, c_out in ((model.stem[0], 16), (model.stages[1][1].conv1, 32), (last.conv1.conv, 64)):
        assert conv.weight.std().item() == pytest.approx((2 / (9 * c_out)) ** 0.5, rel=0.1)
    gate = model.stages[0][0].attention.spatial.conv  # 2 -> 1 channels, 7x7: a He init would give std 0.20
    assert gate.weight.std().item() == pytest.approx(1 / (3 * 2 * 49) ** 0.5, rel=0.25)
    assert torch.count_nonzero(last.conv1.offset.weight) == 0
