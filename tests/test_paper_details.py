"""Details that define each paper, each in a test that fails when the detail changes: the order of
operations in a sub-layer, which encoder state starts the decoder, the init, every attention
module's parameters being used, REINFORCE's gradient, and the decoding rule of hard attention."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from attention_zoo.attention import build_block_attention
from attention_zoo.attention.additive import AdditiveAttention
from attention_zoo.attention.generalized import build_attention
from attention_zoo.attention.non_local import INSTANTIATIONS, NonLocalBlock
from attention_zoo.data.text import BOS
from attention_zoo.models.resnet import CifarResNet, ResNetConfig
from attention_zoo.models.rnnsearch import RNNSearch, RNNSearchConfig
from attention_zoo.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attention_zoo.models.show_attend_tell import ShowAttendTell, ShowAttendTellConfig
from attention_zoo.models.transformer import DecoderLayer, EncoderLayer, FeedForward, Residual, TransformerConfig
from attention_zoo.tasks.captioning import CaptioningTask
from captioning_fixtures import TaskData, small_model


def _live_layer_norm(d: int) -> nn.LayerNorm:
    norm = nn.LayerNorm(d)
    nn.init.normal_(norm.weight, 1.0, 0.5), nn.init.normal_(norm.bias, 0.0, 0.5)
    return norm


# --- Vaswani et al. 2017 Sec. 3.1: LayerNorm(x + Sublayer(x)) --------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_residual_wrapper_is_post_ln_or_pre_ln_as_written(norm_first):
    torch.manual_seed(0)
    residual = Residual(6, dropout=0.0, norm_first=norm_first)
    residual.norm = _live_layer_norm(6)
    f = nn.Linear(6, 6)
    x = torch.randn(3, 4, 6) * 2 + 1
    expected = x + f(residual.norm(x)) if norm_first else residual.norm(x + f(x))
    assert torch.allclose(residual(x, f), expected, atol=1e-6)


def _layer_with_live_norms(layer_class):
    """A d_model-8 Transformer layer without dropout whose LayerNorms have non-trivial gains and biases."""
    torch.manual_seed(0)
    cfg = TransformerConfig(src_vocab=10, tgt_vocab=10, d_model=8, heads=2, d_ff=16, dropout=0.0, attention_dropout=0.0)
    layer = layer_class(cfg, 0).eval()  # the first layer
    for residual in layer.residuals:
        residual.norm = _live_layer_norm(8)
    return layer


def test_encoder_layer_is_self_attention_then_ffn_each_post_ln():
    layer = _layer_with_live_norms(EncoderLayer)
    x, mask = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    h = layer.residuals[0].norm(x + layer.self_attention(x, x, x, key_mask=mask)[0])
    expected = layer.residuals[1].norm(h + layer.ffn(h))
    assert torch.allclose(layer(x, mask), expected, atol=1e-5)


def test_decoder_layer_is_masked_self_attention_then_encoder_decoder_then_ffn_each_post_ln():
    layer = _layer_with_live_norms(DecoderLayer)
    y, memory = torch.randn(2, 4, 8), torch.randn(2, 5, 8)
    src_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    norms = [residual.norm for residual in layer.residuals]
    h = norms[0](y + layer.self_attention(y, y, y, causal=True)[0])
    h = norms[1](h + layer.cross_attention(h, memory, memory, key_mask=src_mask)[0])
    expected = norms[2](h + layer.ffn(h))
    out, _ = layer(y, layer.cross_attention.project_kv(memory, memory), src_mask)
    assert torch.allclose(out, expected, atol=1e-5)


def test_feed_forward_is_eq2():
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2."""
    torch.manual_seed(0)
    ffn = FeedForward(6, 10)
    w1, b1, w2, b2 = ffn[0].weight, ffn[0].bias, ffn[2].weight, ffn[2].bias
    x = torch.randn(3, 4, 6)
    assert torch.allclose(ffn(x), torch.clamp(x @ w1.T + b1, min=0) @ w2.T + b2, atol=1e-6)


