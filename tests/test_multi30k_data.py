"""Multi30k reading: strict checks with named errors, encoders, batching, the encoded cache."""

import gzip
import hashlib
from pathlib import Path

import pytest
import torch

from attention_zoo.data import multi30k
from attention_zoo.data.text import BOS, EOS, PAD, SubwordEncoder, WordEncoder, padding_share, shuffled, token_budget_batches
from attention_zoo.data.translation import TranslationConfig, TranslationData
from multi30k_corpus import DE, EN, TEST_DE, TEST_EN, VAL_DE, VAL_EN, VAL_ONLY, write_corpus


def test_pairs_are_read_aligned(tmp_path):
    write_corpus(tmp_path)
    for split, (de, en) in {"val": (VAL_DE, VAL_EN), "test2016": (TEST_DE, TEST_EN)}.items():
        src, tgt = multi30k.load_pairs(tmp_path, split, "de", "en", download=False)
        assert src == de and tgt == en


@pytest.mark.parametrize("tokenizer", ["moses", "bpe"])
def test_vocabulary_is_fitted_on_the_training_split_only(tmp_path, tokenizer):
    write_corpus(tmp_path)
    cfg = TranslationConfig(
        root=str(tmp_path),
        cache_dir=str(tmp_path / "cache"),
        download=False,
        min_freq=1,
        tokenizer=tokenizer,
        vocab_size=60,
        joint_vocab=True,
    )
    data = TranslationData(cfg, seed=0)
    horse = data.ids["val"]["tgt"][1]  # "A horse jumps.": words of the val split only
    if tokenizer == "moses":
        assert "horse" not in data.tgt_encoder.itos and "Pferd" not in data.src_encoder.itos
        assert horse.count(1) == 2  # <unk> for horse and jumps
    else:  # a subword model fitted on train spells the unseen words in pieces, never as one token
        assert len(horse) > len(data.tgt_encoder.token_strings(data.ids["train"]["tgt"][4]))
        assert "▁horse" not in data.tgt_encoder._tok.get_vocab()
    assert data.references["val"][1] == VAL_ONLY[1] and data.references["test2016"] == TEST_EN


def test_missing_folder_names_path_and_download_command(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        multi30k.load_pairs(tmp_path, "train", "de", "en", download=False)
    assert str(tmp_path / "multi30k" / "train.de.gz") in str(err.value)
    assert "scripts/download_data.py multi30k" in str(err.value)


def test_mismatched_line_counts_name_both_files(tmp_path):
    folder = write_corpus(tmp_path)
    with gzip.open(folder / "val.en.gz", "wt") as fh:
        fh.write("\n".join(EN[:2]) + "\n")
    with pytest.raises(multi30k.Multi30kError, match=r"val\.de\.gz has 3 lines, .*val\.en\.gz has 2"):
        multi30k.load_pairs(tmp_path, "val", "de", "en", download=False)


def test_truncated_and_empty_gzip_and_bad_bytes(tmp_path):
    folder = write_corpus(tmp_path)
    data = (folder / "val.de.gz").read_bytes()
    (folder / "val.de.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(multi30k.Multi30kError, match="val.de.gz is not a complete gzip file"):
        multi30k.load_pairs(tmp_path, "val", "de", "en", download=False)
    with gzip.open(folder / "val.de.gz", "wb") as fh:
        fh.write(b"")
    with pytest.raises(multi30k.Multi30kError, match="val.de.gz is empty"):
        multi30k.load_pairs(tmp_path, "val", "de", "en", download=False)
    with gzip.open(folder / "val.de.gz", "wb") as fh:
        fh.write(b"Zeile eins\nZeile zwei\n" + b"Zeile \xff drei\n")
    with pytest.raises(multi30k.Multi30kError, match="val.de.gz, line 3: bytes that are not UTF-8"):
        multi30k.load_pairs(tmp_path, "val", "de", "en", download=False)


def test_unknown_language_and_split_list_valid_ones():
    with pytest.raises(multi30k.Multi30kError, match="valid: de, en, fr, cs"):
        multi30k.file_name("train", "es")
    with pytest.raises(
        multi30k.Multi30kError, match=r"valid: train, val, test2016 \(test_2016_flickr\), test2017 \(test_2017_flickr\)"
    ):
        multi30k.file_name("test2019", "de")


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("test2017", "test_2017_flickr.de.gz"),
        ("test_2017_flickr", "test_2017_flickr.de.gz"),
        ("test2017_mscoco", "test_2017_mscoco.de.gz"),
        ("test_2018_flickr", "test_2018_flickr.de.gz"),
    ],
)
def test_every_official_test_set_is_named_by_key_or_file_name(name, file):
    assert multi30k.file_name(name, "de") == file


