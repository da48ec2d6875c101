"""sngan_edu.spectral (matrices), the notebook-01 experiment, widget and figures.

References: torch.linalg.svd / numpy.linalg.svd, closed-form singular values, autograd, and
torch's own spectral_norm for the kernel reshape.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from sngan_edu.experiments.convergence import track_sigma_under_drift  # noqa: E402
from sngan_edu.experiments.sigma_timing import time_sigma_methods  # noqa: E402
from sngan_edu.spectral import (  # noqa: E402
    PowerIterationResult,
    matrix_with_singular_values,
    power_iteration,
    reshape_weight_to_matrix,
    spectral_norm_exact,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and immune to other processes on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def numpy_sigma(W: torch.Tensor) -> float:
    """Independent reference: NumPy's SVD in float64."""
    return float(np.linalg.svd(W.detach().double().numpy(), compute_uv=False)[0])


def spectrum(s, shape, seed=0):
    return matrix_with_singular_values(s, shape=shape, generator=gen(seed))


# Matrices with a clear gap, so a fixed number of iterations converges to float precision.
CASES = {
    "random_square": lambda: torch.randn(20, 20, generator=gen(1), dtype=torch.float64),
    "wide": lambda: torch.randn(3, 40, generator=gen(2), dtype=torch.float64),
    "tall": lambda: torch.randn(40, 3, generator=gen(3), dtype=torch.float64),
    "ill_conditioned": lambda: spectrum(torch.logspace(0, -12, 10, dtype=torch.float64), (10, 10)),
    "rank_1": lambda: torch.outer(
        torch.randn(7, generator=gen(4), dtype=torch.float64),
        torch.randn(5, generator=gen(5), dtype=torch.float64),
    ),
    "rank_deficient": lambda: spectrum([3.0, 1.0, 0.5], (8, 6)),
    "one_by_one": lambda: torch.tensor([[-2.5]], dtype=torch.float64),
    "row": lambda: torch.tensor([[3.0, 4.0]], dtype=torch.float64),  # sigma = 5
    "column": lambda: torch.tensor([[1.0], [2.0], [2.0]], dtype=torch.float64),  # sigma = 3
}


# ---------------------------------------------------------------------- spectral_norm_exact


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_matches_numpy_svd(name, dtype):
    W = CASES[name]().to(dtype)
    sigma = spectral_norm_exact(W)
    assert sigma.dtype == dtype and sigma.ndim == 0
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    assert float(sigma) == pytest.approx(numpy_sigma(W), rel=rtol)


def test_exact_known_values():
    assert float(spectral_norm_exact(CASES["row"]())) == pytest.approx(5.0, rel=1e-14)
    assert float(spectral_norm_exact(CASES["column"]())) == pytest.approx(3.0, rel=1e-14)
    assert float(spectral_norm_exact(torch.diag(torch.tensor([1.0, -7.0, 2.0])))) == 7.0
    assert float(spectral_norm_exact(torch.zeros(3, 4))) == 0.0


def test_exact_half_precision_is_computed_in_float32():
    W = torch.randn(6, 5, generator=gen(9))
    sigma = spectral_norm_exact(W.to(torch.bfloat16))
    assert sigma.dtype == torch.bfloat16
    assert float(sigma) == pytest.approx(numpy_sigma(W.to(torch.bfloat16).float()), rel=1e-2)


def test_exact_does_not_track_gradients():
    W = torch.randn(4, 3, requires_grad=True)
    assert not spectral_norm_exact(W).requires_grad


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.randn(2, 3, 3), "reshape_weight_to_matrix"),
        (torch.randn(5), "2-D"),
        (torch.zeros(0, 3), "at least one row"),
        (torch.tensor([[1.0, float("nan")]]), "NaN or Inf"),
        (torch.tensor([[1.0, float("inf")]]), "NaN or Inf"),
        (torch.ones(2, 2, dtype=torch.int64), "floating-point"),
        ([[1.0, 2.0]], "torch.Tensor"),
    ],
)
def test_exact_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        spectral_norm_exact(bad)


