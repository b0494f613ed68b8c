"""experiment=show_attend_tell_cpu through the entrypoint, on a tiny Flickr8k packed as
../shared/data ships it (its own file, so that the test workers share the captioning runs)."""

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from captioning_fixtures import TINY_CAPTIONER, write_flickr8k
from conftest import run_dirs, run_train

TINY = [*TINY_CAPTIONER, "task.figure_images=[0,1]", "trainer.epochs=1"]


def _packed_flickr8k(root: Path) -> None:
    folder = write_flickr8k(root, "original", n_per_split=4)
    with tarfile.open(folder / "Flicker8k_Dataset.tar", "w") as tar:
        tar.add(folder / "Flicker8k_Dataset", arcname="Flicker8k_Dataset")
    shutil.rmtree(folder / "Flicker8k_Dataset")
    digest = hashlib.sha256((folder / "Flicker8k_Dataset.tar").read_bytes()).hexdigest()
    (folder / "SHA256SUMS").write_text(f"{digest}  Flicker8k_Dataset.tar\n")


@pytest.mark.parametrize("captioner", ["soft", pytest.param("none", marks=pytest.mark.slow)])
def test_the_cpu_preset_trains_its_encoder_from_the_image_tar(train_env, tmp_path, captioner):
    """Soft attention draws its per-word maps and failure cases on the photographs; the
    no-attention baseline runs the same and draws none."""
    train_env = dict(train_env, ATTN_ZOO_DATA=str(tmp_path / "flickr_root"))
    _packed_flickr8k(tmp_path / "flickr_root")
    run_train(train_env, "experiment=show_attend_tell_cpu", f"captioner={captioner}", *TINY)
    (run,) = run_dirs(Path(train_env["ATTN_ZOO_RUNS"]), "show_attend_tell_cpu")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and {"bleu1", "bleu4", "meteor", "rouge_l", "cider"} <= set(metrics["test"])
    assert "spice" not in metrics["test"]
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["attention"] == captioner
    drawn = list((run / "figures").glob("*_test_*.png"))
    if captioner == "soft":
        assert (run / "figures" / "attention_test_1.png").is_file() and list((run / "figures").glob("failure_test_*.png"))
    else:
        assert not drawn
    assert len(list(Path(train_env["ATTN_ZOO_CACHE"]).glob("flickr8k-images-*/Flicker8k_Dataset"))) == 1  # unpacked once
