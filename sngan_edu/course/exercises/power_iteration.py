"""Checks of exercise 01: power iteration (1.1) and tracking sigma over training steps (1.2)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sngan_edu import spectral
from sngan_edu.course.exercises.core import (
    _fmt,
    _has_nonfinite,
    as_float,
    as_number,
    close,
    exercise_check,
    new_checker,
    require_unchanged,
    seeded,
    snapshot,
    tensor_close,
    unpack,
)


def matrix_with_singular_values(m: int, n: int, values: list[float], seed: int) -> torch.Tensor:
    """An m x n float32 matrix with the given singular values and random singular vectors."""
    matrix = spectral.matrix_with_singular_values(values, (m, n), seeded(seed), haar=False)
    return matrix.float()


def paper_power_step(W: torch.Tensor, u: torch.Tensor,
                     n_iters: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_iters`` steps of Algorithm 1 of the SNGAN paper from u: (sigma, u_new, v)."""
    sigma, u_new, v, _ = spectral.power_iteration(W.detach(), u, n_iters=n_iters)
    return sigma.detach(), u_new, v


_OVERFLOW_HINT = (
    "your result is {what}: the vectors overflowed. Without normalizing, each iteration "
    "multiplies their length by about sigma^2 (here {growth:.3g}), so after {n} iterations it "
    "passes float32's largest number (3e38), becomes inf and then nan (inf / inf). Normalize v "
    "and u inside the loop, at every iteration, not only at the end."
)


def _unpack_power(c, out: Any, m: int, n: int):
    sigma, u, v = unpack(c, out, ("sigma", "u", "v"),
                         "end your function with `return sigma, u, v`.")
    sigma = as_float(c, sigma, "sigma")
    for vec, name, size in ((u, "u", m), (v, "v", n)):
        if not isinstance(vec, torch.Tensor) or vec.shape != (size,):
            shape = tuple(vec.shape) if isinstance(vec, torch.Tensor) else type(vec).__name__
            hint = (
                "u has one entry per row of W (W @ v) and v one per column (W.T @ u)."
                if isinstance(vec, torch.Tensor) and vec.shape in ((m,), (n,))
                else "keep u and v as 1-D tensors (torch.mv or @ with 1-D vectors)."
            )
            c.fail(f"{name} as a tensor of shape ({size},)", f"shape {shape}", hint)
    return sigma, u.detach(), v.detach()


def _vectors_hint(u: torch.Tensor, v: torch.Tensor, ref_u: torch.Tensor,
                  ref_v: torch.Tensor) -> str:
    if tensor_close(u, -ref_u) or tensor_close(v, -ref_v):
        return "the signs differ: start from the given u and compute v = W.T @ u first."
    if abs(float(u.norm()) - 1) > 1e-3 or abs(float(v.norm()) - 1) > 1e-3:
        return (f"u and v must be unit vectors (yours have norms {float(u.norm()):.4g} and "
                f"{float(v.norm()):.4g}): divide each by its norm.")
    return ("start from the u you were given (do not draw a new random one) and do "
            "exactly n_iters iterations: first v from u, then u from v.")


def _sigma_hint(sigma: float, expected: float, W: torch.Tensor) -> str:
    if close(sigma, expected ** 2, rtol=1e-3):
        return "you returned sigma squared: use u @ W @ v (or the norm of W @ v)."
    if close(sigma, float(torch.linalg.matrix_norm(W)), rtol=1e-3):
        return "that is the Frobenius norm of W; sigma is u @ W @ v."
    if close(sigma, math.sqrt(abs(expected)), rtol=1e-3):
        return "you returned the square root of sigma: sigma is u @ W @ v itself."
    return "sigma is u @ W @ v with the NEW u and v (equivalently the norm of W @ v)."


