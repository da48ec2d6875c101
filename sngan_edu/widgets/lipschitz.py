"""Notebook 02's landscape explorer: pick a method and a training step, see ||grad D|| over
the plane.

All grids are computed beforehand (:func:`sngan_edu.experiments.critics.snapshot_landscapes`);
the widget (:class:`sngan_edu.widgets.explorer.MethodStepExplorer`) only picks one and draws it
with :func:`sngan_edu.plots.lipschitz.render_landscape`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from sngan_edu.plots.lipschitz import METHOD_LABELS, landscape_title, render_landscape
from sngan_edu.widgets.explorer import MethodStepExplorer


class LandscapeExplorer(MethodStepExplorer):
    """Toggle buttons for the method, a slider over snapshot steps, and the heat map."""

    def __init__(
        self,
        grids: Mapping[tuple[str, int], torch.Tensor],
        extent: tuple[float, float, float, float],
        real: torch.Tensor | None = None,
        fake: torch.Tensor | None = None,
    ) -> None:
        if not grids:
            raise ValueError("grids must hold at least one (method, step) -> grid entry")
        self.grids, self.extent, self.real, self.fake = dict(grids), extent, real, fake
        methods = list(dict.fromkeys(m for m, _ in self.grids))
        steps = sorted({s for _, s in self.grids})
        self._build([(METHOD_LABELS.get(m, m), m) for m in methods], methods[-1], steps)

    def png(self, method: str, step: int) -> bytes:
        """The heat map of one (method, step) as PNG bytes (plain function, no widget)."""
        if (method, step) not in self.grids:
            raise ValueError(f"no grid for method={method!r}, step={step!r}")
        grid = self.grids[(method, step)]
        title = landscape_title(method, step, grid)
        return render_landscape(grid, self.extent, title, self.real, self.fake)
