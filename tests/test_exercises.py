"""The exercise checks accept different correct solutions and reject typical mistakes helpfully."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sngan_edu.course import exercises as ex


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


ALL_CHECKS = [
    ex.check_power_iteration,
    ex.check_gradient_norms,
    ex.check_lipschitz_bound,
    ex.check_sn_forward,
    ex.check_hinge_d_loss,
    ex.check_hinge_g_loss,
    ex.check_mode_coverage,
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


def test_checks_do_not_shift_the_callers_random_stream():
    def power_iteration(W, u, n_iters):
        for _ in range(n_iters):
            v = F.normalize(W.T @ u, dim=0)
            u = F.normalize(W @ v, dim=0)
        return u @ W @ v, u, v

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ex.check_power_iteration(power_iteration)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- power iteration


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


def library_power_iteration(W, u, n_iters):
    from sngan_edu.spectral import power_iteration

    sigma, u, v, _ = power_iteration(W, u, n_iters=n_iters)
    return sigma, u, v


@pytest.mark.parametrize("fn", [power_iteration_a, power_iteration_b, library_power_iteration])
def test_power_iteration_correct_solutions_pass(fn, capsys):
    ex.check_power_iteration(fn)
    out = capsys.readouterr().out
    assert "power_iteration: all 6 checks passed" in out
    assert out.count(ex.TICK) == 6


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
    fails_with(ex.check_power_iteration, modifies_w, "never write into W")


def test_power_iteration_wrong_return_type():
    fails_with(ex.check_power_iteration, lambda W, u, n: power_iteration_a(W, u, n)[0],
               "return sigma, u, v")


# ---------------------------------------------------------------- gradient norms, bound


def gradient_norms_a(D, x):
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    return grad.flatten(1).norm(dim=1)


def gradient_norms_b(D, x):
    # a different correct solution: backward() on a leaf copy, then per-sample norms
    x = x.clone().requires_grad_()
    D(x).sum().backward()
    return x.grad.reshape(len(x), -1).pow(2).sum(1).sqrt()


@pytest.mark.parametrize("fn", [gradient_norms_a, gradient_norms_b])
def test_gradient_norms_correct_solutions_pass(fn, capsys):
    ex.check_gradient_norms(fn)
    assert "all 3 checks passed" in capsys.readouterr().out


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
    fails_with(ex.check_gradient_norms, last_dim_only, "flatten")
    fails_with(ex.check_gradient_norms, parameter_gradient, "with respect to x")


def lipschitz_bound_a(model):
    bound = 1.0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            bound *= torch.linalg.matrix_norm(m.weight, ord=2).item()
    return bound


def lipschitz_bound_b(model):
    # a different correct solution: a tensor result via svdvals
    norms = [torch.linalg.svdvals(m.weight)[0] for m in model if isinstance(m, nn.Linear)]
    return torch.stack(norms).prod()


@pytest.mark.parametrize("fn", [lipschitz_bound_a, lipschitz_bound_b])
def test_lipschitz_bound_correct_solutions_pass(fn, capsys):
    ex.check_lipschitz_bound(fn)
    assert "all 3 checks passed" in capsys.readouterr().out


def test_lipschitz_bound_mistakes_get_hints():
    def frobenius(model):
        norms = [torch.linalg.matrix_norm(m.weight.detach())
                 for m in model if isinstance(m, nn.Linear)]
        return float(torch.prod(torch.stack(norms)))

    def summed(model):
        return sum(torch.linalg.svdvals(m.weight)[0].item()
                   for m in model if isinstance(m, nn.Linear))

    fails_with(ex.check_lipschitz_bound, frobenius, "Frobenius")
    fails_with(ex.check_lipschitz_bound, summed, "PRODUCT")


def test_lipschitz_bound_first_layer_only_fails():
    def first_layer_only(model):
        first = next(m for m in model.modules() if isinstance(m, nn.Linear))
        return torch.linalg.svdvals(first.weight)[0].item()

    fails_with(ex.check_lipschitz_bound, first_layer_only, "multiply")


# ---------------------------------------------------------------- SN forward


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
    return W / sigma, u_new


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
    ex.check_sn_forward(fn)
    assert "all 4 checks passed" in capsys.readouterr().out


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

    def sqrt_sigma(W, u):
        w_sn, u = sn_forward_a(W, u)
        sigma = W.flatten()[0] / w_sn.flatten()[0]
        return W / sigma.sqrt(), u

    fails_with(ex.check_sn_forward, grad_through_power_iteration, "torch.no_grad()")
    fails_with(ex.check_sn_forward, constant_sigma, "sigma was treated as a constant")
    fails_with(ex.check_sn_forward, exact_svd, "one step from u")
    fails_with(ex.check_sn_forward, sqrt_sigma, "divide all of W")
    with pytest.raises(ex.ExerciseFailed, match="raised RuntimeError"):
        ex.check_sn_forward(no_reshape)


# ---------------------------------------------------------------- hinge losses


def hinge_d_a(d_real, d_fake):
    return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()


def hinge_d_b(d_real, d_fake):
    return torch.clamp(1 - d_real, min=0).mean() + torch.clamp(1 + d_fake, min=0).mean()


def hinge_g(d_fake):
    return -d_fake.mean()


@pytest.mark.parametrize("fn", [hinge_d_a, hinge_d_b])
def test_hinge_d_correct_solutions_pass(fn, capsys):
    ex.check_hinge_d_loss(fn)
    assert "all 4 checks passed" in capsys.readouterr().out


def test_the_library_losses_pass_their_own_checks():
    from sngan_edu import losses

    ex.check_hinge_d_loss(losses.hinge_d_loss)
    ex.check_hinge_g_loss(losses.hinge_g_loss)
    fails_with(ex.check_hinge_d_loss, losses.vanilla_d_loss)
    fails_with(ex.check_hinge_d_loss, losses.wasserstein_d_loss)


def test_hinge_d_mistakes_get_hints():
    fails_with(ex.check_hinge_d_loss, lambda r, f: (1 - r).mean() + (1 + f).mean(), "relu")
    fails_with(ex.check_hinge_d_loss, lambda r, f: hinge_d_a(-r, -f), "signs are swapped")
    fails_with(ex.check_hinge_d_loss,
               lambda r, f: F.relu(1 - r).sum() + F.relu(1 + f).sum(), ".sum()")
    fails_with(ex.check_hinge_d_loss, lambda r, f: hinge_d_a(r, f).item(), ".item()")


def test_hinge_g_passes_and_mistakes_get_hints(capsys):
    ex.check_hinge_g_loss(hinge_g)
    assert "all 4 checks passed" in capsys.readouterr().out
    fails_with(ex.check_hinge_g_loss, lambda f: F.relu(1 - f).mean(), "no clipping")
    fails_with(ex.check_hinge_g_loss, lambda f: f.mean(), "the sign")


# ---------------------------------------------------------------- mode coverage


def mode_coverage_a(samples, means, std):
    d = torch.cdist(samples, means)
    dist, nearest = d.min(dim=1)
    good = dist < 3 * std
    return len(set(nearest[good].tolist())), 100 * good.float().mean().item()


def mode_coverage_b(samples, means, std):
    # a different correct solution: broadcasting, bincount
    d2 = ((samples[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    idx = d2.argmin(1)
    good = d2.gather(1, idx[:, None]).squeeze(1).sqrt() <= 3 * std
    counts = torch.bincount(idx[good], minlength=len(means))
    return int((counts > 0).sum()), torch.tensor(100.0 * good.sum().item() / len(samples))


@pytest.mark.parametrize("fn", [mode_coverage_a, mode_coverage_b])
def test_mode_coverage_correct_solutions_pass(fn, capsys):
    ex.check_mode_coverage(fn)
    assert "all 5 checks passed" in capsys.readouterr().out


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


def test_mode_coverage_mistakes_get_hints():
    def one_std(samples, means, std):
        return mode_coverage_a(samples, means, std / 3)

    def any_nearest(samples, means, std):
        d = torch.cdist(samples, means)
        dist, nearest = d.min(dim=1)
        return len(set(nearest.tolist())), 100 * (dist < 3 * std).float().mean().item()

    def fraction(samples, means, std):
        modes, percent = mode_coverage_a(samples, means, std)
        return modes, percent / 100

    fails_with(ex.check_mode_coverage, one_std, "3 * std")
    fails_with(ex.check_mode_coverage, any_nearest, "HIGH-QUALITY")
    fails_with(ex.check_mode_coverage, fraction, "not a fraction")


# ---------------------------------------------------------------- discriminator step


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
    return loss


@pytest.mark.parametrize("fn", [d_step_a, d_step_b])
def test_discriminator_step_correct_solutions_pass(fn, capsys):
    ex.check_discriminator_step(fn)
    assert "all 3 checks passed" in capsys.readouterr().out


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
    fails_with(ex.check_discriminator_step, no_step, "opt_D.step()")
    fails_with(ex.check_discriminator_step, not_detached, "detach")
    fails_with(ex.check_discriminator_step, loss_after_step, "return loss.item()")
    fails_with(ex.check_discriminator_step, vanilla_loss, "relu(1 - D(real))")
