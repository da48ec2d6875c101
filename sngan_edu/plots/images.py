"""Sample grids and training-progress figures for image GANs (plain functions tests can call).

Images are tensors (N, C, H, W) in [-1, 1], as the generators produce them. Grids are made by
torchvision's ``make_grid``; :func:`save_grid` (which writes them as PNG files) lives in
:mod:`sngan_edu.data.grids`, where training runs use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from sngan_edu import regularizers
from sngan_edu.data.grids import GRID_NROW, GRID_PADDING, VALUE_RANGE
from sngan_edu.data.grids import save_grid as save_grid  # re-exported: tests/test_sweep.py
from sngan_edu.metrics.images import least_confident

REGULARIZER_LABELS = regularizers.labels()  # {"sn": "SN", ..., "none": "unnormalized"}


def grid_image(images: torch.Tensor, nrow: int = 8, padding: int = 1) -> torch.Tensor:
    """A (H, W, 3) float grid in [0, 1] for imshow, from images in [-1, 1]."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, normalize=True,
                     value_range=VALUE_RANGE, pad_value=1.0)
    return grid.permute(1, 2, 0).clamp(0, 1)


def show_grid(ax: Axes, images: torch.Tensor, nrow: int = 8, title: str | None = None) -> None:
    """Draw a grid of images on ``ax`` (nearest-neighbour, no axes)."""
    ax.imshow(grid_image(images, nrow).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def draw_real_and_fake(
    fig: Figure, real: torch.Tensor, fake: torch.Tensor, nrow: int = 8,
    titles: tuple[str, str] = ("real", "generated"),
) -> None:
    """Two grids side by side."""
    ax_real, ax_fake = fig.subplots(1, 2)
    show_grid(ax_real, real, nrow, titles[0])
    show_grid(ax_fake, fake, nrow, titles[1])
    fig.tight_layout()


def draw_least_confident(
    fig: Figure, images: torch.Tensor, probs: torch.Tensor, k: int = 16, ncols: int = 8
) -> torch.Tensor:
    """The ``k`` images a classifier is least sure about, each titled with its two likeliest
    classes and their probabilities; returns their indices (least sure first)."""
    order = least_confident(probs, k)
    axes = fig.subplots(-(-k // ncols), ncols, squeeze=False).flat
    top = probs[order].topk(2, dim=1)
    tiles = zip(order.tolist(), top.values.tolist(), top.indices.tolist(), strict=True)
    for ax, (i, p, c) in zip(axes, tiles, strict=False):  # the last row may have spare axes
        ax.imshow(grid_image(images[i : i + 1], nrow=1, padding=0).numpy(),
                  interpolation="nearest")
        ax.set_title(f"{c[0]} {p[0]:.2f}\n{c[1]} {p[1]:.2f}", fontsize=7)
    for ax in fig.axes:
        ax.set_axis_off()
    return order


def _smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average (window shrinks at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def draw_progress(
    fig: Figure,
    step: int,
    samples: torch.Tensor,
    loss_d: Sequence[float],
    loss_g: Sequence[float],
    metrics: Sequence[Mapping[str, float]] = (),
    nrow: int = 4,
) -> None:
    """Live training view: current samples, smoothed losses, and classifier scores so far.

    ``metrics`` rows look like ``{"step": s, "classes": c, "confidence": p, ...}``. Pass few
    samples (16, 4 per row): in a figure about 3 inches tall each digit is then drawn at about
    three times its size.
    """
    ax_img, ax_loss, ax_metric = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1, 1]})
    show_grid(ax_img, samples, nrow, f"samples at step {step}")
    if loss_d:
        window = max(1, len(loss_d) // 50)
        steps = range(1, len(loss_d) + 1)
        ax_loss.plot(steps, _smooth(loss_d, window), lw=1, label="D loss")
        ax_loss.plot(steps, _smooth(loss_g, window), lw=1, label="G loss")
        ax_loss.legend(fontsize=7)
    ax_loss.set_xlabel("generator step")
    ax_loss.set_title("losses (smoothed)", fontsize=9)
    rows = [r for r in metrics if "classes" in r]
    if rows:
        xs = [r["step"] for r in rows]
        ax_metric.plot(xs, [r["classes"] / 10 for r in rows], "o-", ms=3, label="classes / 10")
        ax_metric.plot(xs, [r["confidence"] for r in rows], "s-", ms=3, label="confidence")
        ax_metric.set_ylim(0, 1.05)
        ax_metric.legend(fontsize=7, loc="lower right")
    ax_metric.set_xlabel("generator step")
    ax_metric.set_title("classifier scores", fontsize=9)
    fig.tight_layout()


def draw_trainer_progress(fig: Figure, trainer, n: int = 16, seed: int = 1234) -> None:
    """:func:`draw_progress` for a :class:`sngan_edu.train.Trainer` (a LivePlot draw function).

    Samples come from ``trainer.sample(n, seed)``: a private fixed noise batch, so drawing does
    not change the training run.
    """
    history = trainer.history
    draw_progress(fig, trainer.step, trainer.sample(n, seed=seed), history["loss_d"],
                  history["loss_g"], history.get("metrics", ()))


def _sweep_cells(rows: Sequence[Mapping]) -> tuple[list, list, dict]:
    """The settings (sorted), the regularizers (first-seen order) and each (setting,
    regularizer)'s row of a sweep table."""
    settings = sorted({r["setting"] for r in rows})
    regs = list(dict.fromkeys(r["regularizer"] for r in rows))
    return settings, regs, {(r["setting"], r["regularizer"]): r for r in rows}


def draw_sweep(
    fig: Figure, rows: Sequence[Mapping], metrics: Sequence[str] = ("fd", "confidence"),
    labels: Mapping[str, str] | None = None,
) -> None:
    """A robustness study as bars: one panel per metric, grouped bars per setting, one bar
    per regularizer (the mean over seeds, with a black line from the lowest to the highest
    seed); runs that failed (diverged) are marked with a red x. The legend sits below the
    panels, where it covers no bar.

    ``rows`` come from :func:`sngan_edu.experiments.sweep.sweep_table`.
    """
    labels = labels or REGULARIZER_LABELS
    settings, regs, cell = _sweep_cells(rows)
    width = 0.8 / max(len(regs), 1)
    axes = fig.subplots(1, len(metrics))
    axes = [axes] if len(metrics) == 1 else list(axes)
    for ax, metric in zip(axes, metrics, strict=True):
        for j, reg in enumerate(regs):
            for i, setting in enumerate(settings):
                row = cell.get((setting, reg))
                x = i + (j - (len(regs) - 1) / 2) * width
                if row is None:
                    continue
                if row.get(metric) is None:
                    ax.plot(x, 0, "x", color="tab:red", ms=8, mew=2)
                else:
                    ax.bar(x, row[metric], width, color=f"C{j}",
                           label=labels.get(reg, reg) if i == 0 else None)
                    low, high = row.get(f"{metric}_range") or (row[metric],) * 2
                    if high > low:  # several seeds: a line from the lowest to the highest
                        ax.plot([x, x], [low, high], color="k", lw=1)
        ax.set_xticks(range(len(settings)), settings)
        ax.set_xlabel("setting")
        ax.set_title({"fd": "Fréchet distance (lower is better)",
                      "confidence": "mean confidence (higher is better)",
                      "classes": "classes covered (of 10)"}.get(metric, metric), fontsize=9)
        if metric == "fd":
            ax.set_yscale("log")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=max(len(names), 1), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))