# ---------------------------------------------------------------------- power_iteration


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_power_iteration_converges_to_svd(name, dtype):
    W = CASES[name]().to(dtype)
    result = power_iteration(W, n_iters=200, generator=gen(0))
    assert isinstance(result, PowerIterationResult)
    rtol = 1e-5 if dtype == torch.float32 else 1e-10
    assert float(result.sigma) == pytest.approx(numpy_sigma(W), rel=rtol)
    assert result.sigma.dtype == dtype and result.u.dtype == dtype and result.v.dtype == dtype
    assert result.u.shape == (W.shape[0],) and result.v.shape == (W.shape[1],)
    assert float(result.u.norm()) == pytest.approx(1.0, rel=1e-5)
    assert float(result.v.norm()) == pytest.approx(1.0, rel=1e-5)
    # u, v are the top singular pair: W v = sigma u and W^T u = sigma v
    atol = 1e-4 if dtype == torch.float32 else 1e-8
    scale = max(1.0, numpy_sigma(W))
    torch.testing.assert_close(W @ result.v, result.sigma * result.u, atol=atol * scale, rtol=0)
    torch.testing.assert_close(W.t() @ result.u, result.sigma * result.v, atol=atol * scale, rtol=0)
    assert result.history is None


def test_singular_vectors_match_svd_up_to_sign():
    W = spectrum([2.0, 1.0, 0.5, 0.1], (6, 5), seed=3)
    U, _, Vh = torch.linalg.svd(W)
    r = power_iteration(W, n_iters=60, generator=gen(0))
    assert abs(float(r.u @ U[:, 0])) == pytest.approx(1.0, abs=1e-12)
    assert abs(float(r.v @ Vh[0])) == pytest.approx(1.0, abs=1e-12)


def test_one_iteration_follows_the_paper_algorithm_by_hand():
    W = torch.randn(5, 4, generator=gen(7), dtype=torch.float64)
    u0 = torch.randn(5, generator=gen(8), dtype=torch.float64)
    u = u0 / u0.norm()
    v = W.t() @ u
    v = v / v.norm()
    u = W @ v
    u = u / u.norm()
    r = power_iteration(W, u=u0, n_iters=1)
    torch.testing.assert_close(r.u, u)
    torch.testing.assert_close(r.v, v)
    torch.testing.assert_close(r.sigma, u @ W @ v)


def test_matches_torch_nn_utils_spectral_norm_sequence():
    """torch.nn.utils.spectral_norm (the hook version) runs the same updates from the same u."""
    torch.manual_seed(0)
    layer = nn.utils.spectral_norm(nn.Linear(6, 4, bias=False), n_power_iterations=3)
    W = layer.weight_orig.detach().clone()
    u0 = layer.weight_u.detach().clone()
    layer.train()
    layer(torch.zeros(1, 6))  # runs 3 power iterations in place
    ours = power_iteration(W, u=u0, n_iters=3)
    torch.testing.assert_close(ours.u, layer.weight_u)
    torch.testing.assert_close(ours.v, layer.weight_v)
    torch.testing.assert_close(layer.weight.detach(), W / ours.sigma.detach())


def test_estimate_never_exceeds_sigma_and_history_increases():
    W = spectrum([1.0, 0.9, 0.5, 0.2], (6, 6), seed=11)
    r = power_iteration(W, n_iters=40, return_history=True, generator=gen(1))
    assert r.history is not None and r.history.shape == (40,)
    assert float(r.history[-1]) == pytest.approx(float(r.sigma), rel=1e-13)
    # u^T W v <= sigma1 for unit u, v; the iterates increase monotonically
    assert bool((r.history <= 1.0 + 1e-12).all())
    assert bool((r.history.diff() >= -1e-13).all())


