"""Facts about notebooks/02_lipschitz_constraints.ipynb, run in its kernel after its last cell.

Its variables are this file's globals (see tools/nbval_facts.py). The trained
critics' outputs are not compared digit by digit (training amplifies last-bit differences
between CPU types); what the text relies on is asserted here with wide margins.
"""


def _facts_results():
    res = {r["method"]: r for r in rows}
    gap = {m: run.gaps[-1] for m, run in runs.items()}
    return res, gap


def _facts_spectra():
    rank = {m: int((s > 0.1 * s[0]).sum()) for m, s in spectra.items()}
    ratio = {m: float(s[1] / s[0]) for m, s in spectra.items()}
    return rank, ratio


def _facts_peaks():
    return {(m, step): float(grids[(m, step)].max()) for m in runs for step in SNAPSHOTS}


# --- section 4: convolutions (compared outputs; the condition of the lower bound) ------------


def fact_every_conv_of_the_32px_discriminator_has_a_full_window():
    assert all(r["full_window"] for r in conv_rows)
    assert all(r["reshaped"] <= r["operator"] * (1 + 1e-6) for r in conv_rows)  # so the bound holds
    assert all(r["operator"] <= r["upper"] for r in conv_rows)


def fact_the_conv_products_quoted_in_the_text():
    assert 15 < ratio_product < 17  # "about 16"
    assert round(upper_product) == 648


# --- section 5: the critic table -------------------------------------------------------------


def fact_measured_is_at_most_the_product_bound_for_every_method():
    assert all(r["measured"] <= r["bound"] for r in rows), rows


def fact_no_constraint_gap_and_gradient_in_the_hundreds_or_more():
    # the text: "after 300 steps both are in the hundreds or more"; over seeds 0-4 of
    # train_critics (same data) the gap was 305-378 and the measured gradient 1.05e3-1.52e3
    res, gap = _facts_results()
    assert gap["none"] > 100 and res["none"]["measured"] > 100


def fact_weight_clipping_gap_and_gradient_below_0_01():
    res, gap = _facts_results()
    assert gap["clip"] < 0.01 and res["clip"]["measured"] < 0.01


def fact_gradient_penalty_measured_gradient_in_0_5_to_2():
    res, _ = _facts_results()
    assert 0.5 <= res["gp"]["measured"] <= 2


def fact_gradient_penalty_product_bound_above_2():
    res, _ = _facts_results()
    assert res["gp"]["bound"] > 2


def fact_spectral_norm_product_bound_in_0_99_to_2():
    # was [0.99, 1.5] when the stored value was 1.22; the current library trains to 1.43 here
    # and 1.503 with AVX2 kernels (the one-iteration lag of two middle layers), so the margin
    # is 2: still far below the gradient penalty's bound (> 2, next fact) and no constraint's.
    res, _ = _facts_results()
    assert 0.99 <= res["sn"]["bound"] <= 2.0
    assert res["sn"]["bound"] < res["gp"]["bound"]


def fact_spectral_norm_measured_gradient_in_0_3_to_1_5():
    res, _ = _facts_results()
    assert 0.3 <= res["sn"]["measured"] <= 1.5


# --- section 5: singular values -------------------------------------------------------------


def fact_spectral_norm_every_layer_sigma_in_0_99_to_1_5():
    values = L.layer_lipschitz_factors(runs["sn"].critic).values()
    assert all(0.99 <= v <= 1.5 for v in values), values


def fact_spectral_norm_middle_layers_above_1():
    # the text: "the two middle 64 x 64 layers sit somewhat above 1"
    factors = L.layer_lipschitz_factors(runs["sn"].critic)
    assert factors["2"] > 1.0 and factors["4"] > 1.0


def fact_weight_clipping_at_most_3_of_64_singular_values_above_a_tenth():
    rank, _ = _facts_spectra()
    assert rank["clip"] <= 3


def fact_weight_clipping_sigma2_over_sigma1_below_0_1():
    _, ratio = _facts_spectra()
    assert ratio["clip"] < 0.1


def fact_gradient_penalty_at_least_32_of_64_singular_values_above_a_tenth():
    rank, _ = _facts_spectra()
    assert rank["gp"] >= 32


def fact_spectral_norm_at_least_32_of_64_singular_values_above_a_tenth():
    rank, _ = _facts_spectra()
    assert rank["sn"] >= 32


def fact_spectral_norm_sigma2_over_sigma1_above_0_5():
    _, ratio = _facts_spectra()
    assert ratio["sn"] > 0.5


# --- section 6: landscapes --------------------------------------------------------------------


def fact_no_constraint_peak_grows_at_every_snapshot_to_above_10():
    peak = _facts_peaks()
    none_peaks = [peak[("none", step)] for step in SNAPSHOTS]
    assert all(a < b for a, b in zip(none_peaks[:-1], none_peaks[1:], strict=True))
    assert none_peaks[-1] > 10


def fact_weight_clipping_peak_below_0_01_at_every_snapshot():
    peak = _facts_peaks()
    assert all(peak[("clip", s)] < 0.01 for s in SNAPSHOTS)


def fact_clipped_gradients_of_the_order_of_1e_4():
    # the widget text: "tiny everywhere (of the order of 10^-4)" after training
    peak = _facts_peaks()
    assert 1e-5 < peak[("clip", 300)] < 1e-3


def fact_gradient_penalty_peak_in_0_5_to_2_at_step_300():
    # the text: GP's gradients "stay near 1 over the whole plane too" (seeds 0-4: 1.10-1.15
    # measured near the data)
    peak = _facts_peaks()
    assert 0.5 <= peak[("gp", 300)] <= 2


def fact_spectral_norm_peak_at_most_1_5_at_every_snapshot():
    peak = _facts_peaks()
    assert all(peak[("sn", s)] <= 1.5 for s in SNAPSHOTS)


def fact_spectral_norm_peak_at_most_its_product_bound_at_step_300():
    peak = _facts_peaks()
    assert peak[("sn", 300)] <= L.product_bound(runs["sn"].critic)


# --- the page's updates ------------------------------------------------------------------------


def fact_the_comparison_ran_the_page_functions():
    # section 5 shows the updates in code; the runner got exactly those (tests/test_chapter_code
    # proves them equal to the library's critic_step)
    assert STEP_FNS == {"none": unconstrained_step, "clip": clipping_step, "gp": gp_step,
                        "sn": unconstrained_step}
    assert all(abs(v - 1) < 0.01 for v in L.layer_lipschitz_factors(sn_critic).values())
