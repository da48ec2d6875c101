"""Notebook 07's "draw me a digit": pick a class and a noise seed, see G draw it.

:func:`requested_png` is the plain function behind the widget (tests call it without a
browser): ``n`` samples of one class from the noise of one seed
(:func:`sngan_edu.metrics.conditional.generate_classes`), drawn as one row. :class:`DigitPicker`
holds the picture in an ``ipywidgets.Image``, so a headless run stores it and nbval ignores it.
"""

from __future__ import annotations

import base64

import matplotlib.pyplot as plt
import torch
from torch import nn

from sngan_edu.checks import check_int
from sngan_edu.metrics.conditional import generate_classes
from sngan_edu.plots.images import show_grid
from sngan_edu.plots.live import figure_png


def requested_samples(generator: nn.Module, digit: int, seed: int, z_dim: int,
                      n: int = 8, num_classes: int = 10) -> torch.Tensor:
    """``n`` samples ``G(z, digit)``, z from the noise of ``seed`` (eval mode, on the CPU)."""
    check_int("digit", digit, 0, num_classes - 1)
    check_int("seed", seed, 0)
    labels = torch.full((check_int("n", n),), digit, dtype=torch.long)
    return generate_classes(generator, labels, z_dim, seed=seed)


def requested_png(generator: nn.Module, digit: int, seed: int, z_dim: int, n: int = 8,
                  num_classes: int = 10) -> bytes:
    """:func:`requested_samples` as one row of pictures, PNG bytes."""
    samples = requested_samples(generator, digit, seed, z_dim, n, num_classes)
    fig = plt.figure(figsize=(0.8 * n, 1.15))
    try:
        show_grid(fig.add_subplot(1, 1, 1), samples, nrow=n,
                  title=f"G asked for a {digit}, noise seed {seed}")
        return figure_png(fig)
    finally:
        plt.close(fig)


class DigitPicker:
    """Buttons for the digit, a slider for the noise seed, and G's row of samples."""

    def __init__(self, generator: nn.Module, z_dim: int, digit: int = 7, seed: int = 0,
                 n: int = 8, num_classes: int = 10) -> None:
        import ipywidgets as widgets

        self.generator, self.z_dim, self.n, self.num_classes = generator, z_dim, n, num_classes
        self.digit = widgets.ToggleButtons(options=list(range(num_classes)), value=digit,
                                           description="digit",
                                           style={"button_width": "2.2em"})
        self.seed = widgets.IntSlider(value=seed, min=0, max=99, description="noise seed",
                                      continuous_update=False)
        self.image = widgets.Image(format="png")
        self.digit.observe(self._on_change, names="value")
        self.seed.observe(self._on_change, names="value")
        self.widget = widgets.VBox([self.digit, self.seed, self.image])
        self.redraw()

    def png(self, digit: int, seed: int) -> bytes:
        return requested_png(self.generator, digit, seed, self.z_dim, self.n, self.num_classes)

    def redraw(self) -> None:
        self.image.value = self.png(self.digit.value, self.seed.value)

    def _on_change(self, _change) -> None:
        self.redraw()

    def _repr_mimebundle_(self, **kwargs):
        """The widget, and its picture as a static PNG for a page without a kernel."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        return bundle


__all__ = ["DigitPicker", "requested_png", "requested_samples"]