def test_transformer_defaults_are_the_base_model():
    """Table 3 "base": d_model 512, h 8 (d_k = d_v = 64), d_ff 2048, N = 6, P_drop 0.1, sinusoids,
    post-LN, one embedding matrix shared by both embeddings and the pre-softmax layer (Sec. 3.4)."""
    cfg = TransformerConfig(src_vocab=10, tgt_vocab=10)
    assert (cfg.d_model, cfg.heads, cfg.d_k, cfg.d_v, cfg.d_ff) == (512, 8, None, None, 2048)
    assert (cfg.encoder_layers, cfg.decoder_layers, cfg.dropout, cfg.attention_dropout) == (6, 6, 0.1, 0.1)
    assert (cfg.positions, cfg.norm_first, cfg.share_embeddings) == ("sinusoidal", False, "all")
    assert cfg.attention_types == dict.fromkeys(("encoder_self", "decoder_self", "encoder_decoder"), "1000")
    # ours, not the paper's: the position table's length, and decoding with cached keys and values
    assert (cfg.max_positions, cfg.kv_cache) == (512, True)


# --- Sutskever et al. 2014 Sec. 3.3-3.4 ------------------------------------------------------------
def test_seq2seq_defaults_are_the_papers_network():
    """4 layers of 1000 LSTM cells, 1000-d embeddings, U(-0.08, 0.08), the source reversed, no dropout."""
    cfg = Seq2SeqConfig(src_vocab=10, tgt_vocab=10)
    assert (cfg.num_layers, cfg.hidden_dim, cfg.embed_dim, cfg.cell) == (4, 1000, 1000, "lstm")
    assert (cfg.init_range, cfg.reverse_source, cfg.dropout) == (0.08, True, 0.0)


def test_seq2seq_init_is_uniform_in_minus_to_plus_init_range():
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab=300, tgt_vocab=300, embed_dim=64, hidden_dim=64, num_layers=2))
    for name, param in model.named_parameters():  # every parameter, biases and embeddings included
        assert param.abs().max().item() <= 0.08, name
        if param.numel() >= 1000:  # a U(-a, a) sample this large comes within 2% of both ends
            assert param.min().item() < -0.078 and param.max().item() > 0.078, name


def test_seq2seq_reads_the_source_reversed_and_decodes_from_its_final_states():
    """Sec. 3.3: the encoder reads c, b, a for a, b, c; the decoder starts from the encoder's last (h, c)."""
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab=30, tgt_vocab=20, embed_dim=8, hidden_dim=12, num_layers=2)
    model = Seq2Seq(cfg).eval()
    forward_reader = Seq2Seq(replace(cfg, reverse_source=False)).eval()
    forward_reader.load_state_dict(model.state_dict())
    src, src_len = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0]]), torch.tensor([4, 3])
    reversed_src = torch.tensor([[8, 7, 6, 5], [11, 10, 9, 0]])
    tgt_in = torch.tensor([[BOS, 4, 5], [BOS, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(model(src, src_len, tgt_in), forward_reader(reversed_src, src_len, tgt_in))
        assert not torch.allclose(model(src, src_len, tgt_in), forward_reader(src, src_len, tgt_in))
        _, (h, c) = model.encoder(model.src_embed(reversed_src[:1]))  # the first sentence has no padding
        memory = model.encode(src, src_len)
        assert torch.allclose(memory["state0"][0], h[:, 0]) and torch.allclose(memory["state1"][0], c[:, 0])


# --- Bahdanau et al. 2015 ------------------------------------------------------------------------
def _rnnsearch(init="bahdanau") -> RNNSearch:
    torch.manual_seed(0)
    return RNNSearch(
        RNNSearchConfig(src_vocab=20, tgt_vocab=15, embed_dim=6, hidden_dim=8, attention_dim=7, maxout_dim=5, init=init)
    )


def test_decoder_starts_from_the_backward_encoder_state_of_the_first_word():
    """s_0 = tanh(W_s ←h_1) (App. A.2.2): ←h_1 has read the whole sentence backwards."""
    model = _rnnsearch(init="pytorch")
    src, src_len = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]]), torch.tensor([4, 2])
    backward = nn.GRU(6, 8, batch_first=True)
    backward.load_state_dict(
        {k.removesuffix("_reverse"): v for k, v in model.encoder.state_dict().items() if k.endswith("_reverse")}
    )
    for row, n in enumerate(src_len.tolist()):
        words = model.src_embed(src[row : row + 1, :n]).flip(1)  # (1, n, m): last word first
        _, h_first = backward(words)  # ←h_1 (1, 1, n)
        s0 = model.start(model.encode(src, src_len))["s"][row]
        assert torch.allclose(s0, torch.tanh(model.init_state(h_first[0, 0])), atol=1e-6)