def test_persistent_u_equals_one_long_run():
    W = torch.randn(12, 9, generator=gen(5), dtype=torch.float64)
    long = power_iteration(W, n_iters=10, generator=gen(2))
    u = power_iteration(W, n_iters=1, generator=gen(2)).u
    for _ in range(9):
        r = power_iteration(W, u=u, n_iters=1)
        u = r.u
    torch.testing.assert_close(r.u, long.u)
    torch.testing.assert_close(r.sigma, long.sigma)


def test_history_tracks_the_error_formula():
    """History matches the closed form sqrt(sum a_i^2 s_i^(4k) / sum a_i^2 s_i^(4k-2))."""
    s = torch.tensor([1.0, 0.7, 0.3], dtype=torch.float64)
    W = torch.diag(s)
    u0 = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    r = power_iteration(W, u=u0, n_iters=6, return_history=True)
    a2 = (u0 / u0.norm()) ** 2
    k = torch.arange(1, 7, dtype=torch.float64)[:, None]
    expected = ((a2 * s ** (4 * k)).sum(1) / (a2 * s ** (4 * k - 2)).sum(1)).sqrt()
    torch.testing.assert_close(r.history, expected)


def test_random_start_is_reproducible_with_generator():
    W = torch.randn(8, 8, generator=gen(0))
    a = power_iteration(W, generator=gen(42))
    b = power_iteration(W, generator=gen(42))
    c = power_iteration(W, generator=gen(43))
    torch.testing.assert_close(a.u, b.u)
    assert not torch.allclose(a.u, c.u)


def test_u_scale_does_not_matter():
    W = torch.randn(5, 6, generator=gen(1), dtype=torch.float64)
    u = torch.randn(5, generator=gen(2), dtype=torch.float64)
    torch.testing.assert_close(
        power_iteration(W, u=u, n_iters=2).sigma, power_iteration(W, u=1e6 * u, n_iters=2).sigma
    )


def test_sigma_gradient_is_u_v_transpose():
    W = torch.randn(5, 3, generator=gen(1), dtype=torch.float64, requires_grad=True)
    r = power_iteration(W, n_iters=2, generator=gen(0))
    assert r.sigma.requires_grad and not r.u.requires_grad and not r.v.requires_grad
    (grad,) = torch.autograd.grad(r.sigma, W)
    torch.testing.assert_close(grad, torch.outer(r.u, r.v))


def test_converged_sigma_gradient_matches_svd_gradient():
    """At convergence u v^T is the gradient of the true sigma (autograd through svdvals)."""
    W = spectrum([3.0, 1.0, 0.2], (4, 3), seed=2).requires_grad_()
    (g_svd,) = torch.autograd.grad(torch.linalg.svdvals(W)[0], W)
    (g_pi,) = torch.autograd.grad(power_iteration(W, n_iters=100, generator=gen(0)).sigma, W)
    torch.testing.assert_close(g_pi, g_svd)


def test_input_u_is_not_modified():
    W = torch.randn(4, 4, generator=gen(0))
    u = torch.randn(4, generator=gen(1))
    before = u.clone()
    power_iteration(W, u=u, n_iters=3)
    torch.testing.assert_close(u, before)


def test_works_under_no_grad_and_inference_mode():
    W = torch.randn(4, 3, generator=gen(0), dtype=torch.float64)
    with torch.no_grad():
        a = power_iteration(W, n_iters=50, generator=gen(0)).sigma
    with torch.inference_mode():
        b = power_iteration(W, n_iters=50, generator=gen(0)).sigma
    assert float(a) == pytest.approx(numpy_sigma(W), rel=1e-10)
    assert float(b) == pytest.approx(numpy_sigma(W), rel=1e-10)


