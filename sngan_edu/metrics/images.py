"""Scores for generated images.

Digits and MNIST-like data are scored with the project's own small classifier
(:mod:`sngan_edu.metrics.classifier`):

- class coverage: how many of the 10 classes the generator produces (a class counts when at
  least ``min_share`` of the samples, 1% by default, are classified as it) - the image analogue
  of the modes captured on the toy mixtures;
- class KL: KL(p_class || uniform) of the predicted class histogram (0 is perfectly balanced,
  log 10 = 2.30 is a single class);
- mean confidence: the average top softmax probability (recognisable digits score high);
- Frechet distance (FD) between Gaussians fitted to the classifier's 128-d features of generated
  and real images (the FID recipe with a small domain classifier instead of Inception).

CIFAR-10 / STL-10 get Inception Score and FID from torch-fidelity when the Inception weights
are on disk; otherwise :func:`fidelity_metrics` raises :class:`InceptionWeightsMissing` with a
message saying where to put the file. It never skips silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from sngan_edu.checks import check_int
from sngan_edu.data.images import load_image_data
from sngan_edu.metrics.classifier import Classifier

NUM_CLASSES = 10

# The course's real baseline on the digits, stated once: the held-out ("test") split, scored
# against the train split, at 16x16. Every notebook quotes these names; a generator is compared
# with it only at the same n against the same reference (:func:`digits_fd_at_baseline_n`).
DIGITS_BASELINE_N = 359  # the held-out digits: the n of the baseline
DIGITS_REFERENCE_N = 1438  # the training digits: the reference of the FD
DIGITS_REAL_FD = 14.03  # FD of the 359 held-out digits against the 1,438 training digits


@torch.no_grad()
def classifier_outputs(
    classifier: Classifier, images: torch.Tensor, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities (N, K) and features (N, 128) of images in [-1, 1]."""
    classifier.eval()
    device = next(classifier.parameters()).device
    probs, feats = [], []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device, torch.float32)
        f = classifier.features(x)
        probs.append(torch.softmax(classifier.head(f), 1).cpu())
        feats.append(f.cpu())
    return torch.cat(probs), torch.cat(feats)


def class_histogram(probs: torch.Tensor) -> np.ndarray:
    """Fraction of samples assigned to each class (argmax)."""
    k = probs.shape[1]
    counts = torch.bincount(probs.argmax(1), minlength=k).double()
    return (counts / counts.sum()).numpy()


def class_coverage(probs: torch.Tensor, min_share: float = 0.01) -> int:
    """Number of classes receiving at least ``min_share`` of the samples."""
    return int((class_histogram(probs) >= min_share).sum())


def kl_to_uniform(probs: torch.Tensor) -> float:
    """KL(p || uniform) of the predicted-class histogram, in nats."""
    p = class_histogram(probs)
    k = len(p)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] * k)).sum())


def top_probability(probs: torch.Tensor) -> torch.Tensor:
    """Each sample's top-class probability (its confidence), shape (N,)."""
    return probs.max(1).values


def mean_confidence(probs: torch.Tensor) -> float:
    """Average top-class probability."""
    return float(top_probability(probs).mean())


def mean_confidence_error(probs: torch.Tensor) -> float:
    """Standard error of the mean confidence: the samples' standard deviation over sqrt(N).

    A mean over 1,000 samples is itself an estimate; this is its 1-sigma uncertainty.
    """
    confidence = top_probability(probs).double()
    if confidence.numel() < 2:
        raise ValueError(f"probs needs at least 2 samples; got {confidence.numel()}")
    return float(confidence.std() / confidence.numel() ** 0.5)


def confidence_estimate(probs: torch.Tensor) -> dict[str, float]:
    """The mean confidence and its standard error: ``{"confidence", "confidence_se"}``."""
    return {"confidence": mean_confidence(probs), "confidence_se": mean_confidence_error(probs)}


