"""Figures for notebook 01 (sigma, SVD, power iteration). Plain functions; tests call them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from sngan_edu.experiments.convergence import DriftTracking

_FLOOR = 1e-17  # log plots: exact zeros (converged to rounding) are drawn at this floor


def _label_beyond(ax: Axes, tip: Tensor, text: str, color: str) -> None:
    """Write ``text`` just beyond the arrow tip, on the far side from the origin, on a white
    box, so that it overlaps neither the arrow nor the curve it ends on."""
    x, y = float(tip[0]), float(tip[1])
    norm = max((x * x + y * y) ** 0.5, 1e-12)
    dx, dy = x / norm, y / norm
    ax.annotate(
        text,
        xy=(x, y),
        xytext=(14 * dx, 14 * dy),
        textcoords="offset points",
        ha="left" if dx > 0.3 else ("right" if dx < -0.3 else "center"),
        va="bottom" if dy > 0.3 else ("top" if dy < -0.3 else "center"),
        color=color,
        fontsize=10,
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
    )


def plot_unit_circle_map(W: Tensor, fig: Figure | None = None) -> Figure:
    """Left: the unit circle with the right singular vectors v1, v2. Right: its image under the
    2x2 matrix W, an ellipse whose semi-axes are sigma1 u1 and sigma2 u2.

    Labels sit beyond the arrow tips on white boxes; the singular values are in the right
    panel's title, so no label carries a number.
    """
    if not isinstance(W, Tensor) or tuple(W.shape) != (2, 2):
        raise ValueError(f"W must be a 2x2 tensor; got {getattr(W, 'shape', type(W))}")
    W = W.detach().double()
    U, S, Vh = torch.linalg.svd(W)
    theta = torch.linspace(0, 2 * torch.pi, 200, dtype=torch.float64)
    circle = torch.stack([theta.cos(), theta.sin()])
    ellipse = W @ circle
    fig = fig if fig is not None else plt.figure(figsize=(7.6, 3.6))
    left, right = fig.subplots(1, 2)
    left.plot(circle[0], circle[1], color="0.4")
    right.plot(ellipse[0], ellipse[1], color="0.4")
    colors = ("C3", "C0")
    arrow = {"arrowstyle": "->", "lw": 2}
    for i in range(2):
        v, u = Vh[i], U[:, i] * S[i]
        left.annotate("", xy=(float(v[0]), float(v[1])), xytext=(0, 0),
                      arrowprops={**arrow, "color": colors[i]})
        _label_beyond(left, v, f"$v_{i + 1}$", colors[i])
        right.annotate("", xy=(float(u[0]), float(u[1])), xytext=(0, 0),
                       arrowprops={**arrow, "color": colors[i]})
        _label_beyond(right, u, f"$\\sigma_{i + 1} u_{i + 1}$", colors[i])
    lim = 1.45 * max(1.0, float(S[0]))
    values = f"$\\sigma_1$ = {float(S[0]):.2f}, $\\sigma_2$ = {float(S[1]):.2f}"
    titles = ((left, "unit circle $\\|x\\| = 1$"), (right, f"its image $Wx$: {values}"))
    for ax, title in titles:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=10)
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
    left.set_title(f"ratio $\\sigma_2/\\sigma_1$ = {experiment.ratio:.2f}")
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


def plot_ratio_comparison(experiments: Sequence, ax: Axes | None = None) -> Axes:
    """Relative error of the sigma estimate vs k, one colour per ratio sigma2/sigma1.

    Dots: measured. Solid line: the exact prediction from the start vector. Dashed line: the
    pure rate ratio^(4k), drawn from 1 at k = 0 so that it stays apart from the data and only
    its slope is compared. A second legend explains the three line styles.
    """
    from matplotlib.lines import Line2D

    ax = ax if ax is not None else plt.figure(figsize=(6.6, 3.8)).gca()
    for i, exp in enumerate(experiments):
        color = f"C{i}"
        k = torch.arange(1, len(exp.estimate) + 1, dtype=torch.float64)
        ax.semilogy(k, exp.rel_error.abs().clamp_min(_FLOOR), "o", ms=3, color=color,
                    label=f"ratio {exp.ratio:.2f}")
        ax.semilogy(k, exp.rel_error_theory.clamp_min(_FLOOR), "-", color=color, lw=1)
        ax.semilogy(k, (exp.ratio ** (4 * k)).clamp_min(_FLOOR), "--", color=color, lw=1.6)
    ax.set_ylim(1e-17, 10)
    ax.set_xlabel("iteration k")
    ax.set_ylabel("$(\\sigma_1 - \\hat\\sigma_k) / \\sigma_1$")
    colours = ax.legend(fontsize=8, loc="upper right", title="colour", title_fontsize=8)
    ax.add_artist(colours)
    styles = [
        Line2D([], [], color="0.3", marker="o", ls="", ms=4, label="measured"),
        Line2D([], [], color="0.3", ls="-", lw=1, label="exact prediction"),
        Line2D([], [], color="0.3", ls="--", lw=1.6, label="rate $(\\sigma_2/\\sigma_1)^{4k}$"),
    ]
    ax.legend(handles=styles, fontsize=8, loc="lower left", title="style", title_fontsize=8)
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
    :func:`sngan_edu.experiments.sigma_timing.time_sigma_methods`."""
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


