"""The spectral norm sigma(W) of a matrix: exactly (SVD) and by power iteration.

sigma(W) = max_x ||W x|| / ||x|| is the largest singular value of W, the Lipschitz constant of
x -> W x. Spectral normalization (Miyato et al., ICLR 2018) divides W by an estimate of it from
power iteration (the paper's Algorithm 1)::

    v <- W^T u / ||W^T u||,    u <- W v / ||W v||,    sigma(W) ~ u^T W v,

with ``u`` kept from one training step to the next, so one iteration per step is enough. A conv
kernel (out, in, kh, kw) is first reshaped to the matrix out x (in*kh*kw)
(:func:`reshape_weight_to_matrix`); the operator norm of the convolution itself is in
:mod:`sngan_edu.conv_norm`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from sngan_edu.checks import check_int, check_number, check_pair

__all__ = [
    "PowerIterationResult",
    "spectral_norm_exact",
    "POWER_ITERATION_ORDERS",
    "power_iteration",
    "power_iteration_",
    "sigma_estimate",
    "reshape_weight_to_matrix",
    "matrix_with_singular_values",
]


class PowerIterationResult(NamedTuple):
    """What :func:`power_iteration` returns.

    sigma: 0-dim estimate u^T W v (differentiable w.r.t. W, with u and v held constant).
    u: unit vector in R^m (left singular vector estimate); pass it back in to warm-start.
    v: unit vector in R^n (right singular vector estimate).
    history: 1-D tensor of the estimate after each iteration (``return_history=True``), else None.
    """

    sigma: Tensor
    u: Tensor
    v: Tensor
    history: Tensor | None


# --------------------------------------------------------------------------- validation helpers


def _check_matrix(W: Tensor, name: str = "W", check_finite: bool = True) -> None:
    """Raise ValueError unless W is a finite, non-empty, real floating-point 2-D tensor."""
    if not isinstance(W, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor; got {type(W).__name__}")
    if W.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D matrix; got a tensor of shape {tuple(W.shape)}. "
            "Reshape a conv kernel first with reshape_weight_to_matrix(weight, dim=0) "
            "(dim=1 for ConvTranspose weights)."
        )
    if W.shape[0] == 0 or W.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column; got {tuple(W.shape)}")
    check_real(W, name, check_finite)


def check_real(t: Tensor, name: str, check_finite: bool = True) -> None:
    """Raise ValueError unless ``t`` has a real floating dtype (and, if asked, finite entries)."""
    if not t.is_floating_point():
        raise ValueError(f"{name} must have a real floating-point dtype; got {t.dtype}")
    if check_finite and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf entries; sigma is undefined")


# --------------------------------------------------------------------------- matrices


def spectral_norm_exact(W: Tensor) -> Tensor:
    """Largest singular value of a 2-D ``W`` via ``torch.linalg.svdvals`` (an SVD).

    Returns a detached 0-dim tensor of W's dtype. The zero matrix gives 0. Raises ValueError for
    tensors that are not 2-D (reshape conv kernels with :func:`reshape_weight_to_matrix`), empty,
    non-floating or non-finite.
    """
    _check_matrix(W)
    W = W.detach()
    work = W if W.dtype in (torch.float32, torch.float64) else W.float()  # SVD needs fp32/fp64
    if work.shape[0] < work.shape[1]:
        # sigma(W) = sigma(W^T); LAPACK (MKL here) is many times faster on the tall orientation
        # of a wide matrix such as a reshaped conv kernel (measured 512 x 4608: ~7x on 1 thread).
        work = work.t().contiguous()
    return torch.linalg.svdvals(work)[0].to(W.dtype)


#: Update orders of :func:`power_iteration_`. "paper": Algorithm 1 of Miyato et al. (and the old
#: ``torch.nn.utils.spectral_norm``): from ``u``, ``v <- W^T u / ||W^T u||`` then
#: ``u <- W v / ||W v||``. "torch": ``torch.nn.utils.parametrizations.spectral_norm`` (and this
#: library's SN, which must match it bit for bit): from ``v``, ``u <- W v / ||W v||`` then
#: ``v <- W^T u / ||W^T u||``. The same sequence of vectors, shifted by half a step.
POWER_ITERATION_ORDERS = ("paper", "torch")


def _normalized_mv_(matrix: Tensor, vector: Tensor, out: Tensor, eps: float) -> Tensor:
    """``out <- matrix @ vector / max(||matrix @ vector||, eps)`` in place; returns the norm.

    The arithmetic of ``F.normalize(torch.mv(matrix, vector), dim=0, eps=eps, out=out)``, which
    PyTorch's spectral norm runs, with the norm (before clamping) kept for checks and histories.
    """
    product = torch.mv(matrix, vector)
    norm = torch.linalg.vector_norm(product)
    torch.div(product, norm.clamp_min(eps), out=out)  # out=, as F.normalize: torch.func allows it
    return norm


@torch.no_grad()
def power_iteration_(
    W: Tensor,
    u: Tensor,
    v: Tensor,
    n_iters: int = 1,
    eps: float = 1e-12,
    order: str = "paper",
    *,
    strict: bool = False,
    history: list[Tensor] | None = None,
) -> None:
    """Run ``n_iters`` power iterations on ``W`` (m, n), updating ``u`` (m) and ``v`` (n) in place.

    The one power iteration of the library: :func:`power_iteration` and the SN layer
    (:class:`sngan_edu.sn.SpectralNorm`) both run it. ``order`` is one of
    :data:`POWER_ITERATION_ORDERS`: ``"paper"`` starts from ``u`` (the paper's Algorithm 1,
    ``v <- W^T u / ||W^T u||`` then ``u <- W v / ||W v||``); ``"torch"`` starts from ``v``
    (``u`` first, as ``torch.nn.utils.parametrizations.spectral_norm`` does). Each normalization
    divides by ``max(||x||, eps)``, as ``F.normalize`` does. In place matters to SN:
    ``DataParallel`` replicas share buffer storage with the original module.

    ``strict=False`` (SN's hot path) never synchronizes with the device. ``strict=True`` checks
    each norm (one sync per half step) and raises ValueError when it is not finite (NaN or Inf in
    W, or overflow) or below ``eps``; except that the zero matrix gives a defined result: the
    vector computed first becomes ``ones / sqrt(len)``, the other keeps its start, and the
    estimates are 0. ``history``: a list that receives the estimate ``u^T W v`` (= the second
    norm of each iteration) after every iteration.
    """
    first, second = ("W^T u", W.mH, u, v, "u", "column"), ("W v", W, v, u, "v", "row")
    if order == "torch":
        first, second = second, first
    elif order != "paper":
        raise ValueError(f"order must be one of {POWER_ITERATION_ORDERS}; got {order!r}")
    for k in range(n_iters):
        for half, (what, matrix, vector, out, start, space) in enumerate((first, second)):
            norm = _normalized_mv_(matrix, vector, out, eps)
            if strict and not bool((norm >= eps) & torch.isfinite(norm)):  # one sync; NaN fails
                if not bool(torch.isfinite(norm)):
                    raise ValueError(f"W contains NaN or Inf entries (or {what} overflowed)")
                if k == 0 and half == 0 and not bool(W.abs().max() > 0):  # the zero matrix
                    out.fill_(1.0 / math.sqrt(out.shape[0]))
                    if history is not None:
                        history.extend([torch.zeros((), dtype=W.dtype, device=W.device)] * n_iters)
                    return
                if half == 0:
                    raise ValueError(
                        f"||{what}|| fell below eps={eps:g}: {start} is orthogonal to the "
                        f"{space} space of W, or W is tiny compared to eps. Pass u=None (random "
                        "start), rescale W, or lower eps."
                    )
                # ||second|| >= ||first|| >= eps in exact arithmetic; this guards rounding.
                raise ValueError(f"||{what}|| fell below eps={eps:g}; rescale W or lower eps")
        if history is not None:
            history.append(norm)  # = u^T W v for the new pair, without another mat-vec


def sigma_estimate(W: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """The power-iteration estimate ``u^T W v`` of sigma(W), differentiable in ``W``.

    With ``u``, ``v`` held constant its gradient is ``u v^T``: what spectral normalization
    backpropagates through.
    """
    return torch.vdot(u, torch.mv(W, v))


def power_iteration(
    W: Tensor,
    u: Tensor | None = None,
    n_iters: int = 1,
    eps: float = 1e-12,
    return_history: bool = False,
    generator: torch.Generator | None = None,
) -> PowerIterationResult:
    """Estimate sigma(W) by ``n_iters`` steps of power iteration, as in SN-GAN (Algorithm 1).

    Each step does ``v = normalize(W^T u)``, then ``u = normalize(W v)`` (``F.normalize`` with
    ``eps``), and the estimate is ``sigma = u^T W v``. This is the order of the paper and of
    ``torch.nn.utils.spectral_norm``; ``torch.nn.utils.parametrizations.spectral_norm`` stores v
    and updates u first, which is the same sequence shifted by half a step. The iteration is
    :func:`power_iteration_` (``order="paper"``, ``strict=True``) on copies of the vectors.

    Args:
        W: (m, n) floating-point matrix.
        u: starting vector in R^m (any nonzero scale; it is normalized). ``None`` draws it from
            N(0, I) with ``generator``. Pass the previous result's ``u`` to continue iterating
            ("persistent u": one iteration per training step is then enough).
        n_iters: number of iterations, >= 1.
        eps: the ``eps`` of ``F.normalize``.
        return_history: also return the estimate after every iteration.
        generator: torch.Generator for the random start (ignored when ``u`` is given).

    u and v are computed without gradient and are constants; ``sigma = u^T W v`` carries W's
    gradient ``u v^T``, what spectral normalization backpropagates through. The zero matrix
    gives ``sigma = 0`` (``u`` the normalized start, ``v = ones / sqrt(n)``). ``W^T u`` or
    ``W v`` below ``eps`` for a nonzero W (u orthogonal to W's column space, or W tiny), and
    NaN/Inf in W, raise ValueError instead of returning a silently wrong estimate.
    """
    _check_matrix(W, check_finite=False)
    check_int("n_iters", n_iters)
    check_number("eps", eps, 0, open_low=True, what="a positive finite number")
    m, n = W.shape
    if u is None:
        u = torch.randn(m, generator=generator, dtype=W.dtype, device=W.device)
    else:
        if not isinstance(u, Tensor) or u.ndim != 1 or u.shape[0] != m:
            shape = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
            raise ValueError(f"u must be a 1-D tensor of length W.shape[0] = {m}; got {shape}")
        if not bool(torch.isfinite(u).all()):
            raise ValueError("u contains NaN or Inf entries")
        u = u.detach().to(dtype=W.dtype, device=W.device)
        if not bool(u.abs().max() > 0):
            raise ValueError("u must be a nonzero vector (pass u=None for a random start)")

    history: list[Tensor] | None = [] if return_history else None
    with torch.no_grad():
        u = u / torch.linalg.vector_norm(u)
        v = torch.empty(n, dtype=W.dtype, device=W.device)
        power_iteration_(W.detach(), u, v, n_iters, eps, "paper", strict=True, history=history)
    sigma = sigma_estimate(W, u, v)  # outside no_grad: gradient u v^T flows into W
    hist = torch.stack(history) if history is not None else None
    return PowerIterationResult(sigma, u, v, hist)


def reshape_weight_to_matrix(weight: Tensor, dim: int = 0) -> Tensor:
    """Reshape a weight to 2-D the way SN does: move ``dim`` to the front, flatten the rest.

    ``dim=0`` for Linear / Conv kernels (out, in, kh, kw) -> out x (in*kh*kw); ``dim=1`` for
    ConvTranspose kernels (in, out, kh, kw) -> out x (in*kh*kw). Negative ``dim`` counts from the
    end. A 1-D weight becomes a column (n, 1). Returns a view when possible (gradients flow).
    """
    if not isinstance(weight, Tensor):
        raise ValueError(f"weight must be a torch.Tensor; got {type(weight).__name__}")
    if weight.ndim == 0:
        raise ValueError("weight must have at least 1 dimension; got a 0-dim tensor")
    nd = weight.ndim
    dim = check_int("dim", dim, -nd, nd - 1, note=f" for a {nd}-D weight") % nd
    if dim != 0:
        weight = weight.permute(dim, *(d for d in range(nd) if d != dim))
    return weight.reshape(weight.shape[0], -1)


# --------------------------------------------------------------------------- test matrices


def matrix_with_singular_values(
    singular_values: Sequence[float] | Tensor,
    shape: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    haar: bool = True,
) -> Tensor:
    """A random matrix with exactly the given singular values: W = U diag(s) V^T.

    U (m x r) and V (n x r) have orthonormal columns from the QR of a Gaussian matrix (U drawn
    first), with the sign fix that makes them uniform (Haar); ``haar=False`` keeps QR's signs
    (the draws the exercise checks use). ``shape`` defaults to (r, r) for r
    values; missing singular values are zero (rank-deficient W). Used to control the spectral
    gap.
    """
    s = torch.as_tensor(singular_values, dtype=dtype).flatten()
    if s.numel() == 0 or not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
        raise ValueError("singular_values must be a non-empty list of finite numbers >= 0")
    r = s.numel()
    m, n = (r, r) if shape is None else check_pair("shape", tuple(shape), 1)
    if r > min(m, n):
        raise ValueError(f"got {r} singular values for shape {(m, n)}; at most min(m, n) fit")

    def orthonormal(rows: int) -> Tensor:
        q, rr = torch.linalg.qr(torch.randn(rows, r, generator=generator, dtype=dtype))
        if not haar:
            return q
        return q * torch.sign(torch.diagonal(rr)).where(torch.diagonal(rr) != 0, 1.0)

    U, V = orthonormal(m), orthonormal(n)
    return (U * s) @ V.t()