def test_zero_matrix_has_defined_result():
    u0 = torch.tensor([3.0, 4.0])
    r = power_iteration(torch.zeros(2, 5), u=u0, n_iters=3, return_history=True)
    assert float(r.sigma) == 0.0
    torch.testing.assert_close(r.u, u0 / 5.0)  # the starting u, normalized: a warm start survives
    torch.testing.assert_close(r.v, torch.full((5,), 1 / math.sqrt(5)))
    torch.testing.assert_close(r.history, torch.zeros(3))
    # ...and continuing from it on a nonzero matrix works
    W = torch.randn(2, 5, generator=gen(0), dtype=torch.float64)
    r2 = power_iteration(W, u=r.u.double(), n_iters=100)
    assert float(r2.sigma) == pytest.approx(numpy_sigma(W), rel=1e-10)


def test_u_orthogonal_to_column_space_raises_instead_of_returning_zero():
    W = torch.tensor([[1.0, 2.0], [0.0, 0.0]])  # column space = span(e1)
    with pytest.raises(ValueError, match="orthogonal to the column space"):
        power_iteration(W, u=torch.tensor([0.0, 1.0]))


def test_tiny_matrix_below_eps_raises():
    with pytest.raises(ValueError, match="eps"):
        power_iteration(torch.full((3, 3), 1e-15, dtype=torch.float64), generator=gen(0))
    # with a smaller eps it is fine (power iteration is scale invariant)
    W = torch.full((3, 3), 1e-15, dtype=torch.float64)
    r = power_iteration(W, eps=1e-30, n_iters=5, generator=gen(0))
    assert float(r.sigma) == pytest.approx(3e-15, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"W": torch.randn(2, 3, 4)}, "reshape_weight_to_matrix"),
        ({"W": torch.randn(3)}, "2-D"),
        ({"W": torch.tensor([[float("nan"), 1.0]])}, "NaN or Inf"),
        ({"W": torch.tensor([[float("-inf"), 1.0]])}, "NaN or Inf"),
        ({"W": torch.ones(2, 2, dtype=torch.int32)}, "floating-point"),
        ({"n_iters": 0}, "n_iters"),
        ({"n_iters": -3}, "n_iters"),
        ({"n_iters": 1.5}, "n_iters"),
        ({"n_iters": True}, "n_iters"),
        ({"eps": 0.0}, "eps"),
        ({"u": torch.ones(4)}, "length W.shape\\[0\\] = 3"),
        ({"u": torch.ones(3, 1)}, "1-D tensor"),
        ({"u": torch.zeros(3)}, "nonzero"),
        ({"u": torch.tensor([1.0, float("nan"), 0.0])}, "u contains NaN"),
        ({"u": [1.0, 0.0, 0.0]}, "1-D tensor"),
    ],
)
def test_power_iteration_rejects_bad_input(kwargs, match):
    args = {"W": torch.randn(3, 5)} | kwargs
    with pytest.raises(ValueError, match=match):
        power_iteration(**args)


# ---------------------------------------------------------------------- reshape


