"""SE / CBAM / non-local ResNets through the config groups and the real entrypoint."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from attention_zoo.attention.cbam import CBAM
from attention_zoo.attention.non_local import NonLocalBlock
from attention_zoo.attention.squeeze_excitation import SqueezeExcitation
from attention_zoo.build import build_model
from attention_zoo.models.resnet import CifarResNet, ResNetConfig
from attention_zoo.tasks.classification import ClassificationTask, first_of_each_class
from attention_zoo.viz.image_attention import cbam_spatial_maps, grad_cam, non_local_maps
from attention_zoo.wandb_records import logged_history
from conftest import REPO, SMOKE, run_dirs, run_train

BLOCKS = sorted(p.stem for p in (REPO / "configs" / "block").glob("*.yaml"))


class _NoData:
    pass


@pytest.mark.parametrize("block", BLOCKS)
def test_every_block_option_composes_builds_and_runs(compose_cfg, block):
    cfg = compose_cfg(["experiment=cifar_attention_cpu", f"block={block}"])
    model = build_model(OmegaConf.to_container(cfg.model, resolve=True), _NoData())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    kinds = {type(m) for m in model.modules()}
    assert (CBAM in kinds) == block.startswith("cbam")
    assert (SqueezeExcitation in kinds) == (block == "se")
    assert (NonLocalBlock in kinds) == block.startswith("nonlocal")
    n_blocks = sum(isinstance(m, NonLocalBlock) for m in model.modules())
    assert n_blocks == {"nonlocal_2blocks": 2, "nonlocal_6blocks": 6}.get(block, int(block.startswith("nonlocal")))


@pytest.mark.parametrize("block", ["cbam", "nonlocal_embedded"])
def test_the_data_switch_gives_both_grids_a_cifar100_head(compose_cfg, block):
    cfg = compose_cfg(["experiment=cifar_attention_cpu", f"block={block}", "data=cifar100"])
    assert cfg.data.name == "cifar100" and cfg.model.num_classes == 100
    model = build_model(OmegaConf.to_container(cfg.model, resolve=True), _NoData())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_block_options_are_refused_for_other_models(compose_cfg):
    cfg = compose_cfg(["experiment=transformer_cpu", "block=cbam"])
    with pytest.raises(ValueError, match="apply to model=cifar_resnet|c2d, not transformer"):
        build_model(OmegaConf.to_container(cfg.model, resolve=True), _NoData())


@pytest.mark.parametrize(
    "block",
    [
        {"block_attention": "cbam", "block_attention_options": {"reduction": 4}},
        {"non_local_stages": (2, 3), "non_local_options": {"instantiation": "concatenation"}},
    ],
)
def test_attention_resnet_overfits_one_batch(block):
    torch.manual_seed(0)
    model = CifarResNet(ResNetConfig(depth=14, widths=(8, 16, 32), **block))
    images, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    assert (model.eval()(images).argmax(1) == labels).all()


def test_figure_maps_have_the_feature_map_shapes_and_non_local_rows_are_weights():
    torch.manual_seed(0)
    model = CifarResNet(
        ResNetConfig(depth=14, block_attention="cbam", block_attention_options={"reduction": 4}, non_local_stages=(2,))
    ).eval()
    images = torch.randn(3, 3, 32, 32)
    maps = cbam_spatial_maps(model, images)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "M_s stage 1": (3, 32, 32),
        "M_s stage 2": (3, 16, 16),
        "M_s stage 3": (3, 8, 8),
    }
    cam = grad_cam(model, images, model.stages[-1], torch.tensor([0, 1, 2]))
    assert cam.shape == (3, 32, 32) and (cam >= 0).all()
    queries = non_local_maps(model, images, [(0.5, 0.5), (0.0, 0.0)])
    assert list(queries) == ["query (0.5, 0.5)", "query (0, 0)"]
    for weights in queries.values():
        assert weights.shape == (3, 16, 16)
        assert torch.allclose(weights.sum(dim=(1, 2)), torch.ones(3), atol=1e-5)
    assert non_local_maps(CifarResNet(ResNetConfig(depth=8)), images, [(0.5, 0.5)]) == {}


def test_generalized_attention_figures_draw_the_weights_over_its_key_grid():
    torch.manual_seed(0)
    options = {"attention_type": "0101", "heads": 4, "kv_stride": 2}
    model = CifarResNet(
        ResNetConfig(depth=14, non_local_stages=(2,), non_local_kind="generalized", non_local_options=options)
    ).eval()
    (weights,) = non_local_maps(model, torch.randn(2, 3, 32, 32), [(0.5, 0.5)]).values()
    assert weights.shape == (2, 8, 8)  # 16x16 map, keys every 2nd row and column
    assert torch.allclose(weights.sum(dim=(1, 2)), torch.ones(2), atol=1e-5)


def test_per_class_figure_images_take_the_first_test_image_of_each_class():
    labels = torch.tensor([3, 3, 0, 1, 0, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    assert first_of_each_class(labels) == [2, 3, 5, 0, 8, 9, 10, 11, 12, 13]  # classes 0-9, 10 and 11 left out
    assert first_of_each_class(torch.tensor([1, 1, 0]), limit=10) == [2, 0]


def test_an_unknown_figure_images_word_is_refused_with_the_valid_forms():
    with pytest.raises(ValueError, match="per_class"):
        ClassificationTask(figure_images="first_ten")


TINY = [*SMOKE[1:], "model.depth=14", "trainer.epochs=1"]


def test_cbam_and_non_local_runs_draw_their_maps_and_log_them(train_env):
    run_train(train_env, "experiment=cifar_attention_cpu", "block=cbam", *TINY)
    run_train(train_env, "experiment=cifar_attention_cpu", "block=nonlocal_embedded", *TINY)
    cbam_run, non_local_run = run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), "cifar_attention_cpu")
    assert (cbam_run / "figures" / "attention_maps_test.png").is_file()
    assert not (cbam_run / "figures" / "non_local_test.png").exists()
    assert (non_local_run / "figures" / "non_local_test.png").is_file()
    for run, keys in (
        (cbam_run, {"figures/attention_maps_test"}),
        (non_local_run, {"figures/attention_maps_test", "figures/non_local_test"}),
    ):
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["status"] == "completed"
        (wandb_run,) = (run / "wandb").glob("offline-run-*")
        assert keys <= {key for row in logged_history(wandb_run) for key in row}
    assert OmegaConf.load(cbam_run / "config.yaml").model.block_attention == "cbam"
    assert OmegaConf.load(non_local_run / "config.yaml").model.non_local_stages == [2]
