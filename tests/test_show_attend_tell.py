import pickle

import pytest
import torch
from torch import nn

from attention_zoo.data.captions import CaptionConfig, CaptionData
from attention_zoo.data.scenes import SceneObject
from attention_zoo.data.text import BOS
from attention_zoo.metrics.localization import SceneCaptionScores, named_objects, object_word_hits
from attention_zoo.models.image_encoder import ImageEncoder
from attention_zoo.models.show_attend_tell import ShowAttendTell, ShowAttendTellConfig
from attention_zoo.tasks.captioning import CaptioningTask, doubly_stochastic_penalty
from attention_zoo.tasks.decoding import beam_search, greedy_decode
from captioning_fixtures import VOCAB, TaskData, small_model


def test_attention_weights_sum_to_one_over_locations():
    model = small_model()
    out = model(torch.randn(2, 3, 64, 64), torch.randint(4, VOCAB, (2, 5)))
    assert out["logits"].shape == (2, 5, VOCAB) and out["alphas"].shape == (2, 5, 64)  # 8x8 grid
    assert torch.allclose(out["alphas"].sum(-1), torch.ones(2, 5), atol=1e-5) and (out["alphas"] >= 0).all()


def test_initial_state_gate_and_deep_output_follow_the_equations():
    model = small_model().eval()
    features = torch.randn(2, 10, 128)  # cached annotation vectors (B, L, D)
    memory = model.encode(features)
    state = model.start(memory)
    mean = features.mean(1)
    assert torch.allclose(state["h"], torch.tanh(model.init_h(mean))) and torch.allclose(
        state["c"], torch.tanh(model.init_c(mean))
    )
    prev = torch.tensor([BOS, 5])
    log_probs, new_state, alpha = model.step(prev, state, memory)
    z = torch.sigmoid(model.gate(state["h"])) * torch.einsum("bl,bld->bd", alpha, features)  # β_t Σ α_ti a_i
    embedded = model.embedding(prev)
    h, c = model.lstm(torch.cat([embedded, z], -1), (state["h"], state["c"]))
    logits = model.out(embedded + model.out_h(h) + model.out_z(z))  # Eq. 7
    assert torch.allclose(new_state["h"], h, atol=1e-6) and torch.allclose(log_probs, torch.log_softmax(logits, -1), atol=1e-5)


def test_doubly_stochastic_penalty_equals_eq_14():
    torch.manual_seed(0)
    alphas = torch.softmax(torch.randn(2, 4, 6), -1)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    expected = [sum((1 - sum(alphas[b, t, i] for t in range(4) if mask[b, t])) ** 2 for i in range(6)) for b in range(2)]
    assert torch.allclose(doubly_stochastic_penalty(alphas, mask), torch.stack(expected), atol=1e-6)


@pytest.mark.parametrize("attention", ["soft", "hard"])
def test_beam_one_equals_greedy(attention):
    model = small_model(attention=attention).eval()
    images, no_len = torch.randn(3, 3, 64, 64), torch.zeros(3, dtype=torch.long)
    greedy = greedy_decode(model, images, no_len, max_len_a=0.0, max_len_b=8)
    beam = beam_search(model, images, no_len, beam=1, max_len_a=0.0, max_len_b=8, stop="first_k")
    assert [g.tokens for g in greedy] == [b.tokens for b in beam]
    assert all(torch.allclose(g.attention, b.attention) for g, b in zip(greedy, beam))


def test_hard_attention_has_finite_gradients_and_moves_the_baseline():
    model = small_model(attention="hard", expected_context_prob=0.0).train()
    task = CaptioningTask(TaskData(), entropy_weight=0.1)
    batch = {
        "src": torch.randn(4, 3, 64, 64),
        "captions": torch.cat([torch.full((4, 1), BOS), torch.randint(4, VOCAB, (4, 6))], 1),
    }
    out = model(batch["src"], batch["captions"][:, :-1])
    assert out["expected"].sum() == 0 and torch.isfinite(out["log_p_locations"]).all() and (out["log_p_locations"] <= 0).all()
    step = task.training_step(model, batch)
    step.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.attention.score.weight.grad.abs().sum() > 0  # REINFORCE reaches f_att through log p(s̃ | a)
    first = float(model.reward_baseline)
    assert first < 0  # 0.9 * 0 + 0.1 * (mean log p(y | s̃, a) < 0)
    task.training_step(model, batch)
    assert float(model.reward_baseline) != first


