"""Small MLP generator and discriminator for the 2-D toy mixtures."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn


def _mlp(sizes: Sequence[int], activation: Callable[[], nn.Module]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return layers


class ToyGenerator(nn.Module):
    """z (z_dim) -> ReLU MLP -> a point in the plane.

    ``batchnorm=True`` puts BatchNorm before each ReLU, as in the PacGAN toy generator.
    """

    def __init__(
        self,
        z_dim: int = 2,
        hidden: Sequence[int] = (128, 128, 128),
        out_dim: int = 2,
        batchnorm: bool = False,
    ):
        super().__init__()
        if z_dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"z_dim and hidden widths must be positive; got {z_dim}, {hidden}")
        self.z_dim = z_dim
        layers: list[nn.Module] = []
        sizes = [z_dim, *hidden]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers.append(nn.Linear(fan_in, fan_out))
            if batchnorm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(nn.ReLU())
        layers.append(nn.Linear(sizes[-1], out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """A point -> MLP -> one logit.

    ``input_scale`` multiplies the input before the first layer. With spectral normalization the
    MLP is (at most) 1-Lipschitz in its input, so the whole critic is ``input_scale``-Lipschitz
    in data units: the knob that lets it tell apart points 0.05 apart (see notebook 04).
    """

    def __init__(
        self,
        in_dim: int = 2,
        hidden: Sequence[int] = (128, 128, 128),
        input_scale: float = 1.0,
        negative_slope: float = 0.1,
    ):
        super().__init__()
        if in_dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"in_dim and hidden widths must be positive; got {in_dim}, {hidden}")
        if not input_scale > 0:
            raise ValueError(f"input_scale must be positive; got {input_scale!r}")
        self.input_scale = float(input_scale)
        self.net = nn.Sequential(
            *_mlp([in_dim, *hidden, 1], lambda: nn.LeakyReLU(negative_slope))
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.input_scale != 1.0:
            x = x * self.input_scale
        return self.net(x).squeeze(-1)


# ---------------------------------------------------------------------------------------------
# The toy GAN methods of notebook 04 and benchmarks/toy_modes.py, in one place
# ---------------------------------------------------------------------------------------------

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
    import torch

    from sngan_edu.toy import mixture_std
    from sngan_edu.train import TrainConfig

    if method not in TOY_METHODS:
        raise ValueError(f"method must be one of {tuple(TOY_METHODS)}; got {method!r}")
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
