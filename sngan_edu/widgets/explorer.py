"""The layout the snapshot explorers share: toggle buttons for a method, a slider over training
steps, and the picture of that (method, step) in an ``ipywidgets.Image``.

The picture lives in the widget itself (no output capturing), so a headless run stores it and
nbval ignores it. A subclass says what the picture is (:meth:`MethodStepExplorer.png`, a plain
function tests call without a browser) and calls :meth:`MethodStepExplorer._build`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any


class MethodStepExplorer:
    """Toggle buttons for the method, a slider over the steps, and the picture they select."""

    def _build(self, methods: Sequence[Any], method: str, steps: Sequence[int]) -> None:
        """Make the widgets (``methods``: the buttons' options, ``method`` the one selected;
        the slider starts at the last of ``steps``) and draw the first picture."""
        import ipywidgets as widgets

        self.method = widgets.ToggleButtons(options=list(methods), value=method)
        self.step = widgets.SelectionSlider(
            options=list(steps), value=steps[-1], description="step", continuous_update=False
        )
        self.image = widgets.Image(format="png")
        self.method.observe(self._on_change, names="value")
        self.step.observe(self._on_change, names="value")
        self.widget = widgets.VBox([self.method, self.step, self.image])
        self.redraw()

    def png(self, method: str, step: int) -> bytes:
        """The picture of one (method, step) as PNG bytes."""
        raise NotImplementedError

    def redraw(self) -> None:
        self.image.value = self.png(self.method.value, self.step.value)

    def _on_change(self, _change) -> None:
        self.redraw()

    def _repr_mimebundle_(self, **kwargs):
        """The widget, plus its current picture as a static PNG: a front end with widgets
        (JupyterLab, Colab, VS Code) shows the widget; a rendered page without a kernel
        (GitHub, nbviewer, the demo's HTML) shows the picture instead of "VBox(...)"."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if self.image.value:
            data["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        return bundle