@pytest.mark.parametrize(
    "module, dim",
    [
        (nn.Linear(5, 3), 0),
        (nn.Conv1d(3, 4, 5), 0),
        (nn.Conv2d(3, 4, (3, 2)), 0),
        (nn.Conv3d(2, 3, 2), 0),
        (nn.ConvTranspose2d(3, 5, 4), 1),
        (nn.Embedding(7, 4), 0),
    ],
)
def test_reshape_matches_torch_spectral_norm(module, dim):
    """torch's SN normalizes by sigma of exactly this matrix: W_sn * sigma == W."""
    torch.manual_seed(0)
    weight = module.weight.detach().clone()
    mat = reshape_weight_to_matrix(weight, dim=dim)
    out_channels = weight.shape[dim]
    assert mat.shape == (out_channels, weight.numel() // out_channels)
    sn = nn.utils.parametrizations.spectral_norm(module, n_power_iterations=200, dim=dim)
    sn.eval()
    ratio = weight / sn.weight.detach()
    assert float(ratio.mean()) == pytest.approx(float(spectral_norm_exact(mat)), rel=1e-4)


def test_reshape_layout_and_negative_dim():
    w = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    torch.testing.assert_close(reshape_weight_to_matrix(w), w.reshape(2, 12))
    torch.testing.assert_close(reshape_weight_to_matrix(w, 1), w.permute(1, 0, 2).reshape(3, 8))
    torch.testing.assert_close(reshape_weight_to_matrix(w, -1), reshape_weight_to_matrix(w, 2))
    assert reshape_weight_to_matrix(torch.ones(4)).shape == (4, 1)


def test_reshape_keeps_gradient():
    w = torch.randn(2, 3, 2, 2, requires_grad=True)
    reshape_weight_to_matrix(w, 1).sum().backward()
    torch.testing.assert_close(w.grad, torch.ones_like(w))


@pytest.mark.parametrize("dim", [4, -5, 1.0, True])
def test_reshape_rejects_bad_dim(dim):
    with pytest.raises(ValueError, match="dim must be an integer in \\[-4, 3\\]"):
        reshape_weight_to_matrix(torch.randn(2, 3, 3, 3), dim=dim)


def test_reshape_rejects_scalars():
    with pytest.raises(ValueError, match="at least 1 dimension"):
        reshape_weight_to_matrix(torch.tensor(1.0))


# ---------------------------------------------------------------------- experiments


def test_matrix_with_singular_values():
    s = torch.tensor([5.0, 2.0, 0.5], dtype=torch.float64)
    W = matrix_with_singular_values(s, shape=(6, 4), generator=gen(0))
    got = torch.from_numpy(np.linalg.svd(W.numpy(), compute_uv=False))
    torch.testing.assert_close(got, torch.tensor([5.0, 2.0, 0.5, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="at most min"):
        matrix_with_singular_values([1.0, 1.0, 1.0], shape=(2, 5))
    with pytest.raises(ValueError, match="singular_values"):
        matrix_with_singular_values([1.0, -1.0])


def test_track_persistent_u_beats_fresh_u():
    W0 = matrix_with_singular_values(
        torch.linspace(1.0, 0.1, 16, dtype=torch.float64), shape=(16, 24), generator=gen(0)
    )
    persistent = track_sigma_under_drift(W0, 60, drift=1e-3, generator=gen(1))
    fresh = track_sigma_under_drift(W0, 60, drift=1e-3, persistent=False, generator=gen(1))
    # true sigma is computed by SVD at each recorded step; spot-check the last against NumPy
    assert persistent.steps.tolist() == list(range(1, 61))
    # both estimates are lower bounds of sigma (u^T W v <= sigma for unit u, v)
    assert bool((persistent.rel_error > -1e-12).all()) and bool((fresh.rel_error > -1e-12).all())
    assert float(persistent.rel_error[-10:].max()) < 1e-3
    assert float(fresh.rel_error[-10:].min()) > 1e-2


def test_track_records_every_and_validates():
    W0 = torch.randn(5, 4, generator=gen(0), dtype=torch.float64)
    run = track_sigma_under_drift(W0, 10, record_every=4, generator=gen(0))
    assert run.steps.tolist() == [4, 8, 10]
    with pytest.raises(ValueError, match="n_steps"):
        track_sigma_under_drift(W0, 0)
    with pytest.raises(ValueError, match="drift"):
        track_sigma_under_drift(W0, 3, drift=-1.0)


def test_time_sigma_methods_shape_of_result():
    rows = time_sigma_methods([(8, 8), (4, 16)], repeats=1, generator=gen(0), min_time=0.0)
    assert [(r["m"], r["n"]) for r in rows] == [(8, 8), (4, 16)]
    keys = ("svdvals", "exact", "svd", "power_step", "power_iteration")
    for row in rows:
        assert set(keys) | {"m", "n", "ratio"} == set(row)
        assert all(row[key] > 0 for key in keys)
        assert row["ratio"] == pytest.approx(row["exact"] / row["power_step"])
    (only,) = time_sigma_methods([(3, 3)], repeats=1, methods=("svd",), min_time=0.0)
    assert set(only) == {"m", "n", "svd"}
    with pytest.raises(ValueError, match="repeats"):
        time_sigma_methods([(2, 2)], repeats=0)
    with pytest.raises(ValueError, match="methods"):
        time_sigma_methods([(2, 2)], methods=("qr",))


def test_exact_is_orientation_independent():
    W = torch.randn(3, 50, generator=gen(3), dtype=torch.float64)
    assert float(spectral_norm_exact(W)) == float(spectral_norm_exact(W.t()))


# ---------------------------------------------------------------------- widget and figures


def test_convergence_experiment_matches_theory():
    from sngan_edu.experiments.convergence import convergence_experiment, spectrum_with_ratio

    s = spectrum_with_ratio(0.8, 32)
    assert float(s[0]) == 1.0 and float(s[1]) == 0.8 and bool((s[2:] < 0.8).all())
    exp = convergence_experiment(n_iters=25, ratio=0.8, size=32, seed=3)
    assert exp.estimate.shape == (25,)
    torch.testing.assert_close(exp.rel_error, exp.rel_error_theory, atol=1e-13, rtol=1e-9)
    torch.testing.assert_close(exp.angle, exp.angle_theory, atol=1e-13, rtol=1e-9)
    # the asymptotic rates: error shrink per iteration -> ratio^4 for sigma, ratio^2 for the vector
    assert float(exp.rel_error_theory[-1] / exp.rel_error_theory[-2]) == pytest.approx(
        0.8**4, rel=1e-2
    )
    assert float(exp.angle[-1] / exp.angle[-2]) == pytest.approx(0.8**2, rel=1e-2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_iters": 0}, "n_iters"),
        ({"ratio": 1.0}, "ratio"),
        ({"ratio": 0}, "ratio"),
        ({"size": 1}, "size"),
    ],
)
def test_convergence_experiment_rejects_bad_input(kwargs, match):
    from sngan_edu.experiments.convergence import convergence_experiment

    with pytest.raises(ValueError, match=match):
        convergence_experiment(**kwargs)


def test_explorer_slider_drives_the_plain_function(monkeypatch):
    from sngan_edu.experiments.convergence import convergence_experiment
    from sngan_edu.widgets.power_iteration import PowerIterationExplorer

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append(a))
    explorer = PowerIterationExplorer(n_iters=5, ratio=0.7, size=8)
    explorer.show()
    assert explorer.result is not None and len(explorer.result.estimate) == 5
    explorer.n_iters.value = 12  # what moving the slider does
    explorer.ratio.value = 0.6
    expected = convergence_experiment(12, 0.6, 8, 0)
    torch.testing.assert_close(explorer.result.estimate, expected.estimate)
    assert len(shown) >= 2  # the controls, then the figure


def test_figures_draw():
    from sngan_edu.experiments.convergence import convergence_experiment
    from sngan_edu.plots import spectral as plots

    exp = convergence_experiment(6, 0.5, 8)
    fig = plt.figure()
    plots.draw_convergence(fig, exp)
    assert len(fig.axes) == 2
    fig = plots.plot_unit_circle_map(torch.tensor([[2.0, 1.0], [0.0, 1.0]]))
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="2x2"):
        plots.plot_unit_circle_map(torch.eye(3))
    assert plots.plot_ratio_comparison([exp]).get_yscale() == "log"
    run = track_sigma_under_drift(torch.eye(3, dtype=torch.float64), 3, generator=gen(0))
    assert len(plots.plot_tracking({"a": run}).lines) == 1
    rows = [{"m": 2, "n": 2, "exact": 1e-4, "power_step": 1e-5}]
    assert len(plots.plot_timings(rows).lines) == 2
    assert len(plots.plot_spectra({"x": torch.tensor([2.0, 1.0])}).lines) == 2  # + the y=1 line
    plt.close("all")


