"""Notebook 03's live sigma demo: a small SN discriminator trains while its sigmas are plotted.

:func:`sngan_edu.experiments.sigma_demo.train_sigma_demo` does all the computing;
:class:`SigmaDemoControls` wires a slider for power iterations per step to it and shows the
result in an ``ipywidgets.Image``, so the widget carries its own picture (no output capturing) and a
headless run (papermill, nbval) needs no browser.
"""

from __future__ import annotations

from sngan_edu.experiments.sigma_demo import SigmaHistory, max_normalized_sigma, train_sigma_demo


def render_sigma_history(
    history: SigmaHistory,
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 3.2),
    log_excess: bool = True,
) -> bytes:
    """PNG bytes of :func:`sngan_edu.plots.sigma.draw_sigma_history` (for an Image widget),
    by default with sigma(W / estimate) - 1 on a log scale, as notebook 03 draws it."""
    import matplotlib.pyplot as plt

    from sngan_edu.plots.live import figure_png
    from sngan_edu.plots.sigma import draw_sigma_history

    fig = plt.figure(figsize=figsize)
    try:
        draw_sigma_history(fig, history, title=title, log_excess=log_excess)
        return figure_png(fig)
    finally:
        plt.close(fig)


def demo_title(n_power_iterations: int, history: SigmaHistory) -> str:
    """Figure title: settings and the largest sigma of a normalized weight after step 0."""
    worst = max_normalized_sigma(history)
    return f"{n_power_iterations} power iteration(s) per step: max sigma(W/estimate) {worst:.3f}"


class SigmaDemoControls:
    """A slider for power iterations per step; moving it retrains and redraws live.

    The plot is an ``ipywidgets.Image`` refreshed at every recorded step while the demo
    trains. ``initial`` (a history computed beforehand, e.g. by the cell above) is shown
    first, so creating the widget trains nothing.
    """

    def __init__(
        self,
        initial: SigmaHistory | None = None,
        n_power_iterations: int = 1,
        steps: int = 200,
        seed: int = 0,
        max_iterations: int = 10,
    ) -> None:
        import ipywidgets as widgets

        self.steps, self.seed = steps, seed
        self.slider = widgets.IntSlider(
            value=n_power_iterations,
            min=1,
            max=max_iterations,
            description="power its/step",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self.status = widgets.Label()
        self.image = widgets.Image(format="png")
        self.history = initial
        if initial is not None:
            self.image.value = render_sigma_history(
                initial, demo_title(n_power_iterations, initial)
            )
            self.status.value = "Move the slider to retrain with another number of iterations."
        self.slider.observe(self._on_change, names="value")
        self.widget = widgets.VBox([self.slider, self.status, self.image])

    def run(self, n_power_iterations: int) -> SigmaHistory:
        """Retrain with ``n_power_iterations`` and redraw at every recorded step."""
        title = f"{n_power_iterations} power iteration(s) per step"

        def show(step: int, history: SigmaHistory) -> None:
            self.status.value = f"training... step {step}/{self.steps}"
            self.image.value = render_sigma_history(history, title)

        self.history = train_sigma_demo(
            n_power_iterations, steps=self.steps, seed=self.seed, callback=show
        )
        self.image.value = render_sigma_history(
            self.history, demo_title(n_power_iterations, self.history)
        )
        self.status.value = "done."
        return self.history

    def _on_change(self, change) -> None:
        self.run(change["new"])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
