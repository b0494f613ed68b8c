"""SAGAN's self-attention module (Zhang et al. 2019, Sec. 3) against its equations."""

import pytest
import torch
from torch.nn import functional as F
from torch.nn.utils import parametrize

from attention_zoo.attention.sagan import SelfAttention2d
from attention_zoo.models.sagan import (
    ConditionalBatchNorm2d,
    Discriminator,
    DiscriminatorBlock,
    Generator,
    GeneratorBlock,
    SAGANConfig,
    hinge_discriminator_loss,
    hinge_generator_loss,
)


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
        assert float(sigma.detach()) == pytest.approx(1.0, abs=1e-3)


def test_gamma_is_learned_and_channels_must_divide():
    module = SelfAttention2d(16, spectral_norm=False)
    module(torch.randn(1, 16, 2, 2)).sum().backward()
    assert module.gamma.grad is not None and module.gamma.grad != 0
    with pytest.raises(ValueError, match="divisible by the reduction"):
        SelfAttention2d(12)


def test_sagan_defaults():
    """f, g, h at C/8 channels (Sec. 3: "k = 8 in all our experiments"); z of 128 dims (the SNGAN
    code's); attention on the 16x16 maps of both networks (the middle of Table 1's range at 32x32);
    widths 128 (SNGAN's CIFAR D; its G has 256: narrower here for the CPU); 10 classes; no EMA
    unless asked."""
    cfg = SAGANConfig()
    assert (cfg.z_dim, cfg.attention_reduction, cfg.attention_at) == (128, 8, [16])
    assert (cfg.g_width, cfg.d_width, cfg.num_classes, cfg.ema_decay) == (128, 128, 10, None)


TINY = SAGANConfig(num_classes=4, z_dim=16, g_width=16, d_width=16)


def attention_inputs(model: torch.nn.Module, run) -> list[tuple[int, ...]]:
    """Shapes of the maps each self-attention module of ``model`` receives while ``run()`` runs."""
    seen = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
        for m in model.modules()
        if isinstance(m, SelfAttention2d)
    ]
    run()
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize(("attention_at", "expected"), [([], []), ([8], [(2, 16, 8, 8)]), ([16], [(2, 16, 16, 16)])])
def test_attention_sits_on_the_chosen_feature_maps_of_both_networks(attention_at, expected):
    torch.manual_seed(0)
    cfg = SAGANConfig(**{**TINY.__dict__, "attention_at": attention_at})
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    z, y = torch.randn(2, cfg.z_dim), torch.tensor([0, 3])
    images = generator(z, y)
    assert images.shape == (2, 3, 32, 32) and images.abs().max() <= 1
    assert attention_inputs(generator, lambda: generator(z, y)) == expected
    assert attention_inputs(discriminator, lambda: discriminator(images, y)) == expected
    assert discriminator(images, y).shape == (2,)


@pytest.mark.parametrize("network", [Generator, Discriminator])
@pytest.mark.parametrize("attention_at", [[12], [32], [8, 4]])
def test_attention_at_a_width_that_g_and_d_do_not_both_have_is_refused_with_the_valid_ones(network, attention_at):
    # 32 exists in G only and 12 nowhere: the module would be built and never applied.
    cfg = SAGANConfig(**{**TINY.__dict__, "attention_at": attention_at})
    with pytest.raises(ValueError, match=r"model\.attention_at=.*\[8, 16\]"):
        network(cfg)


def test_the_projection_discriminator_adds_the_class_embedding_dot_the_features():
    torch.manual_seed(0)
    discriminator = Discriminator(TINY).eval()  # eval: spectral norm's power iteration holds still
    x = torch.randn(3, 3, 32, 32)
    h = discriminator.features(x)
    for label in range(TINY.num_classes):
        y = torch.full((3,), label)
        expected = discriminator.linear(h)[:, 0] + h @ discriminator.embed.weight[label]
        assert torch.allclose(discriminator(x, y), expected, atol=1e-5)
    assert not torch.allclose(
        discriminator(x, torch.zeros(3, dtype=torch.long)), discriminator(x, torch.ones(3, dtype=torch.long))
    )


