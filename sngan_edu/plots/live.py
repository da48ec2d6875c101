"""Figures that redraw in place while a cell runs.

A LiveFigure is displayed once with a ``display_id`` and then updated in place. In JupyterLab
it animates; papermill stores the last frame; nbval sees exactly one output whatever the number
of updates, so live plots stay regression-testable. Drawing is done by plain functions passed in,
so tests can call them without a browser.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from sngan_edu.train.callbacks import Callback, check_every

if TYPE_CHECKING:
    from sngan_edu.train.trainer import Trainer


def figure_png(fig: Figure) -> bytes:
    """Render a matplotlib figure to PNG bytes at its own dpi."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


class LiveFigure:
    """A matplotlib figure shown once and redrawn in place.

    ``draw(fig, *args, **kwargs)`` is a plain function that clears and redraws the figure.
    """

    def __init__(self, draw: Callable[..., None], figsize: tuple[float, float] = (7.0, 3.2)):
        self.draw = draw
        self.fig = plt.figure(figsize=figsize)
        plt.close(self.fig)  # keep the inline backend from showing it a second time
        self._handle = None

    def _image(self):
        from IPython.display import Image

        return Image(data=figure_png(self.fig), format="png")

    def update(self, *args, **kwargs) -> None:
        """Redraw with new data; the first call displays the figure, later calls replace it."""
        self.fig.clf()
        self.draw(self.fig, *args, **kwargs)
        if self._handle is None:
            from IPython.display import display

            self._handle = display(self._image(), display_id=True)
        else:
            self._handle.update(self._image())


class LivePlot(Callback):
    """A training callback: redraw a :class:`LiveFigure` every ``every`` steps.

    ``draw(fig, trainer)`` draws on the figure.

    ``draw`` is a plain function (tests can call it with a trainer); the figure is displayed once
    and then updated in place, so a notebook keeps exactly one output.
    """

    def __init__(
        self,
        every: int,
        draw: Callable[[Figure, Trainer], None],
        figsize: tuple[float, float] = (7.0, 3.2),
        at_start: bool = False,
    ):
        self.every = check_every(every)
        self.live = LiveFigure(draw, figsize=figsize)
        self.at_start = at_start

    def on_train_begin(self, trainer: Trainer) -> None:
        if self.at_start:
            self.live.update(trainer)

    def on_step(self, trainer: Trainer) -> None:
        trainer.sync()  # bring the loss history up to date before drawing it
        self.live.update(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        trainer.sync()
        self.live.update(trainer)
