"""The paper's ResNet G/D: shapes, parameter counts from the architecture table, SN, errors."""

from __future__ import annotations

import pytest
import torch

from sngan_edu.models import resnet
from sngan_edu.sn import layer_sigmas


def _conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def test_parameter_counts_match_table_4_at_full_width():
    # G: dense 128 -> 4*4*256, 3 blocks (2 conv3x3 + 1x1 shortcut + 2 BN), BN, conv3x3 -> 3
    block = 2 * _conv(256, 256, 3) + _conv(256, 256, 1) + 2 * 2 * 256
    g_expected = (128 * 16 * 256 + 16 * 256) + 3 * block + 2 * 256 + _conv(256, 3, 3)
    g = resnet.Generator(image_size=32, channels=3)
    assert sum(p.numel() for p in g.parameters()) == g_expected
    # D: optimized block 3->128 (+1x1 shortcut), block 128 down (+1x1 shortcut: it downsamples),
    # two plain blocks 128, dense 128 -> 1
    d_expected = (
        _conv(3, 128, 3) + _conv(128, 128, 3) + _conv(3, 128, 1)
        + 2 * _conv(128, 128, 3) + _conv(128, 128, 1)
        + 2 * 2 * _conv(128, 128, 3)
        + 128 + 1
    )
    d = resnet.Discriminator(image_size=32, channels=3)
    assert sum(p.numel() for p in d.parameters()) == d_expected


@pytest.mark.parametrize("size, channels", [(16, 1), (32, 3), (48, 3)])
def test_shapes_and_range(size, channels):
    torch.manual_seed(0)
    g = resnet.Generator(z_dim=16, image_size=size, channels=channels, width=0.125)
    d = resnet.Discriminator(image_size=size, channels=channels, width=0.125)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, channels, size, size) and x.abs().max() <= 1
    assert d(x).shape == (3,)


def test_residual_blocks_change_resolution():
    x = torch.randn(2, 8, 4, 4)
    assert resnet.GBlock(8, 8)(x).shape == (2, 8, 8, 8)
    assert resnet.DBlock(8, 4, down=True)(x).shape == (2, 4, 2, 2)
    plain = resnet.DBlock(8, 8, down=False)
    assert plain.shortcut is None  # identity shortcut when nothing changes
    # with both convs zeroed the block is exactly its shortcut
    torch.nn.init.zeros_(plain.conv2.weight)
    torch.nn.init.zeros_(plain.conv2.bias)
    assert torch.equal(plain(x), x)


def test_spectral_norm_on_every_d_layer():
    d = resnet.Discriminator(image_size=16, channels=1, width=0.125, spectral_norm=True)
    n_layers = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in d.modules())
    assert len(layer_sigmas(d)) == n_layers == 4 * 2 + 2 + 1
    d(torch.randn(4, 1, 16, 16))  # runs with the parametrization


@pytest.mark.parametrize(
    "kwargs, word",
    [({"image_size": 20}, "image_size"), ({"channels": 0}, "channels"), ({"width": 0}, "width")],
)
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        resnet.Generator(**kwargs)
    with pytest.raises(ValueError, match=word):
        resnet.Discriminator(**kwargs)
