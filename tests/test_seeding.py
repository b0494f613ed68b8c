import torch

from attention_zoo.engine.seeding import seed_everything


def test_deterministic_mode_forces_deterministic_kernels_and_only_warns_where_there_is_none():
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    benchmark = torch.backends.cudnn.benchmark
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        # CUDA's max_pool3d and grid_sample backward have no deterministic kernel: a warning, not an error.
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert not torch.backends.cudnn.benchmark
        seed_everything(0, deterministic=False)
        assert torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark = benchmark


def test_the_same_seed_gives_the_same_draws():
    seed_everything(3)
    first = torch.rand(4)
    seed_everything(3)
    assert torch.equal(torch.rand(4), first)
    seed_everything(4)
    assert not torch.equal(torch.rand(4), first)