def test_hard_attention_with_only_expected_context_computes_the_soft_model():
    soft, hard = small_model(), small_model(attention="hard", expected_context_prob=1.0)
    hard.load_state_dict(soft.state_dict())
    images, captions = torch.randn(2, 3, 64, 64), torch.randint(4, VOCAB, (2, 5))
    soft.train(), hard.train()
    torch.manual_seed(1)
    a = soft(images, captions)
    torch.manual_seed(1)
    b = hard(images, captions)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-5) and b["expected"].all()


def test_localization_counts_colour_and_shape_words_at_their_attention_peak():
    red = SceneObject("red", "circle", (0, 0, 16, 16))  # top-left quarter of a 32-px image
    blue = SceneObject("blue", "square", (16, 16, 32, 32))
    words = ["a", "red", "circle", "above", "a", "blue", "square", "<eos>"]
    attention = torch.zeros(8, 4)  # 2x2 grid: cells 0 (top-left) .. 3 (bottom-right)
    attention[:, 0] = 1.0
    attention[5:7] = torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert object_word_hits(words, attention, [red, blue], image_size=32) == (4, 4)
    attention[6] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # "square" while looking at the circle
    assert object_word_hits(words, attention, [red, blue], image_size=32) == (3, 4)
    assert object_word_hits(["a", "green", "circle"], attention[:3], [red, blue], image_size=32) == (0, 2)  # not in the image
    # lag 1 scores the step before each word: "a" for "blue", "blue" for "square", both on the square
    attention[4:7] = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    assert object_word_hits(words, attention, [red, blue], image_size=32) == (3, 4)
    assert object_word_hits(words, attention, [red, blue], image_size=32, lag=1) == (4, 4)
    green = SceneObject("green", "triangle", (0, 16, 16, 32))
    assert named_objects(words, [red, blue, green]) == (2, 2, 2)  # both phrases right, the triangle not named
    assert named_objects(["a", "red", "square", "and", "a", "red", "circle"], [red]) == (1, 2, 1)
    scores = SceneCaptionScores(image_size=32)
    scores.add(words, attention, [red, blue, green])
    scores.add(["a", "green", "circle"], attention[:3], [red])
    assert scores.summary() == {
        "localization": 3 / 6,
        "localization_previous_step": 4 / 6,
        "object_precision": 2 / 3,
        "object_recall": 2 / 4,
    }


def test_encoders_give_the_papers_grids_and_load_local_weights(tmp_path):
    with pytest.warns(UserWarning, match="random weights"):
        vgg = ImageEncoder("vgg19", weights=None)
    assert vgg(torch.randn(1, 3, 224, 224)).shape == (1, 196, 512)  # 14x14 conv5_4 grid (Sec. 4.3)
    torch.manual_seed(3)
    from torchvision.models import resnet50

    reference = resnet50(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet50.pth")
    encoder = ImageEncoder("resnet50", weights=str(tmp_path / "resnet50.pth"))
    assert torch.equal(encoder.trunk[0].weight, reference.conv1.weight)
    assert encoder(torch.randn(1, 3, 224, 224)).shape == (1, 49, 2048)
    with pytest.raises(FileNotFoundError, match="no such file"):
        ImageEncoder("resnet50", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="valid: vgg19, vgg16, resnet50, resnet101, scenes_cnn, scenes_cnn_local, small_cnn"):
        ImageEncoder("alexnet")


def _layers(trunk: nn.Module) -> list[tuple]:
    """The trunk as (kind, in, out, kernel, stride, padding, bias) rows; pooling and BN as (kind, size)."""
    rows = []
    for m in trunk:
        if isinstance(m, nn.Conv2d):
            rows.append(("conv", m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0], m.bias is not None))
        elif isinstance(m, nn.BatchNorm2d):
            rows.append(("bn", m.num_features))
        elif isinstance(m, nn.MaxPool2d):
            rows.append(("pool", m.kernel_size))
        else:
            rows.append((type(m).__name__,))
    return rows


def _conv_bn_relu_rows(c_in, c_out, kernel=3, stride=1, padding=1):
    return [("conv", c_in, c_out, kernel, stride, padding, False), ("bn", c_out), ("ReLU",)]


