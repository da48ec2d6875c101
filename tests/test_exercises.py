"""The exercise checks accept different correct solutions, reject typical mistakes with a hint
that names them, and cannot be fooled, hung or escaped by the function they check."""

from __future__ import annotations

import random
import sys
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sngan_edu.course import exercises as ex
from sngan_edu.course.exercises import core


def stub(*args, **kwargs):
    # what nbgrader leaves in a student copy
    raise NotImplementedError()


def fails_with(check, fn, *phrases: str) -> str:
    with pytest.raises(ex.ExerciseFailed) as info:
        check(fn)
    message = str(info.value)
    for phrase in ("expected:", "returned:", "hint:", *phrases):
        assert phrase in message, f"{phrase!r} not in:\n{message}"
    return message


def passes(check, fn, capsys, n_checks: int | None = None) -> str:
    check(fn)
    out = capsys.readouterr().out
    assert "checks passed" in out, out
    if n_checks is not None:
        assert f"all {n_checks} checks passed" in out, out
        assert out.count(ex.TICK) == n_checks
    return out


ALL_CHECKS = [
    ex.check_power_iteration,
    ex.check_track_sigma,
    ex.check_gradient_norms,
    ex.check_lipschitz_bound,
    ex.check_sn_forward,
    ex.check_sn_gradient,
    ex.check_unnormalized_layers,
    ex.check_hinge_d_loss,
    ex.check_hinge_g_loss,
    ex.check_mode_coverage,
    ex.check_sn_ring_discriminator,
    ex.check_discriminator_step,
]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_stub_raises_not_implemented_with_a_clear_message(check):
    with pytest.raises(NotImplementedError, match="not written yet"):
        check(stub)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_passing_a_result_instead_of_the_function_is_a_value_error(check):
    with pytest.raises(ValueError, match="pass your function itself"):
        check(1.0)


def test_an_unrelated_error_is_reported_with_the_check_it_happened_in():
    def broken(W, u, n_iters):
        return W @ W  # shape error for non-square W

    with pytest.raises(ex.ExerciseFailed, match="raised RuntimeError"):
        ex.check_power_iteration(broken)


def test_a_stub_called_by_the_function_is_named():
    def track_sigma(weights, u):
        return [float(stub(W, u, 1)[0]) for W in weights]

    with pytest.raises(NotImplementedError, match="track_sigma calls stub, which is not"):
        ex.check_track_sigma(track_sigma)


def test_a_library_not_implemented_error_with_a_message_is_an_ordinary_failure():
    def power_iteration(W, u, n_iters):
        raise NotImplementedError("this operator is not implemented for 'Half'")

    fails_with_error = pytest.raises(ex.ExerciseFailed, match="raised NotImplementedError")
    with fails_with_error:
        ex.check_power_iteration(power_iteration)


# ---------------------------------------------------------------- the safety net (issue 28)


def endless_power_iteration(W, u, n_iters):
    while True:
        try:
            u = F.normalize(W @ (W.T @ u), dim=0)
        except Exception:  # a student's catch-all must not swallow the time limit
            pass


@pytest.fixture
def short_time_limit(monkeypatch):
    monkeypatch.setattr(core, "TIME_LIMIT_S", 1.0)


@pytest.fixture(params=["child process", "in process"])
def either_way(request, monkeypatch):
    """Run the test with the checks in a child process (the default) and in the caller's
    process (the fallback where there is no fork)."""
    if request.param == "in process":
        monkeypatch.setenv("SNGAN_EDU_CHECKS_IN_PROCESS", "1")
    return request.param


def test_an_endless_loop_fails_the_check_with_a_time_limit_message(short_time_limit, either_way):
    start = time.monotonic()
    with pytest.raises(ex.ExerciseFailed) as info:
        ex.check_power_iteration(endless_power_iteration)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "did not finish within the check's time limit of 1 s" in message
    assert "loop that never ends" in message
    assert "returns (sigma, u, v)" in message  # the check it was in


def test_the_time_limit_works_off_the_main_thread_too(short_time_limit, either_way):
    # Off the main thread the check runs in a helper thread, abandoned when the time is up; this
    # endless loop ends when the test is over, so no thread outlives the test session.
    outcome, over = {}, threading.Event()

    def endless(W, u, n_iters):
        while not over.is_set():
            time.sleep(0.01)

    def run():
        try:
            ex.check_power_iteration(endless)
        except ex.ExerciseFailed as err:
            outcome["message"] = str(err)

    worker = threading.Thread(target=run)
    start = time.monotonic()
    try:
        worker.start()
        worker.join(30)
        assert not worker.is_alive() and time.monotonic() - start < 10
    finally:
        over.set()
    assert "did not finish within the check's time limit" in outcome["message"]


def test_the_time_limit_gives_back_an_outer_timer(short_time_limit, either_way):
    import signal

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *args: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    try:
        ex.check_hinge_g_loss(lambda f: -f.mean())
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 3.0 < left <= 5.0 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def swallowing_power_iteration(W, u, n_iters):
    while True:  # catches everything, even KeyboardInterrupt and the in-process time limit
        try:
            while True:
                u = F.normalize(W @ (W.T @ u), dim=0)
        except BaseException:  # noqa: B036
            pass


def test_an_endless_loop_that_catches_base_exception_is_killed(short_time_limit):
    start = time.monotonic()
    with pytest.raises(ex.ExerciseFailed) as info:
        ex.check_power_iteration(swallowing_power_iteration)
    assert time.monotonic() - start < 10
    assert "did not finish within the check's time limit of 1 s" in str(info.value)
    assert "returns (sigma, u, v)" in str(info.value)  # the check it was in


def test_a_function_that_ends_the_process_is_a_failed_check():
    import os

    with pytest.raises(ex.ExerciseFailed) as info:
        ex.check_hinge_g_loss(lambda d_fake: os._exit(0))
    assert "before a verdict" in str(info.value) and "`return`" in str(info.value)


def test_what_the_students_function_prints_is_shown(capsys):
    def hinge_g_loss(d_fake):
        print("debugging:", d_fake.shape[0])
        return -d_fake.mean()

    ex.check_hinge_g_loss(hinge_g_loss)
    out = capsys.readouterr().out
    assert "debugging: 3" in out and "all 5 checks passed" in out


def test_the_students_traceback_is_kept_as_the_cause():
    def hinge_g_loss(d_fake):
        return d_fake.no_such_method()

    with pytest.raises(ex.ExerciseFailed) as info:
        ex.check_hinge_g_loss(hinge_g_loss)
    assert "AttributeError" in str(info.value)
    assert "no_such_method" in str(info.value.__cause__)  # the student's line, for the notebook


def test_a_power_iteration_that_writes_into_the_callers_u_fails():
    def power_iteration(W, u, n_iters):
        for _ in range(n_iters):
            v = F.normalize(W.T @ u, dim=0)
            u.copy_(F.normalize(W @ v, dim=0))  # into the caller's tensor
        return u @ W @ v, u, v

    fails_with(ex.check_power_iteration, power_iteration, "u unchanged", "must stay as it was")


def test_a_nan_result_is_a_failed_check_with_a_hint_not_a_crash():
    def sn_forward(W, u):
        return W * float("nan"), u

    fails_with(ex.check_sn_forward, sn_forward, "finite numbers", "nan or inf",
               "division by zero")

    def sn_forward_inf(W, u):
        W_mat = W.reshape(W.shape[0], -1)
        with torch.no_grad():
            v = F.normalize(W_mat.T @ u, dim=0)
            u = F.normalize(W_mat @ v, dim=0)
        return W / (0 * (u @ W_mat @ v)), u

    fails_with(ex.check_sn_forward, sn_forward_inf, "nan or inf")


def test_an_error_in_the_checks_own_hint_code_is_a_failed_check(monkeypatch):
    from sngan_edu.course.exercises import sn_layer

    def broken_hint(*args):
        raise RuntimeError("linalg.svd: The algorithm failed to converge")

    def sn_forward(W, u):  # the right u, the wrong divisor: the check computes a hint
        W_mat = W.reshape(W.shape[0], -1)
        with torch.no_grad():
            u = F.normalize(W_mat @ F.normalize(W_mat.T @ u, dim=0), dim=0)
        return W / 2.0, u

    monkeypatch.setattr(sn_layer, "_divisor_hint", broken_hint)
    with pytest.raises(ex.ExerciseFailed) as info:
        ex.check_sn_forward(sn_forward)
    assert "could not make sense of what your function returned" in str(info.value)


