"""Notebook 01's power-iteration explorer: a plain experiment function and the widget around it.

:func:`convergence_experiment` does all the computing (tests call it directly);
:class:`PowerIterationExplorer` only wires sliders to it and redraws a
:class:`sngan_edu.live.LiveFigure` with :func:`sngan_edu.plots.spectral.draw_convergence`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from sngan_edu.spectral import matrix_with_singular_values, power_iteration


class ConvergenceExperiment(NamedTuple):
    """Power iteration on a matrix with a chosen gap sigma2/sigma1, against theory.

    All curves are indexed by k = 1..n_iters (iterations done).
    """

    gap: float  # sigma2 / sigma1
    sigma: float  # true sigma1 (= 1 by construction)
    estimate: Tensor  # u_k^T W v_k
    rel_error: Tensor  # (sigma - estimate) / sigma, measured
    rel_error_theory: Tensor  # the same, predicted exactly from the start vector and the SVD
    angle: Tensor  # sin of the angle between u_k and the top left singular vector, measured
    angle_theory: Tensor  # the same, predicted
    singular_values: Tensor


def spectrum_with_gap(gap: float, size: int) -> Tensor:
    """Singular values 1, gap, then ``size - 2`` values spread below 0.9 * gap (down to 0.05)."""
    rest = torch.linspace(0.9 * gap, 0.05, max(size - 2, 0), dtype=torch.float64)
    return torch.cat([torch.tensor([1.0, gap], dtype=torch.float64), rest])[:size]


def convergence_experiment(
    n_iters: int = 30, gap: float = 0.8, size: int = 64, seed: int = 0
) -> ConvergenceExperiment:
    """Run ``n_iters`` power iterations on a size x size matrix with sigma1 = 1, sigma2 = gap.

    Theory: with u_0 = sum_i a_i u_i, after k iterations u_k is proportional to
    sum_i a_i sigma_i^(2k) u_i, so the angle to u_1 shrinks like (sigma2/sigma1)^(2k), and the
    estimate is sqrt(sum a_i^2 sigma_i^(4k) / sum a_i^2 sigma_i^(4k-2)), whose relative error
    shrinks like (sigma2/sigma1)^(4k): twice as fast on a log scale.
    """
    if isinstance(n_iters, bool) or not isinstance(n_iters, int) or not 1 <= n_iters <= 10_000:
        raise ValueError(f"n_iters must be an integer in [1, 10000]; got {n_iters!r}")
    if not (isinstance(gap, (int, float)) and 0 < gap < 1):
        raise ValueError(f"gap must be a number in (0, 1) (sigma2/sigma1); got {gap!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= 2048:
        raise ValueError(f"size must be an integer in [2, 2048]; got {size!r}")
    generator = torch.Generator().manual_seed(seed)
    s = spectrum_with_gap(float(gap), size)
    W = matrix_with_singular_values(s, generator=generator)
    U, _, _ = torch.linalg.svd(W)
    u1 = U[:, 0]
    u = torch.randn(size, generator=generator, dtype=torch.float64)
    a2 = (U.t() @ (u / u.norm())) ** 2  # squared coordinates of the start in the singular basis

    estimates, angles = [], []
    for _ in range(n_iters):  # one call per iteration, carrying u: the same as n_iters at once
        result = power_iteration(W, u=u, n_iters=1)
        u = result.u
        estimates.append(float(result.sigma))
        angles.append(float(torch.linalg.vector_norm(u - (u @ u1) * u1)))

    k = torch.arange(1, n_iters + 1, dtype=torch.float64)[:, None]
    r = s[None, :] / s[0]
    num = a2 * r ** (4 * k)
    den = a2 * r ** (4 * k - 2)
    x = num.sum(1) / den.sum(1)
    # 1 - sqrt(x) computed without cancellation: (1 - x) / (1 + sqrt(x))
    one_minus_x = (den - num).sum(1) / den.sum(1)
    rel_theory = one_minus_x / (1 + x.sqrt())
    tan = (a2[1:] * r[:, 1:] ** (4 * k)).sum(1).sqrt() / math.sqrt(float(a2[0]))
    estimate = torch.tensor(estimates, dtype=torch.float64)
    return ConvergenceExperiment(
        gap=float(gap),
        sigma=1.0,
        estimate=estimate,
        rel_error=1.0 - estimate,
        rel_error_theory=rel_theory,
        angle=torch.tensor(angles, dtype=torch.float64),
        angle_theory=tan / (1 + tan**2).sqrt(),
        singular_values=s,
    )


class PowerIterationExplorer:
    """Sliders for iterations, spectral gap and matrix size driving a live convergence plot.

    ``show()`` displays the controls and the figure; moving a slider calls
    :func:`convergence_experiment` and redraws the figure in place. Works headless: the first
    frame is drawn by ``show()`` itself.
    """

    def __init__(self, n_iters: int = 30, gap: float = 0.8, size: int = 64, seed: int = 0):
        import ipywidgets as widgets

        from sngan_edu.live import LiveFigure
        from sngan_edu.plots.spectral import draw_convergence

        self.seed = seed
        style = {"description_width": "initial"}
        self.n_iters = widgets.IntSlider(
            value=n_iters, min=1, max=100, description="iterations k", style=style
        )
        self.gap = widgets.FloatSlider(
            value=gap, min=0.5, max=0.99, step=0.01, description="gap sigma2/sigma1", style=style
        )
        self.size = widgets.IntSlider(
            value=size, min=4, max=256, step=4, description="matrix size", style=style
        )
        self.controls = widgets.VBox([self.n_iters, self.gap, self.size])
        self.figure = LiveFigure(draw_convergence, figsize=(8.0, 3.2))
        self.result: ConvergenceExperiment | None = None
        for slider in (self.n_iters, self.gap, self.size):
            slider.observe(self._on_change, names="value")

    def _on_change(self, _change: dict) -> None:
        self.refresh()

    def refresh(self) -> ConvergenceExperiment:
        """Recompute with the current slider values and redraw; returns the experiment."""
        self.result = convergence_experiment(
            self.n_iters.value, self.gap.value, self.size.value, self.seed
        )
        self.figure.update(self.result)
        return self.result

    def show(self) -> None:
        """Display the sliders, then the figure (first frame drawn now)."""
        from IPython.display import display

        display(self.controls)
        self.refresh()