def confidence_profile(
    probs: torch.Tensor, thresholds: Sequence[float] = (0.5, 0.7, 0.9)
) -> dict[str, float]:
    """Mean and median top-class probability and the share of samples below each threshold.

    A mean hides its tail: a generator whose typical sample is as clear as a real digit can
    still lose its mean to a few percent of blends and blobs. Keys: ``mean``, ``median``
    (interpolated, as numpy's) and ``below_<t>`` for each threshold ``t``.
    """
    confidence = top_probability(probs).double()
    profile = {"mean": float(confidence.mean()),
               "median": float(torch.quantile(confidence, 0.5))}
    for t in thresholds:
        profile[f"below_{t:g}"] = float((confidence < t).double().mean())
    return profile


def confidence_bands(
    probs: torch.Tensor, edges: Sequence[float] = (0.0, 0.4, 0.7)
) -> list[dict[str, float]]:
    """Split samples by top-class probability into bands ``[edges[i], edges[i+1])``.

    Each band gives its ``share`` of the samples and ``top2``, the mean probability of the two
    likeliest classes (NaN for an empty band): near 1 for a blend of two classes, low for junk
    the classifier spreads over many classes.
    """
    confidence = top_probability(probs)
    top2 = probs.topk(2, dim=1).values.sum(1).double()
    bands = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence >= low) & (confidence < high)
        bands.append({"low": float(low), "high": float(high),
                      "share": float(inside.double().mean()),
                      "top2": float(top2[inside].mean()) if inside.any() else math.nan})
    return bands


