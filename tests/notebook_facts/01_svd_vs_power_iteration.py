"""Facts about notebooks/01_svd_vs_power_iteration.ipynb, run in its kernel after its last cell.

Its variables are this file's globals (see sngan_edu/course/nbval_facts.py). The cells whose
output is not compared (trained critics, timings) are checked here, with margins that hold on
any CPU.
"""


def fact_optimal_d_is_flat_at_the_fake_samples():
    # Section 1: D* is 0 and flat on the fake bump; the original G loss gives exactly nothing,
    # the non-saturating one (real - fake) / std^2, growing as the bumps narrow.
    assert float(optimal.d_star[at_fake]) < 1e-300
    assert float(optimal.minimax_grad[at_fake]) == 0.0
    assert abs(float(-optimal.nonsaturating_grad[at_fake]) - 400.0) < 1e-6
    assert abs(float(-narrow.nonsaturating_grad[at_fake]) - 40_000.0) < 1e-3


def fact_the_plain_critic_gets_steep():
    # Section 2: the unconstrained Wasserstein critic's slope at the fake samples grows past 10.
    assert float(slopes["no constraint"].min()) > 10


def fact_the_sn_critic_slope_is_at_most_one_and_points_to_the_real_data():
    s = slopes["spectral norm"]
    assert float(s.min()) > 0.3, s.min()  # positive: from the fake bump towards the real one
    assert float(s.max()) <= 1.0 + 1e-3, s.max()  # the Lipschitz bound of SN
    everywhere = critics.critic_slopes(trained["spectral norm"], x_line.float()[:, None])
    assert float(everywhere.abs().max()) <= 1.0 + 1e-3


def fact_the_rate_predicts_the_iterations_for_ratio_0_9():
    k = iterations_to_reach(exp, 1e-6)
    assert k is not None and abs(k - predicted_iterations(0.9, 1e-6)) <= 3


def fact_exact_sigma_costs_more_than_10_power_iterations():
    # Section 8 (timings not compared): at 512 x 4608 one SVD costs > 10 power iterations.
    largest = timings[-1]
    assert (largest["m"], largest["n"]) == (512, 4608)
    assert largest["ratio"] > 10, largest


def fact_unnormalized_iteration_overflows_in_the_norm_first():
    # Section 9c: the norm overflows about twenty iterations before any entry does.
    norm_inf = first["||x|| overflows to inf"]
    entry_bad = first["an entry of x is inf or nan"]
    assert 15 <= norm_inf <= 25 and entry_bad - norm_inf >= 15
    assert bool(torch.isnan(x).all())
