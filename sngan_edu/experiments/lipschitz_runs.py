"""Short runs of the sweep's model that watch the discriminator's scale (notebook 06).

Why does an SN discriminator tolerate a larger learning rate? :func:`watch_discriminator`
trains the model of the A-F sweep (:data:`sngan_edu.experiments.sweep.SWEEP_PARAMETERS`:
notebook 05's CPU model on the digits) for a few hundred generator steps under one Adam
setting, with or without SN, and records every ``every`` steps:

- each layer's Lipschitz factor as the forward pass uses it
  (:func:`sngan_edu.lipschitz.layer_lipschitz_factors`: sigma of the raw weight without SN,
  sigma of ``W / (u^T W v)`` with SN, convolution kernels reshaped to matrices), and their
  product, the layer-wise upper bound on D's Lipschitz constant;
- the mean gradient norm ``||grad_x D(x)||`` on real digits and on generated ones: what the
  generator's update actually receives.

``init="unit"`` starts D from the scale SN starts from: the usual N(0, 0.02) weights, each
divided by its exact spectral norm (reshaped kernels), so every layer starts at sigma 1 and their
product at 1 instead of about 1e-4. Without SN this is a baseline that separates what SN does to
the *initial* scale from what it does *during* training.

Measuring changes nothing in the run: D is measured in eval mode (no power iteration), the
generated samples come from their own noise seed, and the training random state is not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from sngan_edu.checks import check_choice, check_int
from sngan_edu.data.images import load_image_data
from sngan_edu.experiments.sngan_run import build_discriminator, build_generator
from sngan_edu.experiments.sweep import SWEEP_PARAMETERS
from sngan_edu.lipschitz import gradient_norms, layer_lipschitz_factors
from sngan_edu.spectral import reshape_weight_to_matrix, spectral_norm_exact
from sngan_edu.train.callbacks import Callback
from sngan_edu.train.config import RunConfig
from sngan_edu.train.presets import PRESET_NAMES
from sngan_edu.train.trainer import Trainer

N_MEASURE = 256  # real and generated digits the gradient norms are averaged over
MEASURE_SEED = 0  # noise seed of the generated digits that are measured
INITS = ("paper", "unit")  # N(0, 0.02) weights as built; or each layer divided by its sigma
#: Notebook 06's watch: (setting, regularizer, init) of each run, WATCH_STEPS generator steps
#: each, measured every WATCH_EVERY steps.
WATCH_RUNS = tuple((setting, reg, init) for setting in "CD"
                   for reg, init in (("sn", "paper"), ("none", "paper"), ("none", "unit")))
WATCH_STEPS, WATCH_EVERY = 120, 10


@dataclass
class DiscriminatorWatch:
    """What :func:`watch_discriminator` recorded for one run (one entry per measurement)."""

    setting: str
    regularizer: str
    steps: list[int] = field(default_factory=list)
    layers: dict[str, list[float]] = field(default_factory=dict)  # layer -> factor per step
    grad_real: list[float] = field(default_factory=list)  # mean ||grad_x D|| on real digits
    grad_fake: list[float] = field(default_factory=list)  # ... on generated digits
    init: str = "paper"  # D's starting weights (see INITS)

    @property
    def product(self) -> list[float]:
        """The product of the layer factors at each step: the layer-wise upper bound on D's
        Lipschitz constant (reshaped kernels, so not strict for convolutions)."""
        return [math.prod(values) for values in zip(*self.layers.values(), strict=True)]

    @property
    def largest_layer(self) -> list[float]:
        """The largest layer factor at each step."""
        return [max(values) for values in zip(*self.layers.values(), strict=True)]


class _Watch(Callback):
    def __init__(self, every: int, record: DiscriminatorWatch, real: torch.Tensor):
        self.every = check_int("every", every)
        self.record = record
        self.real = real

    def _measure(self, trainer: Trainer) -> None:
        rec = self.record
        rec.steps.append(trainer.step)
        for name, value in layer_lipschitz_factors(trainer.D).items():
            rec.layers.setdefault(name, []).append(value)
        fake = trainer.sample(len(self.real), seed=MEASURE_SEED).to(self.real.device)
        rec.grad_real.append(float(gradient_norms(trainer.D, self.real).mean()))
        rec.grad_fake.append(float(gradient_norms(trainer.D, fake).mean()))

    def on_train_begin(self, trainer: Trainer) -> None:
        self._measure(trainer)

    def on_step(self, trainer: Trainer) -> None:
        self._measure(trainer)


@torch.no_grad()
def rescale_to_unit_sigma(model: torch.nn.Module) -> torch.nn.Module:
    """Divide every Linear/Conv weight of ``model`` (in place) by its exact spectral norm
    (kernels reshaped to out x in*kh*kw): each layer's factor becomes 1."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            module.weight.div_(spectral_norm_exact(reshape_weight_to_matrix(module.weight)))
    return model


def watch_discriminator(
    setting: str, regularizer: str, steps: int = 150, every: int = 10, seed: int = 0,
    threads: int | None = 1, init: str = "paper",
) -> DiscriminatorWatch:
    """Train the sweep's model for ``steps`` generator steps under Adam ``setting`` (A-F) with
    ``regularizer`` ("sn" or "none") and return what was measured every ``every`` steps (and at
    step 0). ``init``: "paper" (the model's N(0, 0.02) weights) or "unit" (D's weights then
    divided by their spectral norms, :func:`rescale_to_unit_sigma`). Seeded: the same
    arguments give the same run on the same machine."""
    check_choice("setting", setting, PRESET_NAMES)
    check_choice("regularizer", regularizer, ("sn", "none"))
    check_choice("init", init, INITS)
    check_int("steps", steps)
    config = RunConfig(**{**SWEEP_PARAMETERS, "setting": setting, "regularizer": regularizer,
                          "steps": steps, "seed": seed, "cpu_threads": threads})
    data = load_image_data(config.dataset, config.data_root, config.image_size, split="all")
    torch.manual_seed(seed)
    G = build_generator(config, data.channels)
    D = build_discriminator(config, data.channels)
    if init == "unit":
        rescale_to_unit_sigma(D)
    record = DiscriminatorWatch(setting, regularizer, init=init)
    watch = _Watch(every, record, data.float_images(N_MEASURE))
    Trainer(G, D, data.sample, config.replace(out_dir=None, progress=False), [watch]).fit()
    return record


__all__ = ["INITS", "WATCH_EVERY", "WATCH_RUNS", "WATCH_STEPS", "DiscriminatorWatch",
           "rescale_to_unit_sigma", "watch_discriminator"]
