"""Scores that answer "did G draw what I asked for?" for a class-conditional generator.

- class agreement of class k: the share of the samples requested as k that the course's digit
  classifier (:mod:`sngan_edu.metrics.classifier`) assigns to k (argmax); the average over the
  classes is the class-agreement rate (1 is perfect, 1/K is a generator that ignores the label);
- per-class Frechet distance: the FD (:func:`sngan_edu.metrics.images.frechet_distance`) between
  the classifier features of the samples requested as k and those of the real images of class k,
  beside the overall FD of all samples against all real images.

The course scores 1,000 samples (:data:`N_PER_CLASS` = 100 per class for the ten digits) with
fixed noise, as it does for the unconditional runs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from sngan_edu.checks import check_int
from sngan_edu.metrics.classifier import Classifier
from sngan_edu.metrics.images import classifier_outputs, frechet_distance, gaussian_stats

N_PER_CLASS = 100  # 10 classes x 100 = the 1,000 samples the course scores everywhere


def _check_labels(name: str, labels: Tensor, n: int, num_classes: int) -> Tensor:
    if not isinstance(labels, Tensor) or labels.dtype != torch.long or labels.shape != (n,):
        got = (f"{labels.dtype} of shape {tuple(labels.shape)}" if isinstance(labels, Tensor)
               else type(labels).__name__)
        raise ValueError(f"{name} must be a torch.long tensor of shape ({n},); got {got}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"{name} must hold labels in [0, {num_classes - 1}]")
    return labels.cpu()


def class_agreement(probs: Tensor, requested: Tensor) -> np.ndarray:
    """Per class k, the share of samples requested as k that are classified as k (NaN if none
    was requested). ``probs`` (N, K) are the classifier's probabilities, ``requested`` (N,)."""
    k = probs.shape[1]
    requested = _check_labels("requested", requested, probs.shape[0], k)
    hits = (probs.argmax(1) == requested).double()
    counts = torch.bincount(requested, minlength=k).double()
    agree = torch.bincount(requested, weights=hits, minlength=k).double()
    return torch.where(counts > 0, agree / counts.clamp(min=1), torch.nan).numpy()


def per_class_fd(fake_features: Tensor, fake_labels: Tensor, real_features: Tensor,
                 real_labels: Tensor, num_classes: int) -> np.ndarray:
    """Per class k, the FD between the features of the samples of class k and those of the real
    images of class k (NaN where either side has fewer than 2 images)."""
    fake_labels = _check_labels("fake_labels", fake_labels, len(fake_features), num_classes)
    real_labels = _check_labels("real_labels", real_labels, len(real_features), num_classes)
    out = np.full(num_classes, np.nan)
    for k in range(num_classes):
        fake_k, real_k = fake_features[fake_labels == k], real_features[real_labels == k]
        if len(fake_k) >= 2 and len(real_k) >= 2:
            out[k] = frechet_distance(*gaussian_stats(fake_k), *gaussian_stats(real_k))
    return out


@torch.no_grad()
def generate_classes(generator: nn.Module, labels: Tensor, z_dim: int, seed: int = 0,
                     batch_size: int = 500) -> Tensor:
    """Samples ``G(z, labels)`` in eval mode from fixed-seed noise, on the CPU."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    z_all = torch.randn(len(labels), z_dim, generator=torch.Generator().manual_seed(seed))
    out = []
    for start in range(0, len(labels), batch_size):
        stop = start + batch_size
        out.append(generator(z_all[start:stop].to(device), labels[start:stop].to(device))
                   .float().cpu())
    generator.train(was_training)
    return torch.cat(out)


def requested_labels(num_classes: int, n_per_class: int = N_PER_CLASS) -> Tensor:
    """``n_per_class`` requests of each class, in order: 0, 0, ..., 1, 1, ..."""
    check_int("num_classes", num_classes, 2)
    check_int("n_per_class", n_per_class, 2)
    return torch.arange(num_classes).repeat_interleave(n_per_class)


def conditional_scores(classifier: Classifier, fake: Tensor, fake_labels: Tensor,
                       real: Tensor, real_labels: Tensor) -> dict:
    """Class agreement and FD of labelled samples against labelled real images.

    Returns ``{"agreement": mean over classes, "agreement_min", "agreement_per_class": list,
    "fd": overall FD, "fd_per_class": list, "class_fd_mean"}``.
    """
    k = classifier.num_classes
    probs, feats = classifier_outputs(classifier, fake)
    _, real_feats = classifier_outputs(classifier, real)
    agreement = class_agreement(probs, fake_labels)
    fds = per_class_fd(feats, fake_labels, real_feats, real_labels, k)
    return {
        "agreement": float(np.nanmean(agreement)),
        "agreement_min": float(np.nanmin(agreement)),
        "agreement_per_class": [float(a) for a in agreement],
        "fd": frechet_distance(*gaussian_stats(feats), *gaussian_stats(real_feats)),
        "fd_per_class": [float(f) for f in fds],
        "class_fd_mean": float(np.nanmean(fds)),
    }


def score_conditional_generator(generator: nn.Module, classifier: Classifier, real: Tensor,
                                real_labels: Tensor, z_dim: int,
                                n_per_class: int = N_PER_CLASS, seed: int = 0) -> dict:
    """:func:`conditional_scores` of ``n_per_class`` samples of each class (fixed noise)."""
    labels = requested_labels(classifier.num_classes, n_per_class)
    fake = generate_classes(generator, labels, z_dim, seed)
    return conditional_scores(classifier, fake, labels, real, real_labels)


__all__ = ["N_PER_CLASS", "class_agreement", "conditional_scores", "generate_classes",
           "per_class_fd", "requested_labels", "score_conditional_generator"]
