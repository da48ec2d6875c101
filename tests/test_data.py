"""Image data loaders, tested on small files written here in the real on-disk formats."""

from __future__ import annotations

import hashlib
import pickle
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sk_load_digits

from sngan_edu.data import images as data
from sngan_edu.data.images import DatasetCorruptError, DatasetNotFoundError, load_image_data


# ---- embedded digits -------------------------------------------------------------------------
def test_digits_all_matches_sklearn_and_is_scaled():
    d = load_image_data("digits", image_size=8, split="all")
    ref = sk_load_digits()
    assert d.images.shape == (1797, 1, 8, 8) and d.images.dtype == torch.float32
    expected = torch.from_numpy(ref.images / 16.0 * 2 - 1).float().unsqueeze(1)
    torch.testing.assert_close(d.images, expected)
    assert torch.equal(d.labels, torch.from_numpy(ref.target).long())


def test_digits_resized_range_and_split_disjoint():
    train = load_image_data("digits", image_size=16, split="train")
    test = load_image_data("digits", image_size=16, split="test")
    assert train.images.shape[1:] == (1, 16, 16)
    assert len(train) + len(test) == 1797 and 340 < len(test) < 380
    assert train.images.min() >= -1 and train.images.max() <= 1
    assert train.images.max() > 0.9 and train.images.min() < -0.99
    # stratified: every class in both splits, in about the same proportion
    assert torch.bincount(test.labels, minlength=10).min() >= 30
    tr_idx, te_idx = data.digits_split_indices(1797, sk_load_digits().target)
    assert not set(tr_idx) & set(te_idx)


def test_sample_uses_generator_and_channels_option():
    d = load_image_data("digits", image_size=16, channels=3)
    assert d.channels == 3 and d.image_size == 16
    a = d.sample(32, torch.Generator().manual_seed(1))
    b = d.sample(32, torch.Generator().manual_seed(1))
    assert a.shape == (32, 3, 16, 16) and torch.equal(a, b)
    assert torch.equal(a[:, 0], a[:, 2])  # grey expanded to RGB


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"dataset": "imagenet"}, "dataset"),
        ({"image_size": 2}, "image_size"),
        ({"split": "valid"}, "split"),
        ({"download": "yes"}, "download"),
        ({"dataset": "mnist", "split": "all"}, "split"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, word):
    with pytest.raises(ValueError, match=word):
        load_image_data(**kwargs)


# ---- MNIST / Fashion-MNIST in IDX format ------------------------------------------------------
def _write_idx_images(path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes())


def _write_idx_labels(path, labels: np.ndarray) -> None:
    header = struct.pack(">II", 0x00000801, len(labels))
    path.write_bytes(header + labels.astype(np.uint8).tobytes())


def _write_mnist(root, folder: str, n_train: int = 12, n_test: int = 5):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n)
        _write_idx_images(raw / f"{prefix}-images-idx3-ubyte", imgs)
        _write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[prefix] = (imgs, labels)
    return arrays


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_idx_files(tmp_path, name, folder):
    arrays = _write_mnist(tmp_path, folder)
    d = load_image_data(name, data_root=tmp_path, image_size=28, split="train", download=False)
    imgs, labels = arrays["train"]
    assert d.images.dtype == torch.uint8 and d.images.shape == (12, 1, 28, 28)
    assert torch.equal(d.images[:, 0], torch.from_numpy(imgs))
    assert torch.equal(d.labels, torch.from_numpy(labels).long())
    batch = d.sample(4, torch.Generator().manual_seed(0))
    assert batch.dtype == torch.float32 and batch.min() >= -1 and batch.max() <= 1
    test = load_image_data(name, data_root=tmp_path, image_size=32, split="test", download=False)
    assert test.images.shape == (5, 1, 32, 32)  # resized once at load time


def test_mnist_missing_files_message_names_files_and_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_image_data("mnist", data_root=tmp_path, download=False)
    text = str(info.value)
    assert str((tmp_path / "MNIST" / "raw").resolve()) in text
    assert "train-images-idx3-ubyte" in text and "t10k-labels-idx1-ubyte" in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_offline_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    """download='auto' offline: the network error becomes one clear DatasetNotFoundError."""
    from torchvision.datasets import mnist

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed") as info:
        load_image_data("mnist", data_root=tmp_path, download="auto")
    assert "MNIST" in str(info.value) and "digits" in str(info.value)


