"""Figures of notebook 02 (Lipschitz constraints); plain functions that tests can call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sngan_edu import regularizers

METHOD_LABELS = regularizers.labels("description")  # "sn": "spectral norm", ...
METHOD_COLORS = regularizers.labels("color")


def _new_fig(fig: Figure | None, figsize: tuple[float, float]) -> Figure:
    return fig if fig is not None else plt.figure(figsize=figsize)


def plot_lipschitz_cone(
    f: Callable[[np.ndarray], np.ndarray],
    K: float,
    points: Sequence[float],
    xlim: tuple[float, float] = (-3.0, 3.0),
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """A 1-D function and, at each point x0, the double cone |y - f(x0)| <= K |x - x0|.

    f is K-Lipschitz exactly when its graph never leaves any of these cones. Parts of the graph
    outside a cone are drawn in red. ``title`` defaults to the cone's slope.
    """
    ax = ax if ax is not None else plt.figure(figsize=(5.5, 3.2)).gca()
    x = np.linspace(*xlim, 400)
    y = f(x)
    ax.plot(x, y, color="k", lw=1.8, label="f")
    outside = np.zeros_like(x, dtype=bool)
    for x0 in points:
        y0 = float(f(np.array([x0]))[0])
        ax.fill_between(x, y0 - K * np.abs(x - x0), y0 + K * np.abs(x - x0), color="tab:blue",
                        alpha=0.15, lw=0, label=f"cone of slope {K:g}")
        ax.plot([x0], [y0], "o", ms=5, color="tab:blue")
        outside |= np.abs(y - y0) > K * np.abs(x - x0) + 1e-12
    if outside.any():
        ax.plot(x, np.where(outside, y, np.nan), color="tab:red", lw=3, label="outside the cone")
    pad = 0.3 * (y.max() - y.min() + 1e-9)
    ax.set_ylim(y.min() - pad, y.max() + pad)
    ax.set_xlim(*xlim)
    ax.set_title(title if title is not None else f"cone of slope K = {K:g}", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_activations(fig: Figure | None = None) -> Figure:
    """ReLU, leaky ReLU (0.1) and tanh with their derivatives: all slopes lie in [-1, 1]."""
    fig = _new_fig(fig, (8.0, 2.8))
    x = torch.linspace(-3, 3, 601, requires_grad=True)
    acts = {
        "ReLU": torch.relu,
        "leaky ReLU (0.1)": lambda t: torch.nn.functional.leaky_relu(t, 0.1),
        "tanh": torch.tanh,
    }
    axes = fig.subplots(1, len(acts), sharey=True)
    for ax, (name, act) in zip(axes, acts.items(), strict=True):
        y = act(x)
        (slope,) = torch.autograd.grad(y.sum(), x)
        xs = x.detach().numpy()
        ax.plot(xs, y.detach().numpy(), color="k", lw=1.6, label="f(x)")
        ax.plot(xs, slope.numpy(), color="tab:red", lw=1.2, ls="--", label="f'(x)")
        ax.axhspan(-1, 1, color="tab:green", alpha=0.08, lw=0)
        ax.set_title(f"{name}: max |f'| = {slope.abs().max().item():g}", fontsize=9)
        ax.set_ylim(-1.6, 3.1)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_ratio_histogram(
    ratios: torch.Tensor, sigma: float, ax: Axes | None = None, bins: int = 40
) -> Axes:
    """Histogram of ||W x|| / ||x|| over random x, with sigma(W) marked."""
    ax = ax if ax is not None else plt.figure(figsize=(5.5, 3.0)).gca()
    ax.hist(ratios.numpy(), bins=bins, color="tab:blue", alpha=0.7)
    ax.axvline(sigma, color="tab:red", lw=1.5, label=f"sigma(W) = {sigma:.3f}")
    ax.set_xlabel("||W x|| / ||x|| for random x")
    ax.legend(fontsize=8)
    return ax


def plot_bound_vs_measured(
    rows: Sequence[Mapping[str, float]], ax: Axes | None = None, log: bool = True
) -> Axes:
    """Grouped bars per method: measured gradient-norm lower bound vs the product upper bound.

    ``rows``: dicts with keys "method", "measured", "bound".
    """
    ax = ax if ax is not None else plt.figure(figsize=(6.0, 3.2)).gca()
    x = np.arange(len(rows))
    measured = [r["measured"] for r in rows]
    bound = [r["bound"] for r in rows]
    ax.bar(x - 0.2, measured, 0.4, label="measured max ||grad D|| (lower bound)", color="tab:blue")
    ax.bar(x + 0.2, bound, 0.4, label="product of layer sigmas (upper bound)", color="tab:orange")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, [METHOD_LABELS.get(r["method"], r["method"]) for r in rows], fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel("Lipschitz constant")
    ax.legend(fontsize=7)
    return ax


def plot_conv_norms(rows: Sequence, ax: Axes | None = None) -> Axes:
    """Per conv layer: reshaped-kernel sigma vs the true operator norm (and the upper bound).

    ``rows``: dicts with "layer" (a label, e.g. from :func:`sngan_edu.layer_info.layer_role`),
    "reshaped", "operator", "upper". Labels are placed under the bars, one layer per group.
    """
    ax = ax if ax is not None else plt.figure(figsize=(7.5, 3.4)).gca()
    x = np.arange(len(rows))
    ax.bar(x - 0.27, [r["reshaped"] for r in rows], 0.27, label="reshaped kernel sigma")
    ax.bar(x, [r["operator"] for r in rows], 0.27, label="true operator norm")
    ax.bar(x + 0.27, [r["upper"] for r in rows], 0.27, label="upper bound", alpha=0.5)
    ax.set_xticks(x, [str(r["layer"]).replace(" ", "\n", 1) for r in rows], fontsize=8)
    ax.set_ylabel("Lipschitz constant of the layer")
    ax.legend(fontsize=7)
    return ax


def plot_singular_spectra(
    spectra: Mapping[str, torch.Tensor], ax: Axes | None = None, normalize: bool = True
) -> Axes:
    """Singular values (sorted, largest first) of one weight matrix per method.

    ``normalize``: divide by the largest so only the SHAPE of the spectrum is compared.
    """
    ax = ax if ax is not None else plt.figure(figsize=(5.5, 3.2)).gca()
    for method, s in spectra.items():
        s = s.detach().double()
        values = (s / s[0]) if normalize else s
        ax.plot(
            np.arange(1, len(values) + 1),
            values.numpy(),
            marker=".",
            ms=3,
            lw=1.2,
            color=METHOD_COLORS.get(method),
            label=METHOD_LABELS.get(method, method),
        )
    ax.set_yscale("log")
    ax.set_xlabel("index i")
    ax.set_ylabel("sigma_i / sigma_1" if normalize else "sigma_i")
    ax.legend(fontsize=7)
    return ax


def draw_gradient_landscape(
    ax: Axes,
    grid: torch.Tensor,
    extent: tuple[float, float, float, float],
    title: str = "",
    vmax: float | None = None,
    real: torch.Tensor | None = None,
    fake: torch.Tensor | None = None,
) -> None:
    """Heat map of ``||grad_x D(x)||`` on a 2-D plane (``grid`` rows are y) with the data."""
    values = grid.numpy()
    vmax = vmax if vmax is not None else max(float(values.max()), 1e-12)
    im = ax.imshow(
        values, origin="lower", extent=extent, cmap="magma", vmin=0.0, vmax=vmax, aspect="auto"
    )
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=30, color="tab:cyan", edgecolors="k", lw=0.6,
                   label="real")
    if fake is not None:
        ax.scatter(fake[:, 0], fake[:, 1], s=8, color="white", edgecolors="k", lw=0.4,
                   label="fake")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)


def plot_landscapes(
    grids: Mapping[str, torch.Tensor],
    extent: tuple[float, float, float, float],
    real: torch.Tensor | None = None,
    fake: torch.Tensor | None = None,
    fig: Figure | None = None,
    ncols: int = 2,
) -> Figure:
    """One heat map per method on a grid of ``ncols`` columns, each with its own colour scale
    (the title gives the max); real samples cyan, fake samples white, both outlined."""
    n = len(grids)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = _new_fig(fig, (4.3 * ncols, 3.6 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, (method, grid) in zip(axes[:n], grids.items(), strict=True):
        title = f"{METHOD_LABELS.get(method, method)}: max {float(grid.max()):.3g}"
        draw_gradient_landscape(ax, grid, extent, title, real=real, fake=fake)
    for ax in axes[n:]:
        ax.remove()
    if real is not None or fake is not None:
        axes[0].legend(fontsize=8, loc="lower left", framealpha=0.9)
    fig.tight_layout()
    return fig


def render_landscape(
    grid: torch.Tensor,
    extent: tuple[float, float, float, float],
    title: str,
    real: torch.Tensor | None = None,
    fake: torch.Tensor | None = None,
    figsize: tuple[float, float] = (4.2, 3.4),
) -> bytes:
    """PNG bytes of one landscape heat map (for an ``ipywidgets.Image``)."""
    from sngan_edu.plots.live import figure_png

    fig = plt.figure(figsize=figsize)
    try:
        draw_gradient_landscape(fig.gca(), grid, extent, title, real=real, fake=fake)
        fig.tight_layout()
        return figure_png(fig)
    finally:
        plt.close(fig)


def landscape_title(method: str, step: int, grid: torch.Tensor) -> str:
    """Title used by the landscape explorer."""
    peak = float(grid.max())
    return f"{METHOD_LABELS.get(method, method)}, step {step}: max ||grad|| {peak:.3g}"
