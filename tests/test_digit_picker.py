"""Notebook 07's "draw me a digit": the widget's callback is a plain function of (digit, seed)."""

from __future__ import annotations

import pytest
import torch

from sngan_edu.models.conditional import ConditionalGenerator
from sngan_edu.widgets.conditional import DigitPicker, requested_png, requested_samples

PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return ConditionalGenerator(10, 16, 16, 1, 0.0625)


def test_g_draws_the_digit_asked_from_the_seeds_noise(G):
    seven = requested_samples(G, 7, seed=3, z_dim=16, n=8)
    assert seven.shape == (8, 1, 16, 16) and G.training  # eval mode only while drawing
    torch.testing.assert_close(seven, requested_samples(G, 7, seed=3, z_dim=16, n=8))
    assert not torch.equal(seven, requested_samples(G, 7, seed=4, z_dim=16, n=8))
    G.norms[-1].bias.weight.data[2] += 1.0  # give class 2 its own bias: another picture
    assert not torch.equal(seven, requested_samples(G, 2, seed=3, z_dim=16, n=8))
    assert requested_png(G, 7, seed=3, z_dim=16).startswith(PNG)


@pytest.mark.parametrize("digit, seed, message", [(10, 0, "digit must be an integer in"),
                                                   (-1, 0, "digit must be"),
                                                   (3, -2, "seed must be")])
def test_bad_requests_are_named(G, digit, seed, message):
    with pytest.raises(ValueError, match=message):
        requested_samples(G, digit, seed, z_dim=16)


def test_the_widget_redraws_through_the_plain_function(G):
    picker = DigitPicker(G, z_dim=16, digit=7, seed=0)
    first = picker.image.value
    assert first == requested_png(G, 7, 0, 16)
    picker.digit.value = 3
    assert picker.image.value == requested_png(G, 3, 0, 16) != first
    picker.seed.value = 5
    assert picker.image.value == requested_png(G, 3, 5, 16)
    bundle = picker._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "image/png" in data and "application/vnd.jupyter.widget-view+json" in data
