"""Mode metrics on hand-made sample sets whose answers are known."""

import math

import pytest
import torch

from sngan_edu.data.toy import mixture_means, sample_mixture
from sngan_edu.metrics.toy import mode_metrics, toy_metrics

MEANS = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
STD = 1.0


def test_all_samples_on_the_means_uniformly():
    samples = MEANS.repeat(25, 1)  # 100 samples, 25 per mode
    m = mode_metrics(samples, MEANS, STD)
    assert (m.modes, m.n_modes, m.high_quality) == (4, 4, 100.0)
    assert m.reverse_kl == pytest.approx(0.0, abs=1e-12)


def test_one_mode_only_gives_log_k():
    m = mode_metrics(MEANS[:1].repeat(50, 1), MEANS, STD)
    assert m.modes == 1 and m.high_quality == 100.0
    assert m.reverse_kl == pytest.approx(math.log(4))


def test_low_quality_samples_count_against_quality_but_not_for_modes():
    # Two samples at mode 0; one at distance 2.9 std of mode 1 (high quality, it counts);
    # one at 3.1 std of mode 2 (low quality: mode 2 is not captured); one far from all.
    samples = torch.tensor([[0.0, 0.0], [0.0, 0.0], [12.9, 0.0], [0.0, 13.1], [5.0, 5.0]])
    m = mode_metrics(samples, MEANS, STD)
    assert m.modes == 2
    assert m.high_quality == pytest.approx(60.0)
    # High-quality distribution over modes: (2/3, 1/3, 0, 0) against uniform 1/4.
    expected = (2 / 3) * math.log(4 * 2 / 3) + (1 / 3) * math.log(4 / 3)
    assert m.reverse_kl == pytest.approx(expected)


def test_no_high_quality_sample_gives_nan_kl():
    m = mode_metrics(torch.tensor([[5.0, 5.0]]), MEANS, STD)
    assert (m.modes, m.high_quality) == (0, 0.0) and math.isnan(m.reverse_kl)


@pytest.mark.parametrize("name, k", [("ring", 8), ("grid", 25)])
def test_real_data_scores_like_the_gaussian_formula(name, k):
    x = sample_mixture(name, 2500, torch.Generator().manual_seed(1))
    m = toy_metrics(x, name)
    assert m.modes == k
    # P(||N(0, s^2 I_2)|| <= 3 s) = 1 - exp(-4.5) = 98.89 %; binomial sd over 2500 is 0.2 %.
    assert m.high_quality == pytest.approx(100 * (1 - math.exp(-4.5)), abs=0.8)
    assert m.reverse_kl < 0.02


def test_generator_collapsed_between_modes_scores_zero_quality():
    midpoints = (mixture_means("grid")[:5] + mixture_means("grid")[5:10]) / 2
    m = toy_metrics(midpoints.repeat(10, 1), "grid")
    assert m.modes == 0 and m.high_quality == 0.0


def test_bad_shapes_are_value_errors():
    with pytest.raises(ValueError, match="samples must have shape"):
        mode_metrics(torch.zeros(5, 3), MEANS, STD)
    with pytest.raises(ValueError, match="std must be positive"):
        mode_metrics(torch.zeros(5, 2), MEANS, 0.0)


def test_results_tables():
    from sngan_edu.metrics.toy import format_published_table, format_results_table

    row = {"dataset": "grid", "method": "sn", "seeds": 2, "steps": 10, "modes_mean": 24.5,
           "modes_std": 0.7, "hq_mean": 92.0, "hq_std": 2.8, "kl_mean": 0.03, "kl_std": 0.01,
           "full_coverage": 1, "kl_undefined": 1, "seconds_mean": 2.5, "cpu_seconds_mean": 2.0}
    table = format_results_table([row]).splitlines()
    assert " ".join(table[1].split()) == (
        "grid sn 2 10 24.5 +- 0.7 92.0 +- 2.8 0.03 +- 0.01 1/2 2 2 (KL undefined in 1)")
    assert "wall s" not in format_results_table([row], seconds=False)
    # every published row, in the modes / % high quality / reverse KL order of the papers
    published = format_published_table()
    assert "24.8 / 93.6 / 0.04" in published and "8 / 52.9 / -" in published


def test_modes_reached_counts_where_the_mass_goes_quality_ignored():
    from sngan_edu.data.toy import mixture_means, mixture_std
    from sngan_edu.metrics.toy import mode_shares, modes_reached, toy_metrics

    means = mixture_means("ring")
    blob = means[2] + 0.1 * torch.ones(1000, 2)  # one blob, 0.14 from mode 2: off every zone
    assert toy_metrics(blob, "ring").modes == 0 and modes_reached(blob, "ring") == 1
    spread = means.repeat(100, 1) + 5 * mixture_std("ring")  # every mode, none within 3 std
    assert modes_reached(spread, "ring") == 8
    # a mode needs half its fair share (1/16 of the samples on the ring) to count
    lopsided = torch.cat([means[:1].repeat(95, 1), means[1:2].repeat(5, 1)])
    assert modes_reached(lopsided, "ring") == 1 and modes_reached(lopsided, "ring", 0.25) == 2
    assert mode_shares(lopsided, means).tolist()[:2] == [0.95, 0.05]
    with pytest.raises(ValueError, match="samples must have shape"):
        mode_shares(torch.zeros(3, 3), means)
