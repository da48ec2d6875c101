"""Notebook 02's landscape explorer: pick a method and a training step, see ||grad D|| over
the plane.

All grids are computed beforehand (:func:`sngan_edu.lipschitz.snapshot_landscapes`); the
widget only picks one and draws it with :func:`sngan_edu.plots.lipschitz.render_landscape`
into an ``ipywidgets.Image``. The picture lives in the widget itself (no output capturing),
so a headless run stores it and nbval ignores it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from sngan_edu.plots.lipschitz import METHOD_LABELS, landscape_title, render_landscape


class LandscapeExplorer:
    """Toggle buttons for the method, a slider over snapshot steps, and the heat map."""

    def __init__(
        self,
        grids: Mapping[tuple[str, int], torch.Tensor],
        extent: tuple[float, float, float, float],
        real: torch.Tensor | None = None,
        fake: torch.Tensor | None = None,
    ) -> None:
        import ipywidgets as widgets

        if not grids:
            raise ValueError("grids must hold at least one (method, step) -> grid entry")
        self.grids, self.extent, self.real, self.fake = dict(grids), extent, real, fake
        methods = list(dict.fromkeys(m for m, _ in self.grids))
        steps = sorted({s for _, s in self.grids})
        self.method = widgets.ToggleButtons(
            options=[(METHOD_LABELS.get(m, m), m) for m in methods], value=methods[-1]
        )
        self.step = widgets.SelectionSlider(
            options=steps, value=steps[-1], description="step", continuous_update=False
        )
        self.image = widgets.Image(format="png")
        self.method.observe(self._on_change, names="value")
        self.step.observe(self._on_change, names="value")
        self.widget = widgets.VBox([self.method, self.step, self.image])
        self.redraw()

    def png(self, method: str, step: int) -> bytes:
        """The heat map of one (method, step) as PNG bytes (plain function, no widget)."""
        if (method, step) not in self.grids:
            raise ValueError(f"no grid for method={method!r}, step={step!r}")
        grid = self.grids[(method, step)]
        title = landscape_title(method, step, grid)
        return render_landscape(grid, self.extent, title, self.real, self.fake)

    def redraw(self) -> None:
        self.image.value = self.png(self.method.value, self.step.value)

    def _on_change(self, _change) -> None:
        self.redraw()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