def test_another_test_set_is_the_one_a_run_tests_on(tmp_path):
    folder = write_corpus(tmp_path)
    pairs = (["Ein Vogel singt.", "Ein Boot fährt."], ["A bird sings.", "A boat sails."])
    for lang, lines in zip(("de", "en"), pairs):
        with gzip.open(folder / f"test_2017_mscoco.{lang}.gz", "wt", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    cfg = dict(root=str(tmp_path), cache_dir=str(tmp_path / "cache"), download=False, min_freq=1)
    data = TranslationData(TranslationConfig(**cfg, test_set="test_2017_mscoco"), seed=0)
    assert data.test_split == "test2017_mscoco" and data.references["test2017_mscoco"] == pairs[1]
    (batch,) = data.test_batches()
    assert batch["index"].tolist() == [0, 1] and "test2016" not in data.references  # only the chosen set is read
    fetch = r"download_data\.py multi30k --root \S+ --test-sets test2018 --langs de`"
    with pytest.raises(FileNotFoundError, match=r"test_2018_flickr\.de\.gz not found .*" + fetch):
        TranslationData(TranslationConfig(**cfg, test_set="test2018"), seed=0)
    with pytest.raises(ValueError, match="data.test_set"):
        TranslationData(TranslationConfig(**cfg, test_set="val"), seed=0)


def test_a_test_set_without_a_pinned_sum_is_kept_with_its_sum_written_beside_it(tmp_path, monkeypatch):
    content = gzip.compress(b"A bird sings.\n")

    def fake_download(url, path):
        assert url.endswith("/test_2018_flickr.en.gz")
        Path(path).write_bytes(content)

    monkeypatch.setattr(multi30k.urllib.request, "urlretrieve", fake_download)
    path = multi30k.ensure_file(tmp_path / "multi30k", "test_2018_flickr.en.gz", download=True)
    assert path.read_bytes() == content
    digest = hashlib.sha256(content).hexdigest()
    assert (tmp_path / "multi30k" / "test_2018_flickr.en.gz.sha256").read_text() == f"{digest}  test_2018_flickr.en.gz\n"


def test_word_encoder_vocabulary_min_freq_and_round_trip():
    enc = WordEncoder.train("en", EN * 2 + ["A rare zebra."], lowercase=True, min_freq=2)
    assert enc.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert "zebra" not in enc.stoi and "dog" in enc.stoi
    ids = enc.encode("A dog reads a zebra.")
    assert ids[4] == 1  # <unk>
    assert enc.decode([BOS, *enc.encode(EN[0]), EOS, PAD]) == EN[0].lower()


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_subword_encoder_round_trips_exactly(kind):
    enc = SubwordEncoder.train(kind, DE * 5 + EN * 5, vocab_size=120, lowercase=False)
    for text in DE + EN:
        assert enc.decode(enc.encode(text)) == text


def test_token_budget_batches_respect_the_budget_and_cover_every_pair():
    src = [3, 9, 4, 12, 5, 7, 2, 8]
    tgt = [4, 8, 3, 10, 6, 7, 3, 9]
    batches = token_budget_batches(src, tgt, max_tokens=20)
    assert sorted(i for b in batches for i in b) == list(range(8))
    for b in batches:
        assert len(b) * max(max(src[i], tgt[i]) for i in b) <= 20
    assert shuffled(batches, 0, 1) == shuffled(batches, 0, 1) and sorted(shuffled(batches, 0, 1)) == sorted(batches)
    assert 0 <= padding_share(batches, src, tgt) < padding_share([list(range(8))], src, tgt)


def test_encoded_cache_is_reused_and_rebuilt_when_the_config_changes(tmp_path):
    write_corpus(tmp_path)
    cfg = dict(root=str(tmp_path), cache_dir=str(tmp_path / "cache"), download=False, min_freq=1, max_tokens=64)
    data = TranslationData(TranslationConfig(**cfg), seed=0)
    assert len(list((tmp_path / "cache").glob("multi30k-*.pt"))) == 1
    batch = next(data.train_batches(0))
    assert batch["tgt"][:, 0].eq(BOS).all() and batch["src"].shape[0] == batch["tgt"].shape[0]
    again = TranslationData(TranslationConfig(**cfg), seed=0)
    assert again.src_encoder.itos == data.src_encoder.itos
    assert len(list((tmp_path / "cache").glob("multi30k-*.pt"))) == 1
    TranslationData(TranslationConfig(**cfg, lowercase=True), seed=0)
    assert len(list((tmp_path / "cache").glob("multi30k-*.pt"))) == 2
    rows = torch.cat([b["index"] for b in data.test_batches()]).sort().values
    assert rows.tolist() == list(range(4))


def hub_copy(tmp_path):
    """A DatasetDict in bentrevett/multi30k's layout, built from the test corpus (no network)."""
    import datasets

    splits = {}
    for split, name in multi30k.HUB_SPLITS.items():
        de, en = multi30k.load_pairs(tmp_path, split, "de", "en", download=False)
        splits[name] = datasets.Dataset.from_dict({"en": [f"{s} " for s in en], "de": de})  # a trailing space, stripped
    return datasets.DatasetDict(splits)


def test_the_hub_copy_and_the_raw_files_give_the_same_pairs(tmp_path, monkeypatch):
    write_corpus(tmp_path)
    dataset = hub_copy(tmp_path)
    for split in multi30k.HUB_SPLITS:
        assert multi30k.load_hub_pairs(split, "de", "en", dataset) == multi30k.load_pairs(tmp_path, split, "de", "en", False)
    monkeypatch.setattr("datasets.load_dataset", lambda name: dataset if name == multi30k.HUB_DATASET else None)
    cfg = dict(root=str(tmp_path), cache_dir=str(tmp_path / "cache"), download=False, min_freq=1)
    from_files = TranslationData(TranslationConfig(**cfg), seed=0)
    from_hub = TranslationData(TranslationConfig(**cfg, source="hub"), seed=0)
    assert from_hub.ids == from_files.ids and from_hub.references == from_files.references
    with pytest.raises(multi30k.Multi30kError, match="de-en train, val and test2016 only .* use data.source=files"):
        multi30k.load_hub_pairs("test2017", "de", "en", dataset)
    with pytest.raises(multi30k.Multi30kError, match="asked: fr-en"):
        multi30k.load_hub_pairs("train", "fr", "en", dataset)