def plot_disjoint_supports(
    optimal,
    critics: Mapping[str, Tensor] | None = None,
    slope_at_fake: float | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Notebook 01's opening picture: real and fake data as two narrow bumps on a line.

    Left: the optimal discriminator D* (an :class:`~sngan_edu.experiments.critics.OptimalD1D`),
    about 0 on the fake bump and 1 on the real one, flat at the fake samples. Right: critics
    given as values on ``optimal.x`` (name -> tensor), e.g. the best 1-Lipschitz critic and a
    trained SN critic; ``slope_at_fake`` draws the gradient the generator gets there as an
    arrow pointing from the fake bump towards the real one.
    """
    fig = fig if fig is not None else plt.figure(figsize=(9.0, 3.4))
    left, right = fig.subplots(1, 2)
    x = optimal.x.numpy()
    fake_x = float(optimal.x[int(optimal.fake_density.argmax())])

    def bumps(ax: Axes, base: float, height: float) -> None:
        for density, color, label in ((optimal.real_density, "tab:green", "real data"),
                                      (optimal.fake_density, "tab:red", "fake data")):
            top = base + height * (density / density.max()).numpy()
            ax.fill_between(x, base, top, color=color, alpha=0.25, lw=0, label=label)
        ax.set_xlabel("x")

    bumps(left, 0.0, 1.0)
    left.plot(x, optimal.d_star.numpy(), color="k", lw=2, label="optimal $D^*(x)$")
    left.annotate("$D^*$ is flat here:\ngradient $\\approx 0$", xy=(fake_x, 0.02),
                  xytext=(fake_x - 0.8, 0.55), fontsize=9,
                  arrowprops={"arrowstyle": "->", "color": "0.3"})
    left.set_ylim(-0.05, 1.15)
    left.set_ylabel("D(x)")
    left.set_title("no constraint: the optimal discriminator", fontsize=10)
    left.legend(fontsize=8, loc="center right")
    right.set_title("1-Lipschitz: the slope joins fake to real", fontsize=10)
    right.set_ylabel("critic value")
    if critics:
        curves = {name: torch.as_tensor(v).detach().double().flatten().numpy()
                  for name, v in critics.items()}
        low = min(float(v.min()) for v in curves.values())
        high = max(float(v.max()) for v in curves.values())
        span = max(high - low, 1e-9)
        bumps(right, low - 0.15 * span, 0.45 * span)
        for i, (name, values) in enumerate(curves.items()):
            right.plot(x, values, color=f"C{i}", lw=1.5 if i == 0 else 2,
                       ls="--" if i == 0 else "-", label=name)
        right.set_ylim(low - 0.17 * span, high + 0.1 * span)
        if slope_at_fake is not None:
            y0 = low + 0.02 * span
            length = 1.5 * max(min(float(slope_at_fake), 2.0), 0.0)
            right.annotate("", xy=(fake_x + length, y0), xytext=(fake_x, y0),
                           arrowprops={"arrowstyle": "-|>", "color": "tab:red", "lw": 2})
            right.text(fake_x + 0.25, y0 - 0.1 * span, f"slope {slope_at_fake:.2f}: towards real",
                       color="tab:red", fontsize=9)
        right.legend(fontsize=8, loc="upper left", framealpha=0.9)
    fig.tight_layout()
    return fig