@pytest.mark.parametrize("exit_call", [lambda: sys.exit(), lambda: sys.exit(3), lambda: exit()])
def test_sys_exit_in_the_students_function_is_a_failed_check(exit_call):
    def hinge_g_loss(d_fake):
        exit_call()

    with pytest.raises(ex.ExerciseFailed) as info:
        ex.check_hinge_g_loss(hinge_g_loss)
    assert "called sys.exit()" in str(info.value) and "`return`" in str(info.value)


def test_default_dtype_grad_mode_and_random_streams_are_restored():
    def hinge_g_loss(d_fake):
        torch.set_default_dtype(torch.float64)
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)
        return -d_fake.mean()

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    expected = (torch.rand(2), np.random.rand(), random.random())
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    ex.check_hinge_g_loss(hinge_g_loss)
    assert torch.get_default_dtype() == torch.float32
    assert torch.is_grad_enabled()
    got = (torch.rand(2), np.random.rand(), random.random())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]


def test_a_check_starts_from_float32_and_gives_back_the_callers_dtype(capsys):
    def hinge_g_loss(d_fake):
        print("dtype seen:", torch.get_default_dtype())  # printed back by the check
        return -d_fake.mean()

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.no_grad():
            ex.check_hinge_g_loss(hinge_g_loss)
            assert torch.get_default_dtype() == torch.float64 and not torch.is_grad_enabled()
    finally:
        torch.set_default_dtype(previous)
    seen = {line for line in capsys.readouterr().out.splitlines() if "dtype seen" in line}
    assert seen == {"dtype seen: torch.float32"}


def test_checks_do_not_shift_the_callers_random_stream():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ex.check_power_iteration(power_iteration_a)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_numpy_numbers_of_any_dtype_are_accepted(dtype, capsys):
    def lipschitz_bound(model):
        return np.prod([np.linalg.norm(m.weight.detach().double().numpy(), 2)
                        for m in model.modules() if isinstance(m, nn.Linear)]).astype(np.float64)

    def mode_coverage(samples, means, std):
        modes, percent = mode_coverage_a(samples, means, std)
        return dtype(modes), np.float64(percent).astype(dtype if dtype != np.int64 else
                                                         np.float64)

    def power_iteration(W, u, n_iters):
        sigma, u, v = power_iteration_a(W, u, n_iters)
        return np.asarray(sigma.item(), dtype=np.float64).astype(np.float32), u, v

    if dtype in (np.float32, np.float64):
        passes(ex.check_lipschitz_bound, lambda m: dtype(lipschitz_bound(m)), capsys)
        passes(ex.check_power_iteration, power_iteration, capsys)
    if dtype != np.float16:  # a float16 percentage is too coarse for the comparison
        passes(ex.check_mode_coverage, mode_coverage, capsys)


def test_numpy_arrays_of_one_element_are_numbers_but_booleans_are_not():
    assert core.as_number(np.array([2.5], dtype=np.float32)) == 2.5
    assert core.as_number(np.float32(0.5)) == 0.5
    assert core.as_number(torch.tensor([[1.5]])) == 1.5
    assert core.as_number(True) is None and core.as_number(np.bool_(True)) is None
    assert core.as_number("1.0") is None and core.as_number(np.zeros(2)) is None
    fails_with(ex.check_lipschitz_bound, lambda model: True, "not a comparison")


# ---------------------------------------------------------------- 1.1 power iteration


def power_iteration_a(W, u, n_iters):
    for _ in range(n_iters):
        v = F.normalize(W.T @ u, dim=0)
        u = F.normalize(W @ v, dim=0)
    return u @ W @ v, u, v


def power_iteration_b(W, u, n_iters):
    # a different correct solution: explicit norms, sigma as |W v|, numpy-style loop
    u = u.clone()
    for _ in range(n_iters):
        v = torch.mv(W.t(), u)
        v = v / v.norm()
        Wv = torch.mv(W, v)
        sigma = Wv.norm().item()
        u = Wv / sigma
    return sigma, u, v


def power_iteration_ahead(W, u, n_iters):
    # correct too: u from W W^T u, and v computed from the final u (half a step ahead)
    for _ in range(n_iters):
        u = F.normalize(W @ (W.T @ u), dim=0)
    v = F.normalize(W.T @ u, dim=0)
    return u @ W @ v, u, v


def library_power_iteration(W, u, n_iters):
    from sngan_edu.spectral import power_iteration

    sigma, u, v, _ = power_iteration(W, u, n_iters=n_iters)
    return sigma, u, v


@pytest.mark.parametrize("fn", [power_iteration_a, power_iteration_b, library_power_iteration,
                                lambda W, u, n: list(power_iteration_a(W, u, n))])
def test_power_iteration_correct_solutions_pass(fn, capsys):
    out = passes(ex.check_power_iteration, fn, capsys, n_checks=6)
    assert "note:" not in out


def test_power_iteration_with_v_half_a_step_ahead_passes_with_a_note(capsys):
    out = passes(ex.check_power_iteration, power_iteration_ahead, capsys, n_checks=6)
    assert "note: your v is W^T u / |W^T u| for the final u, half a step ahead" in out


def test_power_iteration_mistakes_get_hints():
    def fresh_random_u(W, u, n_iters):
        return power_iteration_a(W, F.normalize(torch.randn(W.shape[0]), dim=0), n_iters)

    def squared(W, u, n_iters):
        sigma, u, v = power_iteration_a(W, u, n_iters)
        return sigma**2, u, v

    def unnormalized(W, u, n_iters):
        for _ in range(n_iters):
            v = W.T @ u
            u = W @ v
        return u @ W @ v, u, v

    def frobenius(W, u, n_iters):
        _, u, v = power_iteration_a(W, u, n_iters)
        return torch.linalg.matrix_norm(W), u, v

    def swapped(W, u, n_iters):
        sigma, u, v = power_iteration_a(W, u, n_iters)
        return sigma, v, u

    def modifies_w(W, u, n_iters):
        W.mul_(1.0001)
        return power_iteration_a(W, u, n_iters)

    fails_with(ex.check_power_iteration, fresh_random_u, "do not draw a new random one")
    fails_with(ex.check_power_iteration, squared, "sigma squared")
    fails_with(ex.check_power_iteration, unnormalized, "unit vectors")
    fails_with(ex.check_power_iteration, frobenius, "Frobenius")
    fails_with(ex.check_power_iteration, swapped, "one entry per row of W")
    fails_with(ex.check_power_iteration, modifies_w, "W unchanged", "must stay as it was")


def test_power_iteration_normalizing_only_at_the_end_gets_the_overflow_hint():
    def normalize_at_the_end(W, u, n_iters):
        for _ in range(n_iters):
            v = W.T @ u
            u = W @ v
        u, v = u / u.norm(), v / v.norm()
        return u @ W @ v, u, v

    message = fails_with(ex.check_power_iteration, normalize_at_the_end, "overflowed",
                         "inside the loop, at every iteration, not only at the end")
    assert "nan" in message and "60 iterations" in message


def test_power_iteration_wrong_return_type():
    fails_with(ex.check_power_iteration, lambda W, u, n: power_iteration_a(W, u, n)[0],
               "return sigma, u, v")


# ---------------------------------------------------------------- 1.2 tracking sigma


def track_sigma_a(weights, u):
    estimates = []
    for W in weights:
        v = F.normalize(W.T @ u, dim=0)
        u = F.normalize(W @ v, dim=0)
        estimates.append(float(u @ W @ v))
    return estimates


def track_sigma_b(weights, u):
    # a different correct solution: the library's power iteration, a tensor of estimates
    from sngan_edu.spectral import power_iteration

    out = []
    for W in weights:
        sigma, u, _, _ = power_iteration(W, u, n_iters=1)
        out.append(sigma)
    return torch.stack(out)