def test_iterations_to_reach_and_the_rate_prediction():
    from sngan_edu.experiments.convergence import (
        convergence_experiment,
        iterations_to_reach,
        predicted_iterations,
    )

    exp = convergence_experiment(n_iters=60, ratio=0.9, size=16, seed=1)
    k = iterations_to_reach(exp, 1e-6)
    assert k is not None and float(exp.rel_error[k - 1]) < 1e-6 <= float(exp.rel_error[k - 2])
    assert iterations_to_reach(exp, 1e-30) is None  # below float64 rounding: never reached
    assert predicted_iterations(0.9, 1e-6) == pytest.approx(math.log(1e-6) / (4 * math.log(0.9)))
    assert abs(k - predicted_iterations(0.9, 1e-6)) < 5
    with pytest.raises(ValueError, match="ratio"):
        predicted_iterations(1.0, 1e-6)
    with pytest.raises(ValueError, match="tol"):
        iterations_to_reach(exp, 0.0)


def _text_boxes(fig):
    """Window extents of every visible, non-empty text of each axes of ``fig`` (drawn)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_text() and t.get_visible()]
        boxes.append([t.get_window_extent(renderer) for t in texts])
    return boxes


@pytest.mark.parametrize("entries", [[1.5, 0.5, 0.3, 0.8], [2.0, 1.0, 0.0, 1.0],
                                     [0.2, 0.0, 0.0, 3.0], [1.0, 0.9, 0.9, 1.0]])
def test_unit_circle_labels_do_not_overlap(entries):
    from sngan_edu.plots import spectral as plots

    fig = plots.plot_unit_circle_map(torch.tensor(entries).reshape(2, 2))
    for boxes in _text_boxes(fig):
        assert len(boxes) == 2  # v1, v2 (left) or sigma1 u1, sigma2 u2 (right)
        assert not boxes[0].overlaps(boxes[1])
    assert "1." in fig.axes[1].get_title() or "0." in fig.axes[1].get_title()  # the values
    plt.close("all")


def test_ratio_comparison_draws_rate_lines_and_a_style_legend():
    from sngan_edu.experiments.convergence import convergence_experiment
    from sngan_edu.plots import spectral as plots

    exps = [convergence_experiment(8, r, 8) for r in (0.5, 0.9)]
    ax = plots.plot_ratio_comparison(exps)
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 2
    for line, exp in zip(dashed, exps, strict=True):  # the pure rate ratio^(4k)
        k = np.asarray(line.get_xdata(), dtype=float)
        np.testing.assert_allclose(line.get_ydata(), exp.ratio ** (4 * k), rtol=1e-12)
    legends = [a for a in ax.get_children() if isinstance(a, matplotlib.legend.Legend)]
    titles = {legend.get_title().get_text() for legend in legends}
    assert titles == {"colour", "style"}
    plt.close("all")


def test_disjoint_supports_figure_draws_both_panels():
    from sngan_edu.experiments.critics import optimal_discriminator_1d
    from sngan_edu.plots import spectral as plots

    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    opt = optimal_discriminator_1d(x)
    fig = plots.plot_disjoint_supports(opt, {"f(x) = x": x, "critic": 0.9 * x},
                                       slope_at_fake=0.9)
    left, right = fig.axes
    assert [line.get_label() for line in right.get_lines()] == ["f(x) = x", "critic"]
    assert any("0.90" in t.get_text() for t in right.texts)
    assert len(left.get_lines()) == 1  # D*
    fig = plots.plot_disjoint_supports(opt)  # without critics: the left panel alone is drawn
    assert not fig.axes[1].get_lines()
    plt.close("all")