def least_confident(probs: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` samples with the lowest top-class probability, least sure first."""
    n = probs.shape[0]
    check_int("k", k, 1, n, note=" (at most the number of samples)")
    return top_probability(probs).argsort(stable=True)[:k]


def gaussian_stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features, in float64."""
    f = features.double().numpy()
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (eigenvalues clipped at 0)."""
    vals, vecs = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)), the FID formula.

    Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), a symmetric PSD matrix, so it is
    computed from eigenvalues: stable even when a covariance is singular (e.g. dead features).
    """
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    root1 = _sqrt_psd(np.asarray(sigma1, dtype=np.float64))
    middle = root1 @ np.asarray(sigma2, dtype=np.float64) @ root1
    eig = np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.sqrt(eig).sum())


def classifier_metrics(
    classifier: Classifier,
    fake: torch.Tensor,
    real: torch.Tensor | None = None,
    min_share: float = 0.01,
    plain: Classifier | None = None,
) -> dict[str, float]:
    """All classifier-based scores of ``fake`` images (and FD against ``real`` if given).

    Returns {"classes": int, "class_kl": float, "confidence": float, "fd": float (if real),
    "confidence_plain": float (if ``plain``, a second classifier, is given: its mean
    confidence, for comparison)}.
    """
    probs, feats = classifier_outputs(classifier, fake)
    out = {
        "classes": class_coverage(probs, min_share),
        "class_kl": kl_to_uniform(probs),
        "confidence": mean_confidence(probs),
    }
    if real is not None:
        _, real_feats = classifier_outputs(classifier, real)
        out["fd"] = frechet_distance(*gaussian_stats(feats), *gaussian_stats(real_feats))
    if plain is not None:
        out["confidence_plain"] = mean_confidence(classifier_outputs(plain, fake)[0])
    return out


def digits_fd_reference(image_size: int = 16) -> torch.Tensor:
    """The reference of the course's digit baseline: the train split (1,438 digits)."""
    return load_image_data("digits", image_size=image_size, split="train").float_images()


def digits_real_baseline(
    classifier: Classifier, plain: Classifier | None = None, image_size: int = 16
) -> dict[str, float]:
    """The real baseline: :func:`classifier_metrics` of the 359 held-out digits against the
    1,438 training digits (two disjoint splits), with ``n`` and ``reference_n`` added.

    A generator trained on all 1,797 digits has seen the held-out ones, so this is the FD of
    real digits outside the reference set, not a test of generalization.
    """
    held_out = load_image_data("digits", image_size=image_size, split="test").float_images()
    scores = classifier_metrics(classifier, held_out, digits_fd_reference(image_size),
                                plain=plain)
    return {**scores, "n": len(held_out), "reference_n": DIGITS_REFERENCE_N}


def digits_fd_at_baseline_n(
    classifier: Classifier, samples: torch.Tensor, image_size: int = 16
) -> dict[str, float]:
    """A generator scored as the baseline is: its first ``DIGITS_BASELINE_N`` samples against
    the same 1,438 training digits (the FD depends on n, see the evaluation appendix)."""
    if len(samples) < DIGITS_BASELINE_N:
        raise ValueError(f"samples: need at least {DIGITS_BASELINE_N}; got {len(samples)}")
    scores = classifier_metrics(classifier, samples[:DIGITS_BASELINE_N],
                                digits_fd_reference(image_size))
    return {**scores, "n": DIGITS_BASELINE_N, "reference_n": DIGITS_REFERENCE_N}


@torch.no_grad()
def generate(
    generator: torch.nn.Module, n: int, z_dim: int, seed: int = 0, batch_size: int = 500,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """``n`` samples from a generator in eval mode from fixed-seed noise, on the CPU."""
    device = device or next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    z_all = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    out = []
    for start in range(0, n, batch_size):  # the same z whatever the batch size
        out.append(generator(z_all[start : start + batch_size].to(device)).float().cpu())
    generator.train(was_training)
    return torch.cat(out)


# ---- Inception Score / FID for natural images (CIFAR-10, STL-10) -------------------------

class InceptionWeightsMissing(RuntimeError):
    """torch-fidelity's Inception weights are not available locally (and we are offline)."""


def inception_weights_path() -> Path:
    """Where torch-fidelity looks for its Inception (pt_inception-2015-12-05) weights."""
    from torch.hub import get_dir
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    url = getattr(fe, "URL_INCEPTION_V3", "")
    name = url.rsplit("/", 1)[-1] or "weights-inception-2015-12-05-6726825d.pth"
    return Path(get_dir()) / "checkpoints" / name


def check_inception_weights() -> Path:
    """Return the weights path, or raise InceptionWeightsMissing saying where to put them."""
    path = inception_weights_path()
    if not path.is_file():
        from torch_fidelity import feature_extractor_inceptionv3 as fe

        url = getattr(fe, "URL_INCEPTION_V3", "(see torch_fidelity.feature_extractor_inceptionv3)")
        raise InceptionWeightsMissing(
            "Inception Score / FID need torch-fidelity's Inception weights, which are not on this "
            f"machine. Download {url} and save it as {path} (or run once with internet). "
            "The classifier-based scores above do not need them."
        )
    return path


class _GeneratorInput(torch.nn.Module):
    """Adapter: torch-fidelity's generative-model input (z -> uint8 images)."""

    def __init__(self, generator: torch.nn.Module, z_dim: int):
        super().__init__()
        self.generator, self.z_size = generator, z_dim

    @property
    def z_type(self) -> str:
        return "normal"

    @property
    def num_classes(self) -> int:
        return 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.generator(z)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def fidelity_metrics(
    generator: torch.nn.Module, z_dim: int, reference: str = "cifar10-train",
    n_samples: int = 50000, device: str | torch.device = "cpu",
    calculate: Callable | None = None,
) -> dict[str, float]:
    """Inception Score and FID via torch-fidelity against a registered reference dataset.

    Raises InceptionWeightsMissing (with a clear message) when the weights are not local.
    ``reference`` is a torch-fidelity input such as "cifar10-train" or "stl10-train", or a
    folder of images.
    """
    check_inception_weights()
    import torch_fidelity
    from torch_fidelity import GenerativeModelModuleWrapper

    generator.eval()
    wrapped = GenerativeModelModuleWrapper(_GeneratorInput(generator, z_dim), z_dim, "normal", 0)
    calculate = calculate or torch_fidelity.calculate_metrics
    result = calculate(
        input1=wrapped, input1_model_num_samples=n_samples, input2=reference,
        isc=True, fid=True, cuda=str(device).startswith("cuda"), verbose=False,
    )
    return {"inception_score": float(result["inception_score_mean"]),
            "inception_score_std": float(result["inception_score_std"]),
            "fid": float(result["frechet_inception_distance"])}


def rounded(metrics: dict[str, float], digits: int = 3) -> dict[str, float]:
    """Round floats for stable printing (ints and non-finite values pass through)."""
    return {k: (round(v, digits) if isinstance(v, float) and math.isfinite(v) else v)
            for k, v in metrics.items()}
