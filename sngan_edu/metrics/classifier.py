"""A small, deterministic image classifier used to score generated digits.

Train it (the digits weights ship inside the package, ``sngan_edu/assets/``)::

    sngan-edu classifier --dataset digits   # -> runs/classifiers/digits_classifier.pt
    sngan-edu classifier --dataset digits --replace-shipped \\
        --out sngan_edu/assets/digits_classifier.pt
    sngan-edu classifier --dataset mnist --data-root ~/data --image-size 28 \\
        --out data/mnist_classifier.pt

The classifier's softmax gives class coverage and confidence, its penultimate layer the
features for a Frechet distance (see :mod:`sngan_edu.metrics.images`). Training is seeded and
uses deterministic algorithms, so the same command gives the same weights on the same machine.

The course's scorer is trained with *outlier exposure* (``--outlier-weight 0.5``): it also learns
to be unsure on junk images, so a high confidence means "looks like a digit". The plain
classifier (``--outlier-weight 0``, shipped as ``assets/digits_classifier_plain.pt``) is the usual
recipe of GAN papers; it is confident on almost anything, pure noise included, and is kept only
to compare the two.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from sngan_edu.assets import asset_path
from sngan_edu.checks import check_int, check_number
from sngan_edu.data.images import DATASETS, ImageData, load_image_data
from sngan_edu.train.checkpoint import write_atomic

DIGITS_CLASSIFIER = asset_path("digits_classifier.pt")
DIGITS_PLAIN_CLASSIFIER = asset_path("digits_classifier_plain.pt")
FEATURE_DIM = 128


class Classifier(nn.Module):
    """Conv-conv-pool x2 then a 128-d feature layer and a linear head (inputs in [-1, 1])."""

    def __init__(self, channels: int = 1, image_size: int = 16, num_classes: int = 10):
        super().__init__()
        self.channels, self.image_size, self.num_classes = channels, image_size, num_classes
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
        )
        self.fc = nn.Linear(64 * 16, FEATURE_DIM)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Resize and convert channels so images of any size/channels can be scored."""
        if x.shape[1] != self.channels:
            x = x.mean(1, keepdim=True) if self.channels == 1 else x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d penultimate activations (used for the Frechet distance)."""
        return F.relu(self.fc(self.conv(self.prepare(x)).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 1/8 of the image (robustness to slightly off-centre samples)."""
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad), value=-1.0)  # -1 is the background colour
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).tolist()
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).tolist()
    return torch.stack([p[:, y : y + h, x : x + w] for p, x, y in zip(padded, dx, dy, strict=True)])


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 box blur (junk images with smooth blobs instead of pixel noise)."""
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def make_junk(real: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Images that are not digits, built from a real batch (for outlier exposure).

    Four kinds, in equal parts: uniform noise, blurred noise, the overlay of two digits of
    different classes, and a digit with its pixels shuffled (same ink, no shape). The classifier
    is trained to be unsure (uniform softmax) on them, so its confidence on generated samples
    measures how digit-like they are (Hendrycks et al., "Outlier Exposure", ICLR 2019).
    """
    n = real.shape[0]
    noise = torch.rand(real.shape, generator=gen) * 2 - 1
    blobs = _blur(_blur(torch.rand(real.shape, generator=gen) * 2 - 1)).mul(3).clamp(-1, 1)
    perm = torch.randperm(n, generator=gen)
    other = real[perm]
    overlay = torch.maximum(real, other)  # ink of both digits
    overlay = torch.where((labels == labels[perm]).view(-1, 1, 1, 1), noise, overlay)
    flat = real.flatten(1)
    shuffled = flat.gather(1, torch.argsort(torch.rand(flat.shape, generator=gen), 1))
    kinds = torch.randint(0, 4, (n,), generator=gen).view(-1, 1, 1, 1)
    junk = torch.where(kinds == 0, noise, blobs)
    junk = torch.where(kinds == 2, overlay, junk)
    return torch.where(kinds == 3, shuffled.view_as(real), junk)


@torch.no_grad()
def accuracy(model: Classifier, data: ImageData, batch_size: int = 512) -> float:
    """Top-1 accuracy on labelled data."""
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        x = data.as_float(data.images[start : start + batch_size])
        correct += (model(x).argmax(1) == data.labels[start : start + batch_size]).sum().item()
    return correct / len(data)


def check_outlier_weight(outlier_weight: float) -> None:
    """Raise ValueError unless ``outlier_weight`` is a number >= 0."""
    check_number("outlier_weight", outlier_weight, 0, finite=False,
                 what="a number >= 0 (0: plain classifier, 0.5: the course's default)")


