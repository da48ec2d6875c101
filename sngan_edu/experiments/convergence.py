"""How fast power iteration converges: notebook 01's experiment, measured against theory.

With singular values sigma_1 > sigma_2 >= ... and a start vector u_0 = sum_i a_i u_i, k steps of
u <- W W^T u (normalized) give u_k proportional to sum_i a_i sigma_i^(2k) u_i: the angle to the
top singular vector shrinks like (sigma_2/sigma_1)^(2k) and the relative error of the estimate
u^T W v like (sigma_2/sigma_1)^(4k). During training W moves a little every step, and a ``u``
kept from the previous step (:func:`track_sigma_under_drift`) stays close to the top singular
vector, so one iteration per step suffices.
:class:`sngan_edu.widgets.power_iteration.PowerIterationExplorer` puts sliders on
:func:`convergence_experiment`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from sngan_edu.checks import check_int, check_number
from sngan_edu.spectral import matrix_with_singular_values, power_iteration, spectral_norm_exact


class ConvergenceExperiment(NamedTuple):
    """Power iteration on a matrix with a chosen ratio sigma2/sigma1, against theory.

    All curves are indexed by k = 1..n_iters (iterations done).
    """

    ratio: float  # sigma2 / sigma1
    sigma: float  # true sigma1 (= 1 by construction)
    estimate: Tensor  # u_k^T W v_k
    rel_error: Tensor  # (sigma - estimate) / sigma, measured
    rel_error_theory: Tensor  # the same, predicted exactly from the start vector and the SVD
    angle: Tensor  # sin of the angle between u_k and the top left singular vector, measured
    angle_theory: Tensor  # the same, predicted
    singular_values: Tensor


def spectrum_with_ratio(ratio: float, size: int) -> Tensor:
    """Singular values 1, ratio, then ``size - 2`` values spread below 0.9 * ratio (to 0.05)."""
    rest = torch.linspace(0.9 * ratio, 0.05, max(size - 2, 0), dtype=torch.float64)
    return torch.cat([torch.tensor([1.0, ratio], dtype=torch.float64), rest])[:size]


def convergence_experiment(
    n_iters: int = 30, ratio: float = 0.8, size: int = 64, seed: int = 0
) -> ConvergenceExperiment:
    """Run ``n_iters`` power iterations on a size x size matrix with sigma1 = 1, sigma2 = ratio.

    Theory: with u_0 = sum_i a_i u_i, after k iterations u_k is proportional to
    sum_i a_i sigma_i^(2k) u_i, so the angle to u_1 shrinks like (sigma2/sigma1)^(2k), and the
    estimate is sqrt(sum a_i^2 sigma_i^(4k) / sum a_i^2 sigma_i^(4k-2)), whose relative error
    shrinks like (sigma2/sigma1)^(4k): twice as fast on a log scale.
    """
    check_int("n_iters", n_iters, 1, 10_000)
    check_number("ratio", ratio, 0, 1, open_low=True, open_high=True,
                 what="a number in (0, 1) (sigma2/sigma1)")
    check_int("size", size, 2, 2048)
    generator = torch.Generator().manual_seed(seed)
    s = spectrum_with_ratio(float(ratio), size)
    W = matrix_with_singular_values(s, generator=generator)
    U, _, _ = torch.linalg.svd(W)
    u1 = U[:, 0]
    u = torch.randn(size, generator=generator, dtype=torch.float64)
    a2 = (U.t() @ (u / u.norm())) ** 2  # squared coordinates of the start in the singular basis

    estimates, angles = [], []
    for _ in range(n_iters):  # one call per iteration, carrying u: the same as n_iters at once
        result = power_iteration(W, u=u, n_iters=1)
        u = result.u
        estimates.append(float(result.sigma))
        angles.append(float(torch.linalg.vector_norm(u - (u @ u1) * u1)))

    k = torch.arange(1, n_iters + 1, dtype=torch.float64)[:, None]
    r = s[None, :] / s[0]
    num = a2 * r ** (4 * k)
    den = a2 * r ** (4 * k - 2)
    x = num.sum(1) / den.sum(1)
    # 1 - sqrt(x) computed without cancellation: (1 - x) / (1 + sqrt(x))
    one_minus_x = (den - num).sum(1) / den.sum(1)
    rel_theory = one_minus_x / (1 + x.sqrt())
    tan = (a2[1:] * r[:, 1:] ** (4 * k)).sum(1).sqrt() / math.sqrt(float(a2[0]))
    estimate = torch.tensor(estimates, dtype=torch.float64)
    return ConvergenceExperiment(
        ratio=float(ratio),
        sigma=1.0,
        estimate=estimate,
        rel_error=1.0 - estimate,
        rel_error_theory=rel_theory,
        angle=torch.tensor(angles, dtype=torch.float64),
        angle_theory=tan / (1 + tan**2).sqrt(),
        singular_values=s,
    )


def iterations_to_reach(experiment: ConvergenceExperiment, tol: float) -> int | None:
    """The first iteration k (1-based) whose relative error of the estimate is below ``tol``;
    None if the experiment did not get there."""
    check_number("tol", tol, 0, open_low=True, what="a positive number")
    below = (experiment.rel_error.abs() < tol).nonzero()
    return int(below[0]) + 1 if len(below) else None


def predicted_iterations(ratio: float, tol: float) -> float:
    """k with ratio^(4k) = tol: the rate alone, ignoring the start vector's constant factor."""
    check_number("ratio", ratio, 0, 1, open_low=True, open_high=True,
                 what="a number in (0, 1) (sigma2/sigma1)")
    check_number("tol", tol, 0, 1, open_low=True, open_high=True, what="a number in (0, 1)")
    return math.log(tol) / (4 * math.log(ratio))


