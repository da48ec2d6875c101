"""The SNGAN paper's "standard CNN" generator and discriminator (Miyato et al. 2018, Table 3).

G: z (128) -> dense -> (M x M x 512) -> 3 x [deconv 4x4 stride 2, BN, ReLU] (256, 128, 64)
-> conv 3x3 -> channels -> tanh, with M = image_size / 8.
D: conv 3x3 64, conv 4x4 s2 64, 3x3 128, 4x4 s2 128, 3x3 256, 4x4 s2 256, 3x3 512, all with
leaky ReLU 0.1, then dense -> 1 logit. D has no normalization of its own; spectral
normalization is added per layer by :func:`sngan_edu.sn.apply_spectral_norm`.

Weights start from N(0, 0.02) as in the authors' code. ``width`` multiplies every channel
count (0.25 gives a model small enough for a laptop CPU).
"""

from __future__ import annotations

import torch
from torch import nn

from sngan_edu.models.common import ImageDiscriminator, ImageGenerator, scaled
from sngan_edu.sn import apply_spectral_norm

G_CHANNELS = (512, 256, 128, 64)
# (out channels, kernel, stride) of the seven D convolutions; padding 1 everywhere.
D_CONVS = ((64, 3, 1), (64, 4, 2), (128, 3, 1), (128, 4, 2), (256, 3, 1), (256, 4, 2), (512, 3, 1))
# The smallest width that leaves every layer at least 1 channel, per network ("G", "D").
MIN_WIDTH = {"G": 1 / min(G_CHANNELS), "D": 1 / min(c for c, _, _ in D_CONVS)}
LEAKY_SLOPE = 0.1
INIT_STD = 0.02  # weight scale of the authors' chainer code (chainer-gan-lib, wscale=0.02)


@torch.no_grad()
def init_weights(model: nn.Module, std: float = INIT_STD) -> nn.Module:
    """N(0, std) weights and zero biases for every conv and dense layer (BN keeps 1 and 0)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


class Generator(ImageGenerator):
    """The standard CNN generator: ``G(z)`` maps ``(N, z_dim)`` to images in ``[-1, 1]``."""

    def __init__(
        self, z_dim: int = 128, image_size: int = 32, channels: int = 3, width: float = 1.0,
        z_categories: int = 0,
    ) -> None:
        super().__init__(z_dim, image_size, channels, width, z_categories)
        c = [scaled(ch, width) for ch in G_CHANNELS]
        n_flat = self.bottom * self.bottom * c[0]
        # BN over the flat dense output, then ReLU, then reshape: as in the authors' chainer code.
        self.head = nn.Sequential(nn.Linear(z_dim, n_flat), nn.BatchNorm1d(n_flat), nn.ReLU())
        layers: list[nn.Module] = []
        for c_in, c_out in zip(c[:-1], c[1:], strict=True):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.Conv2d(c[-1], channels, 3, 1, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self._c0 = c[0]
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.code(z)
        h = self.head(z).view(z.shape[0], self._c0, self.bottom, self.bottom)
        return self.main(h)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent vectors from N(0, I) on this model's device."""
        device = self.head[0].weight.device
        return torch.randn(n, self.z_dim, generator=generator, device=device)


class Discriminator(ImageDiscriminator):
    """The standard CNN discriminator: ``D(x)`` maps ``(N, C, H, W)`` to ``(N,)`` logits.

    ``spectral_norm=True`` applies :func:`sngan_edu.sn.apply_spectral_norm` to every conv and
    the dense layer (with ``n_power_iterations``).
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        width: float = 1.0,
        spectral_norm: bool = False,
        n_power_iterations: int = 1,
    ) -> None:
        super().__init__(image_size, channels, width)
        layers: list[nn.Module] = []
        c_in = channels
        for c_out, k, s in D_CONVS:
            c_out = scaled(c_out, width)
            layers += [nn.Conv2d(c_in, c_out, k, s, 1), nn.LeakyReLU(LEAKY_SLOPE)]
            c_in = c_out
        self.main = nn.Sequential(*layers)
        bottom = image_size // 8
        self.linear = nn.Linear(bottom * bottom * c_in, 1)
        init_weights(self)
        if spectral_norm:
            apply_spectral_norm(self, n_power_iterations=n_power_iterations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.main(x).flatten(1)).squeeze(1)