def train_classifier(
    train: ImageData, epochs: int = 30, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
    outlier_weight: float = 0.5,
) -> Classifier:
    """Train a Classifier on labelled images, deterministically (seeded, CPU).

    ``outlier_weight`` weighs the outlier-exposure term (see :func:`make_junk`); 0 disables it.
    """
    if train.labels is None:
        raise ValueError("train_classifier needs labelled data; this dataset has no labels")
    check_outlier_weight(outlier_weight)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    num_classes = int(train.labels.max().item()) + 1
    model = Classifier(train.channels, train.image_size, num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    n = len(train)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            x = _augment(train.as_float(train.images[idx]), gen)
            y = train.labels[idx]
            if outlier_weight:
                junk = make_junk(x, y, gen)
                logits = model(torch.cat([x, junk]))
                # cross-entropy on digits + cross-entropy to the uniform distribution on junk
                loss = F.cross_entropy(logits[: len(x)], y) - outlier_weight * (
                    F.log_softmax(logits[len(x):], 1).mean()
                )
            else:  # the plain classifier: digits only
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def save_classifier(model: Classifier, path: str | Path, meta: dict) -> None:
    """Atomically write weights + a small metadata dict (loadable with weights_only=True)."""
    payload = {
        "state_dict": model.state_dict(),
        "config": {"channels": model.channels, "image_size": model.image_size,
                   "num_classes": model.num_classes},
        "meta": meta,
    }
    write_atomic(path, lambda handle: torch.save(payload, handle))


def hold_out(data: ImageData, fraction: float = 0.2, seed: int = 0) -> tuple[ImageData, ImageData]:
    """Split ``data`` into (train, test) at random (seeded): for datasets with no test split."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(fraction * len(data)))
    if n_test >= len(data):
        raise ValueError(f"the dataset has {len(data)} image(s): too few to hold some out")

    def part(idx: torch.Tensor) -> ImageData:
        labels = None if data.labels is None else data.labels[idx]
        return ImageData(data.images[idx], labels, data.name, data.classes)

    return part(order[n_test:]), part(order[:n_test])


def default_output(dataset: str) -> Path:
    """Where a newly trained classifier goes unless told otherwise (never a shipped file)."""
    return Path("runs") / "classifiers" / f"{dataset}_classifier.pt"


def _is_shipped(path: Path) -> bool:
    return path.resolve().parent == DIGITS_CLASSIFIER.resolve().parent


def load_classifier(
    path: str | Path = DIGITS_CLASSIFIER, device: str | torch.device = "cpu"
) -> Classifier:
    """Load a classifier written by this module, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"classifier weights not found at {path}; train them with "
            f"`sngan-edu classifier --dataset digits --out {path}`"
        )
    payload = torch.load(path, map_location=device, weights_only=True)
    model = Classifier(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    model.meta = payload.get("meta", {})
    return model.to(device).eval()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sngan-edu classifier``."""
    parser.add_argument("--dataset", default="digits", choices=[d for d in DATASETS])
    parser.add_argument("--data-root", default=None,
                        help="dataset folder (default: $SNGAN_EDU_DATA or ~/.cache/sngan-edu)")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--outlier-weight", type=float, default=0.5,
                        help="weight of the junk-is-unsure term (0: a plain classifier)")
    parser.add_argument("--out", default=None,
                        help="where to write the weights (default runs/classifiers/"
                             "DATASET_classifier.pt)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing file at --out")
    parser.add_argument("--replace-shipped", action="store_true",
                        help="allow --out to replace a classifier shipped with the course")


def run_from_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser,
                       words: list[str]) -> None:
    """Train and save the classifier that ``args`` (parsed by :func:`add_arguments`) ask for;
    a bad option is a usage error of ``parser``."""
    out = Path(args.out) if args.out else default_output(args.dataset)
    try:
        check_outlier_weight(args.outlier_weight)
        check_int("epochs", args.epochs)
    except ValueError as err:
        parser.error(str(err))  # a usage message, not a stack trace
    if _is_shipped(out) and out.exists() and not args.replace_shipped:
        parser.error(f"--out {out} is a classifier shipped with the course; pass "
                     "--replace-shipped to replace it, or choose another --out")
    if out.exists() and not (args.overwrite or args.replace_shipped):
        parser.error(f"--out {out} exists; pass --overwrite to replace it")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # bit-for-bit reproducible on CPU
    load = dict(dataset=args.dataset, data_root=args.data_root, image_size=args.image_size)
    if args.dataset == "folder":  # an image folder has no test split: hold 20% out
        train, test = hold_out(load_image_data(split="train", **load), seed=args.seed)
        held = "images held out of the folder (it has no test split)"
    else:
        train = load_image_data(split="train", **load)
        test = load_image_data(split="test", **load)
        held = "held-out images"
    model = train_classifier(train, epochs=args.epochs, seed=args.seed,
                             outlier_weight=args.outlier_weight)
    acc = accuracy(model, test)
    meta = {"dataset": args.dataset, "image_size": args.image_size, "epochs": args.epochs,
            "seed": args.seed, "outlier_weight": args.outlier_weight,
            "test_accuracy": round(acc, 4), "n_train": len(train)}
    save_classifier(model, out, meta)
    print(f"test accuracy {acc:.4f} on {len(test)} {held}; wrote {out}")