def _check_one_iteration(c, W: torch.Tensor, got: tuple, ref: tuple) -> None:
    """One iteration: Algorithm 1's (sigma, u, v) ``ref``, or v half a step ahead (a note)."""
    (sigma, u, v), (ref_sigma, ref_u, ref_v) = got, ref
    ahead_v = F.normalize(W.T @ ref_u, dim=0)  # v half a step ahead: from the new u
    ahead = tensor_close(u, ref_u) and tensor_close(v, ahead_v) and not tensor_close(v, ref_v)
    if _has_nonfinite((sigma, u, v)):
        c.fail("finite numbers", f"sigma = {sigma:.4g}, u = {_fmt(u)}", "the result contains "
               "nan or inf: normalize u and v at every iteration (and do not divide by zero).")
    if not (tensor_close(u, ref_u) and (tensor_close(v, ref_v) or ahead)):
        c.fail(f"u = {_fmt(ref_u)}, v = {_fmt(ref_v)}", f"u = {_fmt(u)}, v = {_fmt(v)}",
               _vectors_hint(u, v, ref_u, ref_v))
    expected_sigma = float(ref_u @ W @ ahead_v) if ahead else float(ref_sigma)
    if not close(sigma, expected_sigma):
        c.fail(f"sigma = {expected_sigma:.4g}", f"sigma = {sigma:.4g}",
               _sigma_hint(sigma, expected_sigma, W))
    if ahead:
        c.note("your v is W^T u / |W^T u| for the final u, half a step ahead of Algorithm 1's "
               "v (which gave that u). The estimate u^T W v = |W^T u| is just as good, and "
               "both converge to the same singular vectors.")


def _check_convergence(c) -> None:
    """60 iterations reach the largest singular value on a tall and a wide matrix."""
    for m, n, seed in ((7, 4, 3), (3, 8, 4)):
        M = matrix_with_singular_values(m, n, [2.5, 1.2, 0.3], seed=seed)
        start = F.normalize(torch.randn(m, generator=seeded(seed)), dim=0)
        exact = float(spectral.spectral_norm_exact(M.double()))
        s, u_m, v_m = _unpack_power(c, c.call(M, start, 60), m, n)
        if _has_nonfinite((s, u_m, v_m)):
            what = "nan" if math.isnan(s) or bool(torch.isnan(u_m).any()) else "inf"
            c.fail(f"{exact:.5g} for a {m}x{n} matrix", f"{s:.5g}",
                   _OVERFLOW_HINT.format(what=what, growth=2.5 ** 2, n=60))
        if not close(s, exact, rtol=1e-4):
            c.fail(f"{exact:.5g} for a {m}x{n} matrix after 60 iterations", f"{s:.5g}",
                   "loop n_iters times, updating v and then u from the latest values.")


@exercise_check
def check_power_iteration(power_iteration: Callable[..., Any]) -> None:
    """Check ``power_iteration(W, u, n_iters) -> (sigma, u, v)`` (paper's Algorithm 1).

    Each iteration: ``v = normalize(W.T @ u)``, ``u = normalize(W @ v)``; then
    ``sigma = u @ W @ v``. Compared with the library's power iteration and with
    torch.linalg.svdvals. The variant that updates ``u <- normalize(W @ W.T @ u)`` and returns
    ``v = normalize(W.T @ u)`` for the final u (v half a step ahead) passes too, with a note.
    """
    c = new_checker("power_iteration", power_iteration)
    c.allow_nonfinite = True  # the overflow gets its own hint below
    W = matrix_with_singular_values(5, 3, [3.0, 1.0, 0.5], seed=1)
    u0 = F.normalize(torch.randn(5, generator=seeded(2)), dim=0)
    W_before = snapshot(W)
    ref = paper_power_step(W, u0)  # references first

    with c.step("returns (sigma, u, v) with u of length rows(W) and v of length cols(W)"):
        got = _unpack_power(c, c.call(W, u0.clone(), 1), 5, 3)

    with c.step("does not change W"):
        require_unchanged(c, W_before, W, "W", "compute new tensors; never write into W.")

    with c.step("one iteration from a given u matches v = W^T u/|W^T u|, u = W v/|W v|, "
                "sigma = u^T W v"):
        _check_one_iteration(c, W, got, ref)

    with c.step("the same inputs give the same result (no fresh random vector inside)"):
        again, _, _ = _unpack_power(c, c.call(W, u0.clone(), 1), 5, 3)
        if again != got[0]:
            c.fail(f"sigma = {got[0]:.6g} again", f"sigma = {again:.6g}",
                   "use the u passed in; a fresh random u each call makes the estimate noisy.")

    with c.step("starting from the top singular vector gives sigma exactly after one iteration"):
        top = torch.linalg.svd(W.double())[0][:, 0].float()
        exact = float(spectral.spectral_norm_exact(W.double()))
        sig_top, _, _ = _unpack_power(c, c.call(W, top.clone(), 1), 5, 3)
        if not close(sig_top, exact, rtol=1e-4):
            c.fail(f"{exact:.5g} (SVD)", f"{sig_top:.5g}",
                   "warm starts are the point of power iteration in SN: use the u you were given.")

    with c.step("converges to the largest singular value (SVD) on tall and wide matrices "
                "(60 iterations)"):
        _check_convergence(c)
    c.done()


