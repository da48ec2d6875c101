"""Image datasets for GAN training, loaded once into one tensor.

The embedded default, ``"digits"``, is the UCI handwritten digits set that ships with
scikit-learn (1,797 real 8x8 grey images, ten classes): it needs no download and no network.
The torchvision datasets (MNIST, Fashion-MNIST, CIFAR-10, STL-10) and a folder of your own
images (``ImageFolder``) are loaded through torchvision, resized once to the model's size and
kept as a single tensor. A GAN samples random minibatches, so :meth:`ImageData.sample` draws
indices from that tensor directly, on the training device, with no ``DataLoader`` overhead.

Offline with no files, loaders raise :class:`DatasetNotFoundError` naming the files to fetch
and the folder to put them in. Downloads go to a per-user folder, :func:`default_data_root`
(``$SNGAN_EDU_DATA``, else ``~/.cache/sngan-edu``, or ``$XDG_CACHE_HOME/sngan-edu``), whatever
the current folder; ``data_root`` picks another.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sngan_edu.checks import check_choice, check_int

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "stl10", "folder")
SPLITS = ("train", "test", "all")

# Held-out digits for the evaluator: a fixed, class-stratified 20% (seeded, so reproducible).
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
DATA_ENV = "SNGAN_EDU_DATA"  # environment variable naming the data folder


def default_data_root() -> Path:
    """Where datasets are downloaded when no ``data_root`` is given: ``$SNGAN_EDU_DATA`` if
    set, else ``sngan-edu`` in the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    chosen = os.environ.get(DATA_ENV)
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "sngan-edu"


def resolve_data_root(data_root: str | Path | None) -> Path:
    """``data_root`` as a path (``~`` expanded); None: :func:`default_data_root`."""
    if data_root is None:
        return default_data_root()
    if not isinstance(data_root, str | Path) or not str(data_root):
        raise ValueError(f"data_root must be a folder path or None; got {data_root!r}")
    return Path(data_root).expanduser()


class DatasetNotFoundError(FileNotFoundError):
    """The dataset files are not on disk and could not be downloaded."""


class DatasetCorruptError(DatasetNotFoundError):
    """Dataset files are on disk but cannot be read: damaged, or not what they claim to be."""


@dataclass
class ImageData:
    """Images as one tensor (N, C, H, W) plus labels.

    ``images`` is either float in [-1, 1] or uint8 in [0, 255] (large datasets stay uint8 to
    save memory and are scaled batch by batch). ``labels`` is int64 (N,) or None.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    name: str
    classes: list[str] | None = None

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: str | torch.device) -> ImageData:
        """The same data on ``device`` (one copy, made once before training)."""
        labels = None if self.labels is None else self.labels.to(device)
        return ImageData(self.images.to(device), labels, self.name, self.classes)

    def as_float(self, images: torch.Tensor) -> torch.Tensor:
        """Scale a batch from this dataset's storage type to float in [-1, 1]."""
        if images.dtype == torch.uint8:
            return images.float().div_(127.5).sub_(1.0)
        return images

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random minibatch (with replacement) in [-1, 1], on the data's device.

        Matches the trainer's sampler signature ``sample_real(batch_size, generator)``.
        """
        # Indices are drawn on the CPU (the trainer's generator is a CPU one), then moved.
        idx = torch.randint(len(self), (batch_size,), generator=generator)
        return self.as_float(self.images[idx.to(self.images.device)])

    def sample_labelled(self, batch_size: int, generator: torch.Generator | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`sample` with the images' labels: ``(images, labels)``, the same draw."""
        if self.labels is None:
            raise ValueError(f"the {self.name} images have no labels")
        idx = torch.randint(len(self), (batch_size,), generator=generator)
        idx = idx.to(self.images.device)
        return self.as_float(self.images[idx]), self.labels[idx.to(self.labels.device)]

    @property
    def num_classes(self) -> int:
        """How many classes the labels name (0 without labels)."""
        if self.labels is None:
            return 0
        return len(self.classes) if self.classes else int(self.labels.max()) + 1

    def float_images(self, n: int | None = None) -> torch.Tensor:
        """The first ``n`` images (all by default) in [-1, 1]."""
        return self.as_float(self.images[:n] if n is not None else self.images)