def test_conditional_batchnorm_starts_unconditional_and_learns_a_gain_and_bias_per_class():
    torch.manual_seed(0)
    generator = Generator(TINY).eval()
    z = torch.randn(4, TINY.z_dim)
    same = generator(z, torch.zeros(4, dtype=torch.long)), generator(z, torch.full((4,), 2))
    assert torch.allclose(*same)  # zero-initialized class embeddings
    norm = generator.blocks[0].bn1.train()  # batch statistics
    with torch.no_grad():
        norm.gain.weight[2].fill_(0.5), norm.bias.weight[2].fill_(0.1)
    x, y = torch.randn(4, TINY.g_width, 4, 4), torch.tensor([2, 0, 2, 0])
    normalized = torch.nn.functional.batch_norm(x, None, None, training=True)
    expected = torch.where((y == 2)[:, None, None, None], normalized * 1.5 + 0.1, normalized)
    assert torch.allclose(norm(x, y), expected, atol=1e-5)


def test_every_convolution_and_linear_layer_is_spectrally_normalized():
    for model in (Generator(TINY), Discriminator(TINY)):
        layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert parametrize.is_parametrized(Discriminator(TINY).embed, "weight")


def test_hinge_losses_follow_eq_4():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    assert float(hinge_discriminator_loss(real, fake)) == pytest.approx((0 + 0.5 + 2) / 3 + (0 + 1 + 2.5) / 3)
    assert float(hinge_generator_loss(fake)) == pytest.approx(-(-2.0 + 0.0 + 1.5) / 3)


def test_one_seed_gives_every_attention_placement_the_same_other_weights():
    """The runs of one seed pair across Table 1's variants: only the attention modules differ."""
    from attention_zoo.models.sagan import SAGAN

    def weights(attention_at):
        torch.manual_seed(3)
        model = SAGAN(SAGANConfig(z_dim=8, g_width=16, d_width=16, attention_at=attention_at))
        return {k: v for k, v in model.state_dict().items() if ".attention." not in k}, torch.rand(1)

    plain, after_plain = weights([])
    for placement in ([8], [16], [8, 16]):
        other, after_other = weights(placement)
        assert other.keys() == plain.keys()
        assert all(torch.equal(other[k], plain[k]) for k in plain), placement
        assert torch.equal(after_other, after_plain)  # and the global stream goes on where it would have


def test_the_last_attention_map_is_kept_for_figures_after_a_forward():
    torch.manual_seed(0)
    module = SelfAttention2d(16)
    x = torch.randn(2, 16, 4, 4)
    assert module.last_attention is None
    module(x)
    torch.testing.assert_close(module.last_attention, module.attention(x).detach())
    assert module.last_attention.shape == (2, 16, 16) and not module.last_attention.requires_grad


