"""Lipschitz estimates, bounds, gradient penalty and clipping against known formulas."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from sngan_edu import lipschitz as L
from sngan_edu import regularizers, sn
from sngan_edu.conv_norm import conv_to_dense
from sngan_edu.experiments import critics


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(2, 16), nn.LeakyReLU(0.1), nn.Linear(16, 16), nn.LeakyReLU(0.1), nn.Linear(16, 1)
    )


def test_gradient_norm_of_a_linear_map_is_its_row_norm():
    layer = nn.Linear(5, 1)
    x = torch.randn(7, 5)
    norms = L.gradient_norms(layer, x)
    torch.testing.assert_close(norms, layer.weight.norm().expand(7))


def test_gradient_norms_match_per_sample_jacobians():
    model = _mlp()
    x = torch.randn(6, 2)
    expected = torch.stack(
        [torch.autograd.functional.jacobian(lambda z: model(z[None])[0, 0], xi).norm() for xi in x]
    )
    torch.testing.assert_close(L.gradient_norms(model, x), expected)


def test_measuring_leaves_the_model_unchanged():
    model = sn.apply_spectral_norm(_mlp())
    model.train()
    u = model[0].parametrizations.weight[0]._u.clone()
    L.gradient_norms(model, torch.randn(4, 2))
    L.empirical_lipschitz(model, torch.randn(8, 2), torch.randn(8, 2), 8, 3)
    assert model.training and model[0].training
    assert torch.equal(model[0].parametrizations.weight[0]._u, u)


def test_gradient_norm_grid_of_linear_critic_is_constant():
    layer = nn.Linear(2, 1)
    grid = L.gradient_norm_grid(layer, n=5)
    assert grid.shape == (5, 5)
    torch.testing.assert_close(grid, torch.full((5, 5), layer.weight.norm().item()))


def test_gradient_norm_grid_orientation_rows_are_y():
    # D(x, y) = y^2 has gradient norm 2|y|: rows (y = 0, 1, 2) give 0, 2, 4.
    grid = L.gradient_norm_grid(lambda p: p[:, 1] ** 2, xlim=(-1, 1), ylim=(0, 2), n=3)
    torch.testing.assert_close(grid, torch.tensor([0.0, 2.0, 4.0])[:, None].expand(3, 3))


def test_lower_bounds_below_product_bound_and_sn_bound_near_one():
    model = _mlp()
    real, fake = torch.randn(64, 2), 2 * torch.randn(64, 2)
    est = L.empirical_lipschitz(model, real, fake, n_interpolates=32, adversarial_steps=10)
    bound = L.product_bound(model)
    expected = math.prod(
        torch.linalg.matrix_norm(m.weight.detach().double(), 2).item()
        for m in model
        if isinstance(m, nn.Linear)
    )
    assert bound == pytest.approx(expected, rel=1e-6)
    assert est.data <= est.value <= bound + 1e-6
    assert est.adversarial >= 0.99 * est.data  # starts from the steepest data points
    assert float(est) == est.value
    sn.apply_spectral_norm(model, n_power_iterations=1)
    for _ in range(30):  # let the estimates converge
        model(torch.randn(2, 2))
    assert L.product_bound(model) == pytest.approx(1.0, rel=1e-3)


def test_empirical_lipschitz_of_linear_model_is_exact():
    layer = nn.Linear(3, 1)
    est = L.empirical_lipschitz(layer, torch.randn(10, 3), torch.randn(10, 3), 8, 5)
    assert est.value == pytest.approx(layer.weight.norm().item(), rel=1e-4)


def test_product_bound_with_exact_conv_matches_dense_svd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 1))
    factors = L.layer_lipschitz_factors(model, (2, 4, 4), exact_conv=True, conv_iters=500)
    dense = conv_to_dense(model[0].weight.detach().double(), (2, 4, 4), padding=1)
    assert factors["0"] == pytest.approx(torch.linalg.matrix_norm(dense, 2).item(), rel=1e-3)
    reshaped = L.layer_lipschitz_factors(model)["0"]
    w = model[0].weight.detach().flatten(1).double()
    assert reshaped == pytest.approx(torch.linalg.matrix_norm(w, 2).item(), rel=1e-6)
    with pytest.raises(ValueError, match="input_shapes"):
        L.product_bound(model, exact_conv=True)


def test_gradient_penalty_matches_hand_computation():
    torch.manual_seed(0)
    # Linear critic: the gradient is w everywhere, so the penalty is lam * (||w|| - 1)^2.
    layer = nn.Linear(4, 1)
    gp = regularizers.gradient_penalty(layer, torch.randn(8, 4), torch.randn(8, 4), lam=10.0)
    w_norm = layer.weight.norm()
    torch.testing.assert_close(gp, 10.0 * (w_norm - 1) ** 2)
    gp.backward()  # create_graph=True: the penalty is differentiable in the weights
    expected = 10.0 * 2 * (w_norm - 1) * layer.weight / w_norm
    torch.testing.assert_close(layer.weight.grad, expected.detach())


def test_gradient_penalty_on_interpolates_of_a_nonlinear_critic():
    model = _mlp()
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    gp = regularizers.gradient_penalty(model, real, fake, lam=3.0,
                                       generator=torch.Generator().manual_seed(7))
    eps = torch.rand(5, 1, generator=torch.Generator().manual_seed(7))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(model(x_hat).sum(), x_hat)
    torch.testing.assert_close(gp, 3.0 * ((g.norm(dim=1) - 1) ** 2).mean())


def test_clip_weights():
    model = _mlp()
    small = model[0].weight.detach().abs() < 0.05
    before = model[0].weight.detach().clone()
    regularizers.clip_weights(model, 0.05)
    for p in model.parameters():
        assert p.abs().max() <= 0.05
    torch.testing.assert_close(model[0].weight.detach()[small], before[small])
    assert (model[0].weight.detach()[~small].abs() == 0.05).all()
    with pytest.raises(ValueError, match="c must"):
        regularizers.clip_weights(model, 0.0)


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: regularizers.gradient_penalty(_mlp(), torch.randn(3, 2), torch.randn(4, 2)),
         "same shape"),
        (lambda: regularizers.gradient_penalty(_mlp(), torch.randn(3, 2), torch.randn(3, 2), -1),
         "lam"),
        (lambda: L.gradient_norms(nn.Linear(2, 3), torch.randn(4, 2)), "one number per sample"),
        (lambda: critics.critic_step(_mlp(), None, None, None, "spectral"), "method"),
        (lambda: L.empirical_lipschitz(_mlp(), torch.randn(3, 2), n_interpolates=-1), "n_interp"),
    ],
)
def test_bad_input(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_train_critics_same_start_and_constraints_hold():
    real = torch.randn(64, 2) + 2
    fake = torch.randn(64, 2)
    runs = critics.train_critics(
        lambda: _mlp(1), real, fake, steps=20, batch_size=16, snapshot_steps=(0, 20), seed=3
    )
    assert set(runs) == set(critics.CRITIC_METHODS)
    none0 = runs["none"].snapshots[0]
    gp0 = runs["gp"].snapshots[0]
    assert all(torch.equal(none0[k], gp0[k]) for k in none0)
    assert "0.parametrizations.weight.original" in runs["sn"].snapshots[0]
    assert all(p.abs().max() <= 0.01 for p in runs["clip"].critic.parameters())
    assert len(runs["gp"].gaps) == 20
    assert L.product_bound(runs["sn"].critic) == pytest.approx(1.0, rel=0.05)
    again = critics.train_critics(lambda: _mlp(1), real, fake, steps=20, batch_size=16, seed=3)
    assert again["gp"].gaps == runs["gp"].gaps


def test_snapshots_landscapes_and_explorer():
    from sngan_edu.plots.lipschitz import plot_landscapes
    from sngan_edu.widgets.lipschitz import LandscapeExplorer

    real, fake = torch.randn(32, 2) + 1, torch.randn(32, 2)
    runs = critics.train_critics(
        lambda: _mlp(2),
        real,
        fake,
        methods=("none", "sn"),
        steps=4,
        batch_size=8,
        snapshot_steps=(0, 4),
    )
    critic = critics.critic_at(runs["sn"], 4, lambda: _mlp(2))
    x = torch.randn(5, 2)
    runs["sn"].critic.eval()
    torch.testing.assert_close(critic.eval()(x), runs["sn"].critic(x))
    with pytest.raises(ValueError, match="step"):
        critics.critic_at(runs["sn"], 2, lambda: _mlp(2))
    grids = critics.snapshot_landscapes(runs, lambda: _mlp(2), n=6)
    assert set(grids) == {("none", 0), ("none", 4), ("sn", 0), ("sn", 4)}
    torch.testing.assert_close(
        grids[("sn", 4)], L.gradient_norm_grid(critic, (-2.0, 2.0), (-2.0, 2.0), 6)
    )
    fig = plot_landscapes({m: grids[(m, 4)] for m in runs}, (-2, 2, -2, 2), real, fake)
    assert len(fig.axes) == 4  # two heat maps and their colour bars
    explorer = LandscapeExplorer(grids, (-2, 2, -2, 2))
    shown = explorer.image.value
    assert shown == explorer.png("sn", 4)
    explorer.method.value = "none"
    assert explorer.image.value == explorer.png("none", 4) != shown
    with pytest.raises(ValueError, match="no grid"):
        explorer.png("gp", 4)


def test_static_figures_render():
    import matplotlib.pyplot as plt
    import numpy as np

    from sngan_edu.plots import lipschitz as P

    fig = P.plot_activations()
    titles = [ax.get_title() for ax in fig.axes]
    assert all("max |f'| = 1" in t for t in titles)  # each activation is 1-Lipschitz
    ax = P.plot_lipschitz_cone(np.sin, 1.0, [0.0])
    assert ax.get_lines()
    P.plot_singular_spectra({"sn": torch.tensor([2.0, 1.0]), "clip": torch.tensor([1.0, 0.1])})
    P.plot_bound_vs_measured([{"method": "sn", "measured": 0.5, "bound": 1.0}])
    P.plot_conv_norms([{"layer": "c", "reshaped": 1.0, "operator": 1.5, "upper": 3.0}])
    P.plot_ratio_histogram(torch.rand(100), 1.0)
    plt.close("all")


def _moved_sn_critic(seed: int = 4) -> nn.Sequential:
    """An SN critic whose raw weights moved since its last power iteration (so u, v lag)."""
    critic = sn.apply_spectral_norm(_mlp(seed))
    with torch.no_grad():
        for p in critic.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return critic


def test_sn_critic_step_runs_one_power_iteration_per_layer(power_iteration_counts):
    critic = _moved_sn_critic()
    counts = power_iteration_counts
    counts.clear()  # count from here on, not the iterations run when SN was attached
    calls = []
    critic.register_forward_hook(lambda *_: calls.append(1))
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    critics.critic_step(critic, opt, torch.randn(8, 2) + 1, torch.randn(8, 2), "sn")
    assert len(calls) == 1  # real and fake in one batch
    layers = sn.spectral_norm_layers(critic)
    assert len(layers) == 3
    assert sorted(counts.values()) == [1, 1, 1]  # calling D twice would give 2 per layer


def test_sn_critic_step_matches_a_reference_with_one_normalized_weight():
    # Reference: run the step's power iteration by hand, then score real and fake in eval mode,
    # where SN reuses the same u, v for both: one discriminator, one set of normalized weights.
    real, fake = torch.randn(16, 2) + 1, torch.randn(16, 2)
    critic = _moved_sn_critic()
    ref = copy.deepcopy(critic)
    sn.refresh_power_iteration(ref, n_iters=1)
    ref.eval()
    expected = ref(real).mean() - ref(fake).mean()
    grads = torch.autograd.grad(-expected, list(ref.parameters()))
    opt = torch.optim.SGD(critic.parameters(), lr=0.1)
    gap = critics.critic_step(critic, opt, real, fake, "sn")
    assert gap == pytest.approx(float(expected.detach()), rel=1e-6)
    for p, p0, g in zip(critic.parameters(), ref.parameters(), grads, strict=True):
        torch.testing.assert_close(p.detach(), p0.detach() - 0.1 * g)
    for name, layer in sn.spectral_norm_layers(critic).items():
        ours, theirs = layer.parametrizations.weight[0], sn.spectral_norm_layers(ref)[name]
        torch.testing.assert_close(ours._u, theirs.parametrizations.weight[0]._u)


@pytest.mark.parametrize("method", ["none", "clip", "gp"])
def test_critic_step_gap_equals_separate_forwards(method):
    real, fake = torch.randn(16, 2) + 1, torch.randn(16, 2)
    critic = _mlp(5)
    with torch.no_grad():
        expected = float(critic(real).mean() - critic(fake).mean())
    calls = []
    critic.register_forward_hook(lambda *_: calls.append(1))
    opt = torch.optim.SGD(critic.parameters(), lr=0.01)
    gap = critics.critic_step(critic, opt, real, fake, method,
                              generator=torch.Generator().manual_seed(0))
    assert gap == pytest.approx(expected, rel=1e-6)
    assert len(calls) == (2 if method == "gp" else 1)  # GP: one more forward on interpolates


def test_critic_step_with_batchnorm_calls_the_critic_twice():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.1), nn.Linear(8, 1))
    real, fake = torch.randn(16, 2) + 1, torch.randn(16, 2)
    ref = copy.deepcopy(critic)
    with torch.no_grad():
        expected = float(ref(real).mean() - ref(fake).mean())  # batch statistics per half
    calls = []
    critic.register_forward_hook(lambda *_: calls.append(1))
    sgd = torch.optim.SGD(critic.parameters(), lr=0.01)
    gap = critics.critic_step(critic, sgd, real, fake, "none")
    assert len(calls) == 2
    assert gap == pytest.approx(expected, rel=1e-6)


def test_optimal_discriminator_1d_against_densities_and_autograd():
    x = torch.linspace(-3, 3, 121, dtype=torch.float64)
    opt = critics.optimal_discriminator_1d(x, real_mean=1.0, fake_mean=-0.5, std=0.7)
    normal = torch.distributions.Normal
    p_real = normal(1.0, 0.7).log_prob(x).exp()
    p_fake = normal(-0.5, 0.7).log_prob(x).exp()
    torch.testing.assert_close(opt.real_density, p_real)
    torch.testing.assert_close(opt.fake_density, p_fake)
    torch.testing.assert_close(opt.d_star, p_real / (p_real + p_fake))
    xg = x.clone().requires_grad_()
    d = normal(1.0, 0.7).log_prob(xg).exp()
    d = d / (d + normal(-0.5, 0.7).log_prob(xg).exp())
    (slope,) = torch.autograd.grad(d.sum(), xg, retain_graph=True)
    (minimax,) = torch.autograd.grad(torch.log1p(-d).sum(), xg, retain_graph=True)
    (nonsat,) = torch.autograd.grad((-torch.log(d)).sum(), xg)
    torch.testing.assert_close(opt.d_star_slope, slope)
    torch.testing.assert_close(opt.minimax_grad, minimax)
    torch.testing.assert_close(opt.nonsaturating_grad, nonsat)
    assert opt.logit_slope == pytest.approx(1.5 / 0.49)


def test_optimal_discriminator_1d_is_flat_on_narrow_fake_bumps():
    x = torch.tensor([-2.0, 2.0], dtype=torch.float64)
    opt = critics.optimal_discriminator_1d(x, std=0.1)
    assert float(opt.d_star[0]) == 0.0 and float(opt.d_star[1]) == 1.0
    assert float(opt.minimax_grad[0]) == 0.0  # the original G loss gives nothing
    assert float(opt.nonsaturating_grad[0]) == pytest.approx(-400.0)  # (2 - -2) / 0.1^2
    narrow = critics.optimal_discriminator_1d(x, std=0.01)
    assert float(narrow.nonsaturating_grad[0]) == pytest.approx(-40_000.0)
    with pytest.raises(ValueError, match="std"):
        critics.optimal_discriminator_1d(x, std=0.0)
    with pytest.raises(ValueError, match="differ"):
        critics.optimal_discriminator_1d(x, real_mean=1.0, fake_mean=1.0)


def test_critic_slopes_in_eval_mode_without_side_effects():
    torch.manual_seed(0)
    critic = sn.apply_spectral_norm(
        nn.Sequential(nn.Linear(1, 8), nn.LeakyReLU(0.1), nn.Linear(8, 1))
    )
    u = critic[0].parametrizations.weight[0]._u.clone()
    x = torch.linspace(-1, 1, 7)[:, None]
    slopes = critics.critic_slopes(critic, x)
    assert slopes.shape == (7,) and critic.training
    assert torch.equal(critic[0].parametrizations.weight[0]._u, u)  # no power iteration ran
    h = 1e-3
    critic.eval()
    with torch.no_grad():
        numeric = (critic(x + h) - critic(x - h)).squeeze(1) / (2 * h)
    torch.testing.assert_close(slopes, numeric, atol=1e-3, rtol=1e-3)


def test_cone_figure_marks_where_the_graph_leaves_the_cone():
    import matplotlib.pyplot as plt
    import numpy as np

    from sngan_edu.plots import lipschitz as P

    ax = P.plot_lipschitz_cone(lambda x: 0.5 * np.sin(2 * x), 1.0, [0.5], title="sine")
    assert ax.get_title() == "sine"
    assert [line.get_label() for line in ax.get_lines()][-1] != "outside the cone"
    ax = P.plot_lipschitz_cone(lambda x: 0.3 * x**2, 1.0, [1.5])
    outside = [line for line in ax.get_lines() if line.get_label() == "outside the cone"]
    assert len(outside) == 1
    x, y = outside[0].get_xdata(), np.asarray(outside[0].get_ydata(), dtype=float)
    drawn = x[~np.isnan(y)]
    # 0.3 x^2 leaves the slope-1 cone at 1.5 where 0.3 x^2 - x + 0.825 > 0: x > 1.83
    assert drawn.min() == pytest.approx(1.8333, abs=0.02) and drawn.max() == pytest.approx(3.0)
    plt.close("all")


def test_layer_role_names_layers_by_kernel_and_stride():
    from sngan_edu.layer_info import layer_role

    assert layer_role(nn.Conv2d(3, 64, 3, 1, 1)) == "conv 3x3 s1"
    assert layer_role(nn.Conv2d(64, 64, 4, 2, 1)) == "conv 4x4 s2"
    assert layer_role(nn.Conv2d(4, 4, (1, 3), (1, 2))) == "conv 1x3 s1x2"
    assert layer_role(nn.ConvTranspose2d(8, 4, 4, 2, 1)) == "convT 4x4 s2"
    assert layer_role(nn.Linear(256, 1)) == "linear 256->1"


def test_layer_roles_number_the_weight_layers_from_the_input():
    from sngan_edu.layer_info import layer_roles
    from sngan_edu.models.standard_cnn import Discriminator
    from sngan_edu.sn import apply_spectral_norm

    D = Discriminator(image_size=16, width=0.125)
    roles = layer_roles(D)
    convs = [name for name, m in D.named_modules() if isinstance(m, nn.Conv2d)]
    assert list(roles) == convs + ["linear"]  # every weight layer, in forward order
    assert roles[convs[0]] == "1: conv 3x3 s1" and roles[convs[1]] == "2: conv 4x4 s2"
    assert roles["linear"] == f"8: linear {D.linear.in_features}->1"
    apply_spectral_norm(D)  # parametrized layers keep their names and roles
    assert layer_roles(D) == roles


def test_landscapes_on_a_grid_with_outlined_samples():
    import matplotlib.pyplot as plt

    from sngan_edu.plots.lipschitz import plot_landscapes

    grids = {m: torch.rand(6, 6) for m in ("none", "clip", "gp")}
    fig = plot_landscapes(grids, (-1, 1, -1, 1), real=torch.rand(5, 2), fake=torch.rand(7, 2))
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == 3  # two rows of two, the empty fourth panel removed
    assert len({round(ax.get_position().y0, 2) for ax in heat}) == 2  # two rows
    sizes = [c.get_sizes()[0] for c in heat[0].collections]
    assert len(sizes) == 2 and sizes[0] > sizes[1]  # real drawn larger than fake, both present
    assert heat[0].get_legend() is not None
    plt.close("all")