def test_rnnsearch_init_follows_appendix_b1():
    model = _rnnsearch()
    for matrix in (model.encoder.weight_hh_l0, model.encoder.weight_hh_l0_reverse, model.decoder.weight_hh):
        for gate in matrix.detach().chunk(3, dim=0):  # r, z, candidate: each orthogonal
            assert torch.allclose(gate @ gate.T, torch.eye(8), atol=1e-5)
    big = RNNSearch(RNNSearchConfig(src_vocab=500, tgt_vocab=400, embed_dim=64, hidden_dim=64, attention_dim=64, maxout_dim=32))
    assert big.attention.query_proj.weight.std().item() == pytest.approx(0.001, rel=0.1)  # W_a
    assert big.attention.key_proj.weight.std().item() == pytest.approx(0.001, rel=0.1)  # U_a
    assert torch.equal(big.attention.score.weight, torch.zeros_like(big.attention.score.weight))  # v_a
    for name, param in big.named_parameters():
        if "bias" in name:
            assert torch.equal(param, torch.zeros_like(param)), name
    for weight in (
        big.encoder.weight_ih_l0,
        big.out.weight,
        big.out_context.weight,
        big.init_state.weight,
        big.tgt_embed.weight[4:],
    ):
        assert weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert torch.equal(big.src_embed.weight[0], torch.zeros(64))  # <pad>
    assert _rnnsearch("pytorch").encoder.weight_ih_l0.std().item() > 0.1  # the library default differs


def test_rnnsearch_defaults_are_the_papers_sizes():
    """Sec. 4.2 / App. A.2: n = 1000 hidden units, m = 620 embeddings, n' = 1000, l = 500, no dropout."""
    cfg = RNNSearchConfig(src_vocab=10, tgt_vocab=10)
    assert (cfg.hidden_dim, cfg.embed_dim, cfg.attention_dim, cfg.maxout_dim) == (1000, 620, 1000, 500)
    assert (cfg.dropout, cfg.init) == (0.0, "bahdanau")


def test_rnnsearch_output_is_the_deep_output_with_maxout():
    """App. A.2.2: t̃_i = U_o s_{i-1} + V_o E y_{i-1} + C_o c_i, t_i = pairwise max, p = softmax(W_o t_i);
    one bias (U_o's) in t̃. Every parameter random, so a dropped term, a flipped sign or an extra
    bias shows."""
    model = _rnnsearch().eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.5)
    src, src_len, prev = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]]), torch.tensor([4, 2]), torch.tensor([4, 7])
    with torch.no_grad():
        memory = model.encode(src, src_len)
        state = model.start(memory)
        log_probs, new_state, _ = model.step(prev, state, memory)
        s_prev, embedded = state["s"], model.tgt_embed(prev)  # (B, n), (B, m)
        context, _ = model.attention(s_prev, memory["annotations"], memory["keys"], memory["mask"])  # (B, 2n)
        t_tilde = (
            s_prev @ model.out_state.weight.T
            + model.out_state.bias
            + embedded @ model.out_embed.weight.T
            + context @ model.out_context.weight.T
        )  # (B, 2l)
        t = torch.maximum(t_tilde[:, 0::2], t_tilde[:, 1::2])  # (B, l)
        expected = torch.log_softmax(t @ model.out.weight.T + model.out.bias, dim=-1)
    assert torch.allclose(log_probs, expected, atol=1e-5)
    assert torch.allclose(new_state["s"], model.decoder(torch.cat([embedded, context], -1), s_prev))


# --- every attention module's parameters are used ------------------------------------------------
# A key's bias b adds q_i·b to every logit of query i, the same for every key, so the softmax
# over keys ignores it: these parameters exist but cannot learn.
SOFTMAX_INVARIANT = {
    ("non-local-embedded_gaussian", "phi.bias"),
    ("generalized-1000", "w_k.bias"),
    ("generalized-1111", "w_k.bias"),
    ("generalized-0010", "w_k.bias"),
}


