import json

import pytest
import torch

from attention_zoo.data.captions import CaptionConfig, CaptionData
from attention_zoo.data.flickr8k import Flickr8kNotFoundError, as_hf_dataset, load_flickr8k
from captioning_fixtures import fixture_images, write_flickr8k


@pytest.mark.parametrize("fmt", ["karpathy", "original"])
def test_both_public_formats_parse_to_the_same_splits(tmp_path, fmt):
    write_flickr8k(tmp_path, fmt)
    splits = load_flickr8k(tmp_path, "auto")
    expected = fixture_images()
    for split in ("train", "val", "test"):
        assert [(i.path.name, i.captions) for i in splits[split]] == expected[split]
        assert all(i.path.is_file() and len(i.captions) == 5 for i in splits[split])


def test_karpathy_restval_counts_as_training_and_the_format_can_be_forced(tmp_path):
    folder = write_flickr8k(tmp_path, "karpathy")
    data = json.loads((folder / "dataset_flickr8k.json").read_text())
    data["images"][0]["split"] = "restval"
    (folder / "dataset_flickr8k.json").write_text(json.dumps(data))
    assert len(load_flickr8k(tmp_path, "karpathy")["train"]) == 3
    with pytest.raises(Flickr8kNotFoundError, match="Flickr8k.token.txt"):
        load_flickr8k(tmp_path, "original")
    with pytest.raises(ValueError, match="valid: auto, karpathy, original"):
        load_flickr8k(tmp_path, "coco")


def test_missing_data_names_the_folder_and_where_to_get_it(tmp_path):
    with pytest.raises(Flickr8kNotFoundError) as err:
        load_flickr8k(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "flickr8k") in message and "dataset_flickr8k.json" in message
    assert "caption_datasets.zip" in message and "Flicker8k_Dataset" in message
    folder = write_flickr8k(tmp_path, "original")
    next((folder / "Flicker8k_Dataset").glob("*test*.jpg")).unlink()
    with pytest.raises(Flickr8kNotFoundError, match="1 Flickr8k test images are missing"):
        load_flickr8k(tmp_path)


def test_malformed_token_file_names_the_line(tmp_path):
    folder = write_flickr8k(tmp_path, "original")
    with open(folder / "Flickr8k.token.txt", "a") as fh:
        fh.write("no tab on this line\n")
    with pytest.raises(ValueError, match="Flickr8k.token.txt:46"):
        load_flickr8k(tmp_path)


def test_caption_data_builds_vocab_from_train_and_same_length_batches(tmp_path):
    write_flickr8k(tmp_path, "original", n_per_split=4)
    cfg = CaptionConfig(root=str(tmp_path), cache_dir=str(tmp_path / "cache"), name="flickr8k", image_size=32, batch_size=3)
    data = CaptionData(cfg, seed=0)
    train_words = {w for caps in data.references["train"] for c in caps for w in data.encoder.tokenize(c)}
    assert set(data.encoder.itos[4:]) == train_words  # vocabulary from the training captions only, lowercased
    batches = list(data.train_batches(epoch=0))
    assert len(batches) == data.num_train_batches and sum(len(b["index"]) for b in batches) == 20  # 4 images x 5 captions
    for batch in batches:
        assert batch["src"].shape[1:] == (3, 32, 32)
        assert not (batch["captions"] == 0).any()  # one caption length per batch: no padding
    assert [b["index"].tolist() for b in data.train_batches(epoch=0)] == [b["index"].tolist() for b in batches]
    assert [b["index"].tolist() for b in data.train_batches(epoch=1)] != [b["index"].tolist() for b in batches]
    val = list(data.val_batches())
    assert torch.cat([b["index"] for b in val]).tolist() == [0, 1, 2, 3] and len(data.references["val"][0]) == 5


def _pack_images(folder, archive_name="Flicker8k_Dataset.tar", checksum=True):
    """Move the fixture's image folder into a tar beside the captions, as ../shared/data ships it."""
    import hashlib
    import shutil
    import tarfile

    with tarfile.open(folder / archive_name, "w") as tar:
        tar.add(folder / "Flicker8k_Dataset", arcname="Flicker8k_Dataset")
    shutil.rmtree(folder / "Flicker8k_Dataset")
    if checksum:
        digest = hashlib.sha256((folder / archive_name).read_bytes()).hexdigest()
        (folder / "SHA256SUMS").write_text(f"{'0' * 64}  Flickr8k.token.txt\n{digest}  {archive_name}\n")
    return folder / archive_name


