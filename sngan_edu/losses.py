"""GAN losses on raw discriminator outputs (logits / critic values).

Each loss is a pair of functions: ``d_loss(d_real, d_fake)`` for the discriminator and
``g_loss(d_fake)`` for the generator. All take the discriminator's raw, unbounded outputs.

- vanilla: D minimizes -E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid(logit), written with
  softplus (= binary cross-entropy with logits, numerically stable); G uses the non-saturating
  loss -E[log D(G(z))].
- hinge: D minimizes E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]; G minimizes -E[D(G(z))].
- wasserstein: D minimizes E[D(G(z))] - E[D(x)]; G minimizes -E[D(G(z))].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from sngan_edu.checks import check_choice


def vanilla_d_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """-E[log sigmoid(d_real)] - E[log(1 - sigmoid(d_fake))] (BCE with logits, targets 1 and 0)."""
    # -log sigmoid(t) = softplus(-t) and -log(1 - sigmoid(t)) = softplus(t), stable for any t.
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def vanilla_g_loss(d_fake: Tensor) -> Tensor:
    """Non-saturating generator loss -E[log sigmoid(d_fake)]."""
    return F.softplus(-d_fake).mean()


def hinge_d_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """E[max(0, 1 - d_real)] + E[max(0, 1 + d_fake)]."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def hinge_g_loss(d_fake: Tensor) -> Tensor:
    """-E[d_fake] (the generator loss used with the hinge discriminator loss)."""
    return -d_fake.mean()


def wasserstein_d_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """E[d_fake] - E[d_real]: the negative of the critic's estimate of W1."""
    return d_fake.mean() - d_real.mean()


def wasserstein_g_loss(d_fake: Tensor) -> Tensor:
    """-E[d_fake]."""
    return -d_fake.mean()


@dataclass(frozen=True)
class GANLoss:
    """A named pair of discriminator and generator losses."""

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]


LOSSES: dict[str, GANLoss] = {
    "vanilla": GANLoss("vanilla", vanilla_d_loss, vanilla_g_loss),
    "hinge": GANLoss("hinge", hinge_d_loss, hinge_g_loss),
    "wasserstein": GANLoss("wasserstein", wasserstein_d_loss, wasserstein_g_loss),
}

LOSS_NAMES = tuple(LOSSES)


def get_loss(name: str) -> GANLoss:
    """The loss pair called ``name`` (vanilla, hinge or wasserstein); ValueError otherwise."""
    return LOSSES[check_choice("loss", name, LOSS_NAMES)]


__all__ = [
    "GANLoss",
    "LOSSES",
    "LOSS_NAMES",
    "get_loss",
    "hinge_d_loss",
    "hinge_g_loss",
    "vanilla_d_loss",
    "vanilla_g_loss",
    "wasserstein_d_loss",
    "wasserstein_g_loss",
]