def _modules_and_inputs():
    torch.manual_seed(0)
    image = torch.randn(4, 32, 6, 6)
    yield "se", build_block_attention("se", 32), (image,)
    for arrangement in ("channel_spatial", "spatial_channel", "parallel"):
        yield f"cbam-{arrangement}", build_block_attention("cbam", 32, arrangement=arrangement), (image,)
    for instantiation in INSTANTIATIONS:
        yield f"non-local-{instantiation}", NonLocalBlock(32, instantiation), (image,)
    query, keys = torch.randn(4, 10), torch.randn(4, 7, 12)
    additive = AdditiveAttention(10, 12, 9, bias=True)
    yield "additive", additive, (query, keys, None)
    x = torch.randn(2, 5, 16)
    for terms in ("1000", "1111", "0100", "0010", "0001"):
        yield f"generalized-{terms}", build_attention(terms, 16, 2, None, None, 0.0), (x, x, x)


def _unused_by_the_terms(name: str) -> set[str]:
    """Projections a generalized-attention subset holds but its terms do not read: W^Q without E1
    or E2, W^K without E1 or E3 (the module keeps MultiHeadAttention's four projections)."""
    if not name.startswith("generalized-"):
        return set()
    e1, e2, e3, _ = (bit == "1" for bit in name.split("-")[1])
    return ({"w_q.weight", "w_q.bias"} if not (e1 or e2) else set()) | ({"w_k.weight", "w_k.bias"} if not (e1 or e3) else set())


def _output(name, module, inputs):
    if name == "additive":
        query, keys, _ = inputs
        return module(query, keys, module.project_keys(keys))[0]
    out = module(*inputs)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name,module,inputs", list(_modules_and_inputs()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_attention_parameter_gets_gradient_and_moves_in_training(name, module, inputs):
    """Two SGD steps on a random regression target: the first opens zero-initialized gates (the
    non-local BN scale), the second must move every parameter. An attention module replaced by
    the identity, or a term dropped, leaves parameters without gradient."""
    module.train()
    target = torch.randn_like(_output(name, module, inputs))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    for _ in range(2):
        before = {k: v.detach().clone() for k, v in module.named_parameters()}
        optimizer.zero_grad()
        ((_output(name, module, inputs) - target) ** 2).mean().backward()
        optimizer.step()
    for key, param in module.named_parameters():
        if key in _unused_by_the_terms(name):
            assert param.grad is None or not param.grad.any(), f"{name}: {key} is read by no selected term"
            continue
        if (name, key) in SOFTMAX_INVARIANT:  # provably unused: its gradient is zero up to rounding
            assert param.grad.abs().max() < 1e-6, f"{name}: {key}"
            continue
        assert param.grad is not None and param.grad.abs().sum() > 0, f"{name}: {key} gets no gradient"
        assert not torch.equal(param.detach(), before[key]), f"{name}: {key} did not move"


@pytest.mark.parametrize(
    "option",
    [
        {"block_attention": "se", "block_attention_options": {"reduction": 4}},
        {"block_attention": "cbam", "block_attention_options": {"reduction": 4}},
        {"non_local_stages": (2,), "non_local_options": {"instantiation": "embedded_gaussian"}},
    ],
)
def test_attention_inside_the_resnet_is_trained_with_it(option):
    """Inside the network too: an attention module replaced by the identity would leave its
    parameters where they started (a plain ResNet memorizes a batch without them)."""
    torch.manual_seed(0)
    model = CifarResNet(ResNetConfig(depth=14, widths=(16, 32, 64), **option))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    attention = {  # the SE/CBAM modules on the residual branches, or the non-local block
        f"{name}.{key}": p
        for name, module in model.named_modules()
        if name.endswith(".attention") or isinstance(module, NonLocalBlock)
        for key, p in module.named_parameters()
        if key != "phi.bias"  # softmax-invariant, see above
    }
    assert len(attention) >= (5 if "non_local_stages" in option else 6 * 2)
    for _ in range(2):
        before = {k: p.detach().clone() for k, p in attention.items()}
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    moved = [k for k, p in attention.items() if not torch.equal(p.detach(), before[k])]
    assert moved == list(attention), set(attention) - set(moved)


