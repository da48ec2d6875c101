"""Image metrics against independent references (scipy sqrtm, hand-built histograms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg

from sngan_edu.metrics import images as im


def _reference_fd(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1 @ s2).real
    d = mu1 - mu2
    return d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert im.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        _reference_fd(mu1, s1, mu2, s2), rel=1e-7)
    assert im.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_1d_gaussians_and_singular_covariances():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    fd = im.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]),
                             np.array([[1.0]]))
    assert fd == pytest.approx(4.0 + 1.0)
    # singular covariance (a dead feature) stays finite and non-negative
    s = np.diag([1.0, 0.0, 2.0])
    assert math.isfinite(im.frechet_distance(np.zeros(3), s, np.ones(3), np.eye(3)))


def test_histogram_coverage_kl_confidence():
    # 60 samples of class 0, 30 of class 1, 10 of class 2, confidence 0.5 / 0.9 / 1.0
    probs = torch.zeros(100, 10)
    probs[:60, 0], probs[60:90, 1], probs[90:, 2] = 0.5, 0.9, 1.0
    probs[:60, 5], probs[60:90, 6] = 0.5 - 1e-6, 0.1  # runner-up class, never the argmax
    p = np.array([0.6, 0.3, 0.1])
    assert im.class_histogram(probs)[:3].tolist() == pytest.approx(p.tolist())
    assert im.class_coverage(probs) == 3
    assert im.class_coverage(probs, min_share=0.2) == 2
    assert im.kl_to_uniform(probs) == pytest.approx(float((p * np.log(p * 10)).sum()))
    assert im.mean_confidence(probs) == pytest.approx((60 * 0.5 + 30 * 0.9 + 10 * 1.0) / 100)
    uniform = torch.eye(10).repeat(10, 1)
    assert im.kl_to_uniform(uniform) == pytest.approx(0.0) and im.class_coverage(uniform) == 10


def _random_probs(n: int, seed: int = 0) -> torch.Tensor:
    logits = torch.randn(n, 10, generator=torch.Generator().manual_seed(seed)) * 3
    return logits.softmax(1)


def test_confidence_profile_matches_numpy():
    probs = _random_probs(101)
    top = probs.max(1).values.double().numpy()
    profile = im.confidence_profile(probs, thresholds=(0.5, 0.8))
    assert set(profile) == {"mean", "median", "below_0.5", "below_0.8"}
    assert profile["mean"] == pytest.approx(top.mean())
    assert profile["median"] == pytest.approx(np.median(top))
    assert profile["below_0.5"] == pytest.approx(np.mean(top < 0.5))
    assert profile["below_0.8"] == pytest.approx(np.mean(top < 0.8))
    # an even count: the median interpolates between the two middle values, as numpy's does
    even = torch.tensor([[0.2] + [0.8 / 9] * 9, [0.6] + [0.4 / 9] * 9] * 2)
    assert im.confidence_profile(even)["median"] == pytest.approx(0.4)
    assert im.confidence_profile(even)["below_0.5"] == pytest.approx(0.5)


def test_mean_confidence_error_is_the_standard_error_of_the_mean():
    from scipy import stats

    probs = _random_probs(500, seed=3)
    top = probs.max(1).values.double().numpy()
    assert im.mean_confidence_error(probs) == pytest.approx(stats.sem(top), rel=1e-9)
    assert im.mean_confidence_error(probs) == pytest.approx(top.std(ddof=1) / math.sqrt(500))
    # four times the samples of the same distribution: about half the error
    many = im.mean_confidence_error(torch.cat([_random_probs(500, seed=k) for k in range(4)]))
    assert 0.4 < many / im.mean_confidence_error(probs) < 0.6
    with pytest.raises(ValueError, match="at least 2"):
        im.mean_confidence_error(probs[:1])
    assert im.confidence_estimate(probs) == {"confidence": pytest.approx(top.mean()),
                                             "confidence_se": pytest.approx(stats.sem(top))}


def test_confidence_bands_share_and_two_class_mass():
    # top-1 0.3 with runner-up 0.25 (junk), top-1 0.5 with runner-up 0.45 (blend), top-1 0.95
    probs = torch.zeros(4, 10)
    probs[0, :4] = torch.tensor([0.3, 0.25, 0.25, 0.2])
    probs[1:3, :2] = torch.tensor([0.5, 0.45])
    probs[1:3, 2] = 0.05
    probs[3, :2] = torch.tensor([0.95, 0.05])
    bands = im.confidence_bands(probs, edges=(0.0, 0.4, 0.7, 0.9))
    assert [(b["low"], b["high"]) for b in bands] == [(0.0, 0.4), (0.4, 0.7), (0.7, 0.9)]
    assert [b["share"] for b in bands] == pytest.approx([0.25, 0.5, 0.0])
    assert bands[0]["top2"] == pytest.approx(0.55) and bands[1]["top2"] == pytest.approx(0.95)
    assert math.isnan(bands[2]["top2"])  # no sample between 0.7 and 0.9


def test_least_confident_orders_by_top_probability():
    probs = _random_probs(50, seed=1)
    top = probs.max(1).values.numpy()
    idx = im.least_confident(probs, 7)
    assert idx.tolist() == np.argsort(top, kind="stable")[:7].tolist()
    assert top[idx[0]] == top.min() and (np.diff(top[idx]) >= 0).all()
    for bad in (0, 51, 2.0, True):
        with pytest.raises(ValueError, match=r"k must be an integer in \[1, 50\]"):
            im.least_confident(probs, bad)


def test_draw_least_confident_titles_the_two_likeliest_classes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sngan_edu.plots.images import draw_least_confident

    probs = torch.full((5, 10), 0.01)
    probs[:, 0] = torch.tensor([0.9, 0.3, 0.9, 0.6, 0.9])  # 3 (top 0.60), then 1 (0.62)
    probs[1, 7], probs[3, 4] = 0.62, 0.31
    images = torch.rand(5, 1, 8, 8) * 2 - 1
    fig = plt.figure()
    order = draw_least_confident(fig, images, probs, k=2, ncols=2)
    assert order.tolist() == [3, 1]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["0 0.60\n4 0.31", "7 0.62\n0 0.30"]
    shown = fig.axes[1].images[0].get_array()
    expected = (images[1, 0] + 1) / 2  # the grid maps [-1, 1] to [0, 1]
    assert np.allclose(np.asarray(shown)[..., 0], expected.numpy(), atol=1e-6)
    plt.close(fig)


def test_generate_is_reproducible_and_keeps_mode():
    g = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    g.train()
    a = im.generate(g, 7, z_dim=4, seed=1, batch_size=3)
    b = im.generate(g, 7, z_dim=4, seed=1)
    assert a.shape == (7, 3) and torch.allclose(a, b) and g.training


def test_missing_inception_weights_give_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(im, "inception_weights_path", lambda: tmp_path / "w.pth")
    with pytest.raises(im.InceptionWeightsMissing, match="w.pth") as info:
        im.fidelity_metrics(torch.nn.Linear(2, 2), z_dim=2)
    assert "Download https://" in str(info.value)


def test_fidelity_metrics_feeds_uint8_rgb_to_torch_fidelity(tmp_path, monkeypatch):
    """With weights present, the generator is wrapped as torch-fidelity expects (checked with a
    stand-in for calculate_metrics, since the real one needs the weights and the dataset)."""
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    monkeypatch.setattr(im, "inception_weights_path", lambda: weights)

    class Grey(torch.nn.Module):
        def forward(self, z):
            return torch.tanh(z[:, :1, None, None].expand(-1, 1, 8, 8))

    seen = {}

    def fake_calculate(input1, input1_model_num_samples, input2, isc, fid, **kwargs):
        z = torch.randn(5, input1.z_size)
        x = input1(z)
        seen.update(shape=tuple(x.shape), dtype=x.dtype, n=input1_model_num_samples, ref=input2)
        return {"inception_score_mean": 2.0, "inception_score_std": 0.1,
                "frechet_inception_distance": 30.0}

    out = im.fidelity_metrics(Grey(), z_dim=3, n_samples=10, calculate=fake_calculate)
    assert out == {"inception_score": 2.0, "inception_score_std": 0.1, "fid": 30.0}
    assert seen == {"shape": (5, 3, 8, 8), "dtype": torch.uint8, "n": 10, "ref": "cifar10-train"}


def test_rounded():
    assert im.rounded({"a": 0.123456, "b": 3, "c": float("nan")}) == {
        "a": 0.123, "b": 3, "c": pytest.approx(float("nan"), nan_ok=True)}


def test_the_digit_baseline_is_the_held_out_split_against_the_disjoint_train_split():
    from sklearn.datasets import load_digits

    from sngan_edu.data.images import digits_split_indices, load_image_data
    from sngan_edu.metrics.classifier import DIGITS_CLASSIFIER, load_classifier

    labels = load_digits().target
    train, test = digits_split_indices(len(labels), labels)
    assert len(test) == im.DIGITS_BASELINE_N and len(train) == im.DIGITS_REFERENCE_N
    assert not set(train.tolist()) & set(test.tolist())  # disjoint
    assert len(train) + len(test) == len(labels) == 1797  # together: every digit
    reference = im.digits_fd_reference()
    assert torch.equal(reference, load_image_data("digits", split="train").float_images())
    classifier = load_classifier(DIGITS_CLASSIFIER)
    baseline = im.digits_real_baseline(classifier)
    assert baseline["n"] == im.DIGITS_BASELINE_N and baseline["reference_n"] == len(reference)
    assert baseline["fd"] == pytest.approx(im.DIGITS_REAL_FD, abs=0.01)  # the quoted number
    # a generator is scored at the same n against the same reference: real held-out digits
    # passed as "samples" (with extra ones after them) get the baseline's FD
    held_out = load_image_data("digits", split="test").float_images()
    same = im.digits_fd_at_baseline_n(classifier, torch.cat([held_out, reference[:10]]))
    assert same["n"] == im.DIGITS_BASELINE_N
    assert same["fd"] == pytest.approx(baseline["fd"], abs=1e-6)
    with pytest.raises(ValueError, match="samples"):
        im.digits_fd_at_baseline_n(classifier, held_out[:100])
