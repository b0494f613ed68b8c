import pytest
import torch
from torch import nn

from attention_zoo.attention import BLOCK_ATTENTION, build_block_attention
from attention_zoo.attention.non_local import NonLocalBlock
from attention_zoo.models.resnet import CifarResNet, PadChannelsShortcut, ResNetConfig


@pytest.mark.parametrize("depth,millions", [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)])
def test_parameter_counts_match_he_et_al_table_6(depth, millions):
    model = CifarResNet(ResNetConfig(depth=depth))
    n = sum(p.numel() for p in model.parameters())
    assert n / 1e6 == pytest.approx(millions, abs=0.006 if depth < 110 else 0.03)


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