def top_grid_rows(
    grid: torch.Tensor, n_rows: int, nrow: int = GRID_NROW, padding: int = GRID_PADDING
) -> torch.Tensor:
    """The first ``n_rows`` rows of tiles of a (C, H, W) grid written by :func:`save_grid`
    (``nrow`` tiles per row, ``padding`` pixels between them), padding included."""
    tile = (grid.shape[-1] - padding) // nrow  # one tile plus its padding
    return grid[..., : padding + n_rows * tile, :]


def draw_sweep_samples(
    fig: Figure, rows: Sequence[Mapping], grids: Mapping[str, torch.Tensor], seed: int = 0,
    labels: Mapping[str, str] | None = None, grid_rows: int | None = 2,
    grid_cols: int | None = None,
) -> None:
    """Each sweep cell's final samples: one row of panels per setting, one column per
    regularizer, titled with the cell's classes and Fréchet distance from ``rows`` (means over
    seeds; the samples shown are seed ``seed``'s). A panel stays blank if its run kept no grid.

    ``rows`` come from :func:`sngan_edu.experiments.sweep.sweep_table`; ``grids`` (uint8,
    (C, H, W), keyed by run name) from :func:`sngan_edu.experiments.sweep.load_sample_grids`;
    only the first ``grid_rows`` rows of samples and the first ``grid_cols`` samples of each row
    are drawn (None: all), which keeps a stored figure light and the digits big.
    """
    from sngan_edu.experiments.sweep import (
        run_name,  # (the sweep imports papermill: only when drawing)
    )

    labels = labels or REGULARIZER_LABELS
    settings, regs, cell = _sweep_cells(rows)
    axes = fig.subplots(len(settings), len(regs), squeeze=False)
    for i, setting in enumerate(settings):
        for j, reg in enumerate(regs):
            ax = axes[i][j]
            ax.set_axis_off()
            grid = grids.get(run_name(setting, reg, seed))
            row = cell.get((setting, reg))
            if grid is not None:
                if grid_rows is not None:
                    grid = top_grid_rows(grid, grid_rows)
                if grid_cols is not None:
                    tile = (grid.shape[-1] - GRID_PADDING) // GRID_NROW
                    grid = grid[..., : GRID_PADDING + grid_cols * tile]
                ax.imshow(grid.permute(1, 2, 0).squeeze(2).numpy(), cmap="gray", vmin=0,
                          vmax=255, interpolation="nearest")
            title = f"{setting} · {labels.get(reg, reg)}"
            if row is not None and row.get("fd") is not None:
                # a mean over seeds: one decimal (20/3 -> 6.7), none when whole (10)
                title += f": {round(row['classes'], 1):g} classes, FD {row['fd']:.0f}"
            elif row is not None:
                title += ": failed"
            ax.set_title(title, fontsize=8)
    fig.tight_layout()


