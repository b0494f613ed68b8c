"""The generated moving-shapes clips, the real-clip folder reader, C2D with spacetime non-local
blocks, and a clip classification run through the entrypoint."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from attention_zoo.attention.non_local import NonLocalBlock
from attention_zoo.data.videos import COLOURS, VideoConfig, VideoData, generate, moving_shapes_clip
from attention_zoo.models.c2d import C2D
from attention_zoo.models.resnet import CifarResNet, ResNetConfig
from conftest import entrypoint_env, run_dirs, run_train

VIDEO_SMOKE = [
    "experiment=nonlocal_video_cpu",
    "trainer=smoke",
    "data.clips={train: 40, val: 16, test: 16}",
    "data.batch_size=8",
    "data.eval_batch_size=16",
    "model.depth=14",
    "model.widths=[4,8,16]",
]


def coloured_frames(clip: np.ndarray) -> dict[int, set]:
    """{frame: colours of COLOURS present (as indices)}, by exact-ish pixel colour."""
    found = {}
    for t, frame in enumerate(clip.astype(int)):
        found[t] = {k for k, c in enumerate(COLOURS) if (np.abs(frame - np.array(c)).max(axis=-1) < 30).sum() >= 9}
    return found


def test_the_label_is_whether_the_early_and_late_events_share_a_colour():
    for i in range(40):
        clip, label = moving_shapes_clip(np.random.default_rng([0, 0, i]))
        colours = coloured_frames(clip)
        early, late = colours[0] | colours[1], colours[6] | colours[7]
        assert len(early) == 1 and len(late) == 1 and all(not colours[t] for t in range(2, 6))
        assert (early == late) == bool(label)


def test_the_events_are_in_opposite_quadrants():
    for i in range(20):
        clip, _ = moving_shapes_clip(np.random.default_rng([0, 0, i]))
        centres = []
        for t in (0, 7):
            mask = np.abs(clip[t].astype(int) - 20).max(axis=-1) > 0
            coloured = (clip[t].max(axis=-1).astype(int) - clip[t].min(axis=-1)) > 100  # saturated pixels only
            ys, xs = np.nonzero(mask & coloured)
            centres.append((ys.mean() >= 16, xs.mean() >= 16))
        assert centres[0][0] != centres[1][0] and centres[0][1] != centres[1][1]


def test_the_set_is_a_pure_function_of_its_seed_and_balanced():
    first, again = generate("train", 200, 8, 32, seed=0), generate("train", 200, 8, 32, seed=0)
    assert torch.equal(first.videos, again.videos) and torch.equal(first.labels, again.labels)
    assert first.videos.shape == (200, 3, 8, 32, 32) and first.videos.dtype == torch.uint8
    assert 0.4 < first.labels.float().mean() < 0.6
    assert not torch.equal(generate("val", 5, 8, 32, seed=0).videos, first.videos[:5])  # splits differ


def test_a_folder_of_real_clips_is_read_frames_in_order(tmp_path):
    for split in ("train", "val", "test"):
        for label, name in enumerate(["jump", "run"]):
            clip = tmp_path / "clips" / split / name / "c0"
            clip.mkdir(parents=True)
            for f in range(5):  # frame f has brightness 40 f + 90 label
                Image.fromarray(np.full((20, 20, 3), 40 * f + 90 * label, dtype=np.uint8)).save(clip / f"{f:03d}.png")
    cfg = VideoConfig(source="folder", root=str(tmp_path), cache_dir=str(tmp_path / "cache"), name="clips", frames=3, size=16)
    data = VideoData(cfg, seed=0)
    assert data.class_names == ("jump", "run") and data.train.videos.shape == (2, 3, 3, 16, 16)
    assert data.train.videos[0, 0, :, 0, 0].tolist() == [0, 80, 160]  # frames 0, 2, 4 of 5: evenly spaced
    with pytest.raises(ValueError, match="has 5 frames; data.frames=8"):
        VideoData(VideoConfig(source="folder", root=str(tmp_path), cache_dir="c", name="clips", frames=8, size=16), 0)
    with pytest.raises(FileNotFoundError, match="No clips in"):
        VideoData(VideoConfig(source="folder", root=str(tmp_path), cache_dir="c", name="nowhere"), 0)


def test_c2d_without_non_local_blocks_is_the_frame_network_averaged_over_time():
    torch.manual_seed(0)
    model = C2D(ResNetConfig(depth=8, widths=(4, 8, 16))).eval()
    clips = torch.randn(2, 3, 5, 16, 16)
    per_frame = torch.stack([model.frames.features(clips[:, :, t]) for t in range(5)], dim=1)  # (B, T, C)
    assert torch.allclose(model(clips), model.frames.head(per_frame.mean(dim=1)), atol=1e-5)
    # frame order does not matter without a non-local block; no layer sees two frames
    assert torch.allclose(model(clips.flip(2)), model(clips), atol=1e-5)


@pytest.mark.parametrize(
    "other", [{"non_local_kind": "generalized"}, {"block_attention": "se"}, {"deformable_stages": (3,)}], ids=str
)
def test_c2d_takes_no_attention_but_spacetime_non_local_blocks(other):
    with pytest.raises(ValueError, match="spacetime non-local blocks only"):
        C2D(ResNetConfig(depth=8, widths=(4, 8, 16), **other))


def test_a_spacetime_block_sees_the_whole_clip_and_starts_as_the_identity():
    torch.manual_seed(0)
    options = {"subsample": True}
    cfg = ResNetConfig(depth=8, widths=(4, 8, 16), non_local_stages=(2,), non_local_placement="all", non_local_options=options)
    model = C2D(cfg).eval()
    blocks = [m for m in model.modules() if isinstance(m, NonLocalBlock)]
    assert len(blocks) == 1 and blocks[0].dims == 3
    clips = torch.randn(2, 3, 4, 16, 16)
    torch.manual_seed(0)
    plain = C2D(ResNetConfig(depth=8, widths=(4, 8, 16))).eval()  # the same seed: the same frame network
    assert torch.allclose(model(clips), plain(clips), atol=1e-5)  # BN scale 0 after W_z: the identity at init
    with torch.no_grad():
        blocks[0].bn.weight.fill_(1.0)
    changed = clips.clone()
    changed[:, :, 0] += 3  # only the first frame changes ...
    captured = []
    blocks[0].register_forward_hook(lambda m, i, out: captured.append(out))
    model(clips), model(changed)
    assert not torch.allclose(captured[0][:, :, -1], captured[1][:, :, -1], atol=1e-4)  # ... and the last frame's output moves


def test_explicit_block_pairs_place_wang_et_al_s_five_blocks():
    cfg = ResNetConfig(
        depth=20, non_local_stages=(1, 2), non_local_after_blocks=((1, 0), (1, 2), (2, 0), (2, 1), (2, 2)), non_local_options={}
    )
    model = CifarResNet(cfg)
    layout = [[type(m).__name__[0] for m in stage] for stage in model.stages]
    assert layout[:2] == [["B", "N", "B", "B", "N"], ["B", "N", "B", "N", "B", "N"]]
    with pytest.raises(ValueError, match="stage 2 has blocks 0..2"):
        CifarResNet(ResNetConfig(depth=20, non_local_stages=(2,), non_local_after_blocks=((2, 3),)))


@pytest.mark.parametrize("variant", [pytest.param("none", marks=pytest.mark.slow), "nl1"])  # none: `make test-slow`
def test_a_clip_classification_run_records_its_accuracy_and_attention_over_time(tmp_path, variant):
    env = entrypoint_env(tmp_path / "data", tmp_path)
    run_train(env, *VIDEO_SMOKE, f"video_nonlocal={variant}")
    (run,) = run_dirs(tmp_path / "runs", "nonlocal_video_cpu")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and 0 <= metrics["test"]["acc"] <= 1
    assert (run / "figures" / "spacetime_attention_test.png").is_file() == (variant == "nl1")
