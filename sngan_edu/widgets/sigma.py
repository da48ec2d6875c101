"""Notebook 03's live sigma demo: a small SN discriminator trains while its sigmas are plotted.

:func:`train_sigma_demo` does all the computing (tests call it); :class:`SigmaDemoControls`
wires a slider for power iterations per step to it and shows the result in an
``ipywidgets.Image``, so the widget carries its own picture (no output capturing) and a
headless run (papermill, nbval) needs no browser.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sngan_edu import sn
from sngan_edu.models.standard_cnn import Discriminator

SigmaHistory = sn.SigmaHistory


def smooth_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Stand-in "real" images: smooth random colour fields in [-1, 1], shape (n, 3, size, size)."""
    coarse = torch.randn(n, 3, 4, 4, generator=generator)
    return torch.tanh(F.interpolate(coarse, size=(size, size), mode="bilinear"))


def noise_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Stand-in "fake" images: pixel noise in [-1, 1]."""
    return torch.tanh(0.8 * torch.randn(n, 3, size, size, generator=generator))


def train_sigma_demo(
    n_power_iterations: int = 1,
    steps: int = 200,
    seed: int = 0,
    lr: float = 1e-3,
    batch_size: int = 32,
    image_size: int = 16,
    width: float = 0.125,
    record_every: int = 10,
    callback: Callable[[int, SigmaHistory], None] | None = None,
) -> SigmaHistory:
    """Train the standard CNN discriminator with SN to tell smooth images from noise.

    Vanilla GAN loss (mean BCE on the real half plus mean BCE on the fake half), with real and
    fake in one concatenated batch so each step runs exactly ``n_power_iterations`` power
    iterations per layer; Adam(lr, betas=(0.5, 0.999)). Every ``record_every`` steps (and at step 0)
    each layer's sigmas are appended to the history (:func:`sngan_edu.sn.record_sigma_history`)
    and ``callback(step, history)`` is called, e.g. to update a live plot. The large default
    learning rate moves the weights fast, so the one-iteration estimate visibly lags a little.
    """
    if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, int):
        raise ValueError(f"n_power_iterations must be an integer >= 1; got {n_power_iterations!r}")
    if n_power_iterations < 1:
        raise ValueError(f"n_power_iterations must be >= 1; got {n_power_iterations}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0; got {steps!r}")
    if isinstance(record_every, bool) or not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"record_every must be an integer >= 1; got {record_every!r}")
    torch.manual_seed(seed)
    D = Discriminator(
        image_size=image_size,
        width=width,
        spectral_norm=True,
        n_power_iterations=n_power_iterations,
    )
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    data = torch.Generator().manual_seed(seed + 1)
    history: SigmaHistory = {}
    labels = torch.cat((torch.ones(batch_size), torch.zeros(batch_size)))  # real, then fake
    for step in range(steps + 1):
        if step % record_every == 0 or step == steps:
            sn.record_sigma_history(history, D, step)
            if callback is not None:
                callback(step, history)
        if step == steps:
            break
        real = smooth_images(batch_size, image_size, data)
        fake = noise_images(batch_size, image_size, data)
        # ONE forward on real and fake together: every SN forward runs a power iteration, so
        # D(real) then D(fake) would run two per step and score the halves with different weights.
        logits = D(torch.cat((real, fake)))
        loss = F.binary_cross_entropy_with_logits(
            logits[:batch_size], labels[:batch_size]
        ) + F.binary_cross_entropy_with_logits(logits[batch_size:], labels[batch_size:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return history


def final_normalized_sigmas(history: SigmaHistory) -> dict[str, float]:
    """The last recorded sigma(W / estimate) of each layer."""
    return {name: records[-1][3] for name, records in history.items() if records}


def max_normalized_sigma(history: SigmaHistory, after_step: int = 0) -> float:
    """The largest sigma(W / estimate) over all layers and records after ``after_step``."""
    values = [r[3] for records in history.values() for r in records if r[0] > after_step]
    return max(values) if values else float("nan")


def render_sigma_history(
    history: SigmaHistory, title: str | None = None, figsize: tuple[float, float] = (8.0, 3.2)
) -> bytes:
    """PNG bytes of :func:`sngan_edu.plots.sigma.draw_sigma_history` (for an Image widget)."""
    import matplotlib.pyplot as plt

    from sngan_edu.live import figure_png
    from sngan_edu.plots.sigma import draw_sigma_history

    fig = plt.figure(figsize=figsize)
    try:
        draw_sigma_history(fig, history, title=title)
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