def track_sigma_ahead(weights, u):
    estimates = []
    for W in weights:
        u = F.normalize(W @ (W.T @ u), dim=0)
        estimates.append(np.float32((W.T @ u).norm().item()))
    return estimates


@pytest.mark.parametrize("fn", [track_sigma_a, track_sigma_b,
                                lambda ws, u: np.array(track_sigma_a(ws, u))])
def test_track_sigma_correct_solutions_pass(fn, capsys):
    passes(ex.check_track_sigma, fn, capsys, n_checks=6)


def test_track_sigma_with_v_half_a_step_ahead_passes_with_a_note(capsys):
    out = passes(ex.check_track_sigma, track_sigma_ahead, capsys, n_checks=6)
    assert "note: your estimate is |W^T u|" in out


def test_track_sigma_restarting_with_more_iterations_each_step_fails():
    def restart_with_t_plus_one(weights, u):  # quadratic cost, no warm start
        out = []
        for t, W in enumerate(weights):
            v_t, u_t = None, u
            for _ in range(t + 1):
                v_t = F.normalize(W.T @ u_t, dim=0)
                u_t = F.normalize(W @ v_t, dim=0)
            out.append(float(u_t @ W @ v_t))
        return out

    fails_with(ex.check_track_sigma, restart_with_t_plus_one, "unrelated successive weights",
               "t+1 iterations", "ONE iteration")


def test_track_sigma_mistakes_get_hints():
    def same_start_every_step(weights, u):
        return [float(power_iteration_a(W, u, 1)[0]) for W in weights]

    def fresh_random_u(weights, u):
        return [float(power_iteration_a(W, F.normalize(torch.randn(len(u)), dim=0), 1)[0])
                for W in weights]

    def exact_svd(weights, u):
        return [float(torch.linalg.svdvals(W)[0]) for W in weights]

    def ten_iterations(weights, u):
        estimates = []
        for W in weights:
            sigma, u, _ = power_iteration_a(W, u, 10)
            estimates.append(float(sigma))
        return estimates

    def last_only(weights, u):
        return track_sigma_a(weights, u)[-1]

    fails_with(ex.check_track_sigma, same_start_every_step, "started again from the u you "
               "were given")
    fails_with(ex.check_track_sigma, fresh_random_u, "a fresh random u")
    fails_with(ex.check_track_sigma, exact_svd, "sigma by SVD")
    fails_with(ex.check_track_sigma, ten_iterations, "you ran 10 iterations per step")
    fails_with(ex.check_track_sigma, last_only, "one estimate per step")


# ---------------------------------------------------------------- 2.1 gradient norms


def gradient_norms_a(D, x):
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    return grad.flatten(1).norm(dim=1)


def gradient_norms_b(D, x):
    # a different correct solution: backward() on a leaf copy, then per-sample norms
    x = x.clone().requires_grad_()
    D(x).sum().backward()
    return x.grad.reshape(len(x), -1).pow(2).sum(1).sqrt()


def gradient_norms_eval(D, x):
    # correct too: eval mode for the measurement, the caller's mode restored
    was_training = D.training
    D.eval()
    try:
        return gradient_norms_a(D, x)
    finally:
        D.train(was_training)


@pytest.mark.parametrize("fn", [gradient_norms_a, gradient_norms_b, gradient_norms_eval])
def test_gradient_norms_correct_solutions_pass(fn, capsys):
    passes(ex.check_gradient_norms, fn, capsys, n_checks=3)


def test_gradient_norms_mistakes_get_hints():
    def mean_instead_of_sum(D, x):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).mean(), x)
        return grad.flatten(1).norm(dim=1)

    def squared(D, x):
        return gradient_norms_a(D, x) ** 2

    def whole_batch(D, x):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x)
        return grad.norm()

    def last_dim_only(D, x):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x)
        return grad.norm(dim=-1)

    def parameter_gradient(D, x):
        out = D(x).sum()
        grads = torch.autograd.grad(out, list(D.parameters()))
        return torch.stack([g.norm() for g in grads])[:1].expand(len(x))

    fails_with(ex.check_gradient_norms, mean_instead_of_sum, "batch size")
    fails_with(ex.check_gradient_norms, squared, "squared norms")
    fails_with(ex.check_gradient_norms, whole_batch, "shape (5,)")
    fails_with(ex.check_gradient_norms, last_dim_only, "all of them at once", "one norm per image")
    fails_with(ex.check_gradient_norms, parameter_gradient, "with respect to x")


def test_gradient_norms_that_change_the_model_fail():
    def left_in_eval_mode(D, x):
        D.eval()
        return gradient_norms_a(D, x)

    def scales_the_weights(D, x):
        with torch.no_grad():
            for p in D.parameters():
                p.mul_(0.5)
        return gradient_norms_a(D, x) * 2

    fails_with(ex.check_gradient_norms, left_in_eval_mode, "left in eval mode",
               "switch it back")
    fails_with(ex.check_gradient_norms, scales_the_weights, "weight was changed",
               "must not change what it measures")


# ---------------------------------------------------------------- 2.2 Lipschitz bound


def lipschitz_bound_a(model):
    bound = 1.0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            bound *= torch.linalg.matrix_norm(m.weight, ord=2).item()
    return bound


def lipschitz_bound_b(model):
    # a different correct solution: a tensor result via svdvals
    norms = [torch.linalg.svdvals(m.weight)[0]
             for _, m in model.named_modules() if isinstance(m, nn.Linear)]
    return torch.stack(norms).prod()


@pytest.mark.parametrize("fn", [lipschitz_bound_a, lipschitz_bound_b])
def test_lipschitz_bound_correct_solutions_pass(fn, capsys):
    passes(ex.check_lipschitz_bound, fn, capsys, n_checks=4)


def test_lipschitz_bound_mistakes_get_hints():
    def frobenius(model):
        norms = [torch.linalg.matrix_norm(m.weight.detach())
                 for m in model if isinstance(m, nn.Linear)]
        return float(torch.prod(torch.stack(norms)))

    def summed(model):
        return sum(torch.linalg.svdvals(m.weight)[0].item()
                   for m in model if isinstance(m, nn.Linear))

    def first_layer_only(model):
        first = next(m for m in model.modules() if isinstance(m, nn.Linear))
        return torch.linalg.svdvals(first.weight)[0].item()

    fails_with(ex.check_lipschitz_bound, frobenius, "Frobenius")
    fails_with(ex.check_lipschitz_bound, summed, "PRODUCT")
    fails_with(ex.check_lipschitz_bound, first_layer_only, "one layer's norm", "multiply")


def test_lipschitz_bound_over_the_top_level_only_fails_on_nested_models():
    def children_only(model):  # passed every check while all test models were flat
        bound = 1.0
        for layer in model.children():
            if isinstance(layer, nn.Linear):
                bound *= torch.linalg.matrix_norm(layer.weight, ord=2).item()
        return bound

    fails_with(ex.check_lipschitz_bound, children_only, "nested modules",
               "model.children() lists the direct children")


def test_lipschitz_bound_that_zeroes_the_model_and_returns_zero_fails():
    # Today's check computed its reference after the call: this passed every check.
    def zero_and_return_zero(model):
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
        return 0.0

    def normalizes_the_model_first(model):
        from sngan_edu.sn import apply_spectral_norm

        apply_spectral_norm(model)
        return lipschitz_bound_a(model)

    fails_with(ex.check_lipschitz_bound, zero_and_return_zero, "the model unchanged",
               "0.weight was changed", "must not change what it measures")
    fails_with(ex.check_lipschitz_bound, normalizes_the_model_first, "was removed")


# ---------------------------------------------------------------- 3.1 SN forward


def sn_forward_a(W, u):
    mat = W.reshape(W.shape[0], -1)
    with torch.no_grad():
        v = F.normalize(mat.T @ u, dim=0)
        u = F.normalize(mat @ v, dim=0)
    sigma = u @ mat @ v
    return W / sigma, u


