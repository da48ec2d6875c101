"""Figures for the 2-D toy GANs (notebook 04): samples, discriminator and gradient landscapes.

Every function here is a plain function of tensors/models; the live versions are wrapped by
:class:`sngan_edu.plots.live.LiveFigure` or :class:`sngan_edu.train.callbacks.LivePlot`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from sngan_edu.data.toy import mixture_means
from sngan_edu.lipschitz import evaluation_mode, gradient_norm_grid

EXTENTS = {"ring": 1.6, "grid": 5.0}  # half-width of the plotted square per dataset


def extent(dataset: str) -> float:
    """Half-width of the square shown for ``dataset``."""
    mixture_means(dataset)  # validates the name
    return EXTENTS[dataset]


@torch.no_grad()
def critic_landscape(D: nn.Module, half_width: float, n: int = 100) -> np.ndarray:
    """``D(x)`` on an ``n x n`` grid over ``[-half_width, half_width]^2`` (row = y, col = x).

    D runs in eval mode, so the spectral-norm power iteration does not advance.
    """
    device = next(D.parameters()).device
    axis = torch.linspace(-half_width, half_width, n, device=device)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=1)
    with evaluation_mode(D):
        values = D(points).reshape(n, n)
    return values.cpu().numpy()


def gradient_landscape(D: nn.Module, half_width: float, n: int = 100) -> np.ndarray:
    """``||grad_x D(x)||`` on the same grid as :func:`critic_landscape` (eval mode)."""
    lim = (-half_width, half_width)
    return gradient_norm_grid(D, lim, lim, n=n).numpy()


def draw_samples(
    ax: Axes,
    samples: torch.Tensor,
    dataset: str,
    title: str | None = None,
    max_points: int = 2500,
) -> None:
    """Generated points (blue dots) over the mixture's means (red crosses)."""
    half = extent(dataset)
    means = mixture_means(dataset)
    x = torch.as_tensor(samples)[:max_points].detach().cpu()
    ax.scatter(x[:, 0], x[:, 1], s=1.5, alpha=0.5, color="tab:blue", lw=0)
    ax.scatter(means[:, 0], means[:, 1], marker="x", s=14, color="tab:red", lw=1)
    ax.set_xlim(-half, half)
    ax.set_ylim(-half, half)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def pick_snapshots(
    snapshots: Sequence[tuple[int, torch.Tensor]], max_panels: int = 5
) -> list[tuple[int, torch.Tensor]]:
    """At most ``max_panels`` snapshots, evenly spaced in *steps* from the first to the last
    (the nearest snapshot to each target step, each at most once): a run of 333 steps
    snapshotted every 83 shows 0, 83, 166, 249, 333, not 332 and 333 side by side."""
    if not snapshots:
        return []
    steps = np.array([step for step, _ in snapshots], dtype=float)
    targets = np.linspace(steps[0], steps[-1], min(max_panels, len(snapshots)))
    picked = sorted({int(np.abs(steps - t).argmin()) for t in targets})
    return [snapshots[i] for i in picked]


def draw_sample_rows(
    fig: Figure,
    rows: Mapping[str, Sequence[tuple[str, torch.Tensor]]],
    dataset: str,
) -> None:
    """A table of scatter plots: one row per key of ``rows`` (its label on the left), one
    panel per ``(title, samples)`` of that row."""
    n_cols = max((len(panels) for panels in rows.values()), default=0)
    if not n_cols:
        return
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for r, (label, panels) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r][c]
            if c >= len(panels):
                ax.set_axis_off()
                continue
            title, samples = panels[c]
            draw_samples(ax, samples, dataset, title=title)
        axes[r][0].set_ylabel(label, fontsize=9)
    fig.tight_layout()


def draw_snapshots(
    fig: Figure,
    snapshots: Sequence[tuple[int, torch.Tensor]],
    dataset: str,
    label: str = "",
    max_panels: int = 5,
) -> None:
    """One row of sample scatter plots over training (e.g. ``SampleSnapshot.snapshots``),
    titled "step N", with ``label`` on the left."""
    picked = pick_snapshots(snapshots, max_panels)
    draw_sample_rows(fig, {label: [(f"step {step}", x) for step, x in picked]}, dataset)


def draw_landscapes(
    fig: Figure,
    D: nn.Module,
    dataset: str,
    samples: torch.Tensor | None = None,
    title: str | None = None,
    n: int = 90,
) -> None:
    """Two heat maps: the discriminator's output ``D(x)`` and its gradient norm ``||grad D(x)||``.

    Real means are crossed; generated ``samples`` (if given) are dotted on the first panel.
    """
    half = extent(dataset)
    means = mixture_means(dataset)
    ax_d, ax_g = fig.subplots(1, 2)
    box = (-half, half, -half, half)
    image = ax_d.imshow(critic_landscape(D, half, n), origin="lower", extent=box, cmap="viridis")
    fig.colorbar(image, ax=ax_d, fraction=0.046, pad=0.04)
    ax_d.set_title("D(x)", fontsize=9)
    grads = gradient_landscape(D, half, n)
    image = ax_g.imshow(grads, origin="lower", extent=box, cmap="magma")
    fig.colorbar(image, ax=ax_g, fraction=0.046, pad=0.04)
    ax_g.set_title("||grad D(x)||", fontsize=9)
    for ax in (ax_d, ax_g):
        ax.scatter(means[:, 0], means[:, 1], marker="x", s=12, color="tab:red", lw=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    if samples is not None:
        x = torch.as_tensor(samples)[:1000].detach().cpu()
        inside = (x.abs() <= half).all(dim=1)
        ax_d.scatter(x[inside, 0], x[inside, 1], s=1, color="white", alpha=0.5, lw=0)
        if not inside.all():  # say so, instead of letting the axes grow to show them
            outside = 100.0 * float((~inside).double().mean())
            ax_d.set_title(f"D(x); {outside:.0f}% of the samples off the map", fontsize=9)
    for ax in (ax_d, ax_g):
        ax.set_xlim(-half, half)
        ax.set_ylim(-half, half)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()


def draw_training(
    fig: Figure,
    samples: torch.Tensor,
    dataset: str,
    step: int,
    loss_d: Sequence[float],
    loss_g: Sequence[float],
    title: str = "",
) -> None:
    """Live view of one run: current samples (left) and both losses so far (right)."""
    ax_s, ax_l = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    draw_samples(ax_s, samples, dataset, title=f"{title} step {step}".strip())
    if loss_d:
        steps = np.arange(1, len(loss_d) + 1)
        ax_l.plot(steps, loss_d, lw=0.8, label="D loss")
        ax_l.plot(steps, loss_g, lw=0.8, label="G loss")
        ax_l.legend(fontsize=8)
    ax_l.set_xlabel("generator step")
    ax_l.set_title("losses", fontsize=9)
    fig.tight_layout()

