"""The 2-D toy mixtures of the PacGAN / VEEGAN mode-collapse benchmark, sampled reproducibly.

- ``ring``: 8 Gaussians, means (cos 2 pi k/8, sin 2 pi k/8) on the unit circle, std 0.01.
- ``grid``: 25 Gaussians, means {-4, -2, 0, 2, 4}^2, std 0.05.

Each component is equally likely. Sampling takes a ``torch.Generator`` so that it is seeded and
resumable; :func:`make_sampler` returns the ``sample_real(batch_size, generator)`` callable that
:class:`sngan_edu.train.Trainer` expects.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sngan_edu.checks import check_choice, check_int

DATASETS = ("ring", "grid")
RING_MODES, RING_RADIUS, RING_STD = 8, 1.0, 0.01
GRID_SIDE, GRID_SPACING, GRID_STD = 5, 2.0, 0.05


def _check(name: str) -> str:
    return check_choice("dataset", name, DATASETS)


def mixture_means(name: str) -> Tensor:
    """The component means, shape (K, 2): K = 8 for "ring", 25 for "grid"."""
    if _check(name) == "ring":
        angles = torch.arange(RING_MODES, dtype=torch.float64) * (2 * math.pi / RING_MODES)
        means = RING_RADIUS * torch.stack((torch.cos(angles), torch.sin(angles)), dim=1)
    else:
        axis = (torch.arange(GRID_SIDE, dtype=torch.float64) - (GRID_SIDE - 1) / 2) * GRID_SPACING
        xs, ys = torch.meshgrid(axis, axis, indexing="ij")
        means = torch.stack((xs.reshape(-1), ys.reshape(-1)), dim=1)
    return means.float()


def mixture_std(name: str) -> float:
    """The standard deviation of every component (0.01 for "ring", 0.05 for "grid")."""
    return RING_STD if _check(name) == "ring" else GRID_STD


def sample_mixture(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` samples (n, 2) from the mixture, drawn with ``generator`` (CPU)."""
    check_int("n", n)
    means = mixture_means(name)
    which = torch.randint(len(means), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator)
    return means[which] + mixture_std(name) * noise


class MixtureSampler:
    """``sampler(batch_size, generator)`` -> a batch of real toy samples on ``device``."""

    def __init__(self, name: str, device: str | torch.device = "cpu"):
        self.name = _check(name)
        self.device = torch.device(device)
        self.means = mixture_means(name)
        self.std = mixture_std(name)

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        which = torch.randint(len(self.means), (batch_size,), generator=generator)
        noise = torch.randn(batch_size, 2, generator=generator)
        return (self.means[which] + self.std * noise).to(self.device)

    def __repr__(self) -> str:
        return f"MixtureSampler({self.name!r})"


def make_sampler(name: str, device: str | torch.device = "cpu") -> MixtureSampler:
    """The real-data sampler for the toy mixture ``name`` ("ring" or "grid")."""
    return MixtureSampler(name, device)
