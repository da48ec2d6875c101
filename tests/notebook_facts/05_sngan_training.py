"""Facts about notebooks/05_sngan_training.ipynb, run in its kernel after its last cell.

Its variables are this file's globals (see tools/nbval_facts.py). The training run's
digits differ between CPU types (training amplifies last-bit rounding), so its cells carry the
nbval-ignore-output tag; what the prose says of them, and what a healthy run of the defaults
reaches on any machine (all three stored SN seeds did, with margin: REPRODUCING.md), is asserted
here.
"""

import math


def fact_the_run_trained_every_step_and_wrote_its_folder():
    assert trainer.step == steps
    names = {p.name for p in result.out.iterdir()}
    assert {"checkpoint.pt", "metrics.json", "sigma_history.json", "samples_final.png",
            "real.png", "samples"} <= names


def fact_a_healthy_run_of_the_defaults():
    assert final["classes"] == 10
    assert final["confidence"] >= 0.8 and final["fd"] < 100
    assert final["confidence_plain"] >= 0.85


def fact_typical_samples_are_clear_and_the_tail_is_fatter_than_real():
    assert fake_profile["median"] > 0.9
    assert fake_profile["below_0.7"] > reference_profile["below_0.7"]
    assert fake_profile["mean"] < reference_profile["mean"]


def fact_the_mean_of_1000_samples_is_as_precise_as_the_appendix_says():
    precision = result.precision
    se_1k, se_10k = precision["confidence_se_1000"], precision["confidence_se"]
    assert 0.003 < se_1k < 0.012
    assert 2.5 * se_10k < se_1k < 4.0 * se_10k  # sqrt(10) = 3.16
    from sngan_edu.metrics import images as image_metrics

    gap = abs(image_metrics.mean_confidence(fake_probs) - precision["confidence"])
    assert gap < 4 * math.hypot(se_1k, se_10k)


def _conv_layers():
    return [name for name in history if name != "linear"]


def fact_raw_sigmas_grow_and_the_last_convolution_most():
    growth = {name: r[-1][2] / r[0][2] for name, r in history.items()}
    assert sum(g > 2 for g in growth.values()) >= len(growth) / 2  # "most grow several-fold"
    last_conv = _conv_layers()[-1]
    assert max(growth, key=growth.get) == last_conv and growth[last_conv] > 5
    assert history[last_conv][-1][2] > 10  # "to nearly 20" in the stored run


def fact_normalized_sigma_is_near_one_not_exactly_one():
    peaks = [max(r[3] for r in records) for records in history.values()]
    assert 1.02 < max(peaks) < 1.3  # "overshoots 1 by a few percent, at times by ten or more"
    assert all(records[-1][3] < 1.1 for records in history.values())
    assert min(min(r[3] for r in records) for records in history.values()) > 0.95


def fact_the_short_run_of_the_visible_loop_behaves_as_the_text_says():
    assert len(short["loss_d"]) == len(short["loss_g"]) == short_steps == 300
    assert all(math.isfinite(v) for v in short["loss_d"] + short["loss_g"])
    last = short["loss_d"][-100:]
    assert sum(last) / len(last) > 0.2  # "stays above 0" (0.48-0.78 over seeds 1-3)
    sigma = short["sigma"]
    assert sum(r[-1][2] > r[0][2] for r in sigma.values()) >= len(sigma) / 2  # "raw sigmas grow"
    normalized = [rec[3] for records in sigma.values() for rec in records[1:]]
    # "near 1, at times a tenth or more above": at most 1.29 over seeds 1-3
    assert all(0.95 < s < 1.5 for s in normalized)


def fact_the_baseline_is_the_librarys_and_g_is_scored_at_its_n():
    from sngan_edu.metrics.images import DIGITS_BASELINE_N, DIGITS_REAL_FD, DIGITS_REFERENCE_N

    assert baseline["n"] == same_n["n"] == DIGITS_BASELINE_N == len(held_out)
    assert baseline["reference_n"] == same_n["reference_n"] == DIGITS_REFERENCE_N
    assert f"{baseline['fd']:.2f}" == f"{DIGITS_REAL_FD:.2f}"  # the number the text quotes
    # "above the real held-out digits' 14.03": G has not reached real digits at this budget
    assert baseline["fd"] < same_n["fd"] < 100