def sn_forward_b(W, u):
    # a different correct solution: detach instead of no_grad, torch.dot, flatten
    mat = W.flatten(1)
    v = mat.detach().t().mv(u)
    v = v / v.norm()
    u_new = mat.detach().mv(v)
    u_new = u_new / u_new.norm()
    sigma = torch.dot(u_new, mat.mv(v))
    return [W / sigma, u_new]


def test_sn_forward_matches_the_library_and_torch():
    from torch.nn.utils.parametrizations import spectral_norm

    layer = spectral_norm(nn.Linear(5, 4))
    layer.eval()
    sn = layer.parametrizations.weight[0]
    W = layer.parametrizations.weight.original.detach()
    # torch's stored (u, v) are a fixed point of one more step only approximately; compare
    # W / sigma directly instead: from torch's u, one step, then divide
    w_sn, _ = sn_forward_a(W, sn._u.clone())
    sigma = (W / w_sn).flatten()[0]
    assert torch.allclose(sigma, torch.linalg.svdvals(W)[0], rtol=1e-3)


@pytest.mark.parametrize("fn", [sn_forward_a, sn_forward_b])
def test_sn_forward_correct_solutions_pass(fn, capsys):
    passes(ex.check_sn_forward, fn, capsys, n_checks=4)


def test_sn_forward_mistakes_get_hints():
    def grad_through_power_iteration(W, u):
        mat = W.reshape(W.shape[0], -1)
        v = F.normalize(mat.T @ u, dim=0)
        u = F.normalize(mat @ v, dim=0)
        return W / (u @ mat @ v), u

    def constant_sigma(W, u):
        w_sn, u = sn_forward_a(W, u)
        sigma = (W / w_sn).flatten()[0].item()
        return W / sigma, u

    def exact_svd(W, u):
        # "correct" sigma but not the power-iteration estimate the layer uses
        mat = W.reshape(W.shape[0], -1)
        return W / torch.linalg.svdvals(mat)[0], u

    def no_reshape(W, u):
        if W.dim() == 4:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
        return sn_forward_a(W, u)

    fails_with(ex.check_sn_forward, grad_through_power_iteration, "torch.no_grad()")
    fails_with(ex.check_sn_forward, constant_sigma, "sigma was treated as a constant")
    fails_with(ex.check_sn_forward, exact_svd, "one step from u")
    with pytest.raises(ex.ExerciseFailed, match="raised RuntimeError"):
        ex.check_sn_forward(no_reshape)


def test_sn_forward_wrong_divisors_are_named_and_no_hint_speaks_of_other_singular_values():
    def divided_by(transform):
        def sn_forward(W, u):
            w_sn, u_new = sn_forward_a(W, u)
            sigma = W.flatten()[0] / w_sn.flatten()[0]
            return W / transform(W, u, u_new, sigma), u_new
        return sn_forward

    def old_u(W, u, u_new, sigma):
        mat = W.reshape(W.shape[0], -1)
        return u @ mat @ F.normalize(mat.T @ u, dim=0)

    def u_sigma_inverse_sqrt_v(W, u):
        U, S, Vh = torch.linalg.svd(W, full_matrices=False)
        _, u_new = sn_forward_a(W, u)
        return U @ torch.diag(S.rsqrt()) @ Vh, u_new

    cases = [
        (divided_by(lambda W, u, un, s: s.sqrt()), "square root of sigma"),
        (divided_by(lambda W, u, un, s: s**2), "sigma squared"),
        (divided_by(lambda W, u, un, s: torch.linalg.matrix_norm(W.flatten(1))), "Frobenius"),
        (divided_by(lambda W, u, un, s: torch.linalg.svdvals(W.flatten(1))[0]),
         "exact sigma (SVD)"),
        (divided_by(old_u), "OLD u"),
        (u_sigma_inverse_sqrt_v, "SHAPE of the spectrum"),
    ]
    for fn, phrase in cases:
        message = fails_with(ex.check_sn_forward, fn, phrase)
        assert "largest singular value" not in message.split("hint:")[1] or "Frobenius" in phrase
        assert "not only the largest singular value" not in message


# ---------------------------------------------------------------- 3.2 SN gradient


def sn_gradient_a(W, u, v, G):
    sigma = u @ W @ v
    lam = (G * W).sum() / sigma
    return (G - lam * torch.outer(u, v)) / sigma


def sn_gradient_b(W, u, v, G):
    # a different correct solution: the two terms of the product rule, written out
    sigma = float(u @ W @ v)
    direct = G / sigma
    through_sigma = -(G * W).sum() / sigma**2 * u[:, None] * v[None, :]
    return direct + through_sigma


@pytest.mark.parametrize("fn", [sn_gradient_a, sn_gradient_b])
def test_sn_gradient_correct_solutions_pass(fn, capsys):
    passes(ex.check_sn_gradient, fn, capsys, n_checks=3)


def test_sn_gradient_by_autograd_fails_whatever_it_does_to_get_a_graph():
    def backward(W, u, v, G):  # passed before: the task is the derivation
        W = W.detach().clone().requires_grad_(True)
        ((G * W / (u @ W @ v)).sum()).backward()
        return W.grad

    def enable_grad(W, u, v, G):
        with torch.enable_grad():
            W = W.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad((G * W / (u @ W @ v)).sum(), W)
        return grad

    def swallowed(W, u, v, G):
        try:
            return backward(W, u, v, G)
        except Exception:
            return sn_gradient_a(W, u, v, G) * 1.5

    def functional(W, u, v, G):
        return torch.func.grad(lambda w: (G * w / (u @ w @ v)).sum())(W)

    for fn in (backward, enable_grad, swallowed):
        fails_with(ex.check_sn_gradient, fn, "without autograd", "switched off")
    with pytest.raises(ex.ExerciseFailed):
        ex.check_sn_gradient(functional)


def test_sn_gradient_mistakes_get_hints():
    def constant_sigma(W, u, v, G):
        return G / (u @ W @ v)

    def plus_sign(W, u, v, G):
        sigma = u @ W @ v
        return (G + (G * W).sum() / sigma * torch.outer(u, v)) / sigma

    def lambda_with_w(W, u, v, G):
        sigma = u @ W @ v
        return (G - (G * W).sum() * torch.outer(u, v)) / sigma

    def transposed_outer(W, u, v, G):
        sigma = u @ W @ v
        return (G - (G * W).sum() / sigma * torch.outer(v, u)) / sigma

    def not_divided(W, u, v, G):
        return sn_gradient_a(W, u, v, G) * (u @ W @ v)

    def svd_vectors(W, u, v, G):
        U, _, Vh = torch.linalg.svd(W)
        return sn_gradient_a(W, U[:, 0], Vh[0], G)

    def writes_into_g(W, u, v, G):
        G -= (G * W).sum() / (u @ W @ v) * torch.outer(u, v)
        return G / (u @ W @ v)

    fails_with(ex.check_sn_gradient, constant_sigma, "treated sigma as a constant")
    fails_with(ex.check_sn_gradient, plus_sign, "SUBTRACTED")
    fails_with(ex.check_sn_gradient, lambda_with_w, "NORMALIZED weight")
    fails_with(ex.check_sn_gradient, transposed_outer, "wrong way round")
    fails_with(ex.check_sn_gradient, not_divided, "divide the whole result by sigma")
    fails_with(ex.check_sn_gradient, svd_vectors, "exact singular vectors")
    fails_with(ex.check_sn_gradient, writes_into_g, "G unchanged", "must stay as it was")


def test_sn_gradient_generic_hint_guides_the_derivation_without_the_formula():
    message = fails_with(ex.check_sn_gradient, lambda W, u, v, G: G * 0.5, "derive it again",
                         "u v^T")
    assert "(G - " not in message and "backward" not in message


# ---------------------------------------------------------------- 3.3 forgotten layers


def unnormalized_layers_a(model):
    from sngan_edu.sn import is_spectral_normalized

    kinds = (nn.Linear, nn.modules.conv._ConvNd)
    return [name for name, m in model.named_modules()
            if isinstance(m, kinds) and not is_spectral_normalized(m)]