class DriftTracking(NamedTuple):
    """Sigma of a slowly drifting matrix and its power-iteration estimate, per recorded step."""

    steps: Tensor  # step indices (1-based) that were recorded
    true_sigma: Tensor  # exact sigma at those steps (SVD)
    estimate: Tensor  # power-iteration estimate at those steps
    rel_error: Tensor  # (true - estimate) / true; >= 0 up to rounding (u^T W v <= sigma)


def track_sigma_under_drift(
    W0: Tensor,
    n_steps: int,
    drift: float = 1e-3,
    n_iters: int = 1,
    persistent: bool = True,
    record_every: int = 1,
    generator: torch.Generator | None = None,
    record_at: Sequence[int] | None = None,
) -> DriftTracking:
    """Simulate training: W changes a little each step; estimate sigma by power iteration.

    Each step adds ``drift * ||W||_F * G / ||G||_F`` (G Gaussian) to W, then runs ``n_iters``
    power iterations starting from the previous step's u (``persistent=True``, as SN does) or
    from a fresh random u (``persistent=False``, the circulating mistake). Both start from a
    random u at step 1. The exact sigma (SVD) is computed only at recorded steps: every
    ``record_every`` steps and the last one, or exactly the steps in ``record_at`` if given.
    """
    if not isinstance(W0, Tensor) or W0.ndim != 2 or not W0.is_floating_point():
        raise ValueError(f"W0 must be a 2-D floating-point matrix; got {W0!r:.60}")
    check_int("n_steps", n_steps)
    check_int("record_every", record_every)
    check_number("drift", drift, 0)
    if record_at is not None:
        record_at = sorted({int(step) for step in record_at})
        if not record_at or record_at[0] < 1 or record_at[-1] > n_steps:
            raise ValueError(
                f"record_at must hold steps in [1, n_steps={n_steps}]; got {record_at}"
            )
    wanted = set(record_at) if record_at is not None else None
    W = W0.detach().clone()
    u = None
    steps, true, est = [], [], []
    for step in range(1, n_steps + 1):
        g = torch.randn(W.shape, generator=generator, dtype=W.dtype, device=W.device)
        W += (drift * torch.linalg.matrix_norm(W) / torch.linalg.matrix_norm(g)) * g
        result = power_iteration(
            W, u=u if persistent else None, n_iters=n_iters, generator=generator
        )
        u = result.u
        if (
            (step in wanted)
            if wanted is not None
            else (step % record_every == 0 or step == n_steps)
        ):
            steps.append(step)
            true.append(spectral_norm_exact(W))
            est.append(result.sigma.detach())
    true_t, est_t = torch.stack(true), torch.stack(est)
    return DriftTracking(torch.tensor(steps), true_t, est_t, (true_t - est_t) / true_t)
