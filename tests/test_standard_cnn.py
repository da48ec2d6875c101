"""The paper's standard CNN (Table 3): shapes, layer list, widths and spectral norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sngan_edu import sn
from sngan_edu.models.standard_cnn import Discriminator, Generator


@pytest.mark.parametrize("image_size", [16, 32, 48])
@pytest.mark.parametrize("width", [0.125, 0.25])
def test_shapes(image_size, width):
    G = Generator(image_size=image_size, width=width)
    D = Discriminator(image_size=image_size, width=width)
    x = G(torch.randn(3, 128))
    assert x.shape == (3, 3, image_size, image_size)
    assert x.abs().max() <= 1.0  # tanh output
    assert D(x).shape == (3,)


def test_grayscale_and_z_dim():
    G = Generator(z_dim=16, image_size=16, channels=1, width=0.125)
    D = Discriminator(image_size=16, channels=1, width=0.125)
    z = G.sample_z(2, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 16)
    assert D(G(z)).shape == (2,)


def test_discriminator_layers_follow_table_3():
    D = Discriminator(image_size=32)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    got = [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs]
    assert got == [
        (64, 3, 1, 1),
        (64, 4, 2, 1),
        (128, 3, 1, 1),
        (128, 4, 2, 1),
        (256, 3, 1, 1),
        (256, 4, 2, 1),
        (512, 3, 1, 1),
    ]
    slopes = {m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.1}
    assert D.linear.in_features == 4 * 4 * 512 and D.linear.out_features == 1
    assert not any(isinstance(m, nn.modules.batchnorm._NormBase) for m in D.modules())
    assert not sn.spectral_norm_layers(D)  # no normalization unless asked


def test_generator_layers_follow_table_3():
    G = Generator(image_size=32)
    assert G.head[0].out_features == 4 * 4 * 512
    deconvs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    got = [(d.out_channels, d.kernel_size[0], d.stride[0]) for d in deconvs]
    assert got == [(256, 4, 2), (128, 4, 2), (64, 4, 2)]
    last = [m for m in G.modules() if isinstance(m, nn.Conv2d)]
    assert len(last) == 1 and last[0].kernel_size == (3, 3) and last[0].out_channels == 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 3


def test_width_scales_channels():
    D = Discriminator(width=0.5)
    assert [m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d)][-1] == 256
    G = Generator(width=0.25)
    assert G.head[0].out_features == 4 * 4 * 128


def test_spectral_norm_flag_normalizes_every_weight_layer():
    D = Discriminator(image_size=16, width=0.125, spectral_norm=True, n_power_iterations=2)
    layers = sn.spectral_norm_layers(D)
    assert len(layers) == 8
    assert all(m.parametrizations.weight[0].n_power_iterations == 2 for m in layers.values())
    plain = sn.apply_spectral_norm(Discriminator(image_size=16, width=0.125))
    assert list(sn.spectral_norm_layers(plain)) == list(layers)


def test_initial_weights_are_small_gaussians():
    D = Discriminator(width=0.25)
    w = torch.cat([m.weight.flatten() for m in D.modules() if isinstance(m, nn.Conv2d)])
    assert w.std().item() == pytest.approx(0.02, rel=0.05)
    assert all((m.bias == 0).all() for m in D.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"image_size": 20}, "image_size"),
        ({"image_size": 0}, "image_size"),
        ({"channels": 0}, "channels"),
        ({"width": 0}, "width"),
    ],
)
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Discriminator(**kwargs)
    with pytest.raises(ValueError, match=word):
        Generator(**kwargs)
    with pytest.raises(ValueError, match="z_dim"):
        Generator(z_dim=0)
