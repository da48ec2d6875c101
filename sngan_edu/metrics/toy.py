"""Mode-collapse metrics of the PacGAN / VEEGAN toy benchmark.

On (by convention) 2500 generated samples of a mixture with means ``mu_k`` and std ``s``:

- a sample is *high quality* if it lies within 3 s of its nearest mode (Euclidean distance);
- a mode is *captured* if at least one high-quality sample is nearest to it;
- *reverse KL* is KL(p || u) = sum_k p_k log(K p_k), where p_k is the fraction of the
  high-quality samples nearest to mode k and u is uniform over the K modes (0 log 0 = 0).
  It is NaN when there is no high-quality sample at all.

For reference, exact samples of a 2-D isotropic Gaussian fall within 3 s of its mean with
probability 1 - exp(-4.5) = 98.9 %, so real data scores about 98.9 % high quality.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from sngan_edu.checks import check_positive
from sngan_edu.data.toy import mixture_means, mixture_std

N_EVAL_SAMPLES = 2500
HQ_STDS = 3.0


@dataclass(frozen=True)
class ModeMetrics:
    """Modes captured (of ``n_modes``), % high-quality samples, reverse KL to uniform."""

    modes: int
    n_modes: int
    high_quality: float  # percent, 0..100
    reverse_kl: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def mode_metrics(samples: Tensor, means: Tensor, std: float) -> ModeMetrics:
    """The three metrics for ``samples`` (N, 2) against mixture ``means`` (K, 2) of std ``std``."""
    samples = torch.as_tensor(samples, dtype=torch.float64)
    means = torch.as_tensor(means, dtype=torch.float64)
    if samples.ndim != 2 or samples.shape[0] == 0 or samples.shape[1] != means.shape[1]:
        raise ValueError(
            f"samples must have shape (N, {means.shape[1]}) with N >= 1; got {tuple(samples.shape)}"
        )
    check_positive("std", std, "positive")
    distances = torch.cdist(samples, means)  # (N, K)
    nearest_distance, nearest = distances.min(dim=1)
    high_quality = nearest_distance <= HQ_STDS * std
    counts = torch.bincount(nearest[high_quality], minlength=len(means)).double()
    n_hq = int(high_quality.sum())
    if n_hq == 0:
        reverse_kl = math.nan
    else:
        p = counts / n_hq
        nonzero = p > 0
        reverse_kl = float((p[nonzero] * torch.log(p[nonzero] * len(means))).sum())
    return ModeMetrics(
        modes=int((counts > 0).sum()),
        n_modes=len(means),
        high_quality=100.0 * n_hq / samples.shape[0],
        reverse_kl=reverse_kl,
    )


def mode_shares(samples: Tensor, means: Tensor) -> Tensor:
    """The fraction of ``samples`` whose nearest mean is each of ``means`` (quality ignored)."""
    samples = torch.as_tensor(samples, dtype=torch.float64)
    means = torch.as_tensor(means, dtype=torch.float64)
    if samples.ndim != 2 or samples.shape[0] == 0 or samples.shape[1] != means.shape[1]:
        raise ValueError(
            f"samples must have shape (N, {means.shape[1]}) with N >= 1; got {tuple(samples.shape)}"
        )
    nearest = torch.cdist(samples, means).argmin(dim=1)
    return torch.bincount(nearest, minlength=len(means)).double() / samples.shape[0]


def modes_reached(samples: Tensor, dataset: str, fair_share: float = 0.5) -> int:
    """How many modes of ``dataset`` are the nearest mode of at least ``fair_share`` times their
    fair share (1/K) of the samples, however far the samples are from them.

    A coarse count of where the generator puts its mass, for a generator that has collapsed
    without yet being precise: its samples may all miss the 3-std zones (no mode *captured*),
    yet sit next to one or two modes.
    """
    check_positive("fair_share", fair_share, "positive")
    shares = mode_shares(samples, mixture_means(dataset))
    return int((shares >= fair_share / len(shares)).sum())


def toy_metrics(samples: Tensor, dataset: str) -> ModeMetrics:
    """:func:`mode_metrics` for the toy mixture ``dataset`` ("ring" or "grid")."""
    return mode_metrics(samples, mixture_means(dataset), mixture_std(dataset))


#: Published results (modes / % high quality / reverse KL; None where not reported):
#: PacGAN's table (GAN, ALI, PacGAN4) and VEEGAN's own table (VEEGAN, Unrolled GAN).
PUBLISHED: dict[str, dict[str, tuple[float, float, float | None]]] = {
    "GAN (PacGAN table)": {"ring": (6.3, 98.2, 0.45), "grid": (17.3, 94.8, 0.70)},
    "ALI (PacGAN table)": {"ring": (6.6, 97.6, 0.36), "grid": (24.1, 95.7, 0.14)},
    "PacGAN4 (PacGAN table)": {"ring": (7.8, 95.9, 0.07), "grid": (24.8, 93.6, 0.04)},
    "VEEGAN (its own table)": {"ring": (8.0, 52.9, None), "grid": (24.6, 40.0, None)},
    "Unrolled GAN (VEEGAN's table)": {"ring": (7.6, 35.6, None), "grid": (23.6, 16.0, None)},
}


def format_results_table(summary: list[dict], seconds: bool = True) -> str:
    """A fixed-width text table of a toy study's ``summary`` rows (mean +- std over seeds, as
    benchmarks/toy_modes.py writes them).

    With ``seconds``, the mean wall time and CPU time of one run are appended.
    """
    head = (f"{'dataset':7s} {'method':9s} {'seeds':>5s} {'G steps':>7s} {'modes':>13s} "
            f"{'% high quality':>14s} {'reverse KL':>13s} {'all modes':>9s}")
    if seconds:
        head += f" {'wall s':>6s} {'CPU s':>6s}"
    lines = [head]
    for row in summary:
        line = (f"{row['dataset']:7s} {row['method']:9s} {row['seeds']:5d} {row['steps']:7d} "
                f"{row['modes_mean']:6.1f} +-{row['modes_std']:4.1f} "
                f"{row['hq_mean']:6.1f} +-{row['hq_std']:5.1f} "
                f"{row['kl_mean']:5.2f} +-{row['kl_std']:5.2f} "
                f"{row['full_coverage']:>4d}/{row['seeds']:<4d}")
        if seconds:
            line += f" {row['seconds_mean']:6.0f} {row['cpu_seconds_mean']:6.0f}"
        if row["kl_undefined"]:
            line += f"  (KL undefined in {row['kl_undefined']})"
        lines.append(line)
    return "\n".join(lines)


def format_published_table() -> str:
    """The published numbers as a text table (modes / % high quality / reverse KL)."""

    def cell(values: tuple[float, float, float | None]) -> str:
        modes, hq, kl = values
        return f"{modes:g} / {hq:g} / {'-' if kl is None else f'{kl:g}'}"

    lines = [f"{'method':30s} {'ring (of 8)':>20s} {'grid (of 25)':>20s}"]
    for name, row in PUBLISHED.items():
        lines.append(f"{name:30s} {cell(row['ring']):>20s} {cell(row['grid']):>20s}")
    return "\n".join(lines)
