"""Position encodings (Vaswani et al. 2017, Sec. 3.5 and Table 3 row E) against their formulas."""

import math

import pytest
import torch

from attention_zoo.attention.positions import PositionalEncoding, sinusoid


def test_sinusoid_is_sec_3_5_written_out_far_into_the_sequence():
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...), to 1e-5 up to position 5000."""
    d = 16
    positions = torch.tensor([0, 1, 7, 500, 4999, -3])
    expected = torch.zeros(len(positions), d, dtype=torch.float64)
    for row, pos in enumerate(positions.tolist()):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            expected[row, 2 * i], expected[row, 2 * i + 1] = math.sin(angle), math.cos(angle)
    torch.testing.assert_close(sinusoid(positions, d).double(), expected, atol=1e-5, rtol=0)


def test_forward_adds_the_table_from_position_zero_by_default():
    encoding = PositionalEncoding("sinusoidal", 8, 16)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(encoding(x), x + sinusoid(torch.arange(5), 8))
    torch.testing.assert_close(encoding(x[:, 2:], offset=2), (x + sinusoid(torch.arange(5), 8))[:, 2:])


def test_the_fixed_table_is_not_a_checkpoint_entry_and_learned_positions_are():
    """The sinusoids are recomputed, so checkpoints stay loadable when max_positions changes."""
    assert "table" not in PositionalEncoding("sinusoidal", 8, 16).state_dict()
    assert "table.weight" in PositionalEncoding("learned", 8, 16).state_dict()


def test_learned_positions_start_at_the_embeddings_scale():
    """N(0, d^-1/2), the scale of the embeddings they are added to (scaled by √d, Sec. 3.4)."""
    torch.manual_seed(0)
    table = PositionalEncoding("learned", 64, 1024).table.weight
    assert table.std().item() == pytest.approx(64**-0.5, rel=0.03)


def test_a_sequence_may_fill_max_positions_exactly_and_no_more():
    encoding = PositionalEncoding("sinusoidal", 8, 6)
    assert encoding(torch.zeros(1, 6, 8)).shape == (1, 6, 8)
    with pytest.raises(ValueError, match="max_positions=6; raise it"):
        encoding(torch.zeros(1, 4, 8), offset=3)
