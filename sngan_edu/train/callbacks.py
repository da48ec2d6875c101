"""Callbacks for :class:`sngan_edu.train.trainer.Trainer`: sigma logging, snapshots, metrics.

A callback runs every ``every`` generator steps (``on_step``), plus once before and after
training. With no callbacks the training loop does no extra work at all. Callbacks must not
draw from the trainer's random generators (they would change the training run); those that
need randomness own a ``torch.Generator``.

Write your own by subclassing :class:`Callback`; the live plot callback is
:class:`sngan_edu.plots.live.LivePlot`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from sngan_edu.checks import check_int

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only

    from sngan_edu.train.trainer import Trainer


class Callback:
    """Base class: override the hooks you need. ``every`` is in generator steps (>= 1)."""

    every: int = 1

    def on_train_begin(self, trainer: Trainer) -> None:
        """Called once when ``fit`` starts (after a resume has been loaded)."""

    def on_step(self, trainer: Trainer) -> None:
        """Called after generator step ``trainer.step`` when it is a multiple of ``every``."""

    def on_train_end(self, trainer: Trainer) -> None:
        """Called once when ``fit`` returns normally."""


def check_every(every: int) -> int:
    """``every`` if it is a positive integer (generator steps); else a ValueError naming it."""
    return check_int("every", every)


class SigmaLogger(Callback):
    """Record the discriminator's per-layer sigmas every ``every`` steps (and at step 0).

    Uses :func:`sngan_edu.sn.record_sigma_history`, so ``trainer.history["sigma"]`` has the
    format :func:`sngan_edu.plots.sigma.draw_sigma_history` draws:
    ``{layer_name: [(step, estimate, exact_raw, normalized), ...]}``. ``estimate`` is the
    running power-iteration value u^T W v that SN divides by (no extra iteration, no buffer
    change). ``exact=True`` adds the SVD sigma of the raw weight and of the normalized weight
    (cheap for small models); otherwise those two fields are NaN. Saved in checkpoints.
    """

    def __init__(self, every: int = 50, exact: bool = False):
        self.every = check_every(every)
        self.exact = exact

    def _log(self, trainer: Trainer) -> None:
        from sngan_edu.sigma_report import record_sigma_history

        history = trainer.history["sigma"]
        if any(records and records[-1][0] == trainer.step for records in history.values()):
            return
        record_sigma_history(history, trainer.D, trainer.step, exact=self.exact)

    def on_train_begin(self, trainer: Trainer) -> None:
        if trainer.step == 0:  # the starting point of the curves (a resumed run already has it)
            self._log(trainer)

    def on_step(self, trainer: Trainer) -> None:
        self._log(trainer)


class SampleSnapshot(Callback):
    """Keep generator samples from a fixed z every ``every`` steps, in ``self.snapshots``.

    ``snapshots`` is a list of ``(step, samples_on_cpu)``. The generator is run under no_grad
    in eval mode; the samples use a private, fixed noise batch, so the training run is unchanged.
    """

    def __init__(self, every: int = 500, n: int = 64, seed: int = 1234, at_start: bool = True):
        self.every = check_every(every)
        if n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        self.n = n
        self.seed = seed
        self.at_start = at_start
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self._z: torch.Tensor | None = None

    def _take(self, trainer: Trainer) -> None:
        if self.snapshots and self.snapshots[-1][0] == trainer.step:
            return
        if self._z is None:
            gen = torch.Generator().manual_seed(self.seed)
            self._z = torch.randn(self.n, trainer.config.z_dim, generator=gen)
        self.snapshots.append((trainer.step, trainer.generate(self._z)))

    def on_train_begin(self, trainer: Trainer) -> None:
        if self.at_start:
            self._take(trainer)

    def on_step(self, trainer: Trainer) -> None:
        self._take(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        self._take(trainer)


class MetricEval(Callback):
    """Evaluate ``fn(trainer) -> dict[str, float]`` every ``every`` steps.

    Results go to ``trainer.history["metrics"]`` as ``{"step": s, **metrics}`` (saved in
    checkpoints). ``fn`` should sample with its own generator, e.g. ``trainer.sample(n, seed=0)``.
    """

    def __init__(self, every: int, fn: Callable[[Trainer], dict[str, float]], at_end: bool = True):
        self.every = check_every(every)
        self.fn = fn
        self.at_end = at_end

    def _eval(self, trainer: Trainer) -> None:
        rows = trainer.history["metrics"]
        if rows and rows[-1]["step"] == trainer.step:
            return
        values = self.fn(trainer)
        rows.append({"step": trainer.step, **{k: float(v) for k, v in values.items()}})

    def on_step(self, trainer: Trainer) -> None:
        self._eval(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        if self.at_end:
            self._eval(trainer)


__all__ = [
    "Callback",
    "MetricEval",
    "SampleSnapshot",
    "SigmaLogger",
]