def unnormalized_layers_b(model):
    # a different correct solution: look for the parametrization's class by name, a set
    found = set()
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                          nn.ConvTranspose2d, nn.ConvTranspose3d)):
            parametrized = torch.nn.utils.parametrize.is_parametrized(m, "weight")
            kinds = [type(p).__name__ for p in m.parametrizations["weight"]] if parametrized \
                else []
            if not any(k in ("SpectralNorm", "_SpectralNorm") for k in kinds):
                found.add(name)
    return found


@pytest.mark.parametrize("fn", [unnormalized_layers_a, unnormalized_layers_b])
def test_unnormalized_layers_correct_solutions_pass(fn, capsys):
    passes(ex.check_unnormalized_layers, fn, capsys, n_checks=4)


def test_unnormalized_layers_mistakes_get_hints():
    from torch.nn.utils import parametrize

    from sngan_edu.sn import is_spectral_normalized

    def children_only(model):
        return [name for name, m in model.named_children()
                if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
                and not is_spectral_normalized(m)]

    def any_weight(model):
        return [name for name, m in model.named_modules()
                if isinstance(getattr(m, "weight", None), torch.Tensor) and name
                and not is_spectral_normalized(m)]

    def modules_not_names(model):
        return [m for _, m in model.named_modules()
                if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
                and not is_spectral_normalized(m)]

    def old_api(model):
        return [name for name, m in model.named_modules()
                if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
                and not hasattr(m, "weight_orig")]

    def any_parametrization(model):
        return [name for name, m in model.named_modules()
                if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
                and not parametrize.is_parametrized(m, "weight")]

    def linear_and_conv2d_only(model):
        return [name for name, m in model.named_modules()
                if isinstance(m, (nn.Linear, nn.Conv2d)) and not is_spectral_normalized(m)]

    def normalizes_them(model):
        from sngan_edu.sn import apply_spectral_norm

        names = unnormalized_layers_a(model)
        apply_spectral_norm(model)
        return names

    fails_with(ex.check_unnormalized_layers, children_only, "model.children() lists only the "
               "top level", "named_modules()")
    fails_with(ex.check_unnormalized_layers, any_weight, "BatchNorm2d", "not a matrix")
    fails_with(ex.check_unnormalized_layers, modules_not_names, "NAMES")
    fails_with(ex.check_unnormalized_layers, old_api, "already has spectral norm",
               "no weight_orig")
    fails_with(ex.check_unnormalized_layers, any_parametrization, "weight norm",
               "is_spectral_normalized")
    fails_with(ex.check_unnormalized_layers, linear_and_conv2d_only, "every kind of "
               "convolution")
    fails_with(ex.check_unnormalized_layers, normalizes_them, "the model unchanged")


def test_spectral_norm_on_a_whole_model_is_the_mistake_the_exercise_is_about():
    from torch.nn.utils.parametrizations import spectral_norm

    with pytest.raises(ValueError, match="has no parameter or buffer with name 'weight'"):
        spectral_norm(nn.Sequential(nn.Linear(2, 2)))


# ---------------------------------------------------------------- 4.1, 4.2 hinge losses


def hinge_d_a(d_real, d_fake):
    return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()


def hinge_d_b(d_real, d_fake):
    return torch.clamp(1 - d_real, min=0).mean() + torch.clamp(1 + d_fake, min=0).mean()


def hinge_g(d_fake):
    return -d_fake.mean()


@pytest.mark.parametrize("fn", [hinge_d_a, hinge_d_b])
def test_hinge_d_correct_solutions_pass(fn, capsys):
    passes(ex.check_hinge_d_loss, fn, capsys, n_checks=5)


def test_the_library_losses_pass_their_own_checks():
    from sngan_edu import losses

    ex.check_hinge_d_loss(losses.hinge_d_loss)
    ex.check_hinge_g_loss(losses.hinge_g_loss)
    fails_with(ex.check_hinge_d_loss, losses.vanilla_d_loss, "vanilla GAN")
    fails_with(ex.check_hinge_d_loss, losses.wasserstein_d_loss, "Wasserstein")
    fails_with(ex.check_hinge_g_loss, losses.vanilla_g_loss, "non-saturating")


def test_hinge_d_mistakes_get_hints():
    fails_with(ex.check_hinge_d_loss, lambda r, f: (1 - r).mean() + (1 + f).mean(), "relu")
    fails_with(ex.check_hinge_d_loss, lambda r, f: hinge_d_a(-r, -f), "signs are swapped")
    fails_with(ex.check_hinge_d_loss, lambda r, f: F.relu(1 - r).mean() + F.relu(1 - f).mean(),
               "the fake term has the wrong sign")
    fails_with(ex.check_hinge_d_loss, lambda r, f: F.relu(1 + r).mean() + F.relu(1 + f).mean(),
               "the real term has the wrong sign")
    fails_with(ex.check_hinge_d_loss,
               lambda r, f: F.relu(1 - r).sum() + F.relu(1 + f).sum(), "summed", ".mean()")
    fails_with(ex.check_hinge_d_loss,
               lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(), "binary cross-entropy")
    fails_with(ex.check_hinge_d_loss, lambda r, f: F.binary_cross_entropy_with_logits(
        torch.cat([r, f]), torch.cat([torch.ones_like(r), torch.zeros_like(f)])),
        "binary cross-entropy")
    fails_with(ex.check_hinge_d_loss,
               lambda r, f: torch.cat([F.relu(1 - r), F.relu(1 + f)]).mean(), "half")
    fails_with(ex.check_hinge_d_loss, lambda r, f: F.relu(1 - r).mean(), "only the real term")
    fails_with(ex.check_hinge_d_loss, lambda r, f: hinge_d_a(r, f).item(), ".item()")


def test_hinge_d_with_detached_scores_fails_naming_the_cut_off_scores():
    # the right value, but no gradient reaches the fakes (passed every check before)
    fails_with(ex.check_hinge_d_loss,
               lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f.detach()).mean(),
               "no gradient reaches d_fake", "detach")
    fails_with(ex.check_hinge_d_loss,
               lambda r, f: F.relu(1 - r.detach()).mean() + F.relu(1 + f).mean(),
               "no gradient reaches d_real")

    def fake_term_under_no_grad(r, f):
        with torch.no_grad():
            fake_term = F.relu(1 + f).mean()
        return F.relu(1 - r).mean() + fake_term

    fails_with(ex.check_hinge_d_loss, fake_term_under_no_grad, "no gradient reaches d_fake")
    fails_with(ex.check_hinge_g_loss, lambda f: -f.detach().mean() + 0 * f.sum(),
               "no gradient reaches d_fake")


def test_hinge_d_generic_hint_does_not_give_the_answer_away():
    message = fails_with(ex.check_hinge_d_loss, lambda r, f: (r - f).abs().mean(), "by hand")
    assert "relu(1" not in message


def test_hinge_g_passes_and_mistakes_get_hints(capsys):
    passes(ex.check_hinge_g_loss, hinge_g, capsys, n_checks=5)
    fails_with(ex.check_hinge_g_loss, lambda f: F.relu(1 - f).mean(), "no clipping")
    fails_with(ex.check_hinge_g_loss, lambda f: f.mean(), "the sign")
    fails_with(ex.check_hinge_g_loss, lambda f: -f.sum(), "summed", ".mean()")
    fails_with(ex.check_hinge_g_loss, lambda f: F.softplus(-f).mean(), "non-saturating")
    fails_with(ex.check_hinge_g_loss, lambda f: -F.softplus(f).mean(), "minimax")
    fails_with(ex.check_hinge_g_loss, lambda f: F.relu(1 + f).mean(), "discriminator's fake term")


def test_hinge_g_generic_hint_does_not_give_the_answer_away():
    message = fails_with(ex.check_hinge_g_loss, lambda f: -(f**3).mean(), "compare yours")
    assert "-d_fake.mean()" not in message


# ---------------------------------------------------------------- 4.3 mode coverage


def mode_coverage_a(samples, means, std):
    d = torch.cdist(samples, means)
    dist, nearest = d.min(dim=1)
    good = dist < 3 * std
    return len(set(nearest[good].tolist())), 100 * good.float().mean().item()


