"""The GAN training loop of the paper (Algorithm 1): ``n_dis`` updates of D, then one of G.

For each generator step: ``n_dis`` times, draw a real batch x and noise z and take one Adam
step of D on its loss over the scores D(x) and D(G(z)) (hinge:
``mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))``); then draw z again and take one Adam step of
G on ``-mean(D(G(z)))`` through a frozen D; then move the average of G's weights towards G
(``G_avg``; not in the paper: it sharpens the samples of a small model).

Everything else (the run folder, checkpoints, the progress bar, devices, mixed precision,
compilation, several processes) is the caller's: :class:`sngan_edu.train.trainer.Trainer` wraps
the models and gives ``after_step``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from sngan_edu.gan_step import discriminator_step, generator_step
from sngan_edu.losses import GANLoss


def train_gan(
    G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
    loss: GANLoss, sample_real: Callable[[], Tensor], sample_z: Callable[[], Tensor], *,
    steps: int, n_dis: int = 1, start: int = 0, regularizer: str = "none",
    d_options: Mapping[str, Any] | None = None,
    augment: Callable[[Tensor], Tensor] | None = None,
    G_avg: torch.optim.swa_utils.AveragedModel | None = None,
    after_step: Callable[[int, Tensor, Tensor], bool | None] | None = None,
) -> int:
    """Train generator steps ``start + 1`` .. ``steps``; return the last step trained.

    ``sample_real()`` and ``sample_z()`` draw one batch; ``augment`` changes what D sees (real
    and fake alike); ``d_options`` go to :func:`~sngan_edu.gan_step.discriminator_step` (e.g.
    ``gp_lambda``). ``after_step(step, loss_d, loss_g)`` runs after each generator step (last D
    loss, G loss) and stops the loop by returning True.
    """
    see = augment if augment is not None else (lambda images: images)
    step = start
    for step in range(start + 1, steps + 1):
        for _ in range(n_dis):
            real = sample_real()
            with torch.no_grad():
                fake = G(sample_z())
            loss_d = discriminator_step(D, opt_d, see(real), see(fake), loss.d_loss,
                                        regularizer, **(d_options or {})).loss
        loss_g = generator_step(G, D, opt_g, sample_z(), loss.g_loss, see)
        if G_avg is not None:
            G_avg.update_parameters(G)
        if after_step is not None and after_step(step, loss_d, loss_g):
            break
    return step


__all__ = ["train_gan"]
