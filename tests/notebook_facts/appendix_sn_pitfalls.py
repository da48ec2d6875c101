"""Facts about notebooks/appendix_sn_pitfalls.ipynb, run in its kernel after its last cell.

Its variables are this file's globals (see tools/nbval_facts.py). The training cells
(EMA, refresh, the two sigma demos) are not compared digit by digit: training amplifies
last-bit differences between CPU types. What the text says of them is asserted here, with
thresholds that hold for every seed stored by benchmarks/sn_pitfalls_seeds.py (a different CPU
is, in effect, another seed; tests/test_sn_pitfalls.py checks the thresholds against them).
"""


# --- section 2: EMA --------------------------------------------------------------------------


def fact_trained_d_every_layer_within_0_1_of_1():
    assert all(abs(s - 1) < 0.1 for s in trained_sigmas.values()), trained_sigmas


def fact_averaged_d_some_layer_above_1_5():
    assert max(averaged_sigmas.values()) > 1.5


def fact_averaged_d_some_vector_shorter_than_0_95():
    # measured before the refresh (the refresh restores unit length in place)
    assert min(u for u, _ in lengths.values()) < 0.95
    assert all(u <= 1 + 1e-6 and v <= 1 + 1e-6 for u, v in lengths.values())


def fact_averaged_d_no_layer_below_0_99_the_estimate_is_never_too_large():
    assert min(averaged_sigmas.values()) > 0.99


def fact_averaged_d_product_in_the_hundreds_trained_about_1():
    # the text: "in the hundreds instead of about 1"
    assert 100 <= math.prod(averaged_sigmas.values()) < 1000
    assert math.prod(trained_sigmas.values()) < 1.2


def fact_after_refresh_every_layer_within_0_05_of_1():
    assert all(abs(s - 1) < 0.05 for s in refreshed.values()), refreshed


def fact_after_100_more_every_layer_within_0_01_of_1():
    assert all(abs(s - 1) < 0.01 for s in refreshed_more.values()), refreshed_more


# --- section 3: two calls ---------------------------------------------------------------------


def _facts_plain_reference(start_layer):
    """Autograd through plain ops, one power iteration per call (torch's order), from the
    start state: the gradient two calls should give."""
    import torch.nn.functional as F

    p = start_layer.parametrizations.weight
    u, v = p[0]._u.clone(), p[0]._v.clone()
    W = p.original.detach().clone().requires_grad_()
    b = start_layer.bias.detach()
    outs = []
    for batch in (real, fake):
        with torch.no_grad():
            u = F.normalize(W @ v, dim=0)
            v = F.normalize(W.T @ u, dim=0)
        outs.append((batch @ (W / (u @ W @ v)).T + b).tanh().sum(1).mean())
    (grad,) = torch.autograd.grad(outs[0] - outs[1], W)
    return grad


def fact_two_call_gradient_is_that_of_one_iteration_per_call():
    # what the old notebook 03 printed as "gradient == hand reference (one iteration per call)"
    for label, start_layer in starts.items():
        reference = _facts_plain_reference(start_layer)
        assert torch.allclose(two_call_grads[label], reference, rtol=1e-10, atol=1e-12), label


def fact_right_after_warm_up_the_difference_is_about_0_02_percent():
    torch.manual_seed(1)
    layer = sn.spectral_norm(copy.deepcopy(base))
    joint_layer = copy.deepcopy(layer)
    (score(layer, real).mean() - score(layer, fake).mean()).backward()
    out = score(joint_layer, torch.cat((real, fake)))
    (out[:16].mean() - out[16:].mean()).backward()
    g2 = layer.parametrizations.weight.original.grad
    g1 = joint_layer.parametrizations.weight.original.grad
    assert 0.0001 < float((g2 - g1).norm() / g1.norm()) < 0.0003


def fact_both_training_runs_lag_early_and_catch_up():
    for history in (one_batch, two_calls):
        assert max_normalized_sigma(history) > 1.05
        assert max_normalized_sigma(history, after_step=100) < 1.1
        assert all(abs(records[-1][3] - 1) < 0.05 for records in history.values())
