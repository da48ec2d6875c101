"""The toy GAN methods of notebook 04 (and benchmarks/toy_modes.py): one recipe per method.

A recipe is the networks of :mod:`sngan_edu.models.toy_mlp`, a :class:`RunConfig` and the
input scale of the discriminator. :func:`run_toy` trains it with the course's :class:`Trainer`,
whose loop notebook 04 writes out as ``train_toy_gan`` (tests/test_chapter_code.py checks that
both give the same weights). The mixtures and their metrics follow PacGAN's setup
(:mod:`sngan_edu.data.toy`, :mod:`sngan_edu.metrics.toy`).

Deviation from the paper: SNGAN was not evaluated on 2-D mixtures. An SN discriminator is
1-Lipschitz in its input, so on modes of std 0.01-0.05 its logit can barely change across one
mode; the recipe ``"sn"`` rescales the input by 0.5/std, which uses the true mode std (knowledge
no published method gets). ``"sn-naive"`` is SN without that scale.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sngan_edu.checks import check_choice, check_int
from sngan_edu.data.toy import make_sampler, mixture_std
from sngan_edu.metrics.toy import N_EVAL_SAMPLES, ModeMetrics, modes_reached, toy_metrics
from sngan_edu.models.toy_mlp import ToyDiscriminator, ToyGenerator
from sngan_edu.train.callbacks import Callback, SampleSnapshot
from sngan_edu.train.config import RunConfig
from sngan_edu.train.trainer import Trainer

#: Shared by every method: generator 3 x 128 ReLU from z in R^2, discriminator 2 x 256
#: LeakyReLU(0.1), batch 256, Adam betas (0.5, 0.9), lr falling linearly to 0.
TOY_COMMON: dict = dict(
    batch_size=256, z_dim=2, lr=1e-3, beta1=0.5, beta2=0.9, n_dis=1, lr_decay="linear",
    setting="C", g_ema=None, out_dir=None, cpu_threads=None,  # no average, no run folder
)
TOY_G_HIDDEN = (128, 128, 128)
TOY_D_HIDDEN = (256, 256)

#: Input scale of the SN discriminator, in units of the mixture's std: x -> x * 0.5 / std
#: (10 on the grid, 50 on the ring). A 1-Lipschitz MLP behind it may then change its logit by
#: 0.5 * 3 = 1.5 across the 3-std zone of one mode, instead of 0.15 (grid) or 0.03 (ring).
SN_INPUT_SCALE_TIMES_STD = 0.5

#: method -> (RunConfig overrides, D input scale or "auto" for 0.5/std). Every method gets
#: the same number of generator steps. The WGANs use their papers' defaults (5 critic steps per
#: generator step; lr 1e-4 for the gradient penalty, 5e-5 for clipping), untuned on these
#: mixtures, so they cost 5-6 times more per generator step than the others.
TOY_METHODS: dict[str, tuple[dict, float | str]] = {
    "gan": (dict(loss="vanilla", regularizer="none"), 1.0),
    "sn": (dict(loss="vanilla", regularizer="sn"), "auto"),
    "sn-naive": (dict(loss="vanilla", regularizer="sn"), 1.0),
    "wgan-gp": (dict(loss="wasserstein", regularizer="gp", lr=1e-4, n_dis=5), 1.0),
    "clip": (dict(loss="wasserstein", regularizer="clip", lr=5e-5, n_dis=5), 1.0),
}
#: A discriminator that learns ten times slower than its generator (lr 1e-4 against 1e-3): the
#: GAN collapses into one streak that swings around outside the ring, on no mode (notebook 04),
#: with or without SN. Pass it to
#: :func:`toy_gan` or :func:`run_toy` as ``**SLOW_D``.
SLOW_D: dict = dict(lr_d=1e-4)

TOY_METHOD_LABELS = {
    "gan": "GAN (BCE, no constraint)",
    "sn": "SN-GAN (BCE, input x 0.5/std)",
    "sn-naive": "SN-GAN without input scale",
    "wgan-gp": "WGAN-GP (lambda 10)",
    "clip": "WGAN, weight clipping 0.01",
}


def toy_gan(method: str, dataset: str, steps: int, seed: int = 0, **config_overrides):
    """Seeded ``(G, D, RunConfig)`` for one of :data:`TOY_METHODS` on a toy ``dataset``.

    ``steps`` is the budget in generator steps (the same for every method). Extra keyword
    arguments override RunConfig fields (e.g. :data:`SLOW_D`).
    """
    check_choice("method", method, TOY_METHODS)
    overrides, scale = TOY_METHODS[method]
    if scale == "auto":
        scale = SN_INPUT_SCALE_TIMES_STD / mixture_std(dataset)  # validates dataset too
    else:
        mixture_std(dataset)
    torch.manual_seed(seed)
    G = ToyGenerator(z_dim=TOY_COMMON["z_dim"], hidden=TOY_G_HIDDEN)
    D = ToyDiscriminator(hidden=TOY_D_HIDDEN, input_scale=float(scale))
    settings = {**TOY_COMMON, **overrides, "steps": steps,
                "seed": seed, "device": "cpu", "progress": False}
    settings.update(config_overrides)
    return G, D, RunConfig(**settings)


@dataclass
class ToyRun:
    """One trained toy run: its trainer, sample snapshots, final scores and training time."""

    method: str
    dataset: str
    trainer: Trainer
    snapshots: list[tuple[int, torch.Tensor]]  # (step, 1000 samples from fixed noise)
    metrics: ModeMetrics  # PacGAN's metrics on 2500 samples (noise seed 0)
    reached: int  # modes holding at least half their fair share of those samples
    seconds: float  # wall time of training

    @property
    def planned_steps(self) -> int:
        return self.trainer.config.steps


def run_toy(method: str, dataset: str, steps: int, seed: int = 0, snapshots: int = 4,
            callbacks: Sequence[Callback] = (), **config_overrides) -> ToyRun:
    """Train :func:`toy_gan` ``(method, dataset, steps, seed)`` on one CPU thread, keeping
    ``snapshots + 1`` evenly spaced sample snapshots (step 0 included), and score it."""
    check_int("snapshots", snapshots)
    G, D, config = toy_gan(method, dataset, steps, seed=seed, cpu_threads=1, **config_overrides)
    snap = SampleSnapshot(every=max(steps // snapshots, 1), n=1000)
    trainer = Trainer(G, D, make_sampler(dataset), config, callbacks=[snap, *callbacks])
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    samples = trainer.sample(N_EVAL_SAMPLES, seed=0)
    return ToyRun(method, dataset, trainer, snap.snapshots, toy_metrics(samples, dataset),
                  modes_reached(samples, dataset), seconds)