# both scenes encoders: three conv-BN-ReLU layers, each followed by 2x2 max pooling (64 -> 8)
_SCENES_POOLED = [row for c_in, c_out in ((3, 16), (16, 32), (32, 64)) for row in (*_conv_bn_relu_rows(c_in, c_out), ("pool", 2))]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("scenes_cnn", [*_SCENES_POOLED, *_conv_bn_relu_rows(64, 128)]),
        ("scenes_cnn_local", [*_SCENES_POOLED, *_conv_bn_relu_rows(64, 128, kernel=1, padding=0)]),
        (
            "small_cnn",
            [
                *_conv_bn_relu_rows(3, 32, kernel=4, stride=4, padding=0),  # 224 -> 56, non-overlapping patches
                *_conv_bn_relu_rows(32, 64, stride=2),  # -> 28
                *_conv_bn_relu_rows(64, 64),
                *_conv_bn_relu_rows(64, 128, stride=2),  # -> 14
                *_conv_bn_relu_rows(128, 256),
            ],
        ),
    ],
)
def test_encoders_trained_here_are_the_documented_networks(name, expected):
    """The layers the module docstring lists, one by one (a changed width, stride or padding keeps the grid's shape)."""
    encoder = ImageEncoder(name, weights=None, fine_tune=True)
    assert _layers(encoder.trunk) == expected and encoder.dim == expected[-3][2]


def test_vgg_encoders_stop_after_the_last_conv_and_its_relu():
    """conv5_4 (VGG-19) / conv5_3 (VGG-16) and their ReLU, before the last max pooling (Sec. 4.3)."""
    for name, convs in (("vgg19", 16), ("vgg16", 13)):
        with pytest.warns(UserWarning, match="random weights"):
            vgg = ImageEncoder(name, weights=None)
        trunk = vgg.trunk
        assert isinstance(trunk[-1], nn.ReLU) and isinstance(trunk[-2], nn.Conv2d)
        assert sum(isinstance(m, nn.Conv2d) for m in trunk) == convs and sum(isinstance(m, nn.MaxPool2d) for m in trunk) == 4
    assert vgg.dim == 512 and vgg(torch.randn(1, 3, 32, 32)).shape == (1, 4, 512)
    assert ImageEncoder("small_cnn", weights=None, fine_tune=True).dim == 256
    with pytest.warns(UserWarning, match="random weights"):
        resnet = ImageEncoder("resnet101", weights=None)
    assert resnet.dim == 2048 and len(resnet.trunk) == 8  # conv1, bn1, relu, maxpool, layer1..4: no pooling or fc
    assert resnet.trunk[-1][-1].conv3.out_channels == 2048


class _NotAWeight:
    """A pickled object that is not a tensor: what a tampered or wrong weights file can hold."""


