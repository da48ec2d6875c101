"""Facts about notebooks/01_svd_vs_power_iteration.ipynb, run in its kernel after its last cell.

Its variables are this file's globals (see tools/nbval_facts.py). The cells whose
output is not compared (trained discriminators, timings) and the figures the text reads are
checked here, with margins that hold on any CPU.
"""


def fact_optimal_d_is_flat_at_the_fake_samples():
    # Section 1: D* is 0 and flat on the fake bump; the original G loss gives exactly nothing,
    # the non-saturating one (real - fake) / std^2: 400, and 100 times more for bumps ten times
    # narrower (gap / width^2).
    assert float(optimal.d_star[at_fake]) < 1e-300
    assert float(optimal.minimax_grad[at_fake]) == 0.0
    assert abs(float(-optimal.nonsaturating_grad[at_fake]) - 400.0) < 1e-6
    assert abs(float(-narrow.nonsaturating_grad[at_fake]) - 40_000.0) < 1e-3


def fact_the_plain_discriminator_gets_steep_under_the_logistic_loss_only():
    # Section 2: the logistic loss drives the plain D towards D*'s jump; the hinge loss stops at
    # its margin, so on the fixed bumps the plain D stays on a gentle ramp.
    assert float(slopes["logistic, no constraint"].min()) > 3
    assert float(steepest["logistic, no constraint"]) > 5
    assert float(slopes["hinge, no constraint"].max()) < 1.5


def fact_sn_discriminators_have_slope_at_most_one_pointing_to_the_real_data():
    for name in ("logistic, SN", "hinge, SN"):
        s = slopes[name]
        assert float(s.min()) > 0.2, (name, s.min())  # positive: from fake towards real
        everywhere = critics.critic_slopes(trained[name], x_line.float()[:, None])
        assert float(everywhere.abs().max()) <= 1.01, (name, everywhere.abs().max())
    # both SN discriminators reach the hinge margin / separate the bumps
    d = trained["hinge, SN"].eval()
    assert float(d(real).mean()) > 0.9 and float(d(fake).mean()) < -0.9


def fact_measured_factors_equal_the_exact_prediction_and_differ_from_the_rate():
    for exp in experiments:
        measured = per_iteration_factor(exp.rel_error)
        exact = per_iteration_factor(exp.rel_error_theory)
        assert abs(measured - exact) < 1e-3 * exact, (exp.ratio, measured, exact)
        assert abs(measured / exp.ratio**4 - 1) < 0.05, (exp.ratio, measured)
        assert abs(per_iteration_factor(exp.angle) / exp.ratio**2 - 1) < 0.01
        assert abs(float(exp.singular_values[2]) - 0.9 * exp.ratio) < 1e-12  # sigma_3 = 0.9 sigma_2
    below = [per_iteration_factor(e.rel_error) < e.ratio**4 for e in experiments[:2]]
    assert all(below)  # ratios 0.5 and 0.7: the measured factor lies below the rate


def fact_the_rate_predicts_the_iterations_for_ratio_0_9():
    k = iterations_to_reach(exp, 1e-6)
    assert k is not None and abs(k - predicted_iterations(0.9, 1e-6)) <= 3


def fact_fresh_u_estimates_are_too_small_and_persistent_u_converges():
    assert float((sigma / fresh).min()) > 1.05  # sigma(W / sigma_hat) > 1 for every fresh draw
    assert float(persistent.rel_error[-1]) < 1e-3


def fact_real_updates_lag_early_and_catch_up():
    # Section 7: with real hinge updates the single iteration per step trails at first (the
    # text: "up to about 1.25"), then the weights come to rest (hinge loss 0) and u converges.
    early = float(lag[:50].max())
    assert 1.1 < early < 1.4, early
    assert float(lag[200:].max()) < 1.005, lag[200:].max()
    assert float(loss) == 0.0
    assert float(lag.min()) > 0.999  # a lower-bound estimate: never below 1


def fact_exact_sigma_costs_more_than_10_power_iterations():
    # Section 8 (timings not compared): at 512 x 2304, the standard CNN's largest reshaped
    # weight, one SVD costs more than 10 power iterations.
    largest = timings[-1]
    assert (largest["m"], largest["n"]) == (512, 2304)
    assert largest["ratio"] > 10, largest
