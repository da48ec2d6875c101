"""One discriminator update and one generator update: the steps every loop of the course runs.

The discriminator D minimizes ``d_loss(D(x), D(G(z)))`` (:mod:`sngan_edu.losses`) under a
regularizer (:mod:`sngan_edu.regularizers`); the generator G then minimizes ``g_loss(D(G(z)))``
with D's weights frozen. The trainer (:mod:`sngan_edu.train.trainer`), the critic comparison of
notebook 02, the live sigma demo of notebook 03 and the reference of exercise 05 call these
functions, so a change to the step is made once.

Real and fake go through D as ONE concatenated batch when that is equivalent: every forward of an
SN layer in training mode runs a power iteration, so two calls run two per update and score the
halves with slightly different normalized weights. It is not equivalent when D has BatchNorm
(its batch statistics would mix real and fake). Deviation from the paper's Chainer code, which
calls D twice (once on real, once on fake): a choice, not an error; ``joint=False`` does that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from sngan_edu.regularizers import GP_LAMBDA, clip_weights, get_regularizer, gradient_penalty


def has_batchnorm(model: nn.Module) -> bool:
    """True if ``model`` contains a BatchNorm layer (batch statistics couple the samples)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def score_real_and_fake(
    D: nn.Module, real: Tensor, fake: Tensor, joint: bool
) -> tuple[Tensor, Tensor]:
    """``(D(real), D(fake))``; with ``joint`` as ONE forward of the concatenated batch."""
    if not joint:
        return D(real), D(fake)
    out = D(torch.cat((real, fake)))
    return out[: real.shape[0]], out[real.shape[0]:]


class DStep(NamedTuple):
    """What one discriminator update saw: its loss and D's scores, before the update (detached)."""

    loss: Tensor  # the loss that was minimized, penalty included
    d_real: Tensor
    d_fake: Tensor


def discriminator_step(
    D: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: Tensor,
    fake: Tensor,
    d_loss: Callable[[Tensor, Tensor], Tensor],
    regularizer: str = "none",
    *,
    joint: bool | None = None,
    gp_lambda: float = GP_LAMBDA,
    clip_c: float = 0.01,
    generator: torch.Generator | None = None,
) -> DStep:
    """One update of D on a real and a (detached) fake batch; returns what it saw before it.

    ``joint=None`` scores real and fake in one forward unless D has BatchNorm. ``regularizer``
    ``"gp"`` adds the gradient penalty (interpolation weights drawn from ``generator``);
    ``"clip"`` clamps D's weights to [-clip_c, clip_c] after the update; ``"sn"`` expects D to
    be spectrally normalized already (it changes nothing per step).
    """
    reg = get_regularizer(regularizer)
    if joint is None:
        joint = not has_batchnorm(D)
    d_real, d_fake = score_real_and_fake(D, real, fake, joint)
    loss = d_loss(d_real, d_fake)
    if reg.penalty:
        loss = loss + gradient_penalty(D, real, fake, lam=gp_lambda, generator=generator)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if reg.clips:
        clip_weights(D, c=clip_c)
    return DStep(loss.detach(), d_real.detach(), d_fake.detach())


def generator_step(
    G: nn.Module,
    D: nn.Module,
    optimizer: torch.optim.Optimizer,
    z: Tensor,
    g_loss: Callable[[Tensor], Tensor],
    augment: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """One update of G through a frozen D; returns the loss before the update.

    D's parameters do not require gradients meanwhile (nothing is computed for them) and are
    restored afterwards. ``augment`` transforms what D sees (e.g. random shifts).
    """
    frozen = [p for p in D.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        fake = G(z)
        if augment is not None:
            fake = augment(fake)
        loss = g_loss(D(fake))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return loss.detach()


__all__ = ["DStep", "discriminator_step", "generator_step", "has_batchnorm", "score_real_and_fake"]