def test_weights_files_load_tensors_only(tmp_path):
    """torch.load(weights_only=True): a weights file cannot run code or bring objects in while it loads."""
    trunk = ImageEncoder("small_cnn", weights=None, fine_tune=True).trunk
    path = tmp_path / "trunk.pt"
    torch.save({**trunk.state_dict(), "extra": _NotAWeight()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        ImageEncoder("small_cnn", weights=str(path))


def test_random_weight_warnings_point_at_the_line_that_built_the_encoder():
    with pytest.warns(UserWarning, match="random weights") as vgg:
        ImageEncoder("vgg16", weights=None)
    with pytest.warns(UserWarning, match="frozen at random weights") as small:
        ImageEncoder("small_cnn", weights=None, fine_tune=False)
    assert {w.filename for w in (*vgg, *small)} == {__file__}


def test_imagenet_weights_that_cannot_be_had_name_the_alternatives(monkeypatch):
    from torchvision import models

    real = models.vgg16

    def offline(weights=None):
        if weights is not None:
            raise OSError("no network")
        return real(weights=None)

    monkeypatch.setattr(models, "vgg16", offline)
    with pytest.raises(RuntimeError, match=r"ImageNet weights of vgg16.*no network.*encoder_weights=/path/to/vgg16.pth.*null"):
        ImageEncoder("vgg16", weights="imagenet")


def test_zero_initial_state_leaves_the_image_to_attention():
    model = small_model(init_from_annotations=False).eval()
    memory = model.encode(torch.randn(2, 3, 64, 64))
    state = model.start(memory)
    assert state["h"].abs().sum() == 0 and state["c"].abs().sum() == 0 and model.init_h is None
    log_probs, _, _ = model.step(torch.full((2,), BOS), state, memory)
    assert not torch.allclose(log_probs[0], log_probs[1])  # the image still reaches word 1, through ẑ_1


def test_scenes_encoders_receptive_fields():
    """A cell of scenes_cnn_local sees 22 px (about one object); scenes_cnn's sees 38 px."""

    def pixels_seen_by_cell(name: str, row: int, col: int) -> torch.Tensor:
        torch.manual_seed(0)
        encoder = ImageEncoder(name, weights=None, fine_tune=True).eval()
        image = torch.randn(1, 3, 64, 64, requires_grad=True)
        encoder(image)[0, row * 8 + col].sum().backward()  # cell (row, col) of the 8x8 grid
        return image.grad.abs().sum((0, 1)).ne(0)  # (64, 64): pixels this cell depends on

    local, wide = pixels_seen_by_cell("scenes_cnn_local", 4, 4), pixels_seen_by_cell("scenes_cnn", 4, 4)
    rows, cols = local.any(1).nonzero().squeeze(1), local.any(0).nonzero().squeeze(1)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (25, 46, 25, 46)  # 22 px around cell 32..39
    assert wide.sum() > local.sum() and int(wide.any(1).sum()) == 38


def test_frozen_encoder_gets_no_gradient_and_keeps_its_batchnorm_statistics():
    with pytest.warns(UserWarning, match="random weights"):
        default = ImageEncoder("vgg16", weights=None)  # the paper's encoder: frozen unless asked
    assert default.frozen and not any(p.requires_grad for p in default.parameters())  # nothing for an optimizer
    images = torch.randn(1, 3, 32, 32, requires_grad=True)
    assert default(images).grad_fn is None  # no graph through a frozen encoder, even for an input that asks
    tuned_encoder = ImageEncoder("small_cnn", weights=None, fine_tune=True).eval()
    assert tuned_encoder.train().trunk.training  # train() with no argument is train(True)
    frozen, tuned = small_model(fine_tune_encoder=False).train(), small_model(fine_tune_encoder=True).train()
    assert not frozen.encoder.trunk.training and tuned.encoder.trunk.training
    for model in (frozen, tuned):
        model(torch.randn(2, 3, 64, 64), torch.randint(4, VOCAB, (2, 3)))["logits"].sum().backward()
    assert all(p.grad is None for p in frozen.encoder.parameters())
    assert any(p.grad is not None for p in tuned.encoder.parameters())
    bn = next(m for m in frozen.encoder.modules() if isinstance(m, nn.BatchNorm2d))
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))


def test_feature_cache_runs_a_frozen_encoder_once_and_gives_the_same_outputs(tmp_path):
    cfg = CaptionConfig(
        root=str(tmp_path),
        cache_dir=str(tmp_path / "cache"),
        name="scenes",
        scenes_images={"train": 6, "val": 2, "test": 2},
        batch_size=4,
    )
    data = CaptionData(cfg, seed=0)
    model = small_model(fine_tune_encoder=False).eval()
    images = next(iter(data.val_batches()))["src"]
    data.prepare(model, torch.device("cpu"))
    cached = next(iter(data.val_batches()))["src"]
    assert images.shape == (2, 3, 64, 64) and cached.shape == (2, 64, 128)
    captions = torch.randint(4, VOCAB, (2, 4))
    assert torch.allclose(model(images, captions)["logits"], model(cached, captions)["logits"], atol=1e-2)  # fp16 cache
    assert len(list((tmp_path / "cache").glob("captions-scenes-features-*.pt"))) == 1
    again = CaptionData(cfg, seed=0)
    again.prepare(model, torch.device("cpu"))
    assert torch.equal(again.features["val"], data.features["val"])
    tuned = small_model(fine_tune_encoder=True)
    third = CaptionData(cfg, seed=0)
    third.prepare(tuned, torch.device("cpu"))
    assert third.features is None  # a fine-tuned encoder cannot be cached