def draw_sweep_lipschitz(fig: Figure, watches: Sequence, labels: Mapping[str, str] | None = None,
                         ) -> None:
    """D's scale during short runs, per setting, with and without SN: left, the product of the
    layer factors (the layer-wise bound on D's Lipschitz constant); middle, the largest layer
    factor (a dotted line at 1, SN's target); right, the mean gradient norm on generated
    samples. Colour by regularizer (as in :func:`draw_sweep`; a third colour for a run whose D
    started with every layer at sigma 1, ``init="unit"``), line style by setting.

    ``watches`` are :class:`sngan_edu.experiments.lipschitz_runs.DiscriminatorWatch` records.
    """
    labels = labels or REGULARIZER_LABELS
    # the order draw_sweep's table gives, then the runs started at sigma 1
    kinds = sorted({(getattr(w, "init", "paper") == "unit", w.regularizer) for w in watches})
    settings = sorted({w.setting for w in watches})
    styles = ["-", "--", ":", "-."]
    panels = [("product", "product of layer sigmas (bound)", "log"),
              ("largest_layer", "largest layer sigma", "linear"),
              ("grad_fake", "mean ||grad_x D|| on generated", "log")]
    axes = fig.subplots(1, len(panels))
    for ax, (attr, title, scale) in zip(axes, panels, strict=True):
        for w in watches:
            unit = getattr(w, "init", "paper") == "unit"
            name = labels.get(w.regularizer, w.regularizer) + (", init at sigma 1" if unit else "")
            ax.plot(w.steps, getattr(w, attr), lw=1.2,
                    color=f"C{kinds.index((unit, w.regularizer))}",
                    ls=styles[settings.index(w.setting) % len(styles)],
                    label=f"{w.setting}, {name}")
        ax.set_yscale(scale)
        ax.set_xlabel("generator step")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[1].axhline(1.0, color="0.5", lw=0.8, ls=":")  # SN's target for every layer
    handles, names = axes[0].get_legend_handles_labels()
    ncol = max(len(names), 1) if len(names) <= 4 else (len(names) + 1) // 2
    fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08 if ncol == len(names) else 0.14, 1, 1))
