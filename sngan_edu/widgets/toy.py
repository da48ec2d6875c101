"""Notebook 04's snapshot explorer: pick a method and a training step, see the generator's samples.

The snapshots come from :class:`sngan_edu.train.callbacks.SampleSnapshot` (one list per method); the
widget only picks one and draws it with :func:`sngan_edu.plots.toy.draw_samples` into an
``ipywidgets.Image``, so a headless run stores the picture and nbval ignores it. The metrics in the
title come from :func:`sngan_edu.metrics.toy.toy_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch

from sngan_edu.checks import check_choice
from sngan_edu.metrics.toy import toy_metrics
from sngan_edu.plots.live import figure_png
from sngan_edu.plots.toy import draw_samples
from sngan_edu.widgets.explorer import MethodStepExplorer

Snapshots = Sequence[tuple[int, torch.Tensor]]


def snapshot_title(method: str, step: int, samples: torch.Tensor, dataset: str) -> str:
    """"method, step s: m/K modes, q% high quality" for one snapshot."""
    m = toy_metrics(samples, dataset)
    return f"{method}, step {step}: {m.modes}/{m.n_modes} modes, {m.high_quality:.0f}% high quality"


def snapshot_png(samples: torch.Tensor, dataset: str, title: str, size: float = 3.6) -> bytes:
    """One scatter plot of ``samples`` over the mixture's means, as PNG bytes."""
    fig = plt.figure(figsize=(size, size))
    try:
        draw_samples(fig.add_subplot(1, 1, 1), samples, dataset, title=title)
        fig.tight_layout()
        return figure_png(fig)
    finally:
        plt.close(fig)


class SnapshotExplorer(MethodStepExplorer):
    """Toggle buttons for the method, a slider over the snapshot steps, and the scatter plot."""

    def __init__(self, snapshots: Mapping[str, Snapshots], dataset: str) -> None:
        self.snapshots = {k: {int(s): x for s, x in v} for k, v in snapshots.items() if v}
        if not self.snapshots:
            raise ValueError("snapshots must map at least one method to a non-empty list")
        self.dataset = dataset
        methods = list(self.snapshots)
        steps = sorted({s for per_method in self.snapshots.values() for s in per_method})
        self._build(methods, methods[0], steps)

    def nearest_step(self, method: str, step: int) -> int:
        """The snapshot step of ``method`` closest to ``step`` (methods may differ in length)."""
        check_choice("method", method, self.snapshots)
        return min(self.snapshots[method], key=lambda s: (abs(s - step), s))

    def png(self, method: str, step: int) -> bytes:
        """The scatter plot of one (method, step) as PNG bytes (plain function, no widget)."""
        step = self.nearest_step(method, step)
        samples = self.snapshots[method][step]
        title = snapshot_title(method, step, samples, self.dataset)
        return snapshot_png(samples, self.dataset, title)