# --------------------------------------------------------------------------------------------
# 1.2: tracking sigma over training steps
# --------------------------------------------------------------------------------------------


def drifting_weights(n_steps: int, shape: tuple[int, int], values: list[float], drift: float,
                     seed: int) -> list[torch.Tensor]:
    """Weights of ``n_steps`` "training steps": W_t = W_(t-1) + a small random step.

    Each step adds ``drift * ||W||_F * G / ||G||_F`` (G Gaussian), the drift model of
    :func:`sngan_edu.spectral.track_sigma_under_drift`.
    """
    g = seeded(seed)
    W = matrix_with_singular_values(*shape, values, seed=seed)
    weights = []
    for _ in range(n_steps):
        G = torch.randn(shape, generator=g)
        W = W + (drift * torch.linalg.matrix_norm(W) / torch.linalg.matrix_norm(G)) * G
        weights.append(W)
    return weights


def reference_tracking(weights: list[torch.Tensor], u: torch.Tensor, iters_per_step: int = 1,
                       keep_u: bool = True, v_ahead: bool = False) -> list[float]:
    """Estimates of sigma, one per weight, by ``iters_per_step`` power iterations per step.

    ``keep_u``: start each step from the previous step's u (SN's persistent u), else from the
    first u every time. ``v_ahead``: estimate |W^T u| with the new u (v half a step ahead).
    """
    estimates, start = [], u
    for W in weights:
        sigma, u_new, _ = paper_power_step(W, start, iters_per_step)
        estimates.append(float(torch.linalg.vector_norm(W.T @ u_new)) if v_ahead
                         else float(sigma))
        start = u_new if keep_u else u
    return estimates


def _estimates(c, out: Any, n: int) -> list[float]:
    if isinstance(out, (torch.Tensor, np.ndarray)) and out.ndim == 1:
        out = out.tolist()
    if not isinstance(out, (list, tuple)) or len(out) != n:
        got = f"{len(out)} values" if isinstance(out, (list, tuple)) else _fmt(out)
        c.fail(f"a list of {n} estimates, one per weight matrix", got,
               "append one estimate per step inside your loop and return the list.")
    values = [as_number(x) for x in out]
    if any(x is None for x in values):
        bad = next(x for x, v in zip(out, values, strict=True) if v is None)
        c.fail("numbers", _fmt(bad), "append a number per step: float(u @ W @ v).")
    return values  # type: ignore[return-value]


def _all_close(a: list[float], b: list[float], rtol: float = 1e-4) -> bool:
    return len(a) == len(b) and all(close(x, y, rtol=rtol) for x, y in zip(a, b, strict=True))


def _still_hint(first: list[float], still: list[torch.Tensor], u0: torch.Tensor) -> str:
    """Name the mistake of estimates ``first`` on one matrix seen at every step."""
    if _all_close(first, reference_tracking(still, u0, keep_u=False)):
        return ("every step started again from the u you were given, so the estimate never "
                "improves: keep the new u (u = ... inside the loop) and start the next step "
                "from it.")
    if all(close(x, float(spectral.spectral_norm_exact(still[0].double())), rtol=1e-4)
           for x in first):
        return ("that is sigma by SVD at every step: exact but expensive. The point is to "
                "track it with ONE cheap power iteration per step, keeping u.")
    for k in (2, 3, 5, 10, 20):
        if _all_close(first, reference_tracking(still, u0, iters_per_step=k)):
            return (f"you ran {k} iterations per step; SN runs one. With u kept between steps "
                    "one is enough: the iterations add up over the steps.")
    if close(first[-1], reference_tracking(still, u0)[-1], rtol=1e-4):
        return ("the last estimate is right but earlier ones are not: record u^T W v after "
                "each step's iteration, with that step's new u and v.")
    return ("at each step: v = normalize(W.T @ u), u = normalize(W @ v), record u @ W @ v, "
            "and keep this u for the next step.")