def test_overfits_a_tiny_scenes_set_to_its_exact_captions(tmp_path):
    cfg = CaptionConfig(
        root=str(tmp_path),
        cache_dir=str(tmp_path / "cache"),
        name="scenes",
        scenes_images={"train": 10, "val": 2, "test": 2},
        scenes_image_size=32,
        batch_size=16,
        max_len=20,
    )
    data = CaptionData(cfg, seed=0)
    torch.manual_seed(0)
    model = ShowAttendTell(
        ShowAttendTellConfig(
            vocab_size=data.encoder.vocab_size,
            encoder="scenes_cnn",
            encoder_weights=None,
            fine_tune_encoder=True,
            embed_dim=32,
            hidden_dim=64,
            attention_dim=32,
            dropout=0.0,
        )
    )
    task = CaptioningTask(data, doubly_stochastic=0.0)
    # train on each image's first reference only, so that the exact caption is well defined
    batch = data.batch("train", list(range(10)))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        loss = task.training_step(model, batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    hyps = task.decode(model, batch["src"], beam=1)
    produced = [data.encoder.decode(h.tokens) for h in hyps]
    assert produced == [refs[0] for refs in data.references["train"]]


def test_one_encoding_per_image_gives_the_same_loss_and_gradients_as_one_per_caption():
    model = small_model().train()
    model.dropout.p = 0.0
    images, captions = torch.randn(2, 3, 64, 64), torch.randint(4, VOCAB, (5, 4))
    caption_image = torch.tensor([0, 0, 1, 1, 1])
    grouped = model(images, captions, caption_image)["logits"]
    grouped.square().sum().backward()
    grad_grouped = model.encoder.trunk[0].weight.grad.clone()
    model.zero_grad()
    model.encoder.eval()  # BatchNorm batch statistics differ between 2 and 5 images: compare in eval mode
    model.zero_grad()
    per_caption = model(images[caption_image], captions)["logits"]
    grouped_eval = model(images, captions, caption_image)["logits"]
    assert torch.allclose(grouped_eval, per_caption, atol=1e-5)
    grouped_eval.square().sum().backward()
    grad_eval = model.encoder.trunk[0].weight.grad.clone()
    model.zero_grad()
    model(images[caption_image], captions)["logits"].square().sum().backward()
    assert torch.allclose(model.encoder.trunk[0].weight.grad, grad_eval, atol=1e-4)
    assert grad_grouped.abs().sum() > 0


def test_no_attention_baseline_sees_the_image_only_through_its_initial_state():
    """attention=none (Show and Tell): h_0, c_0 from the mean annotation, then words alone."""
    model = small_model(attention="none").eval()
    assert model.attention is None and model.gate is None and model.out_z is None
    features = torch.randn(2, 10, 128)
    other = torch.randn(2, 10, 128)
    same_mean = other - other.mean(1, keepdim=True) + features.mean(1, keepdim=True)  # other cells, same mean
    prev = torch.tensor([BOS, 5])
    outputs = []
    for annotations in (features, same_mean):
        memory = model.encode(annotations)
        state = model.start(memory)
        log_probs, new_state, alpha = model.step(prev, state, memory)
        outputs.append(log_probs)
        assert alpha is None
    assert torch.allclose(outputs[0], outputs[1], atol=1e-6)  # only the mean annotation matters
    memory = model.encode(features)
    state = model.start(memory)
    embedded = model.embedding(prev)
    h, _ = model.lstm(embedded, (torch.tanh(model.init_h(features.mean(1))), torch.tanh(model.init_c(features.mean(1)))))
    assert torch.allclose(outputs[0], torch.log_softmax(model.out(embedded + model.out_h(h)), -1), atol=1e-5)
    soft = small_model().eval()
    soft_outputs = [soft.step(prev, soft.start(soft.encode(a)), soft.encode(a))[0] for a in (features, same_mean)]
    assert not torch.allclose(soft_outputs[0], soft_outputs[1], atol=1e-4)  # attention reads the cells themselves
    out = model(torch.randn(2, 3, 64, 64), torch.randint(4, VOCAB, (2, 5)))
    assert out["alphas"].shape == (2, 5, 0)
    assert doubly_stochastic_penalty(out["alphas"], torch.ones(2, 5, dtype=torch.bool)).abs().sum() == 0


def test_beam_one_equals_greedy_without_attention():
    model = small_model(attention="none").eval()
    images, no_len = torch.randn(3, 3, 64, 64), torch.zeros(3, dtype=torch.long)
    greedy = greedy_decode(model, images, no_len, max_len_a=0.0, max_len_b=8)
    beam = beam_search(model, images, no_len, beam=1, max_len_a=0.0, max_len_b=8, stop="first_k")
    assert [g.tokens for g in greedy] == [b.tokens for b in beam] and greedy[0].attention is None


def test_small_cnn_gives_a_14x14_grid_trains_from_scratch_and_reloads_its_trunk(tmp_path):
    torch.manual_seed(0)
    encoder = ImageEncoder("small_cnn", weights=None, fine_tune=True)
    assert encoder(torch.randn(1, 3, 224, 224)).shape == (1, 196, 256)  # L = 196 as the paper's VGG grid
    assert not encoder.frozen and all(p.requires_grad for p in encoder.parameters())
    torch.save(encoder.trunk.state_dict(), tmp_path / "trunk.pt")
    reloaded = ImageEncoder("small_cnn", weights=str(tmp_path / "trunk.pt"), fine_tune=False)
    assert torch.equal(reloaded.trunk[0].weight, encoder.trunk[0].weight)
    with pytest.raises(ValueError, match="has no ImageNet weights.*model.encoder_weights=null"):
        ImageEncoder("small_cnn", weights="imagenet")
    with pytest.warns(UserWarning, match="frozen at random weights"):
        ImageEncoder("small_cnn", weights=None, fine_tune=False)


@pytest.mark.parametrize("attention", ["soft", "none"])
def test_skipping_the_steps_past_each_captions_end_changes_nothing_at_its_real_steps(attention):
    """lengths= runs only the captions still running at each step (longest first)."""
    model = small_model(attention=attention).train()
    model.dropout.p = 0.0
    model.encoder.eval()  # BatchNorm statistics aside, both passes see the same encoder
    images, captions = torch.randn(4, 3, 64, 64), torch.randint(4, VOCAB, (4, 6))
    lengths = torch.tensor([3, 6, 1, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]  # (B, T) real steps
    full, packed = model(images, captions), model(images, captions, lengths=lengths)
    assert torch.allclose(full["logits"][mask], packed["logits"][mask], atol=1e-5)
    assert torch.allclose(full["alphas"][mask], packed["alphas"][mask], atol=1e-6)
    assert packed["logits"][~mask].abs().sum() == 0  # nothing computed past the end
    grads = []
    for out in (full, packed):
        model.zero_grad()
        (out["logits"][mask].log_softmax(-1)[:, 5].sum()).backward(retain_graph=True)
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(*grads))


def test_hard_attention_with_lengths_keeps_each_captions_expected_flag_in_batch_order():
    model = small_model(attention="hard", expected_context_prob=0.5).train()
    images, captions = torch.randn(6, 3, 64, 64), torch.randint(4, VOCAB, (6, 5))
    torch.manual_seed(1)
    out = model(images, captions, lengths=torch.tensor([2, 5, 1, 5, 3, 4]))
    torch.manual_seed(1)
    expected = torch.rand(6) < 0.5  # the draw forward makes first
    assert torch.equal(out["expected"], expected)
    assert out["log_p_locations"][2, 1:].abs().sum() == 0 and out["log_p_locations"][1].ne(0).all()


def test_hard_attention_with_lengths_and_only_expected_context_computes_the_soft_model():
    """Each caption keeps its expected-context flag after shorter ones drop out of the batch."""
    soft, hard = small_model(), small_model(attention="hard", expected_context_prob=1.0)
    hard.load_state_dict(soft.state_dict())
    for model in (soft, hard):
        model.train(), model.encoder.eval()
        model.dropout.p = 0.0
    images, captions, lengths = torch.randn(4, 3, 64, 64), torch.randint(4, VOCAB, (4, 6)), torch.tensor([2, 6, 1, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]  # (B, T) real steps
    a, b = soft(images, captions, lengths=lengths), hard(images, captions, lengths=lengths)
    assert b["expected"].all() and torch.allclose(a["logits"][mask], b["logits"][mask], atol=1e-5)


def test_hard_attention_entropies_are_those_of_each_steps_attention_weights():
    """H(α_t) = -Σ_i α_ti log α_ti, the entropy bonus of Sec. 4.1, one per caption and step; 0 past a caption's end."""
    model = small_model(attention="hard").train()
    images, captions, lengths = torch.randn(4, 3, 64, 64), torch.randint(4, VOCAB, (4, 6)), torch.tensor([2, 6, 1, 4])
    out = model(images, captions, lengths=lengths)
    alphas = out["alphas"]  # (B, T, L)
    mask = torch.arange(6)[None, :] < lengths[:, None]
    entropy = -(alphas * alphas.log()).sum(-1)  # (B, T)
    assert out["entropies"].shape == (4, 6)
    assert torch.allclose(out["entropies"][mask], entropy[mask], atol=1e-5) and (entropy[mask] > 0).all()
    assert out["entropies"][~mask].abs().sum() == 0
