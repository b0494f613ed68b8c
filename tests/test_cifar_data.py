import pytest
import torch

from attention_zoo.data.cifar import CifarConfig, CifarData, DatasetNotFoundError, load_cifar
from conftest import write_cifar_archive, write_image_folder


def _cfg(root, cache, **kw):
    return CifarConfig(name="cifar10", root=str(root), cache_dir=str(cache), download=False, **kw)


def test_archive_is_unpacked_once_and_decoded_tensors_are_cached(tmp_path):
    root = write_cifar_archive(tmp_path / "data", {"train": 3, "test": 2}, work=tmp_path / "src")
    cache = tmp_path / "cache"
    train, test = load_cifar(_cfg(root, cache))
    assert train.images.shape == (30, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.labels.tolist() == sorted(list(range(10)) * 2)  # ImageFolder: classes in sorted order
    assert (cache / "cifar10-jpeg" / "train" / "airplane").is_dir()
    decoded = cache / "cifar10-jpeg-decoded.pt"
    assert decoded.is_file()
    stamp = decoded.stat().st_mtime_ns
    again, _ = load_cifar(_cfg(root, cache))
    assert decoded.stat().st_mtime_ns == stamp and torch.equal(again.images, train.images)


def test_split_normalization_and_deterministic_batches(tiny_data_root, tmp_path):
    data = CifarData(_cfg(tiny_data_root, tmp_path, val_size=20, batch_size=16), seed=5)
    assert len(data.train.labels) == 100 and len(data.val.labels) == 20 and data.num_train_batches == 7
    x = torch.cat([b for b, _ in data.train_batches(0)])
    assert x.shape == (100, 3, 32, 32)
    unaugmented = data.normalize(data.train.images)
    assert unaugmented.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (unaugmented.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    third = list(data.train_batches(0))[3]
    resumed = next(data.train_batches(0, start=3))
    assert torch.equal(third[0], resumed[0]) and torch.equal(third[1], resumed[1])
    assert not torch.equal(next(data.train_batches(1))[0], next(data.train_batches(0))[0])
    other = CifarData(_cfg(tiny_data_root, tmp_path, val_size=20, batch_size=16), seed=6)
    assert torch.equal(other.val.images, data.val.images)  # one validation set for every seed


def test_missing_data_error_names_every_place_searched(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_cifar(_cfg(tmp_path, tmp_path / "cache"))
    message = str(err.value)
    for expected in ("cifar-10-batches-py", "cifar10-jpeg.tar.gz", "data.download=false", "scripts/download_data.py cifar10"):
        assert expected in message


def test_bad_options_name_valid_ones(tmp_path, tiny_data_root):
    with pytest.raises(ValueError, match="valid: cifar10, cifar100"):
        load_cifar(CifarConfig(name="cifar11", root=str(tmp_path), cache_dir=str(tmp_path)))
    with pytest.raises(ValueError, match=r"val_size=500 must be in \[0, 120\)"):
        CifarData(_cfg(tiny_data_root, tmp_path, val_size=500), seed=0)


def test_corrupt_pickles_fall_back_to_the_jpeg_copy_and_a_truncated_jpeg_is_named(tmp_path, caplog):
    source = write_image_folder(tmp_path / "data" / "cifar10-jpeg", {"train": 2, "test": 1})
    pickles = tmp_path / "data" / "cifar-10-batches-py"
    pickles.mkdir()
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        (pickles / name).write_bytes(b"not a pickle")
    train, _ = load_cifar(_cfg(tmp_path / "data", tmp_path / "cache"))
    assert train.images.shape == (20, 3, 32, 32)
    assert f"pickles in {pickles} fail torchvision's md5 check" in caplog.text
    with pytest.raises(DatasetNotFoundError, match="fail torchvision's md5 check"):
        load_cifar(_cfg(tmp_path / "data", tmp_path / "cache2", source="pickle"))
    broken = source / "train" / "cat" / "0001.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(DatasetNotFoundError, match=f"Cannot read {broken}"):
        load_cifar(_cfg(tmp_path / "data", tmp_path / "cache3", source="jpeg"))
