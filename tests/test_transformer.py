"""The Transformer (Vaswani et al. 2017): positions, masks, the KV cache, tied embeddings, the
label-smoothed loss, checkpoint averaging and decoding, checked against their formulas."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F

from attention_zoo.attention.positions import PositionalEncoding, sinusoid
from attention_zoo.build import build_model
from attention_zoo.data.text import BOS, PAD
from attention_zoo.engine import checkpoint
from attention_zoo.engine.optim import inverse_sqrt_factor
from attention_zoo.models.transformer import Transformer, TransformerConfig
from attention_zoo.tasks.decoding import beam_search, greedy_decode
from attention_zoo.tasks.translation import TranslationTask

VOCAB = 40
TYPES = ["1000", "1111", "0110", "0001"]


def small_model(seed=0, attention_type="1000", **options) -> Transformer:
    torch.manual_seed(seed)
    types = {kind: attention_type for kind in ("encoder_self", "decoder_self", "encoder_decoder")}
    defaults = dict(d_model=32, heads=4, d_ff=48, encoder_layers=2, decoder_layers=2, attention_types=types)
    return Transformer(TransformerConfig(VOCAB, VOCAB, **{**defaults, **options})).eval()


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, VOCAB, (3, 7), generator=g)
    src_len = torch.tensor([7, 5, 3])
    src[1, 5:], src[2, 3:] = PAD, PAD
    tgt_in = torch.cat([torch.full((3, 1), BOS), torch.randint(4, VOCAB, (3, 6), generator=g)], dim=1)
    return src, src_len, tgt_in


def test_sinusoid_matches_sec_3_5_by_hand():
    pe = sinusoid(torch.tensor([0, 1, 7]), 4)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(pe[1], torch.tensor([math.sin(1), math.cos(1), math.sin(1 / 100), math.cos(1 / 100)]))
    torch.testing.assert_close(pe[2], torch.tensor([math.sin(7), math.cos(7), math.sin(7 / 100), math.cos(7 / 100)]))
    encoding = PositionalEncoding("sinusoidal", 4, max_positions=8)
    torch.testing.assert_close(encoding(torch.zeros(1, 2, 4), offset=1)[0], sinusoid(torch.tensor([1, 2]), 4))


def test_positions_reject_unknown_kinds_and_too_long_inputs():
    with pytest.raises(ValueError, match="valid: sinusoidal, learned, none"):
        PositionalEncoding("rotary", 4, 8)
    with pytest.raises(ValueError, match="max_positions=8; raise it"):
        PositionalEncoding("learned", 4, 8)(torch.zeros(1, 9, 4))


def test_paper_learning_rate_is_eq3():
    """Eq. 3 with d_model = 512 and 4000 warmup steps; the config holds its peak as optim.lr."""
    peak = 512**-0.5 * 4000**-0.5
    for step in (1, 100, 4000, 20000):
        lrate = 512**-0.5 * min(step**-0.5, step * 4000**-1.5)
        assert peak * inverse_sqrt_factor(step - 1, 4000) == pytest.approx(lrate)
    assert round(peak, 6) == 6.99e-4


@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_mask_changing_future_targets_leaves_earlier_outputs_unchanged(norm_first):
    model = small_model(norm_first=norm_first)
    src, src_len, tgt_in = batch()
    changed = tgt_in.clone()
    changed[:, 4:] = torch.randint(4, VOCAB, changed[:, 4:].shape)
    before, after = model(src, src_len, tgt_in), model(src, src_len, changed)
    torch.testing.assert_close(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


@pytest.mark.parametrize("attention_type", TYPES)
def test_padded_source_positions_get_zero_weight_and_do_not_matter(attention_type):
    model = small_model(attention_type=attention_type)
    src, src_len, tgt_in = batch()
    weights = model.attention_weights(src, src_len, tgt_in)
    for layer in weights["encoder_decoder"] + weights["encoder_self"]:
        assert layer[1, ..., 5:].eq(0).all() and layer[2, ..., 3:].eq(0).all()
        torch.testing.assert_close(layer.sum(-1), torch.ones(layer.shape[:-1]))
    other_padding = src.clone()
    other_padding[1, 5:], other_padding[2, 3:] = 7, 9
    torch.testing.assert_close(model(src, src_len, tgt_in), model(other_padding, src_len, tgt_in))


@pytest.mark.parametrize(("attention_type", "layers"), [*((t, 2) for t in TYPES), ("1000", 1)])
def test_kv_cache_decoding_equals_full_recomputation(attention_type, layers):
    model = small_model(attention_type=attention_type, decoder_layers=layers)
    src, src_len, tgt_in = batch()
    full = torch.log_softmax(model(src, src_len, tgt_in), dim=-1)  # (B, T, V)
    memory = model.encode(src, src_len)
    state = model.start(memory)
    for t in range(tgt_in.shape[1]):
        log_probs, state, attention = model.step(tgt_in[:, t], state, memory)
        torch.testing.assert_close(log_probs, full[:, t], atol=1e-5, rtol=1e-5)
        assert attention.shape == (3, 7) and attention[2, 3:].eq(0).all()
    model.cfg.kv_cache = False  # re-runs the decoder over the prefix at every step
    cached = greedy_decode(model, src, src_len)
    model.cfg.kv_cache = True
    recomputed = greedy_decode(model, src, src_len)
    assert [h.tokens for h in cached] == [h.tokens for h in recomputed]


def test_beam_1_equals_greedy():
    model = small_model(seed=3)
    src, src_len, _ = batch(seed=4)
    greedy, beam = greedy_decode(model, src, src_len), beam_search(model, src, src_len, beam=1, stop="first_k")
    assert [h.tokens for h in greedy] == [h.tokens for h in beam]
    for g, b in zip(greedy, beam):
        assert g.score == pytest.approx(b.score, abs=1e-4)


def test_shared_embeddings_tie_source_target_and_output():
    model = small_model(share_embeddings="all")
    assert model.src_embed is model.tgt_embed and model.out is None
    src, src_len, tgt_in = batch()
    y = torch.randn(1, 1, 32)
    torch.testing.assert_close(model._logits(y), y @ model.tgt_embed.weight.T)
    untied = small_model(share_embeddings="none")
    assert untied.src_embed is not untied.tgt_embed and untied.out is not None
    with pytest.raises(ValueError, match="data.joint_vocab=true"):
        TransformerConfig(30, 40, share_embeddings="all")
    with pytest.raises(ValueError, match="valid: all, decoder, none"):
        TransformerConfig(30, 30, share_embeddings="some")


def test_an_unknown_attention_kind_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown model.attention_types \['encoder'\]; valid: encoder_self, decoder_self"):
        TransformerConfig(30, 30, attention_types={"encoder": "1111"})


def test_sharing_all_embeddings_needs_a_joint_vocabulary_and_variants_need_a_transformer(compose_cfg):
    separate = SimpleNamespace(
        cfg=SimpleNamespace(tokenizer="moses", joint_vocab=False),
        src_encoder=SimpleNamespace(vocab_size=VOCAB),
        tgt_encoder=SimpleNamespace(vocab_size=VOCAB),
    )
    with pytest.raises(ValueError, match="data.tokenizer=bpe data.joint_vocab=true, or model.share_embeddings=decoder"):
        build_model(compose_cfg(["experiment=transformer_cpu"]).model, separate)
    with pytest.raises(ValueError, match="apply to model=transformer, not rnnsearch"):
        build_model(compose_cfg(["experiment=rnnsearch_cpu", "attention=all_terms"]).model, separate)


def test_embeddings_are_scaled_by_sqrt_d_model_before_the_positions():
    model = small_model(dropout=0.0)
    ids = torch.tensor([[5, 6]])
    expected = model.tgt_embed(ids) * math.sqrt(32) + sinusoid(torch.arange(2), 32)
    torch.testing.assert_close(model._embed(model.tgt_embed, ids), expected)


def test_init_is_xavier_uniform_zero_biases_and_embeddings_of_std_d_model_to_the_minus_half():
    """The paper does not say; ours (the module docstring): every weight matrix Xavier-uniform,
    biases 0, LayerNorm at (1, 0), embeddings N(0, d_model^-1/2) with the <pad> row 0."""
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(300, 300, d_model=64, heads=4, d_ff=128, encoder_layers=1, decoder_layers=1))
    for name, param in model.named_parameters():
        if "embed" in name:
            assert param[PAD].eq(0).all() and param[PAD + 1 :].std().item() == pytest.approx(64**-0.5, rel=0.05), name
        elif param.dim() == 2:
            bound = math.sqrt(6 / sum(param.shape))  # U(-a, a), a = sqrt(6 / (fan_in + fan_out))
            assert param.abs().max().item() <= bound and param.abs().max().item() > 0.95 * bound, name
        elif "norm" in name and name.endswith("weight"):
            assert param.eq(1).all(), name
        else:
            assert name.endswith("bias") and param.eq(0).all(), name


def _mixed_model(seed: int, encoder_self: str, decoder_self: str, encoder_decoder: str) -> tuple[Transformer, torch.Tensor]:
    """A small model of these attention types and the global generator's next draw after building it."""
    torch.manual_seed(seed)
    types = {"encoder_self": encoder_self, "decoder_self": decoder_self, "encoder_decoder": encoder_decoder}
    model = Transformer(
        TransformerConfig(VOCAB, VOCAB, d_model=32, heads=4, d_ff=48, encoder_layers=2, decoder_layers=2, attention_types=types)
    )
    return model, torch.rand(3)


