"""Notebook 03's live sigma demo: a small SN discriminator trains while its sigmas are recorded.

The standard CNN discriminator (Table 3, narrow) learns to tell smooth colour fields from pixel
noise, with one (or more) power iterations per step, as the paper does. Every few steps each
layer's running estimate, the exact sigma of its raw weight and sigma(W / estimate) are
recorded (:func:`sngan_edu.sigma_report.record_sigma_history`), so the lag of the one-iteration
estimate behind a fast-moving weight can be seen.
:class:`sngan_edu.widgets.sigma.SigmaDemoControls` puts a slider on :func:`train_sigma_demo`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sngan_edu import sigma_report
from sngan_edu.checks import check_int
from sngan_edu.gan_step import discriminator_step
from sngan_edu.models.standard_cnn import Discriminator

SigmaHistory = sigma_report.SigmaHistory


def smooth_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Stand-in "real" images: smooth random colour fields in [-1, 1], shape (n, 3, size, size)."""
    coarse = torch.randn(n, 3, 4, 4, generator=generator)
    return torch.tanh(F.interpolate(coarse, size=(size, size), mode="bilinear"))


def noise_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Stand-in "fake" images: pixel noise in [-1, 1]."""
    return torch.tanh(0.8 * torch.randn(n, 3, size, size, generator=generator))


def _bce_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """The vanilla D loss (:func:`sngan_edu.losses.vanilla_d_loss`) in BCE-with-logits arithmetic.

    Same value as ``vanilla_d_loss`` (softplus), but its gradients differ in the last bits, and
    Adam's first steps amplify those until the demo's stored sigmas (notebook 03) change in the
    second decimal: notebook 03's stored sigmas come from this arithmetic.
    """
    return F.binary_cross_entropy_with_logits(
        d_real, torch.ones_like(d_real)
    ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))


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
    joint: bool = True,
) -> SigmaHistory:
    """Train the standard CNN discriminator with SN to tell smooth images from noise.

    Vanilla GAN loss (mean BCE on the real half plus mean BCE on the fake half), one
    :func:`sngan_edu.gan_step.discriminator_step` per step with real and fake in one
    concatenated batch, so each step runs exactly ``n_power_iterations`` power iterations per
    layer; Adam(lr, betas=(0.5, 0.999)). Every ``record_every`` steps (and at step 0)
    each layer's sigmas are appended to the history
    (:func:`sngan_edu.sigma_report.record_sigma_history`) and ``callback(step, history)`` is
    called, e.g. to update a live plot. The large default learning rate moves the weights fast,
    so the one-iteration estimate visibly lags a little.

    ``joint=False`` calls D on the real and on the fake batch separately, as the paper's Chainer
    code does: every SN layer then runs its power iteration once per call, twice per step, and
    the two halves are scored with slightly different normalized weights.
    """
    check_int("n_power_iterations", n_power_iterations)
    check_int("steps", steps, minimum=0)
    check_int("record_every", record_every)
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
    for step in range(steps + 1):
        if step % record_every == 0 or step == steps:
            sigma_report.record_sigma_history(history, D, step)
            if callback is not None:
                callback(step, history)
        if step == steps:
            break
        real = smooth_images(batch_size, image_size, data)
        fake = noise_images(batch_size, image_size, data)
        # By default ONE forward on real and fake together: every SN forward runs a power
        # iteration, so D(real) then D(fake) runs two per step and scores the halves with
        # different weights (joint=False shows that choice).
        discriminator_step(D, opt, real, fake, _bce_d_loss, joint=joint)
    return history


def max_normalized_sigma(history: SigmaHistory, after_step: int = 0) -> float:
    """The largest sigma(W / estimate) over all layers and records after ``after_step``."""
    values = [r[3] for records in history.values() for r in records if r[0] > after_step]
    return max(values) if values else float("nan")