def mode_coverage_b(samples, means, std):
    # a different correct solution: broadcasting, bincount, a list
    d2 = ((samples[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    idx = d2.argmin(1)
    good = d2.gather(1, idx[:, None]).squeeze(1) <= (3 * std) ** 2
    counts = torch.bincount(idx[good], minlength=len(means))
    return [int((counts > 0).sum()), torch.tensor(100.0 * good.sum().item() / len(samples))]


@pytest.mark.parametrize("fn", [mode_coverage_a, mode_coverage_b])
def test_mode_coverage_correct_solutions_pass(fn, capsys):
    passes(ex.check_mode_coverage, fn, capsys, n_checks=7)


def test_reference_mode_coverage_agrees_with_an_independent_count():
    g = torch.Generator().manual_seed(0)
    angles = torch.arange(8) * 2 * torch.pi / 8
    ring = torch.stack([angles.cos(), angles.sin()], 1)
    picks = torch.randint(0, 3, (300,), generator=g)
    samples = ring[picks] + 0.02 * torch.randn(300, 2, generator=g)
    modes, percent = ex.reference_mode_coverage(samples, ring, 0.01)
    good = (samples - ring[picks]).norm(dim=1) <= 0.03  # the nearest mode is the picked one
    assert modes == len(set(picks[good].tolist())) == 3
    assert percent == pytest.approx(100 * good.double().mean().item())
    assert 0 < percent < 100


def with_threshold(good_of):
    def mode_coverage(samples, means, std):
        diff = samples[:, None, :] - means[None, :, :]
        dist, nearest = diff.norm(dim=-1).min(dim=1)
        offset = (samples - means[nearest]).abs()
        good = good_of(dist, offset, std)
        return len(set(nearest[good].tolist())), 100 * good.float().mean().item()
    return mode_coverage


def test_mode_coverage_mistakes_get_hints():
    def any_nearest(samples, means, std):
        d = torch.cdist(samples, means)
        dist, nearest = d.min(dim=1)
        return len(set(nearest.tolist())), 100 * (dist < 3 * std).float().mean().item()

    def fraction(samples, means, std):
        modes, percent = mode_coverage_a(samples, means, std)
        return modes, percent / 100

    fails_with(ex.check_mode_coverage, with_threshold(lambda d, o, s: d <= s), "3 * std")
    fails_with(ex.check_mode_coverage, any_nearest, "HIGH-QUALITY")
    fails_with(ex.check_mode_coverage, fraction, "not a fraction")


def test_mode_coverage_with_the_rings_numbers_hard_coded_fails():
    def ring_std(samples, means, std):
        return mode_coverage_a(samples, means, 0.01)

    def ring_means(samples, means, std):
        import math

        angles = torch.arange(8) * 2 * math.pi / 8
        ring = torch.stack([angles.cos(), angles.sin()], dim=1)
        return mode_coverage_a(samples, ring, std)

    fails_with(ex.check_mode_coverage, ring_std, "mixtures you have not seen", "ring's std")
    fails_with(ex.check_mode_coverage, ring_means, "mixtures you have not seen", "ring's means")


def test_mode_coverage_box_threshold_fails_on_the_diagonal_case():
    message = fails_with(ex.check_mode_coverage,
                         with_threshold(lambda d, o, s: (o <= 3 * s).all(dim=1)),
                         "square box", "Euclidean")
    assert "2.5 std off in x AND in y" in message


def test_mode_coverage_squared_threshold_mistakes_are_named():
    fails_with(ex.check_mode_coverage, with_threshold(lambda d, o, s: d <= 3 * s**2),
               "3 * std**2 is not a distance")
    fails_with(ex.check_mode_coverage, with_threshold(lambda d, o, s: d**2 <= 3 * s),
               "SQUARED distance with 3 * std")


def test_mode_coverage_that_writes_into_the_samples_fails():
    def moves_the_samples(samples, means, std):
        samples -= 0.0001
        return mode_coverage_a(samples, means, std)

    fails_with(ex.check_mode_coverage, moves_the_samples, "samples unchanged")


# ---------------------------------------------------------------- 4.4 SN ring discriminator


def sn_ring_discriminator_a(std):
    from sngan_edu.models.toy_mlp import ToyDiscriminator
    from sngan_edu.sn import apply_spectral_norm

    return apply_spectral_norm(ToyDiscriminator(hidden=(64, 64), input_scale=0.5 / std))


class Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def sn_ring_discriminator_b(std):
    # a different correct solution: by hand, torch's SN, 1 / std, (N, 1) scores
    from torch.nn.utils.parametrizations import spectral_norm

    return nn.Sequential(Scale(1 / std), spectral_norm(nn.Linear(2, 32)), nn.LeakyReLU(0.1),
                         spectral_norm(nn.Linear(32, 1)))


def sn_ring_discriminator_hooks(std):
    # correct too: torch's older hook-based spectral_norm (was rejected as "no spectral norm")
    from torch.nn.utils import spectral_norm

    return nn.Sequential(Scale(0.5 / std), spectral_norm(nn.Linear(2, 32)), nn.LeakyReLU(0.1),
                         spectral_norm(nn.Linear(32, 32)), nn.LeakyReLU(0.1),
                         spectral_norm(nn.Linear(32, 1)))


@pytest.mark.parametrize("fn", [sn_ring_discriminator_a, sn_ring_discriminator_b,
                                sn_ring_discriminator_hooks])
def test_sn_ring_discriminator_correct_solutions_pass(fn, capsys):
    passes(ex.check_sn_ring_discriminator, fn, capsys, n_checks=3)


def test_sn_ring_discriminator_mistakes_get_hints():
    from torch.nn.utils.parametrizations import spectral_norm

    from sngan_edu.models.toy_mlp import ToyDiscriminator
    from sngan_edu.sn import apply_spectral_norm

    def no_scale(std):
        return apply_spectral_norm(ToyDiscriminator(hidden=(64, 64)))

    def times_std(std):
        return apply_spectral_norm(ToyDiscriminator(hidden=(64, 64), input_scale=0.5 * std))

    def sn_on_the_whole_model(std):
        return spectral_norm(ToyDiscriminator(hidden=(64, 64), input_scale=0.5 / std))

    def no_sn(std):
        return ToyDiscriminator(hidden=(64, 64), input_scale=0.5 / std)

    def first_layer_only(std):
        D = ToyDiscriminator(hidden=(64, 64), input_scale=0.5 / std)
        spectral_norm(D.net[0])
        return D

    def far_too_steep(std):
        return apply_spectral_norm(ToyDiscriminator(hidden=(64, 64), input_scale=100 / std))

    fails_with(ex.check_sn_ring_discriminator, no_scale, "sees the points unscaled",
               "at most 1-Lipschitz")
    fails_with(ex.check_sn_ring_discriminator, times_std, "SHRINKS it", "divide by std")
    with pytest.raises(ex.ExerciseFailed, match="spectral_norm wraps ONE layer's weight"):
        ex.check_sn_ring_discriminator(sn_on_the_whole_model)
    fails_with(ex.check_sn_ring_discriminator, no_sn, "no spectral norm on ['net.0', 'net.2', "
               "'net.4']", "apply_spectral_norm")
    fails_with(ex.check_sn_ring_discriminator, first_layer_only, "['net.2', 'net.4']")
    fails_with(ex.check_sn_ring_discriminator, far_too_steep, "so steep")


class Stretch(nn.Module):
    def __init__(self, factors):
        super().__init__()
        self.register_buffer("factors", torch.tensor(factors))

    def forward(self, x):
        return x * self.factors


def test_sn_ring_discriminator_is_checked_on_its_whole_input_map_and_its_output():
    from torch.nn.utils.parametrizations import spectral_norm

    def mlp():
        return [spectral_norm(nn.Linear(2, 32)), nn.LeakyReLU(0.1), spectral_norm(nn.Linear(32, 1))]

    def x_only(std):  # passed before: only the largest stretch was checked
        return nn.Sequential(Stretch([0.5 / std, 1.0]), *mlp())

    def output_scaled(std):  # got the false hint "sees the points unscaled"
        return nn.Sequential(*mlp(), Scale(50.0))

    def frozen_sn(std):  # carries spectral norm whose power iteration never runs
        D = nn.Sequential(Scale(0.5 / std), *mlp())
        for m in D.modules():
            if isinstance(m, nn.Linear):
                m.parametrizations.weight[0].n_power_iterations = 0
                with torch.no_grad():  # a new weight: the stored u, v no longer fit it
                    m.parametrizations.weight.original.normal_()
        return D

    fails_with(ex.check_sn_ring_discriminator, x_only, "every direction", "one direction",
               "Stretch both coordinates")
    fails_with(ex.check_sn_ring_discriminator, output_scaled, "steeper than its input stretch",
               "multiply the input, not the output")
    fails_with(ex.check_sn_ring_discriminator, frozen_sn, "sigma 1 for the weight",
               "not divided by its largest singular value")


# ---------------------------------------------------------------- 5.1 discriminator step


def d_step_a(D, G, opt_D, real, z):
    opt_D.zero_grad()
    with torch.no_grad():
        fake = G(z)
    loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake)).mean()
    loss.backward()
    opt_D.step()
    return loss.item()


def d_step_b(D, G, opt_D, real, z):
    # a different correct solution: one batched forward pass, zero_grad(set_to_none=False)
    fake = G(z).detach()
    scores = D(torch.cat([real, fake]))
    d_real, d_fake = scores[: len(real)], scores[len(real):]
    loss = torch.relu(1 - d_real).mean() + torch.relu(1 + d_fake).mean()
    opt_D.zero_grad(set_to_none=False)
    loss.backward()
    opt_D.step()
    return loss.item()


def d_step_c(D, G, opt_D, real, z):
    # correct too: D.zero_grad() instead of the optimizer's, a NumPy number
    D.zero_grad()
    with torch.no_grad():
        fake = G(z)
    loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake)).mean()
    loss.backward()
    opt_D.step()
    return loss.detach().numpy().astype(np.float32)[()]