# --- Xu et al. 2015 ------------------------------------------------------------------------------
def test_show_attend_tell_defaults_are_the_papers_network():
    """VGG-19 conv5_4 features (14x14x512, Sec. 4.3) from ImageNet weights, frozen; the authors'
    Flickr8k sizes (LSTM 1800, embeddings and attention MLP 512); soft attention with the gate β
    (Sec. 4.2.1); h_0, c_0 from the mean annotation (Sec. 3.1.2); hard attention trained with the
    expected context for half the captions (end of Sec. 4.1) and decoded with it; dropout 0.5."""
    cfg = ShowAttendTellConfig(vocab_size=10)
    assert (cfg.encoder, cfg.encoder_weights, cfg.fine_tune_encoder) == ("vgg19", "imagenet", False)
    assert (cfg.embed_dim, cfg.hidden_dim, cfg.attention_dim) == (512, 1800, 512)
    assert (cfg.attention, cfg.gate, cfg.init_from_annotations, cfg.dropout) == ("soft", True, True, 0.5)
    assert (cfg.expected_context_prob, cfg.hard_decode) == (0.5, "expected")
    attention = _captioner().attention  # f_att is an MLP with biases (Sec. 4.2; the authors' code)
    assert attention.query_proj.bias is not None and attention.key_proj.bias is not None


def _captioner(**overrides) -> ShowAttendTell:
    return small_model(vocab_size=7, embed_dim=5, hidden_dim=6, attention_dim=4, **overrides)


def test_reinforce_alone_is_the_exact_gradient_of_the_expected_reward():
    """Eq. 12 with entropy and Eq. 14 off, every caption sampling its location: averaged over many
    sampled captions, the gradient reaching f_att equals, by enumeration of the L locations,
    -(1/T) ∇ Σ_s p(s | a) log p(y | s, a) with the reward held fixed. (The baseline cancels in
    expectation; starting it at the expected reward only lowers the sampling noise.)"""
    model = _captioner(attention="hard", expected_context_prob=0.0).train()
    task = CaptioningTask(TaskData(), doubly_stochastic=0.0, entropy_weight=0.0, reinforce_weight=1.0)
    annotations, word = torch.randn(1, 3, model.encoder.dim), 5  # L = 3 locations, a caption of T = 1 word

    memory = model.encode(annotations)
    state = model.start(memory)
    _, alpha = model.attention(state["h"], memory["annotations"], memory["keys"])  # (1, L)
    gate = torch.sigmoid(model.gate(state["h"]))
    rewards = []
    for s in range(3):
        logits, _ = model._emit(torch.tensor([BOS]), gate * memory["annotations"][:, s], state)
        rewards.append(torch.log_softmax(logits, -1)[0, word].detach())
    rewards = torch.stack(rewards)  # (L,) log p(y | s, a)
    (-(alpha[0] * rewards).sum()).backward()  # -(1/T) Σ_s p(s) R(s), T = 1
    exact = [p.grad.clone() for p in model.attention.parameters()]

    model.zero_grad()
    model.reward_baseline.fill_(float(alpha[0].detach() @ rewards))
    n = 40_000
    batch = {"src": annotations.expand(n, -1, -1), "captions": torch.tensor([[BOS, word]]).expand(n, -1)}
    torch.manual_seed(1)
    task.training_step(model, batch).loss.backward()
    for sampled, ex in zip((p.grad for p in model.attention.parameters()), exact):
        assert ex.abs().sum() > 0
        assert torch.allclose(sampled, ex, atol=0.03 * ex.abs().max().item())


def test_hard_attention_decodes_with_the_expected_context_unless_asked_for_the_argmax():
    soft = _captioner()
    expected, argmax = _captioner(attention="hard"), _captioner(attention="hard", hard_decode="argmax")
    expected.load_state_dict(soft.state_dict()), argmax.load_state_dict(soft.state_dict())
    memory = soft.encode(torch.randn(2, 5, soft.encoder.dim))
    prev = torch.tensor([BOS, BOS])
    outputs = {}
    for name, model in {"soft": soft, "expected": expected, "argmax": argmax}.items():
        model.eval()
        outputs[name] = model.step(prev, model.start(memory), memory)[0]
    assert torch.allclose(outputs["expected"], outputs["soft"], atol=1e-6)
    assert not torch.allclose(outputs["argmax"], outputs["soft"], atol=1e-4)
    with pytest.raises(ValueError, match="valid: expected, argmax"):
        _captioner(attention="hard", hard_decode="sample")
