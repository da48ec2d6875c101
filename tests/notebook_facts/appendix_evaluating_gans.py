"""Facts about notebooks/appendix_evaluating_gans.ipynb, run in its kernel after its last cell.

Its variables are this file's globals (see tools/nbval_facts.py). The prose reads
orderings and rates off the printed scores; they are asserted here, independently of the
printed digits, against the known formulas (s/sqrt(n), the FD of identical distributions).
"""

import math

import torch


def _scores(name):
    return image_metrics.classifier_metrics(classifier, candidates[name], reference, plain=plain)


def fact_fd_orders_real_blends_collapse_noise():
    fd = {name: _scores(name)["fd"] for name in candidates}
    assert fd["real held-out"] < fd["blends of two digits"] < fd["collapsed (only 3s)"]
    assert fd["collapsed (only 3s)"] < fd["uniform noise"]


def fact_confidence_is_fooled_by_collapse_and_kl_is_not():
    real_scores, collapsed_scores = _scores("real held-out"), _scores("collapsed (only 3s)")
    assert collapsed_scores["confidence"] >= real_scores["confidence"] - 0.02
    assert collapsed_scores["class_kl"] > 0.8 * math.log(10)
    assert real_scores["class_kl"] < 0.05 and real_scores["classes"] == 10


def fact_plain_classifier_is_confident_on_noise_and_blends():
    assert _scores("uniform noise")["confidence_plain"] > 0.8
    assert _scores("uniform noise")["confidence"] < 0.2
    blends_scores = _scores("blends of two digits")
    assert blends_scores["confidence_plain"] > blends_scores["confidence"]


def fact_standard_error_matches_the_spread_and_shrinks_like_sqrt_n():
    g = torch.Generator().manual_seed(1)
    spreads = {}
    for n in (100, 1000):
        means = torch.stack([pool_confidence[torch.randint(len(pool), (n,), generator=g)].mean()
                             for _ in range(300)])
        spreads[n] = float(means.std())
        formula = float(pool_confidence.std()) / n**0.5
        assert 0.8 < spreads[n] / formula < 1.2, (n, spreads[n], formula)
    assert 2.5 < spreads[100] / spreads[1000] < 4.0  # sqrt(10) = 3.16


def fact_fd_of_identical_distributions_falls_with_n():
    values = []
    for n in (100, 200, 400, 700):
        a, b = features[order[:n]], features[order[n : 2 * n]]
        values.append(image_metrics.frechet_distance(*image_metrics.gaussian_stats(a),
                                                     *image_metrics.gaussian_stats(b)))
    assert all(x > y for x, y in zip(values, values[1:], strict=False))
    assert values[0] > 5 * values[-1] > 0


def fact_a_memorizing_generator_gets_the_fd_of_real_data():
    # Copies of training images score like real held-out digits (FD far below the blends'), and
    # the whole training set scored against itself has FD 0: the FD cannot see copying.
    copies_fd = _scores("memorizing (copies)")["fd"]
    real_fd = _scores("real held-out")["fd"]
    assert 0.5 * real_fd < copies_fd < 2 * real_fd, (copies_fd, real_fd)
    assert copies_fd < 0.2 * _scores("blends of two digits")["fd"]
    assert abs(copy_all) < 1e-3
    assert len(copies) == len(real) and len(set(copy_rows[: len(real)].tolist())) == len(real)


def fact_the_first_row_is_the_courses_baseline_and_copies_beat_it():
    from sngan_edu.metrics.images import DIGITS_BASELINE_N, DIGITS_REAL_FD

    real_scores = _scores("real held-out")
    assert len(real) == baseline["n"] == DIGITS_BASELINE_N
    assert abs(real_scores["fd"] - baseline["fd"]) < 1e-6
    assert f"{baseline['fd']:.2f}" == f"{DIGITS_REAL_FD:.2f}"
    # "a lower FD than the 359 real held-out digits": copying beats real data
    assert _scores("memorizing (copies)")["fd"] < real_scores["fd"]