# ---- CIFAR-10 pickled batches -----------------------------------------------------------------
def _write_cifar(root, monkeypatch, n_per_batch: int = 4):
    """Write cifar-10-batches-py in the real pickle format and register the files' md5 sums.

    torchvision verifies every batch file against the md5 of the official release. Our files
    differ, so the test points CIFAR10's md5 tables at the files it wrote; everything else
    (integrity check, unpickling, reshaping) is torchvision's real code.
    """
    from torchvision.datasets import CIFAR10

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}

    def dump(name, obj):
        path = folder / name
        with open(path, "wb") as fh:
            pickle.dump(obj, fh)
        return [name, hashlib.md5(path.read_bytes()).hexdigest()]

    train_list = []
    for i in range(1, 6):
        flat = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n_per_batch).tolist()
        written[f"data_batch_{i}"] = (flat, labels)
        train_list.append(dump(f"data_batch_{i}", {"data": flat, "labels": labels}))
    flat = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n_per_batch).tolist()
    written["test_batch"] = (flat, labels)
    test_list = [dump("test_batch", {"data": flat, "labels": labels})]
    names = ["airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"]
    meta_name, meta_md5 = dump("batches.meta", {"label_names": names})
    monkeypatch.setattr(CIFAR10, "train_list", train_list)
    monkeypatch.setattr(CIFAR10, "test_list", test_list)
    monkeypatch.setattr(CIFAR10, "meta", {"filename": meta_name, "key": "label_names",
                                          "md5": meta_md5})
    return written


def test_cifar10_pickled_batches(tmp_path, monkeypatch):
    written = _write_cifar(tmp_path, monkeypatch)
    d = load_image_data("cifar10", data_root=tmp_path, image_size=32, split="train",
                        download=False)
    assert d.images.shape == (20, 3, 32, 32) and d.images.dtype == torch.uint8
    flat, labels = written["data_batch_1"]
    # CIFAR rows are channel-major: R plane, G plane, B plane of 32x32 each
    assert torch.equal(d.images[0], torch.from_numpy(flat[0].reshape(3, 32, 32)))
    assert d.labels[:4].tolist() == labels
    assert d.classes[0] == "airplane"
    small = load_image_data("cifar10", data_root=tmp_path, image_size=16, split="test",
                            download=False)
    assert small.images.shape == (4, 3, 16, 16)


def test_cifar10_corrupted_file_is_reported(tmp_path, monkeypatch):
    _write_cifar(tmp_path, monkeypatch)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"truncated")
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_image_data("cifar10", data_root=tmp_path, split="train", download=False)


def test_cifar10_random_bytes_are_reported_as_present_but_damaged(tmp_path, monkeypatch):
    _write_cifar(tmp_path, monkeypatch)
    for path in (tmp_path / "cifar-10-batches-py").iterdir():
        path.write_bytes(np.random.default_rng(1).bytes(1000))
    with pytest.raises(DatasetCorruptError, match=r"files are present in .*cifar-10-batches-py "
                                                  r"but failed torchvision's check.*md5"):
        load_image_data("cifar10", data_root=tmp_path, split="train", download="auto")


def test_mnist_random_bytes_name_the_folder(tmp_path):
    _write_mnist(tmp_path, "MNIST")
    for path in (tmp_path / "MNIST" / "raw").iterdir():
        path.write_bytes(np.random.default_rng(2).bytes(2000))
    with pytest.raises(DatasetCorruptError, match=r"the files in .*MNIST/raw could not be read "
                                                  r"\(AssertionError"):
        load_image_data("mnist", data_root=tmp_path, split="train", download=False)


def _image_folder(root, n=3):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                root / label / f"{i}.png")


def test_folder_names_an_unreadable_image_or_skips_it_with_a_count(tmp_path):
    _image_folder(tmp_path)
    bad = tmp_path / "b" / "1.png"
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated PNG
    with pytest.raises(DatasetCorruptError, match=r"cannot read the image .*b/1\.png.*"
                                                  r"skip_unreadable=True"):
        load_image_data("folder", data_root=tmp_path, image_size=8)
    with pytest.warns(UserWarning, match=r"left out 1 unreadable image\(s\) of 6"):
        data = load_image_data("folder", data_root=tmp_path, image_size=8, skip_unreadable=True)
    assert len(data) == 5 and data.labels.tolist() == [0, 0, 0, 1, 1]


def test_folder_refuses_a_decompression_bomb_by_name(tmp_path, monkeypatch):
    from PIL import Image

    _image_folder(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # an 8x8 image now counts as a bomb
    with pytest.raises(DatasetCorruptError, match=r"cannot read the image .*a/0\.png.*"
                                                  r"DecompressionBomb"):
        load_image_data("folder", data_root=tmp_path, image_size=8)


# ---- STL-10 binary files ---------------------------------------------------------------------
STL_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def _write_stl10(root, monkeypatch, n_labelled: int = 3, n_unlabeled: int = 2):
    """Write stl10_binary in the real format and register the files' md5 sums with torchvision.

    Each image is 3 x 96 x 96 uint8 stored column-major (x before y within a channel plane);
    labels are one byte per image, 1-based. As for CIFAR-10, torchvision checks each file's
    md5 against the official release, so the test points STL10's tables at the files it wrote.
    """
    from torchvision.datasets import STL10

    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written = {}

    def write(name, payload: bytes):
        (folder / name).write_bytes(payload)
        return [name, hashlib.md5(payload).hexdigest()]

    def images(n):  # (N, C, H, W) as a viewer shows them
        return rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)

    def column_major(x):
        return np.ascontiguousarray(x.transpose(0, 1, 3, 2)).tobytes()

    tables = {}
    for split, n in (("train", n_labelled), ("test", n_labelled)):
        x, y = images(n), rng.integers(0, 10, size=n, dtype=np.uint8)
        written[split] = (x, y)
        tables[split] = [write(f"{split}_X.bin", column_major(x)),
                         write(f"{split}_y.bin", (y + 1).tobytes())]
    unlabeled = images(n_unlabeled)
    written["unlabeled"] = unlabeled
    tables["train"].append(write("unlabeled_X.bin", column_major(unlabeled)))
    (folder / "class_names.txt").write_text("\n".join(STL_CLASSES) + "\n")
    monkeypatch.setattr(STL10, "train_list", tables["train"])
    monkeypatch.setattr(STL10, "test_list", tables["test"])
    return written


