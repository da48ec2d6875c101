"""Toy mixtures: exact means and std, seeded sampling, the sampler the trainer uses."""

import math

import pytest
import torch

from sngan_edu.toy import DATASETS, make_sampler, mixture_means, mixture_std, sample_mixture


def test_ring_means_are_the_unit_circle_at_multiples_of_45_degrees():
    means = mixture_means("ring").double()
    expected = torch.tensor(
        [[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)] for k in range(8)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(means, expected, atol=1e-7, rtol=0)
    assert mixture_std("ring") == 0.01


def test_grid_means_are_the_25_points_of_minus4_to_4_step_2():
    means = {tuple(p) for p in mixture_means("grid").tolist()}
    assert means == {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert mixture_std("grid") == 0.05


@pytest.mark.parametrize("name", DATASETS)
def test_samples_have_the_right_components_and_spread(name):
    gen = torch.Generator().manual_seed(0)
    x = sample_mixture(name, 20000, gen)
    means = mixture_means(name)
    nearest = torch.cdist(x, means).argmin(1)
    offsets = x - means[nearest]
    # Per-axis std of the offsets is the component std; every component gets about 1/K of the mass.
    expected_std = torch.full((2,), mixture_std(name))
    torch.testing.assert_close(offsets.std(0), expected_std, rtol=0.03, atol=0)
    fractions = torch.bincount(nearest, minlength=len(means)).double() / len(x)
    assert (fractions - 1 / len(means)).abs().max() < 0.01


def test_sampling_is_seeded_and_the_sampler_agrees_with_sample_mixture():
    a = sample_mixture("grid", 100, torch.Generator().manual_seed(5))
    b = sample_mixture("grid", 100, torch.Generator().manual_seed(5))
    c = make_sampler("grid")(100, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(a, sample_mixture("grid", 100, torch.Generator().manual_seed(6)))


def test_bad_names_and_sizes_are_value_errors():
    with pytest.raises(ValueError, match="dataset must be one of"):
        mixture_means("spiral")
    with pytest.raises(ValueError, match="dataset must be one of"):
        make_sampler("moons")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sample_mixture("ring", 0)