def _up(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour up-sampling x2, written out: each pixel copied into a 2x2 square."""
    return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def _down(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling, written out."""
    b, c, height, width = x.shape
    return x.view(b, c, height // 2, 2, width // 2, 2).mean(dim=(3, 5))


def _randomize_batchnorm(model: torch.nn.Module) -> None:
    """Running statistics and class gains/biases away from their identity start, so that each norm counts."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(), m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, ConditionalBatchNorm2d):
                m.gain.weight.normal_(0, 0.5), m.bias.weight.normal_(0, 0.5)


def test_generator_block_is_cbn_relu_up_conv_cbn_relu_conv_plus_up_conv1x1():
    torch.manual_seed(0)
    block = GeneratorBlock(8, 6, num_classes=3)
    _randomize_batchnorm(block)
    block.eval()  # running statistics, and spectral norm's power iteration holds still
    x, y = torch.randn(2, 8, 4, 4), torch.tensor([1, 2])
    h = block.conv1(_up(F.relu(block.bn1(x, y))))
    expected = block.conv2(F.relu(block.bn2(h, y))) + block.shortcut(_up(x))
    assert torch.allclose(block(x, y), expected, atol=1e-5)


@pytest.mark.parametrize(("c_in", "downsample", "first"), [(3, True, True), (8, True, False), (8, False, False)])
def test_discriminator_blocks_follow_their_layouts(c_in, downsample, first):
    """The first block: conv, ReLU, conv, pool; shortcut pool then conv1x1 (the "optimized" block). The others:
    ReLU, conv, ReLU, conv, (pool); shortcut conv1x1 and pool when the shape changes, else the identity."""
    torch.manual_seed(0)
    block = DiscriminatorBlock(c_in, 8, downsample=downsample, first=first).eval()
    x = torch.randn(2, c_in, 8, 8)
    h = block.conv2(F.relu(block.conv1(x if first else F.relu(x))))
    if first:
        expected = _down(h) + block.shortcut(_down(x))
    elif downsample:
        expected = _down(h) + _down(block.shortcut(x))
    else:
        assert block.shortcut is None
        expected = h + x
    assert torch.allclose(block(x), expected, atol=1e-5)


def test_generator_and_discriminator_outputs_by_hand():
    """G: linear to 4x4, blocks (attention after the 16x16 one), BN, ReLU, conv, tanh.
    D: blocks (attention after the first 8x8 one), ReLU, sum over positions."""
    torch.manual_seed(0)
    cfg = SAGANConfig(**{**TINY.__dict__, "attention_at": [8]})
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    _randomize_batchnorm(generator)
    generator.eval(), discriminator.eval()
    with torch.no_grad():
        for module in (*generator.attention.values(), *discriminator.attention.values()):
            module.gamma.fill_(0.7)  # attention switched on
    z, y = torch.randn(2, cfg.z_dim), torch.tensor([1, 3])
    h = generator.linear(z).view(2, cfg.g_width, 4, 4)
    h = generator.attention["8"](generator.blocks[0](h, y))
    h = generator.blocks[2](generator.blocks[1](h, y), y)
    images = torch.tanh(generator.out_conv(F.relu(generator.out_norm(h))))
    assert torch.allclose(generator(z, y), images, atol=1e-5)
    h = discriminator.attention["8"](discriminator.blocks[1](discriminator.blocks[0](images)))
    h = discriminator.blocks[3](discriminator.blocks[2](h))
    assert torch.allclose(discriminator.features(images), F.relu(h).sum(dim=(2, 3)), atol=1e-4)


def test_the_moving_average_of_g_follows_its_update_rule():
    """ema <- decay ema + (1 - decay) G for the weights; buffers copied; only G and D are trained."""
    from attention_zoo.models.sagan import SAGAN

    torch.manual_seed(0)
    gan = SAGAN(SAGANConfig(**{**TINY.__dict__, "ema_decay": 0.9}))
    assert gan.sampler() is gan.generator_ema and not any(p.requires_grad for p in gan.generator_ema.parameters())
    assert all(p.requires_grad for p in gan.generator.parameters())  # a copy of its own: G still trains
    assert not {p.data_ptr() for p in gan.generator_ema.parameters()} & {p.data_ptr() for p in gan.generator.parameters()}
    groups = gan.named_parameter_groups()
    assert sum(map(len, groups.values())) == len(list(gan.generator.parameters())) + len(list(gan.discriminator.parameters()))
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.add_(torch.randn_like(p))
        gan.generator.out_norm.running_mean.normal_()
    old = [p.clone() for p in gan.generator_ema.parameters()]
    gan.update_ema()
    for averaged, before, current in zip(gan.generator_ema.parameters(), old, gan.generator.parameters()):
        assert torch.allclose(averaged, 0.9 * before + 0.1 * current, atol=1e-6)
    assert torch.equal(gan.generator_ema.out_norm.running_mean, gan.generator.out_norm.running_mean)
    plain = SAGAN(TINY)
    assert plain.generator_ema is None and plain.sampler() is plain.generator
    plain.update_ema()  # nothing to average
    for decay in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"model.ema_decay=.* must be in \(0, 1\)"):
            SAGAN(SAGANConfig(**{**TINY.__dict__, "ema_decay": decay}))


def test_the_networks_layouts():
    """D: an optimized first block to 16x16, one more down-sampling block to 8x8, two at 8x8, and ψ a single
    output; G's class-conditional BatchNorm has no affine of its own (the class gains and biases are the affine)."""
    discriminator, generator = Discriminator(TINY), Generator(TINY)
    layout = [(b.first, b.downsample) for b in discriminator.blocks]
    assert layout == [(True, True), (False, True), (False, False), (False, False)]
    sizes, h = [], torch.randn(1, 3, 32, 32)
    for block in discriminator.blocks:
        h = block(h)
        sizes.append(h.shape[-1])
    assert sizes == [16, 8, 8, 8] and discriminator.linear.out_features == 1
    norms = [m for m in generator.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(norms) == 6 and not any(m.norm.affine for m in norms)
    assert DiscriminatorBlock(8, 8, downsample=False).first is False  # "first" is opt-in