def _unrelated_hint(got: list[float], weights: list[torch.Tensor], u: torch.Tensor) -> str:
    """Name the mistake of estimates ``got`` on unrelated successive weights."""
    growing = [reference_tracking([W], u, iters_per_step=t + 1)[0]
               for t, W in enumerate(weights)]
    if _all_close(got, growing):
        return ("at step t you started again from the first u and ran t+1 iterations on "
                "step t's matrix: the work grows with every step (quadratic in all), and it "
                "is not what SN does. Keep the u of the previous step and run ONE iteration "
                "on the current matrix.")
    if _all_close(got, reference_tracking(weights, u, keep_u=False)):
        return "every step started again from the u you were given: keep the new u."
    if all(close(x, float(spectral.spectral_norm_exact(W.double())), rtol=1e-4)
           for x, W in zip(got, weights, strict=True)):
        return ("that is sigma by SVD (or power iteration run to convergence) at every "
                "step: exact but expensive. SN runs ONE iteration per step, keeping u.")
    return ("step t: one iteration on weights[t] starting from the u that step t-1 "
            "produced; record the estimate of that step.")


def _check_tracking(c, weights: list[torch.Tensor], u: torch.Tensor,
                    hint: Callable[[list[float]], str], rtol: float = 1e-4,
                    got: list[float] | None = None) -> None:
    """Fail with ``hint(estimates)`` unless the estimates (``got``, else those of a new call)
    are SN's, or those of v half a step ahead (with a note)."""
    warm, ahead = reference_tracking(weights, u), reference_tracking(weights, u, v_ahead=True)
    if got is None:
        got = _estimates(c, c.call(weights, u.clone()), len(weights))
    if not (_all_close(got, warm, rtol) or _all_close(got, ahead, rtol)):
        c.fail(f"{_fmt(warm[:3])} ... {warm[-1]:.5g}", f"{_fmt(got[:3])} ... {got[-1]:.5g}",
               hint(got))
    if _all_close(got, ahead, rtol) and not _all_close(got, warm, rtol):
        c.note("your estimate is |W^T u| with the new u (v half a step ahead of Algorithm "
               "1's); it tracks sigma just as well.")


@exercise_check
def check_track_sigma(track_sigma: Callable[..., Any]) -> None:
    """Check ``track_sigma(weights, u) -> list of estimates``: one power iteration per step, u kept.

    ``weights`` is the list of a layer's weight matrices at successive training steps and
    ``u`` a starting unit vector. Step t runs ONE power iteration on ``weights[t]`` from the u
    of step t-1 (the first step from the given u) and records ``u^T W v``.
    """
    c = new_checker("track_sigma", track_sigma)
    fixed = matrix_with_singular_values(10, 6, [2.0, 1.6, 1.0, 0.5], seed=21)
    u0 = F.normalize(torch.randn(10, generator=seeded(22)), dim=0)
    still = [fixed.clone() for _ in range(25)]
    before = [snapshot(W) for W in still]

    with c.step("returns one estimate per weight matrix"):
        first = _estimates(c, c.call(still, u0.clone()), len(still))

    with c.step("does not change the weights"):
        for W, W_before in zip(still, before, strict=True):
            require_unchanged(c, W_before, W, "the weights", "compute new tensors; never write "
                              "into the weights.")

    with c.step("the same weights and u give the same estimates (no fresh random vector inside)"):
        again = _estimates(c, c.call(still, u0.clone()), len(still))
        if again != first:
            c.fail("the same estimates twice", f"{_fmt(first[:3])}... then {_fmt(again[:3])}...",
                   "a fresh random u at every step (or call) throws away what the previous steps "
                   "learned: start step t from the u that step t-1 returned, and the first step "
                   "from the u you were given.")

    with c.step("one matrix seen 25 times: step k's estimate equals k iterations from u, rising "
                "to sigma"):
        _check_tracking(c, still, u0, lambda got: _still_hint(got, still, u0), got=first)

    with c.step("unrelated successive weights: each step is ONE iteration on its own matrix, "
                "from the previous step's u"):
        unrelated = [matrix_with_singular_values(9, 7, [3.0 - 0.1 * t, 1.0, 0.4], seed=100 + t)
                     for t in range(12)]
        u2 = F.normalize(torch.randn(9, generator=seeded(25)), dim=0)
        _check_tracking(c, unrelated, u2, lambda got: _unrelated_hint(got, unrelated, u2))

    with c.step("a weight that drifts as in training: the estimates follow the true sigma"):
        drifting = drifting_weights(60, (12, 8), [2.0, 1.5, 1.0, 0.6, 0.2], drift=0.02, seed=23)
        u1 = F.normalize(torch.randn(12, generator=seeded(24)), dim=0)
        _check_tracking(c, drifting, u1, lambda got: (
            "every step started again from the u you were given: keep the new u."
            if _all_close(got, reference_tracking(drifting, u1, keep_u=False), rtol=1e-3)
            else "one iteration per step from the previous step's u; record u @ W @ v."), rtol=1e-3)
    c.done()