def test_a_seed_gives_every_attention_variant_the_same_other_weights_and_dropout_stream():
    """Seeds pair Zhu et al.'s variants: the embeddings, FFNs and norms of seed s are the same whatever
    the attention types, so are the global generator's later draws (dropout), and an attention of one
    type in one place has the same weights whatever the other places hold."""
    paper, after_paper = _mixed_model(3, "1000", "1000", "1000")
    for types in (("1111", "0111", "0100"), ("0010", "1000", "0111")):
        variant, after_variant = _mixed_model(3, *types)
        shared = {n: p for n, p in variant.named_parameters() if "attention" not in n}
        assert shared.keys() == {n for n, _ in paper.named_parameters() if "attention" not in n}
        for name, param in paper.named_parameters():
            if name in shared:
                assert torch.equal(param, shared[name]), name
        assert torch.equal(after_paper, after_variant)
    variant, _ = _mixed_model(3, "1111", "0111", "1000")  # encoder-decoder attention as the paper's
    for layer in (0, 1):
        for mine, theirs in zip(
            variant.decoder[layer].cross_attention.parameters(), paper.decoder[layer].cross_attention.parameters()
        ):
            assert torch.equal(mine, theirs)
    other_seed, _ = _mixed_model(4, "1000", "1000", "1000")
    assert not torch.equal(other_seed.encoder[0].ffn[0].weight, paper.encoder[0].ffn[0].weight)
    assert not torch.equal(other_seed.encoder[0].self_attention.w_q.weight, paper.encoder[0].self_attention.w_q.weight)
    layers = [paper.encoder[0].self_attention, paper.encoder[1].self_attention, paper.decoder[0].self_attention]
    layers += [paper.decoder[0].cross_attention]
    firsts = [next(m.parameters()) for m in layers]
    assert all(not torch.equal(a, b) for i, a in enumerate(firsts) for b in firsts[i + 1 :])  # a stream per place


