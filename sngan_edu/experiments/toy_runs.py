"""The toy GAN methods of notebook 04 (and benchmarks/toy_modes.py): one recipe per method.

A recipe is the networks of :mod:`sngan_edu.models.toy_mlp`, a :class:`TrainConfig` and the
input scale of the discriminator. The mixtures and their metrics follow PacGAN's setup
(:mod:`sngan_edu.data.toy`, :mod:`sngan_edu.metrics.toy`).

Deviation from the paper: SNGAN was not evaluated on 2-D mixtures. An SN discriminator is
1-Lipschitz in its input, so on modes of std 0.01-0.05 its logit can barely change across one
mode; the recipe ``"sn"`` rescales the input by 0.5/std, which uses the true mode std (knowledge
no published method gets). ``"sn-naive"`` is SN without that scale.
"""

from __future__ import annotations

import torch

from sngan_edu.checks import check_choice
from sngan_edu.data.toy import mixture_std
from sngan_edu.models.toy_mlp import ToyDiscriminator, ToyGenerator
from sngan_edu.train.config import TrainConfig

#: Shared by every method: generator 3 x 128 ReLU from z in R^2, discriminator 2 x 256
#: LeakyReLU(0.1), batch 256, Adam betas (0.5, 0.9), lr falling linearly to 0.
TOY_COMMON: dict = dict(
    batch_size=256, z_dim=2, lr=1e-3, beta1=0.5, beta2=0.9, n_dis=1, lr_decay="linear"
)
TOY_G_HIDDEN = (128, 128, 128)
TOY_D_HIDDEN = (256, 256)

#: Input scale of the SN discriminator, in units of the mixture's std: x -> x * 0.5 / std
#: (10 on the grid, 50 on the ring). A 1-Lipschitz MLP behind it may then change its logit by
#: 0.5 * 3 = 1.5 across the 3-std zone of one mode, instead of 0.15 (grid) or 0.03 (ring).
SN_INPUT_SCALE_TIMES_STD = 0.5

#: method -> (TrainConfig overrides, D input scale or "auto" for 0.5/std, fraction of the
#: generator steps). The WGANs do 5 discriminator steps per generator step (the gradient penalty
#: also needs a double backward), so they get 1/6 (GP) and 1/3 (clipping) of the generator steps:
#: about the same wall time per run as the others (measured on one CPU thread).
TOY_METHODS: dict[str, tuple[dict, float | str, float]] = {
    "gan": (dict(loss="vanilla", regularizer="none"), 1.0, 1.0),
    "sn": (dict(loss="vanilla", regularizer="sn"), "auto", 1.0),
    "sn-naive": (dict(loss="vanilla", regularizer="sn"), 1.0, 1.0),
    "wgan-gp": (dict(loss="wasserstein", regularizer="gp", lr=1e-4, n_dis=5), 1.0, 1 / 6),
    "clip": (dict(loss="wasserstein", regularizer="clip", lr=5e-5, n_dis=5), 1.0, 1 / 3),
}
TOY_METHOD_LABELS = {
    "gan": "GAN (BCE, no constraint)",
    "sn": "SN-GAN (BCE, input x 0.5/std)",
    "sn-naive": "SN-GAN without input scale",
    "wgan-gp": "WGAN-GP (lambda 10)",
    "clip": "WGAN, weight clipping 0.01",
}


def toy_gan(method: str, dataset: str, steps: int, seed: int = 0, **config_overrides):
    """Seeded ``(G, D, TrainConfig)`` for one of :data:`TOY_METHODS` on a toy ``dataset``.

    ``steps`` is the budget in generator steps of the one-D-step methods; the WGANs get
    ``steps * fraction``. Extra keyword arguments override TrainConfig fields.
    """
    check_choice("method", method, TOY_METHODS)
    overrides, scale, fraction = TOY_METHODS[method]
    if scale == "auto":
        scale = SN_INPUT_SCALE_TIMES_STD / mixture_std(dataset)  # validates dataset too
    else:
        mixture_std(dataset)
    torch.manual_seed(seed)
    G = ToyGenerator(z_dim=TOY_COMMON["z_dim"], hidden=TOY_G_HIDDEN)
    D = ToyDiscriminator(hidden=TOY_D_HIDDEN, input_scale=float(scale))
    settings = {**TOY_COMMON, **overrides, "steps": max(1, round(steps * fraction)),
                "seed": seed, "device": "cpu", "progress": False}
    settings.update(config_overrides)
    return G, D, TrainConfig(**settings)
