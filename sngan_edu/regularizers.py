"""The four ways this course keeps (or does not keep) a discriminator Lipschitz, in one registry.

A regularizer says three things about a discriminator D: a one-time change before training, an
extra term in D's loss, and a change after every D update.

- ``none``: nothing (an unnormalized GAN).
- ``clip``: clamp every weight to [-c, c] after each update (the original WGAN, c = 0.01).
- ``gp``: add lambda * E[(||grad_x D(x_hat)|| - 1)^2] on random interpolates x_hat of real and
  fake (WGAN-GP, lambda = 10).
- ``sn``: divide every weight by its spectral norm, W / sigma(W) (Miyato et al. 2018, eq. 8),
  applied once as a parametrization (:func:`sngan_edu.sn.apply_spectral_norm`); the power
  iteration then runs inside every training-mode forward, so nothing is done per step here.

The trainer, the critic comparison of notebook 02, the sweep and the plots all read
:data:`REGULARIZERS`; a new regularizer is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from sngan_edu import sn as sn_lib
from sngan_edu.checks import check_choice, check_number, check_positive
from sngan_edu.lipschitz import gradient_norms, interpolates

GP_LAMBDA = 10.0  # WGAN-GP's lambda (Gulrajani et al. 2017)
CLIP_C = 0.01  # WGAN's clipping constant (Arjovsky et al. 2017)


def gradient_penalty(
    D: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    lam: float = GP_LAMBDA,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``lam * E[(||grad D(x_hat)|| - 1)^2]`` on random interpolates x_hat.

    Differentiable w.r.t. D's parameters (``create_graph=True``); add it to the critic loss.
    D runs in its current mode.
    """
    check_number("lam", lam, 0, what="a number >= 0 (WGAN-GP uses 10)")
    x_hat = interpolates(real, fake, generator=generator)
    norms = gradient_norms(D, x_hat, create_graph=True, eval_mode=False)
    return lam * (norms - 1.0).pow(2).mean()


@torch.no_grad()
def clip_weights(model: nn.Module, c: float = CLIP_C) -> nn.Module:
    """Clamp every parameter of ``model`` to ``[-c, c]`` in place (the original WGAN)."""
    check_positive("c", c, "a positive number (WGAN uses 0.01)")
    for p in model.parameters():
        p.clamp_(-c, c)
    return model


def _unchanged(model: nn.Module) -> nn.Module:
    return model


@dataclass(frozen=True)
class Regularizer:
    """How one method constrains D: ``prepare`` once, a gradient ``penalty``, ``clips`` after."""

    name: str
    label: str  # short, for tables and figure titles
    description: str  # what it does, for legends
    color: str  # one colour per method in every figure
    prepare: Callable[[nn.Module], nn.Module]
    penalty: bool = False
    clips: bool = False


REGULARIZERS: dict[str, Regularizer] = {
    "sn": Regularizer("sn", "SN", "spectral norm", "tab:green", sn_lib.apply_spectral_norm),
    "gp": Regularizer("gp", "WGAN-GP", "gradient penalty", "tab:blue", _unchanged, penalty=True),
    "clip": Regularizer("clip", "clipping", "weight clipping", "tab:orange", _unchanged,
                        clips=True),
    "none": Regularizer("none", "unnormalized", "no constraint", "tab:gray", _unchanged),
}
REGULARIZER_NAMES = tuple(REGULARIZERS)  # ("sn", "gp", "clip", "none")


def get_regularizer(name: str, parameter: str = "regularizer") -> Regularizer:
    """The registry entry ``name``; ValueError naming ``parameter`` and the allowed names."""
    check_choice(parameter, name, REGULARIZER_NAMES)
    return REGULARIZERS[name]


def labels(kind: str = "label") -> dict[str, str]:
    """``{name: label}`` (``kind="label"``), or the ``description`` / ``color`` of each method."""
    check_choice("kind", kind, ("label", "description", "color"))
    return {name: getattr(reg, kind) for name, reg in REGULARIZERS.items()}


__all__ = [
    "CLIP_C",
    "GP_LAMBDA",
    "REGULARIZERS",
    "REGULARIZER_NAMES",
    "Regularizer",
    "clip_weights",
    "get_regularizer",
    "gradient_penalty",
    "labels",
]
