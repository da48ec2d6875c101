"""Per-layer sigma plots for training with spectral normalization (live or static).

The history format, shared with the training notebooks (built by
:func:`sngan_edu.sn.record_sigma_history`)::

    history: dict[layer_name, list[(step, estimate, exact_raw, normalized)]]

``estimate`` is the running power-iteration value u^T W v, ``exact_raw`` the SVD sigma of the
raw weight, ``normalized`` the SVD sigma of the weight the forward pass uses (W / estimate);
the last two may be NaN when only cheap estimates were logged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

SigmaHistory = Mapping[str, Sequence[tuple[int, float, float, float]]]

_EXCESS_FLOOR = 1e-5  # log_excess: values closer to 1 than this are drawn at the floor


def _colors(n: int) -> list:
    """One colour per layer: a qualitative palette (tab10) up to ten layers, so that
    neighbouring layers differ; a colour map beyond."""
    import matplotlib.pyplot as plt

    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    cmap = plt.get_cmap("viridis")
    return [cmap(i / max(n - 1, 1) * 0.9) for i in range(n)]


def _has_values(records, index: int) -> bool:
    return any(not math.isnan(r[index]) for r in records)


def draw_sigma_history(
    fig: Figure,
    history: SigmaHistory,
    title: str | None = None,
    band: tuple[float, float] = (1.0, 1.05),
    log_excess: bool = False,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Two panels: left, each layer's running estimate (solid) and exact raw sigma (dashed);
    right, sigma of the normalized weight, with the paper's 1 to 1.05 band shaded.

    ``log_excess=True`` draws the right panel as sigma(W / estimate) - 1 on a log scale (from
    1e-5, where the layers are normalized to float precision, to 1), so that the lag of every
    layer stays visible after the estimates have caught up; the band is then below 0.05.
    ``labels``: legend names for the layers (e.g. :func:`sngan_edu.sn.layer_roles`); a layer
    missing from it keeps its module name.
    A draw function for :class:`sngan_edu.plots.live.LiveFigure` (``fig`` is cleared by the caller).
    """
    labels = labels or {}
    ax_raw, ax_norm = fig.subplots(1, 2)
    layers = list(history)
    colors = _colors(len(layers))
    for name, color in zip(layers, colors, strict=True):
        records = history[name]
        if not records:
            continue
        steps = [r[0] for r in records]
        ax_raw.plot(steps, [r[1] for r in records], color=color, lw=1.4,
                    label=labels.get(name, name))
        if _has_values(records, 2):
            ax_raw.plot(steps, [r[2] for r in records], color=color, lw=1.0, ls="--")
        if _has_values(records, 3):
            values = [r[3] for r in records]
            if log_excess:
                values = [max(v - 1.0, _EXCESS_FLOOR) for v in values]
            ax_norm.plot(steps, values, color=color, lw=1.2, label=labels.get(name, name))
    ax_raw.set_xlabel("step")
    ax_raw.set_ylabel("sigma of the raw weight")
    ax_raw.set_title("estimate u^T W v (solid), exact (dashed)", fontsize=9)
    ax_norm.set_xlabel("step")
    if log_excess:
        ax_norm.set_yscale("log")
        ax_norm.axhspan(_EXCESS_FLOOR, band[1] - 1.0, color="tab:green", alpha=0.12, lw=0,
                        label=f"within {band[1]:g}")
        ax_norm.set_ylim(_EXCESS_FLOOR, 1.0)
        ax_norm.set_ylabel("sigma(W / estimate) - 1")
        ax_norm.set_title(f"normalized weight: excess over 1 (shaded: up to {band[1]:g})",
                          fontsize=9)
    else:
        ax_norm.axhspan(*band, color="tab:green", alpha=0.12, lw=0)
        ax_norm.axhline(1.0, color="k", lw=0.8)
        ax_norm.set_ylabel("sigma(W / estimate)")
        ax_norm.set_title("normalized weight (1 = exact)", fontsize=9)
    if layers:
        ax_raw.legend(fontsize=7, ncol=2, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