def test_stl10_binary_files(tmp_path, monkeypatch):
    written = _write_stl10(tmp_path, monkeypatch)
    d = load_image_data("stl10", data_root=tmp_path, image_size=96, split="train",
                        download=False)
    x, y = written["train"]
    assert d.images.shape == (3, 3, 96, 96) and d.images.dtype == torch.uint8
    assert torch.equal(d.images, torch.from_numpy(x))  # column-major files read upright
    assert d.labels.tolist() == y.tolist()  # 1-based on disk, 0-based here
    assert d.classes == STL_CLASSES
    test = load_image_data("stl10", data_root=tmp_path, image_size=96, split="test",
                           download=False)
    assert torch.equal(test.images, torch.from_numpy(written["test"][0]))
    # the paper trains on STL-10 at 48x48: an antialiased downsample, as PIL's bilinear does it
    from PIL import Image

    small = load_image_data("stl10", data_root=tmp_path, image_size=48, split="train",
                            download=False)
    assert small.images.shape == (3, 3, 48, 48)
    upright = np.ascontiguousarray(x[0].transpose(1, 2, 0))  # (H, W, C) for PIL
    pil = np.array(Image.fromarray(upright).resize((48, 48), Image.Resampling.BILINEAR))
    diff = small.images[0].permute(1, 2, 0).int() - torch.from_numpy(pil).int()
    assert diff.abs().max() <= 1  # rounding only


def test_stl10_unlabeled_splits(tmp_path, monkeypatch):
    written = _write_stl10(tmp_path, monkeypatch)
    unlabeled = load_image_data("stl10", data_root=tmp_path, image_size=96, split="unlabeled",
                                download=False)
    assert torch.equal(unlabeled.images, torch.from_numpy(written["unlabeled"]))
    assert unlabeled.labels is None  # no labels rather than a column of -1
    both = load_image_data("stl10", data_root=tmp_path, image_size=96,
                           split="train+unlabeled", download=False)
    assert both.images.shape[0] == 5
    assert both.labels.tolist() == written["train"][1].tolist() + [-1, -1]


def test_stl10_corrupted_file_is_reported(tmp_path, monkeypatch):
    _write_stl10(tmp_path, monkeypatch)
    (tmp_path / "stl10_binary" / "train_X.bin").write_bytes(b"truncated")
    with pytest.raises(DatasetNotFoundError, match="stl10_binary"):
        load_image_data("stl10", data_root=tmp_path, split="train", download=False)


def test_cifar10_and_stl10_missing_messages(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="data_batch_1"):
        load_image_data("cifar10", data_root=tmp_path, download=False)
    with pytest.raises(DatasetNotFoundError, match="stl10_binary"):
        load_image_data("stl10", data_root=tmp_path, download=False)


# ---- a folder of the user's PNGs (ImageFolder) -------------------------------------------------
def test_image_folder_of_pngs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            arr = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    grey = rng.integers(0, 256, (20, 20), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "dogs" / "g.png")  # a grey PNG among RGB ones
    d = load_image_data("folder", data_root=tmp_path, image_size=16)
    assert d.images.shape == (7, 3, 16, 16) and d.images.dtype == torch.uint8
    assert d.classes == ["cats", "dogs"] and d.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    grey = load_image_data("folder", data_root=tmp_path, image_size=8, channels=1)
    assert grey.images.shape == (7, 1, 8, 8)


def test_image_folder_missing_or_empty(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_image_data("folder", data_root=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no images found"):
        load_image_data("folder", data_root=tmp_path / "empty")


def test_downloads_default_to_a_per_user_folder(tmp_path, monkeypatch):
    from sngan_edu.data.images import DATA_ENV, default_data_root, resolve_data_root

    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # not relative to the current folder
    assert default_data_root() == tmp_path / "cache" / "sngan-edu"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_data_root() == Path.home() / ".cache" / "sngan-edu"
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "mine"))
    assert resolve_data_root(None) == tmp_path / "mine"
    assert resolve_data_root("~/x") == Path.home() / "x"
    with pytest.raises(ValueError, match="data_root must be a folder path or None"):
        resolve_data_root("")
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "mine")):
        load_image_data("mnist", download=False)