@pytest.mark.parametrize("fn", [d_step_a, d_step_b, d_step_c])
def test_discriminator_step_correct_solutions_pass(fn, capsys):
    passes(ex.check_discriminator_step, fn, capsys, n_checks=3)


def test_discriminator_step_mistakes_get_hints():
    def no_zero_grad(D, G, opt_D, real, z):
        fake = G(z).detach()
        loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake)).mean()
        loss.backward()
        opt_D.step()
        return loss.item()

    def no_step(D, G, opt_D, real, z):
        opt_D.zero_grad()
        fake = G(z).detach()
        loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake)).mean()
        loss.backward()
        return loss.item()

    def not_detached(D, G, opt_D, real, z):
        opt_D.zero_grad()
        loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(G(z))).mean()
        loss.backward()
        opt_D.step()
        return loss.item()

    def loss_after_step(D, G, opt_D, real, z):
        d_step_a(D, G, opt_D, real, z)
        with torch.no_grad():
            return (F.relu(1 - D(real)).mean() + F.relu(1 + D(G(z))).mean()).item()

    def vanilla_loss(D, G, opt_D, real, z):
        opt_D.zero_grad()
        fake = G(z).detach()
        loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        loss.backward()
        opt_D.step()
        return loss.item()

    fails_with(ex.check_discriminator_step, no_zero_grad, "zero_grad() before")
    fails_with(ex.check_discriminator_step, no_step, "call opt_D.step()")
    fails_with(ex.check_discriminator_step, not_detached, "detach")
    fails_with(ex.check_discriminator_step, loss_after_step, "AFTER the update",
               "loss.item()")
    fails_with(ex.check_discriminator_step, vanilla_loss, "binary cross-entropy",
               "relu(1 - D(real))")


def test_discriminator_step_in_eval_mode_fails():
    def eval_mode(D, G, opt_D, real, z):  # freezes SN's u: passed while the test D had no SN
        D.eval()
        return d_step_a(D, G, opt_D, real, z)

    def eval_then_back(D, G, opt_D, real, z):
        D.eval()
        loss = d_step_a(D, G, opt_D, real, z)
        D.train()
        return loss

    def batchnorm_frozen(D, G, opt_D, real, z):
        for m in D.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.eval()
        return d_step_a(D, G, opt_D, real, z)

    for fn in (eval_mode, eval_then_back, batchnorm_frozen):
        fails_with(ex.check_discriminator_step, fn, "training mode", "eval mode",
                   "power iteration", "BatchNorm")


def test_discriminator_step_with_an_extra_forward_pass_fails_on_the_buffers():
    def scores_twice(D, G, opt_D, real, z):
        loss = d_step_a(D, G, opt_D, real, z)
        with torch.no_grad():
            fake = G(z)
        D(real), D(fake)  # a "logging" pass in training mode moves u and BatchNorm's statistics
        return loss

    fails_with(ex.check_discriminator_step, scores_twice, "buffer", "extra forward passes")


def test_discriminator_step_returning_the_loss_tensor_fails():
    def returns_tensor(D, G, opt_D, real, z):
        d_step_a(D, G, opt_D, real, z)
        opt_D.zero_grad()
        with torch.no_grad():
            fake = G(z)
        return F.relu(1 - D(real)).mean() + F.relu(1 + D(fake)).mean()

    def returns_the_step_loss(D, G, opt_D, real, z):
        opt_D.zero_grad()
        with torch.no_grad():
            fake = G(z)
        loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake)).mean()
        loss.backward()
        opt_D.step()
        return loss

    fails_with(ex.check_discriminator_step, returns_the_step_loss, "a Python number",
               "a tensor", "loss.item()")
    with pytest.raises(ex.ExerciseFailed):
        ex.check_discriminator_step(returns_tensor)


def test_discriminator_step_backprop_into_g_is_caught_even_if_cleared():
    def backprop_then_clear(D, G, opt_D, real, z):
        opt_D.zero_grad()
        loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(G(z))).mean()
        loss.backward()
        opt_D.step()
        G.zero_grad(set_to_none=True)
        return loss.item()

    fails_with(ex.check_discriminator_step, backprop_then_clear, "the backward pass went "
               "through G", "does not undo")


def test_discriminator_step_zero_grad_between_backward_and_step_is_named():
    def zero_grad_too_late(D, G, opt_D, real, z):
        with torch.no_grad():
            fake = G(z)
        loss = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake)).mean()
        loss.backward()
        opt_D.zero_grad()
        opt_D.step()
        return loss.item()

    message = fails_with(ex.check_discriminator_step, zero_grad_too_late,
                         "zero_grad() ran AFTER loss.backward()", "backward -> zero_grad -> "
                         "step with no gradients")
    assert "call opt_D.step() after" not in message


def test_discriminator_step_that_writes_into_the_batch_fails():
    def normalizes_z_in_place(D, G, opt_D, real, z):
        z /= z.norm(dim=1, keepdim=True)
        return d_step_a(D, G, opt_D, real, z)

    fails_with(ex.check_discriminator_step, normalizes_z_in_place, "z unchanged")


# ---------------------------------------------------------------- 2.3 gradient penalty


def gradient_penalty_a(D, real, fake, eps):
    shape = (-1,) + (1,) * (real.dim() - 1)
    x = eps.reshape(shape) * real + (1 - eps.reshape(shape)) * fake
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def gradient_penalty_b(D, real, fake, eps):
    # correct too: torch.lerp, the library's gradient_norms with create_graph
    from sngan_edu.lipschitz import gradient_norms

    e = eps.view(-1, *([1] * (real.dim() - 1)))
    x = torch.lerp(fake, real, e)
    return (gradient_norms(D, x, create_graph=True, eval_mode=False) - 1).pow(2).mean()


@pytest.mark.parametrize("fn", [gradient_penalty_a, gradient_penalty_b])
def test_gradient_penalty_correct_solutions_pass(fn, capsys):
    passes(ex.check_gradient_penalty, fn, capsys, n_checks=3)