def _resize(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """Resize float images (N, C, h, w) to square ``image_size`` (bilinear, antialiased)."""
    if images.shape[-1] == image_size and images.shape[-2] == image_size:
        return images
    return F.interpolate(
        images, size=(image_size, image_size), mode="bilinear", align_corners=False,
        antialias=True,
    )


def _resize_uint8(images: torch.Tensor, image_size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 images (N, C, h, w) in chunks, staying uint8 (keeps memory small)."""
    if images.shape[-1] == image_size and images.shape[-2] == image_size:
        return images.contiguous()
    out = []
    for start in range(0, images.shape[0], chunk):
        part = _resize(images[start : start + chunk].float(), image_size)
        out.append(part.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def _set_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Convert grey <-> RGB when the model asks for a different channel count."""
    have = images.shape[1]
    if channels is None or channels == have:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        grey = (images.float() * weights).sum(1, keepdim=True)
        return grey.round().clamp(0, 255).to(torch.uint8) if images.dtype == torch.uint8 else grey
    raise ValueError(f"channels must be 1 or 3 (or None to keep {have}); got {channels!r}")


def digits_split_indices(n_total: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fixed class-stratified train/test indices for the digits set."""
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(DIGITS_TEST_FRACTION * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(
    image_size: int = 16, split: str = "all", channels: int | None = None
) -> ImageData:
    """The scikit-learn UCI digits (8x8, values 0..16) resized to ``image_size``, in [-1, 1].

    ``split``: "all" (1,797 images), or the fixed stratified "train" (80%) / "test" (20%) split
    used by the evaluator.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    check_choice("split", split, SPLITS)
    bunch = sk_load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    if split != "all":
        train_idx, test_idx = digits_split_indices(len(labels), bunch.target)
        keep = torch.from_numpy(train_idx if split == "train" else test_idx)
        images, labels = images[keep], labels[keep]
    images = _resize(images, image_size).clamp_(0.0, 1.0).mul_(2.0).sub_(1.0)
    images = _set_channels(images, channels)
    return ImageData(images.contiguous(), labels, "digits", [str(i) for i in range(10)])


# What each torchvision dataset needs on disk, for the offline error message.
_EXPECTED_FILES = {
    "mnist": (
        "MNIST/raw",
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte (the IDX files, unpacked from their .gz)",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion_mnist": (
        "FashionMNIST/raw",
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte (the IDX files, unpacked from their .gz)",
        "https://github.com/zalandoresearch/fashion-mnist",
    ),
    "cifar10": (
        "cifar-10-batches-py",
        "data_batch_1 ... data_batch_5, test_batch, batches.meta "
        "(unpack cifar-10-python.tar.gz into the data_root folder)",
        "https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "stl10": (
        "stl10_binary",
        "train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin, class_names.txt, "
        "fold_indices.txt (unpack stl10_binary.tar.gz into the data_root folder)",
        "https://cs.stanford.edu/~acoates/stl10/",
    ),
}


def missing_files_message(name: str, data_root: str | Path, reason: str = "") -> str:
    """A human message naming the files and the folder a dataset needs."""
    folder, files, url = _EXPECTED_FILES[name]
    where = Path(data_root).expanduser().resolve() / folder
    text = (
        f"dataset {name!r} was not found and could not be downloaded"
        f"{f' ({reason})' if reason else ''}.\n"
        f"Put these files in {where}/ :\n  {files}\n"
        f"They are available from {url} . Or use dataset='digits', the embedded default, "
        "which needs no files."
    )
    return text


def _torchvision_dataset(name: str, data_root: str | Path, train: bool, split: str, download):
    """Open a torchvision dataset, turning missing files into DatasetNotFoundError."""
    from torchvision import datasets

    root = str(Path(data_root).expanduser())

    def open_it(dl: bool):
        if name == "mnist":
            return datasets.MNIST(root, train=train, download=dl)
        if name == "fashion_mnist":
            return datasets.FashionMNIST(root, train=train, download=dl)
        if name == "cifar10":
            return datasets.CIFAR10(root, train=train, download=dl)
        # STL-10: "train" (5k labelled) or "unlabeled"/"train+unlabeled"/"test"
        return datasets.STL10(root, split=split, download=dl)

    folder, _, _ = _EXPECTED_FILES[name]
    present = Path(root) / folder
    try:
        return open_it(False)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        first = str(err)
        if present.is_dir() and any(present.iterdir()):
            raise DatasetCorruptError(
                f"dataset {name!r}: files are present in {present.resolve()} but failed "
                f"torchvision's check ({first.strip()}): a checksum (md5) mismatch or missing "
                "files. They are damaged or from another release; delete that folder to download "
                "them again, or put the original files there."
            ) from None
    except Exception as err:  # files found but unreadable (e.g. MNIST's bare AssertionError)
        detail = f"{type(err).__name__}: {err}".splitlines()[0][:200]
        raise DatasetCorruptError(
            f"dataset {name!r}: the files in {present.resolve()} could not be read ({detail}); "
            "they are damaged or not the dataset's files. Delete them to download again, or "
            "put the original files there."
        ) from None
    if download is False:
        raise DatasetNotFoundError(
            missing_files_message(name, data_root, f"download=False; torchvision said: {first}")
        ) from None
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        return open_it(True)
    except Exception as err:  # offline: URLError, OSError, ... never a deep traceback
        reason = f"download failed: {type(err).__name__}: {err}".splitlines()[0][:200]
        raise DatasetNotFoundError(missing_files_message(name, data_root, reason)) from None


def _from_torchvision(name: str, ds) -> tuple[torch.Tensor, torch.Tensor | None, list | None]:
    """Pull the raw uint8 array and labels out of a torchvision dataset as (N, C, H, W)."""
    if name in ("mnist", "fashion_mnist"):
        images = ds.data.unsqueeze(1)  # (N, 28, 28) uint8
        labels = ds.targets.long()
    elif name == "cifar10":
        images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2)  # NHWC
        labels = torch.as_tensor(ds.targets, dtype=torch.long)
    else:  # stl10: (N, 3, 96, 96) uint8, labels -1 for the unlabeled split
        images = torch.from_numpy(np.ascontiguousarray(ds.data))
        labels = torch.as_tensor(ds.labels, dtype=torch.long)
        if (labels < 0).all():
            labels = None
    return images, labels, list(getattr(ds, "classes", []) or []) or None


def _load_folder(data_root: str | Path, image_size: int, skip_unreadable: bool = False
                 ) -> ImageData:
    """A folder of the user's images, one sub-folder per class (torchvision ImageFolder)."""
    from torchvision import datasets, transforms

    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"dataset 'folder' needs data_root to be a folder of images arranged as "
            f"data_root/<class name>/<image>.png (or .jpg); {root.resolve()} does not exist."
        )
    transform = transforms.Compose(
        [transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.PILToTensor()]
    )
    try:
        ds = datasets.ImageFolder(str(root), transform=transform)
    except FileNotFoundError as err:
        raise DatasetNotFoundError(
            f"dataset 'folder': no images found under {root.resolve()}. Arrange them as "
            f"data_root/<class name>/<image>.png (or .jpg). torchvision said: {err}"
        ) from None
    images, labels, unreadable = [], [], []
    for path, label in ds.samples:
        try:
            with warnings.catch_warnings():  # an image too large to be safe is an error too
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = transform(ds.loader(path))
        except (OSError, ValueError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as err:
            if not skip_unreadable:
                raise DatasetCorruptError(
                    f"dataset 'folder': cannot read the image {path} "
                    f"({type(err).__name__}: {err}). Remove or replace it, or pass "
                    "skip_unreadable=True to leave unreadable images out."
                ) from None
            unreadable.append(path)
            continue
        if img.shape[0] == 1:
            img = img.expand(3, -1, -1)
        images.append(img[:3])
        labels.append(label)
    if unreadable:
        warnings.warn(f"dataset 'folder': left out {len(unreadable)} unreadable image(s) of "
                      f"{len(ds.samples)} (first: {unreadable[0]})", stacklevel=3)
    if not images:
        raise DatasetCorruptError(f"dataset 'folder': none of the {len(ds.samples)} images "
                                  f"under {root.resolve()} could be read")
    return ImageData(torch.stack(images), torch.tensor(labels), "folder", list(ds.classes))


def load_image_data(
    dataset: str = "digits",
    data_root: str | Path | None = None,
    image_size: int = 16,
    split: str = "train",
    channels: int | None = None,
    download: bool | str = "auto",
    skip_unreadable: bool = False,
) -> ImageData:
    """Load ``dataset`` resized to ``image_size`` as one tensor.

    dataset: one of DATASETS. data_root: folder holding the torchvision files (or the user's
    image folder for "folder"); None: :func:`default_data_root` (downloads go there).
    split: "train" / "test" ("all" for digits; STL-10 also accepts "unlabeled" and
    "train+unlabeled"). channels: force 1 or 3 channels (None keeps the
    dataset's own). download: "auto" (try when the files are missing), True, or False.
    skip_unreadable (folder only): leave out images that cannot be read, with a warning that
    counts them, instead of stopping at the first one (DatasetCorruptError names it).
    """
    check_choice("dataset", dataset, DATASETS)
    check_int("image_size", image_size, minimum=4)
    data_root = resolve_data_root(data_root)
    if download not in (True, False, "auto"):
        raise ValueError(f"download must be True, False or 'auto'; got {download!r}")
    stl_splits = ("train", "test", "unlabeled", "train+unlabeled")
    check_choice("split", split, stl_splits if dataset == "stl10" else SPLITS)
    if dataset == "digits":
        return load_digits(image_size, split, channels)
    if dataset == "folder":
        data = _load_folder(data_root, image_size, skip_unreadable)
        data.images = _set_channels(data.images, channels)
        return data
    if split == "all":
        raise ValueError(f"split='all' is only for digits; use 'train' or 'test' for {dataset}")
    ds = _torchvision_dataset(dataset, data_root, split == "train", split, download)
    images, labels, classes = _from_torchvision(dataset, ds)
    images = _set_channels(_resize_uint8(images, image_size), channels)
    return ImageData(images, labels, dataset, classes)
