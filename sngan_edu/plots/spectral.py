"""Figures for notebook 01 (sigma, SVD, power iteration). Plain functions; tests call them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from sngan_edu.spectral import DriftTracking

_FLOOR = 1e-17  # log plots: exact zeros (converged to rounding) are drawn at this floor


def plot_unit_circle_map(W: Tensor, fig: Figure | None = None) -> Figure:
    """Left: the unit circle with the right singular vectors v1, v2. Right: its image under the
    2x2 matrix W, an ellipse whose semi-axes are sigma1 u1 and sigma2 u2."""
    if not isinstance(W, Tensor) or tuple(W.shape) != (2, 2):
        raise ValueError(f"W must be a 2x2 tensor; got {getattr(W, 'shape', type(W))}")
    W = W.detach().double()
    U, S, Vh = torch.linalg.svd(W)
    theta = torch.linspace(0, 2 * torch.pi, 200, dtype=torch.float64)
    circle = torch.stack([theta.cos(), theta.sin()])
    ellipse = W @ circle
    fig = fig if fig is not None else plt.figure(figsize=(7.0, 3.4))
    left, right = fig.subplots(1, 2)
    left.plot(circle[0], circle[1], color="0.4")
    right.plot(ellipse[0], ellipse[1], color="0.4")
    colors = ("C3", "C0")
    for i in range(2):
        v, u = Vh[i], U[:, i] * S[i]
        left.annotate(
            "",
            xy=(float(v[0]), float(v[1])),
            xytext=(0, 0),
            arrowprops={"arrowstyle": "->", "color": colors[i], "lw": 2},
        )
        left.text(1.1 * float(v[0]), 1.1 * float(v[1]), f"$v_{i + 1}$", color=colors[i])
        right.annotate(
            "",
            xy=(float(u[0]), float(u[1])),
            xytext=(0, 0),
            arrowprops={"arrowstyle": "->", "color": colors[i], "lw": 2},
        )
        right.text(
            1.08 * float(u[0]),
            1.08 * float(u[1]),
            f"$\\sigma_{i + 1} u_{i + 1}$ ({float(S[i]):.2f})",
            color=colors[i],
        )
    lim = 1.25 * max(1.0, float(S[0]))
    for ax, title in ((left, "unit circle $\\|x\\| = 1$"), (right, "its image $Wx$")):
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(title)
    fig.tight_layout()
    return fig


def draw_convergence(fig: Figure, experiment) -> None:
    """Draw a :class:`~sngan_edu.widgets.power_iteration.ConvergenceExperiment` into ``fig``:
    the estimate approaching sigma (left), errors against theory on a log scale (right)."""
    left, right = fig.subplots(1, 2)
    k = torch.arange(1, len(experiment.estimate) + 1)
    left.plot(k, experiment.estimate, "o-", ms=3, label="estimate $u_k^T W v_k$")
    left.axhline(experiment.sigma, color="k", ls="--", lw=1, label="true $\\sigma_1$ (SVD)")
    left.set_xlabel("iteration k")
    left.set_title(f"gap $\\sigma_2/\\sigma_1$ = {experiment.gap:.2f}")
    left.legend(loc="lower right", fontsize=8)
    curves = (  # (values, marker or line, colour, label): measured as markers, theory as lines
        (experiment.rel_error.abs(), "o", "C0", "sigma rel. error"),
        (experiment.rel_error_theory, "-", "C0", "theory, $\\sim(\\sigma_2/\\sigma_1)^{4k}$"),
        (experiment.angle, "s", "C1", "$\\sin\\angle(u_k, u_1)$"),
        (experiment.angle_theory, "-", "C1", "theory, $\\sim(\\sigma_2/\\sigma_1)^{2k}$"),
    )
    for values, style, color, label in curves:
        size = {"lw": 1} if style == "-" else {"ms": 3}
        right.semilogy(k, values.clamp_min(_FLOOR), style, color=color, label=label, **size)
    right.set_ylim(bottom=1e-17, top=3)
    right.set_xlabel("iteration k")
    right.legend(fontsize=7, loc="lower left")
    fig.tight_layout()


def plot_gap_comparison(experiments: Sequence, ax: Axes | None = None) -> Axes:
    """Relative error of the sigma estimate vs k for several gaps: measured dots, theory lines,
    and the pure rate (sigma2/sigma1)^(4k) dashed (scaled to meet the theory at the end)."""
    ax = ax if ax is not None else plt.figure(figsize=(6.0, 3.6)).gca()
    for i, exp in enumerate(experiments):
        color = f"C{i}"
        k = torch.arange(1, len(exp.estimate) + 1, dtype=torch.float64)
        ax.semilogy(
            k,
            exp.rel_error.abs().clamp_min(_FLOOR),
            "o",
            ms=3,
            color=color,
            label=f"gap {exp.gap:.2f}",
        )
        ax.semilogy(k, exp.rel_error_theory.clamp_min(_FLOOR), "-", color=color, lw=1)
        # the asymptotic rate, anchored where the theory is still well above rounding
        ok = (exp.rel_error_theory > 1e-13).nonzero()
        j = int(ok[-1]) if len(ok) else 0
        rate = exp.rel_error_theory[j] * exp.gap ** (4 * (k - k[j]))
        ax.semilogy(k, rate.clamp_min(_FLOOR), "--", color=color, lw=0.8, alpha=0.7)
    ax.set_ylim(1e-17, 10)
    ax.set_xlabel("iteration k")
    ax.set_ylabel("$(\\sigma_1 - \\hat\\sigma_k) / \\sigma_1$")
    ax.set_title(
        "dots: measured, lines: theory, dashed: rate $(\\sigma_2/\\sigma_1)^{4k}$", fontsize=9
    )
    ax.legend(fontsize=8)
    return ax


def plot_tracking(runs: Mapping[str, DriftTracking], ax: Axes | None = None) -> Axes:
    """Relative error of sigma estimates along a simulated training run, one line per method."""
    ax = ax if ax is not None else plt.figure(figsize=(6.0, 3.4)).gca()
    for name, run in runs.items():
        ax.semilogy(run.steps, run.rel_error.abs().clamp_min(_FLOOR), label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("$|\\sigma - \\hat\\sigma| / \\sigma$")
    ax.legend(fontsize=8)
    return ax


def plot_timings(rows: Sequence[Mapping[str, float]], ax: Axes | None = None) -> Axes:
    """Median seconds per call vs matrix size, one line per method timed by
    :func:`sngan_edu.spectral.time_sigma_methods`."""
    ax = ax if ax is not None else plt.figure(figsize=(6.0, 3.4)).gca()
    sizes = [row["m"] * row["n"] for row in rows]
    labels = {
        "svdvals": "svdvals(W)",
        "exact": "exact sigma (spectral_norm_exact)",
        "svd": "full SVD",
        "power_step": "one power iteration",
    }
    for key, label in labels.items():
        if key in rows[0]:
            ax.loglog(sizes, [row[key] for row in rows], "o-", label=label)
    ax.set_xlabel("matrix entries m*n")
    ax.set_ylabel("median seconds")
    ax.legend(fontsize=8)
    return ax


def plot_spectra(spectra: Mapping[str, Tensor], ax: Axes | None = None) -> Axes:
    """Singular values (descending) of several matrices on one log axis."""
    ax = ax if ax is not None else plt.figure(figsize=(6.0, 3.4)).gca()
    for name, values in spectra.items():
        values = torch.as_tensor(values).detach().flatten()
        ax.semilogy(torch.arange(1, len(values) + 1), values, "o-", ms=3, label=name)
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("index i")
    ax.set_ylabel("singular value $\\sigma_i$")
    ax.legend(fontsize=8)
    return ax
