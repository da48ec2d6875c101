"""Notebook 01's power-iteration explorer: sliders around the convergence experiment.

:func:`sngan_edu.experiments.convergence.convergence_experiment` does all the computing;
:class:`PowerIterationExplorer` only wires sliders to it and redraws a
:class:`sngan_edu.plots.live.LiveFigure` with :func:`sngan_edu.plots.spectral.draw_convergence`.
"""

from __future__ import annotations

from sngan_edu.experiments.convergence import ConvergenceExperiment, convergence_experiment


class PowerIterationExplorer:
    """Sliders for iterations, the ratio sigma2/sigma1 and matrix size driving a live plot.

    ``show()`` displays the controls and the figure; moving a slider calls
    :func:`convergence_experiment` and redraws the figure in place. Works headless: the first
    frame is drawn by ``show()`` itself.
    """

    def __init__(self, n_iters: int = 30, ratio: float = 0.8, size: int = 64, seed: int = 0):
        import ipywidgets as widgets

        from sngan_edu.plots.live import LiveFigure
        from sngan_edu.plots.spectral import draw_convergence

        self.seed = seed
        style = {"description_width": "initial"}
        self.n_iters = widgets.IntSlider(
            value=n_iters, min=1, max=100, description="iterations k", style=style
        )
        self.ratio = widgets.FloatSlider(
            value=ratio, min=0.5, max=0.99, step=0.01, description="ratio sigma2/sigma1",
            style=style,
        )
        self.size = widgets.IntSlider(
            value=size, min=4, max=256, step=4, description="matrix size", style=style
        )
        self.controls = widgets.VBox([self.n_iters, self.ratio, self.size])
        self.figure = LiveFigure(draw_convergence, figsize=(8.0, 3.2))
        self.result: ConvergenceExperiment | None = None
        for slider in (self.n_iters, self.ratio, self.size):
            slider.observe(self._on_change, names="value")

    def _on_change(self, _change: dict) -> None:
        self.refresh()

    def refresh(self) -> ConvergenceExperiment:
        """Recompute with the current slider values and redraw; returns the experiment."""
        self.result = convergence_experiment(
            self.n_iters.value, self.ratio.value, self.size.value, self.seed
        )
        self.figure.update(self.result)
        return self.result

    def show(self) -> None:
        """Display the sliders, then the figure (first frame drawn now)."""
        from IPython.display import display

        display(self.controls)
        self.refresh()