def test_gradient_penalty_mistakes_get_hints():
    def no_create_graph(D, real, fake, eps):
        shape = (-1,) + (1,) * (real.dim() - 1)
        x = (eps.reshape(shape) * real + (1 - eps.reshape(shape)) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def batch_norm(D, real, fake, eps):
        shape = (-1,) + (1,) * (real.dim() - 1)
        x = (eps.reshape(shape) * real + (1 - eps.reshape(shape)) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
        return (grad.norm() - 1) ** 2

    def one_sided(D, real, fake, eps):
        shape = (-1,) + (1,) * (real.dim() - 1)
        x = (eps.reshape(shape) * real + (1 - eps.reshape(shape)) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
        return (F.relu(grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def at_real(D, real, fake, eps):
        return gradient_penalty_a(D, real, real, eps)

    def mean_scores(D, real, fake, eps):
        shape = (-1,) + (1,) * (real.dim() - 1)
        x = (eps.reshape(shape) * real + (1 - eps.reshape(shape)) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).mean(), x, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def eps_not_spread(D, real, fake, eps):
        x = (eps * real.T).T + ((1 - eps) * fake.T).T if real.dim() == 2 else eps * real
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    fails_with(ex.check_gradient_penalty, no_create_graph, "D can be trained on",
               "recorded by autograd")
    fails_with(ex.check_gradient_penalty, batch_norm, "ONE norm of the whole batch")
    fails_with(ex.check_gradient_penalty, one_sided, "one-sided")
    fails_with(ex.check_gradient_penalty, at_real, "at the real samples")
    fails_with(ex.check_gradient_penalty, mean_scores, "divided by the batch size")
    fails_with(ex.check_gradient_penalty, eps_not_spread, "image batches")


def test_gradient_penalty_hints_do_not_give_the_call_away():
    message = fails_with(ex.check_gradient_penalty, lambda D, r, f, e: (D(r) * 0).sum() + 1.0,
                         "three steps")
    assert "create_graph" not in message


# ---------------------------------------------------------------- 2.4 conv operator norm


def conv_operator_norm_a(weight, input_shape, stride, padding, n_iters):
    x = torch.randn(1, *input_shape)
    x = x / x.norm()
    for _ in range(n_iters):
        y = F.conv2d(x, weight, stride=stride, padding=padding)
        sizes = zip(input_shape[1:], y.shape[2:], weight.shape[2:], strict=True)
        extra = tuple(n - ((m - 1) * stride - 2 * padding + k) for n, m, k in sizes)
        x = F.conv_transpose2d(y, weight, stride=stride, padding=padding, output_padding=extra)
        x = x / x.norm()
    return F.conv2d(x, weight, stride=stride, padding=padding).norm()


def conv_operator_norm_vjp(weight, input_shape, stride, padding, n_iters):
    # correct too: the adjoint by autograd's vector-Jacobian product
    def conv(v):
        return F.conv2d(v, weight, stride=stride, padding=padding)

    x = torch.randn(1, *input_shape)
    _, adjoint = torch.func.vjp(conv, torch.zeros_like(x))
    for _ in range(n_iters):
        (x,) = adjoint(conv(x))
        x = x / x.norm()
    return float(conv(x).norm())


@pytest.mark.parametrize("fn", [conv_operator_norm_a, conv_operator_norm_vjp])
def test_conv_operator_norm_correct_solutions_pass(fn, capsys):
    passes(ex.check_conv_operator_norm, fn, capsys, n_checks=4)


def test_conv_operator_norm_mistakes_get_hints():
    def reshaped(weight, input_shape, stride, padding, n_iters):
        return torch.linalg.matrix_norm(weight.flatten(1), ord=2)

    def squared(weight, input_shape, stride, padding, n_iters):
        return conv_operator_norm_a(weight, input_shape, stride, padding, n_iters) ** 2

    def stride_ignored_in_transpose(weight, input_shape, stride, padding, n_iters):
        x = torch.randn(1, *input_shape)
        for _ in range(n_iters):
            y = F.conv2d(x, weight, stride=stride, padding=padding)
            x = F.conv_transpose2d(y, weight, padding=padding)
            x = x / x.norm()
        return F.conv2d(x, weight, stride=stride, padding=padding).norm()

    def too_few_iterations(weight, input_shape, stride, padding, n_iters):
        return conv_operator_norm_a(weight, input_shape, stride, padding, 1)

    fails_with(ex.check_conv_operator_norm, reshaped, "reshaped to a matrix",
               "overlapping itself")
    fails_with(ex.check_conv_operator_norm, squared, "sigma squared")
    with pytest.raises(ex.ExerciseFailed, match="stride 2"):
        ex.check_conv_operator_norm(stride_ignored_in_transpose)
    fails_with(ex.check_conv_operator_norm, too_few_iterations, "too small")


# ---------------------------------------------------------------- 5.2 generator step + average


def g_step_a(D, G, G_avg, opt_G, z, decay):
    for p in D.parameters():
        p.requires_grad_(False)
    try:
        loss = -D(G(z)).mean()
        opt_G.zero_grad()
        loss.backward()
        opt_G.step()
    finally:
        for p in D.parameters():
            p.requires_grad_(True)
    with torch.no_grad():
        for p_avg, p in zip(G_avg.parameters(), G.parameters(), strict=True):
            p_avg.copy_(decay * p_avg + (1 - decay) * p)
    return loss.item()


def g_step_b(D, G, G_avg, opt_G, z, decay):
    # correct too: the library's generator step, lerp for the average
    from sngan_edu import gan_step, losses

    loss = gan_step.generator_step(G, D, opt_G, z, losses.hinge_g_loss)
    with torch.no_grad():
        for p_avg, p in zip(G_avg.parameters(), G.parameters(), strict=True):
            p_avg.lerp_(p, 1 - decay)
    return float(loss)


@pytest.mark.parametrize("fn", [g_step_a, g_step_b])
def test_generator_step_correct_solutions_pass(fn, capsys):
    passes(ex.check_generator_step, fn, capsys, n_checks=4)


def test_generator_step_mistakes_get_hints():
    def average_first(D, G, G_avg, opt_G, z, decay):
        with torch.no_grad():
            for p_avg, p in zip(G_avg.parameters(), G.parameters(), strict=True):
                p_avg.copy_(decay * p_avg + (1 - decay) * p)
        return g_step_a(D, G, G_avg, opt_G, z, 1.0)

    def swapped(D, G, G_avg, opt_G, z, decay):
        return g_step_a(D, G, G_avg, opt_G, z, 1 - decay)

    def copied(D, G, G_avg, opt_G, z, decay):
        return g_step_a(D, G, G_avg, opt_G, z, 0.0)

    def detached(D, G, G_avg, opt_G, z, decay):
        for p in D.parameters():
            p.requires_grad_(False)
        loss = -D(G(z).detach()).mean()
        opt_G.zero_grad()
        opt_G.step()
        for p in D.parameters():
            p.requires_grad_(True)
        return loss.item()

    def d_not_frozen(D, G, G_avg, opt_G, z, decay):
        loss = -D(G(z)).mean()
        opt_G.zero_grad()
        loss.backward()
        opt_G.step()
        with torch.no_grad():
            for p_avg, p in zip(G_avg.parameters(), G.parameters(), strict=True):
                p_avg.copy_(decay * p_avg + (1 - decay) * p)
        return loss.item()

    def d_in_eval(D, G, G_avg, opt_G, z, decay):
        D.eval()
        loss = g_step_a(D, G, G_avg, opt_G, z, decay)
        D.train()
        return loss

    def hinge_on_fakes(D, G, G_avg, opt_G, z, decay):
        loss = F.relu(1 - D(G(z))).mean()
        opt_G.zero_grad()
        loss.backward()
        opt_G.step()
        return loss.item()

    fails_with(ex.check_generator_step, average_first, "OLD weights", "after opt_G.step()")
    fails_with(ex.check_generator_step, swapped, "swapped")
    fails_with(ex.check_generator_step, copied, "copy of G")
    fails_with(ex.check_generator_step, detached, "no gradient reached it")
    fails_with(ex.check_generator_step, d_not_frozen, "D's gradients untouched", "Freeze D")
    fails_with(ex.check_generator_step, d_in_eval, "eval mode")
    fails_with(ex.check_generator_step, hinge_on_fakes, "no hinge")
