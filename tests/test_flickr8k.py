import json

import pytest
import torch

from attention_zoo.data.captions import CaptionConfig, CaptionData
from attention_zoo.data.flickr8k import Flickr8kNotFoundError, load_flickr8k
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
