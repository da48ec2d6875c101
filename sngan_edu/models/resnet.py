"""The SNGAN paper's ResNet generator and discriminator (Miyato et al. 2018, Appendix B, Table 4).

G: z (128) -> dense -> (M x M x 256) -> 3 x ResBlock up (256) -> BN, ReLU, conv 3x3 -> channels
-> tanh, with M = image_size / 8 (4 for CIFAR-10's 32, 6 for STL-10's 48).
D: ResBlock down (128, "optimized" first block) -> ResBlock down (128) -> ResBlock (128)
-> ResBlock (128) -> ReLU -> global sum pooling -> dense -> 1.

A generator block is BN, ReLU, nearest 2x upsample, conv 3x3, BN, ReLU, conv 3x3, plus an
upsampled 1x1-conv shortcut. A discriminator block is ReLU, conv 3x3, ReLU, conv 3x3, 2x2 average
pooling, plus a 1x1-conv + pooling shortcut when it changes size or width; the first block has no
leading ReLU (the input is an image). Weights start Xavier-uniform (gain sqrt 2 on the residual
convs) as in the authors' chainer code. ``width`` multiplies every channel count.

Spectral normalization is added to every conv and dense layer of D by
:func:`sngan_edu.sn.apply_spectral_norm` (``spectral_norm=True``), or by the training engine.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sngan_edu.models.common import ImageDiscriminator, ImageGenerator, scaled
from sngan_edu.sn import apply_spectral_norm

G_CHANNELS = 256
D_CHANNELS = 128
# The smallest width that leaves every layer at least 1 channel, per network ("G", "D").
MIN_WIDTH = {"G": 1 / G_CHANNELS, "D": 1 / D_CHANNELS}


def _init(module: nn.Module, gain: float) -> nn.Module:
    nn.init.xavier_uniform_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


class GBlock(nn.Module):
    """Generator residual block that doubles the resolution."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = _init(nn.Conv2d(c_in, c_out, 3, 1, 1), math.sqrt(2))
        self.conv2 = _init(nn.Conv2d(c_out, c_out, 3, 1, 1), math.sqrt(2))
        self.shortcut = _init(nn.Conv2d(c_in, c_out, 1), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """Discriminator residual block, optionally halving the resolution.

    ``first=True`` is the paper's "optimized" first block: no ReLU before the first conv and the
    shortcut pools before its 1x1 conv.
    """

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _init(nn.Conv2d(c_in, c_out, 3, 1, 1), math.sqrt(2))
        self.conv2 = _init(nn.Conv2d(c_out, c_out, 3, 1, 1), math.sqrt(2))
        self.learn_shortcut = down or c_in != c_out or first
        self.shortcut = _init(nn.Conv2d(c_in, c_out, 1), 1.0) if self.learn_shortcut else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.shortcut(F.avg_pool2d(s, 2))
        elif self.learn_shortcut:
            s = self.shortcut(s)
            if self.down:
                s = F.avg_pool2d(s, 2)
        return h + s


class Generator(ImageGenerator):
    """The ResNet generator: ``G(z)`` maps ``(N, z_dim)`` to images in ``[-1, 1]``."""

    def __init__(
        self, z_dim: int = 128, image_size: int = 32, channels: int = 3, width: float = 1.0,
        z_categories: int = 0,
    ) -> None:
        super().__init__(z_dim, image_size, channels, width, z_categories)
        self.ch = scaled(G_CHANNELS, width)
        self.linear = _init(nn.Linear(z_dim, self.bottom * self.bottom * self.ch), 1.0)
        self.blocks = nn.Sequential(*[GBlock(self.ch, self.ch) for _ in range(3)])
        self.bn = nn.BatchNorm2d(self.ch)
        self.out = _init(nn.Conv2d(self.ch, channels, 3, 1, 1), 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.code(z)
        h = self.linear(z).view(z.shape[0], self.ch, self.bottom, self.bottom)
        h = F.relu(self.bn(self.blocks(h)))
        return torch.tanh(self.out(h))


class Discriminator(ImageDiscriminator):
    """The ResNet discriminator: ``D(x)`` maps ``(N, C, H, W)`` to ``(N,)`` logits."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        width: float = 1.0,
        spectral_norm: bool = False,
        n_power_iterations: int = 1,
    ) -> None:
        super().__init__(image_size, channels, width)
        ch = scaled(D_CHANNELS, width)
        self.blocks = nn.Sequential(
            DBlock(channels, ch, down=True, first=True),
            DBlock(ch, ch, down=True),
            DBlock(ch, ch, down=False),
            DBlock(ch, ch, down=False),
        )
        self.linear = _init(nn.Linear(ch, 1), 1.0)
        if spectral_norm:
            apply_spectral_norm(self, n_power_iterations=n_power_iterations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        return self.linear(h).squeeze(1)