def test_step_returns_the_last_layers_encoder_decoder_weights_averaged_over_heads():
    model = small_model()
    src, src_len, tgt_in = batch()
    teacher_forced = model.attention_weights(src, src_len, tgt_in[:, :2])["encoder_decoder"][-1]  # (B, h, 2, S)
    with torch.no_grad():
        memory = model.encode(src, src_len)
        _, state, first = model.step(tgt_in[:, 0], model.start(memory), memory)
        _, _, second = model.step(tgt_in[:, 1], state, memory)
    torch.testing.assert_close(first, teacher_forced[:, :, 0].mean(dim=1))
    torch.testing.assert_close(second, teacher_forced[:, :, 1].mean(dim=1))


@pytest.mark.parametrize("share", ["all", "decoder", "none"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_parameter_count_is_the_sum_of_the_papers_sublayers(share, norm_first):
    """Per layer: attention 4(d·d + d) (W^Q, W^K, W^V, W^O), FFN 2·d·d_ff + d_ff + d, one LayerNorm
    (2d) per sub-layer; encoder layers have 2 sub-layers, decoder layers 3; the embedding matrices
    (Sec. 3.4: one shared by both embeddings and the pre-softmax layer, which has no bias); pre-LN
    adds a final LayerNorm to each stack. At the base size with a 37k vocabulary this is 63.1M
    (Table 3 lists 65M for base, with the paper's own vocabulary)."""
    d, d_ff, enc, dec = 32, 48, 2, 3
    model = small_model(share_embeddings=share, norm_first=norm_first, encoder_layers=enc, decoder_layers=dec)
    attention, ffn, norm = 4 * (d * d + d), 2 * d * d_ff + d_ff + d, 2 * d
    matrices = {"all": 1, "decoder": 2, "none": 3}[share]
    expected = enc * (attention + ffn + 2 * norm) + dec * (2 * attention + ffn + 3 * norm) + matrices * VOCAB * d
    expected += 2 * norm if norm_first else 0
    assert sum(p.numel() for p in model.parameters()) == expected


def test_attention_weights_hold_every_layer_of_every_kind():
    model = small_model(encoder_layers=2, decoder_layers=3)
    src, src_len, tgt_in = batch()
    weights = model.attention_weights(src, src_len, tgt_in)
    shapes = {"encoder_self": (3, 4, 7, 7), "decoder_self": (3, 4, 7, 7), "encoder_decoder": (3, 4, 7, 7)}
    assert {kind: len(w) for kind, w in weights.items()} == {"encoder_self": 2, "decoder_self": 3, "encoder_decoder": 3}
    for kind, per_layer in weights.items():
        assert all(w.shape == shapes[kind] for w in per_layer), kind
        assert not torch.allclose(per_layer[0], per_layer[-1]), kind  # the layers' own, not one repeated


def test_label_smoothed_loss_matches_its_formula():
    """(1 - ε) · NLL(target) + ε · mean over the vocabulary of -log p, averaged over real tokens."""
    model = small_model()
    src, src_len, tgt_in = batch()
    tgt = torch.cat([tgt_in, torch.full((3, 1), 3)], dim=1)
    tgt[2, 5:] = PAD
    data = type("Data", (), {"references": {"test2016": []}, "test_split": "test2016"})()
    loss = TranslationTask(data, label_smoothing=0.1).training_step(model, {"src": src, "src_len": src_len, "tgt": tgt}).loss
    log_p = torch.log_softmax(model(src, src_len, tgt[:, :-1]), dim=-1)  # (B, T, V)
    gold = tgt[:, 1:]
    real = gold.ne(PAD)
    nll = -log_p.gather(-1, gold[..., None])[..., 0]
    uniform = -log_p.mean(-1)
    expected = ((0.9 * nll + 0.1 * uniform)[real]).mean()
    torch.testing.assert_close(loss, expected)


def test_checkpoint_average_is_the_elementwise_mean(tmp_path):
    models = [small_model(seed=s) for s in range(3)]
    paths = []
    for i, model in enumerate(models):
        paths.append(tmp_path / f"epoch{i}.pt")
        checkpoint.save_atomic({"model": model.state_dict()}, paths[-1])
    averaged = checkpoint.average(paths)
    name = "decoder.0.cross_attention.w_q.weight"
    torch.testing.assert_close(averaged[name], sum(dict(m.named_parameters())[name] for m in models) / 3)


def test_pre_ln_has_final_norms_and_post_ln_has_none():
    assert isinstance(small_model(norm_first=True).encoder_norm, torch.nn.LayerNorm)
    assert isinstance(small_model(norm_first=False).encoder_norm, torch.nn.Identity)


def test_a_batch_is_memorized():
    """Overfit one batch: the teacher-forced loss falls near zero."""
    model = small_model(dropout=0.0, attention_dropout=0.0).train()
    src, src_len, tgt_in = batch()
    gold = torch.cat([tgt_in[:, 1:], torch.full((3, 1), 3)], dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = F.cross_entropy(model(src, src_len, tgt_in).flatten(0, 1), gold.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