def test_the_image_tar_is_checked_and_unpacked_once_into_the_cache(tmp_path, caplog):
    folder = write_flickr8k(tmp_path, "original")
    _pack_images(folder)
    cache = tmp_path / "cache"
    first = load_flickr8k(tmp_path, cache_dir=cache)
    assert all(i.path.is_file() and i.path.is_relative_to(cache) for s in first.values() for i in s)
    assert [(i.path.name, i.captions) for i in first["test"]] == fixture_images()["test"]
    unpacked = first["train"][0].path
    marker = unpacked.stat().st_mtime_ns
    caplog.set_level("INFO")
    second = load_flickr8k(tmp_path, cache_dir=cache)
    assert second["train"][0].path == unpacked and unpacked.stat().st_mtime_ns == marker  # not unpacked again
    assert "Unpacking" not in caplog.text
    assert not (folder / "Flicker8k_Dataset").exists()  # the data folder is only read


def test_a_corrupt_image_tar_is_refused_by_its_checksum_and_nothing_is_unpacked(tmp_path):
    folder = write_flickr8k(tmp_path, "original")
    archive = _pack_images(folder)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(Flickr8kNotFoundError, match="is corrupt: its sha256 is") as err:
        load_flickr8k(tmp_path, cache_dir=tmp_path / "cache")
    assert str(archive) in str(err.value) and "SHA256SUMS" in str(err.value)
    assert not any((tmp_path / "cache").glob("flickr8k-images-*/*"))


def test_an_unreadable_image_stops_training_data_with_its_path(tmp_path):
    folder = write_flickr8k(tmp_path, "original", n_per_split=2)
    broken = next((folder / "Flicker8k_Dataset").glob("*train0.jpg"))
    broken.write_bytes(broken.read_bytes()[:40])  # truncated JPEG
    cfg = CaptionConfig(root=str(tmp_path), cache_dir=str(tmp_path / "cache"), image_size=32, batch_size=4)
    data = CaptionData(cfg, seed=0)
    with pytest.raises(Flickr8kNotFoundError, match="Cannot read the image") as err:
        list(data.train_batches(epoch=0))
    assert str(broken) in str(err.value) and "replace it from the original archive" in str(err.value)


def test_images_already_at_the_encoder_size_are_not_resized(tmp_path):
    """The 224x224 copy goes straight to the encoder; other sizes are resized and centre-cropped."""
    import numpy as np
    from PIL import Image

    folder = write_flickr8k(tmp_path, "original", n_per_split=1)
    path = next((folder / "Flicker8k_Dataset").glob("*test0.jpg"))
    pixels = np.random.default_rng(1).integers(0, 255, size=(32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")  # lossless, whatever the suffix says
    data = CaptionData(CaptionConfig(root=str(tmp_path), cache_dir=str(tmp_path / "cache"), image_size=32), seed=0)
    assert torch.equal(data.pixels("test", [0])[0], torch.from_numpy(pixels).permute(2, 0, 1))
    assert data.pixels("train", [0]).shape == (1, 3, 32, 32)  # a 40x56 fixture image, resized and cropped


def test_grouping_by_image_encodes_each_image_once_with_all_its_captions(tmp_path):
    write_flickr8k(tmp_path, "original", n_per_split=5)
    cfg = CaptionConfig(root=str(tmp_path), cache_dir=str(tmp_path / "cache"), image_size=32, batch_size=10, group_by="image")
    data = CaptionData(cfg, seed=0)
    batches = list(data.train_batches(epoch=0))
    assert len(batches) == data.num_train_batches == 3  # 5 images, 2 per batch
    seen = []
    for batch in batches:
        assert len(batch["src"]) == len(set(batch["index"].tolist())) <= 2  # each image once
        for row, image in zip(batch["caption_image"].tolist(), batch["index"].tolist()):
            assert torch.equal(batch["src"][row], data.batch("train", [image])["src"][0])
        seen += batch["index"].tolist()
    assert sorted(seen) == sorted(i for i in range(5) for _ in range(5))  # every caption of every image, once
    assert [b["index"].tolist() for b in data.train_batches(epoch=0, start=1)] == [b["index"].tolist() for b in batches[1:]]
    assert [b["index"].tolist() for b in data.train_batches(epoch=1)] != [b["index"].tolist() for b in batches]
    with pytest.raises(ValueError, match="valid: length, image"):
        CaptionData(CaptionConfig(root=str(tmp_path), cache_dir=str(tmp_path / "cache"), group_by="caption"), seed=0)


def test_the_splits_as_a_hugging_face_dataset_hold_every_image_and_its_captions(tmp_path):
    write_flickr8k(tmp_path, "original", n_per_split=3)
    splits = load_flickr8k(tmp_path)
    dataset = as_hf_dataset(splits)
    assert set(dataset) == {"train", "val", "test"}
    for split, items in splits.items():
        assert dataset[split]["captions"] == [i.captions for i in items]
        first = dataset[split][0]["image"]  # decoded by datasets.Image from the file
        assert first.size == (56, 40) and first.filename == str(items[0].path)
