"""The spectral norm sigma(W): exactly (SVD), by power iteration, and for convolutions.

sigma(W) = max_x ||W x|| / ||x|| is the largest singular value of W, the Lipschitz constant of
x -> W x. Spectral normalization (Miyato et al., ICLR 2018) divides W by an estimate of it that
comes from power iteration with a vector ``u`` kept from one training step to the next.

For a convolution the paper (and PyTorch) reshapes the kernel (out, in, kh, kw) to a matrix
out x (in*kh*kw) and normalizes by *that* matrix's sigma. The Lipschitz constant of the
convolution itself is the largest singular value of the linear map x -> conv2d(x, weight), which
depends on the input size, stride and padding. :func:`conv_operator_norm` computes it by power
iteration through the convolution and its adjoint, :func:`conv_operator_norm_fft` by the FFT
method of Sedghi, Gupta & Long (ICLR 2019) for circular padding, and :func:`conv_to_dense`
builds the dense matrix so small cases can be checked against an SVD.

How the two conv numbers relate (derived below, checked numerically in
``tests/test_conv_operator_norm.py``). Let ``s0 = sigma(reshape_weight_to_matrix(weight))`` and
A the convolution x -> conv2d(x, weight) with kernel kh x kw and stride (sh, sw):

* upper bound ``||A|| <= sqrt(ceil(kh/sh) * ceil(kw/sw)) * s0``: ||A x||^2 is a sum over output
  pixels of ||W_mat patch||^2 <= s0^2 ||patch||^2, and each input pixel lies in at most
  ceil(kh/sh) * ceil(kw/sw) patches. Holds for zero padding of any size, and for circular padding
  with stride 1 and 2p <= k - 1; larger circular padding (or stride > 1 with wrap-around) reads a
  pixel in more windows and can break it. For stride 1 that is ``sqrt(kh*kw) * s0``, attained by
  a kernel whose kh*kw taps are all equal (circular padding);
* lower bound ``s0 <= ||A||`` *if* at least one output pixel sees a whole kh x kw window of
  real input, not padding (put x = the top right singular vector there; that pixel alone gets
  s0). It need not hold for every pixel: border pixels that overlap the padding do not matter.
  Always true for circular padding with H >= kh, W >= kw. With zero padding and no full window
  the true norm can be *below* s0: a 1x1 input with padding 1 only meets the centre tap, and a
  4x4 stride-2 conv with padding 1 on a 4x4 input (every window overlaps the padding) fell below
  it in notebook 03.

So "between 1 and sqrt(kh*kw) times the reshaped sigma" is right for stride 1 with a full
window, and the factor is at most sqrt(ceil(kh/sh) * ceil(kw/sw)) for strided convs (2 for the
paper's 4x4 stride-2 layers).

ConvTranspose2d weights (in, out, kh, kw): the map is the adjoint of conv2d with the same weight,
so its norm obeys the bounds above with ``s0 = sigma(reshape(weight, dim=0))``. SN uses
``s1 = sigma(reshape(weight, dim=1))`` instead; for it only ``||T|| <= sqrt(kh*kw) * s1`` holds
for every stride (each output pixel uses a subset of the taps, each input pixel reaches at most
kh*kw outputs), and ``s1 <= ||T||`` only for stride 1. With stride >= kernel size the transposed
conv is block diagonal and ``||T|| = s0``, which can lie on either side of ``s1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from sngan_edu.checks import check_int, check_number, check_pair, check_positive

__all__ = [
    "PowerIterationResult",
    "spectral_norm_exact",
    "POWER_ITERATION_ORDERS",
    "power_iteration",
    "power_iteration_",
    "sigma_estimate",
    "reshape_weight_to_matrix",
    "conv_to_dense",
    "conv_operator_norm",
    "conv_operator_norm_fft",
    "reshaped_norm_bounds",
    "matrix_with_singular_values",
    "DriftTracking",
    "track_sigma_under_drift",
    "time_sigma_methods",
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
    _check_real(W, name, check_finite)


def _check_kernel(weight: Tensor, layout: str = "(out, in, kh, kw)") -> None:
    """Raise ValueError unless ``weight`` is a finite, non-empty, real floating-point 4-D kernel."""
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a 4-D conv kernel {layout}; got {shape}")
    if weight.numel() == 0:
        raise ValueError(f"weight must not be empty; got shape {tuple(weight.shape)}")
    _check_real(weight, "weight")


def _check_real(t: Tensor, name: str, check_finite: bool = True) -> None:
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

    Gradients: u and v are computed under ``torch.no_grad`` and are constants; ``sigma`` is
    computed afterwards as ``u^T W v`` so that it carries W's gradient, ``d sigma / d W = u v^T``
    (exactly what spectral normalization backpropagates through).

    The zero matrix is defined to give ``sigma = 0`` (its true spectral norm) with ``u`` the
    normalized starting vector and ``v = ones / sqrt(n)``; every unit pair is a singular pair of
    the zero matrix, and keeping ``u`` lets a warm start continue once W becomes nonzero.
    If ``W^T u`` or ``W v`` falls below ``eps`` for a nonzero W (u orthogonal to W's column
    space, or W tiny compared to ``eps``), a ValueError is raised instead of returning a
    silently wrong estimate. NaN/Inf in W also raise ValueError: they always make ``W^T u``
    non-finite, which is checked on that vector (O(n)) instead of scanning all of W each call.
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


# --------------------------------------------------------------------------- convolutions


class _ConvSpec(NamedTuple):
    weight: Tensor
    input_shape: tuple[int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    padding_mode: str
    transposed: bool
    output_padding: tuple[int, int]


def _conv_spec(
    weight: Tensor,
    input_shape: Sequence[int],
    stride: int | Sequence[int],
    padding: int | Sequence[int],
    padding_mode: str,
    transposed: bool,
    output_padding: int | Sequence[int] = 0,
) -> _ConvSpec:
    _check_kernel(weight, "(out, in, kh, kw), or (in, out, kh, kw) when transposed=True")
    try:
        c, h, w = (int(x) for x in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (C, H, W); got {input_shape!r}") from None
    if min(c, h, w) < 1:
        raise ValueError(f"input_shape must be positive (C, H, W); got {input_shape!r}")
    expected_c = weight.shape[0] if transposed else weight.shape[1]
    if c != expected_c:
        which = "weight.shape[0] (transposed)" if transposed else "weight.shape[1]"
        raise ValueError(f"input_shape[0] = {c} must equal {which} = {expected_c}")
    if padding_mode not in ("zeros", "circular"):
        raise ValueError(f"padding_mode must be 'zeros' or 'circular'; got {padding_mode!r}")
    if transposed and padding_mode != "zeros":
        raise ValueError("padding_mode='circular' is only supported with transposed=False")
    s = check_pair("stride", stride, 1)
    p = check_pair("padding", padding, 0)
    op = check_pair("output_padding", output_padding, 0)
    if transposed and (op[0] >= s[0] or op[1] >= s[1]):
        raise ValueError(f"output_padding must be smaller than stride; got {output_padding!r}")
    kh, kw = weight.shape[-2:]
    if padding_mode == "circular" and (p[0] > h or p[1] > w):
        raise ValueError("circular padding cannot exceed the input size")
    if not transposed and (h + 2 * p[0] < kh or w + 2 * p[1] < kw):
        raise ValueError(
            f"kernel {kh}x{kw} is larger than the padded input {h + 2 * p[0]}x{w + 2 * p[1]}"
        )
    return _ConvSpec(weight, (c, h, w), s, p, padding_mode, bool(transposed), op)


def _apply(spec: _ConvSpec, x: Tensor) -> Tensor:
    """The linear map x -> conv(x) for a batch x of shape (B, C, H, W)."""
    if spec.transposed:
        return F.conv_transpose2d(
            x,
            spec.weight,
            stride=spec.stride,
            padding=spec.padding,
            output_padding=spec.output_padding,
        )
    if spec.padding_mode == "circular":
        ph, pw = spec.padding
        x = F.pad(x, (pw, pw, ph, ph), mode="circular")
        return F.conv2d(x, spec.weight, stride=spec.stride)
    return F.conv2d(x, spec.weight, stride=spec.stride, padding=spec.padding)


def conv_to_dense(
    weight: Tensor,
    input_shape: Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    padding_mode: str = "zeros",
    transposed: bool = False,
    output_padding: int | Sequence[int] = 0,
) -> Tensor:
    """Dense matrix A of the linear map x -> conv2d(x, weight) (or conv_transpose2d).

    ``A @ x.flatten() == conv(x[None]).flatten()`` for one input x of shape ``input_shape``
    = (C, H, W). Built by pushing the identity basis through the convolution, so it costs
    C*H*W convolutions: for teaching and tests on small sizes only.
    """
    spec = _conv_spec(
        weight, input_shape, stride, padding, padding_mode, transposed, output_padding
    )
    n = math.prod(spec.input_shape)
    if n > 16384:
        raise ValueError(f"input_shape {tuple(input_shape)} gives {n} columns; keep C*H*W <= 16384")
    basis = torch.eye(n, dtype=weight.dtype, device=weight.device).reshape(n, *spec.input_shape)
    with torch.no_grad():
        out = _apply(spec, basis)
    return out.reshape(n, -1).t().contiguous()


def conv_operator_norm(
    weight: Tensor,
    input_shape: Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    transposed: bool = False,
    n_iters: int = 50,
    padding_mode: str = "zeros",
    output_padding: int | Sequence[int] = 0,
    tol: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """True operator norm of the convolution on inputs of shape ``input_shape`` = (C, H, W).

    Power iteration on A^T A, with A the convolution (``F.conv2d`` or ``F.conv_transpose2d``
    with the given stride / padding / padding_mode) and A^T its adjoint, obtained from autograd
    (``torch.func.vjp``; for a linear map the vector-Jacobian product *is* the adjoint, the
    transposed convolution with the right output padding). Returns a detached 0-dim tensor.

    The estimate ||A x|| / ||x|| is a lower bound that increases towards sigma. Convolutions
    have many singular values close to the top one, so convergence is slow: for a random
    64-channel 3x3 conv on 16x16 inputs (circular padding, checked against the FFT) the default
    50 iterations were 0.8 % low, 200 iterations 0.2 %, 1000 iterations 4e-7. Raise ``n_iters``
    or set ``tol`` (stop when the relative change of the estimate is below it) as needed.
    """
    spec = _conv_spec(
        weight, input_shape, stride, padding, padding_mode, transposed, output_padding
    )
    check_int("n_iters", n_iters)
    if tol is not None:
        check_positive("tol", tol, "None or a positive number")
    w = spec.weight.detach()
    spec = spec._replace(weight=w)
    x = torch.randn((1, *spec.input_shape), generator=generator, dtype=w.dtype, device=w.device)
    x = x / torch.linalg.vector_norm(x)
    with torch.enable_grad():  # vjp needs autograd even if the caller is under no_grad
        _, adjoint = torch.func.vjp(lambda z: _apply(spec, z), torch.zeros_like(x))
    sigma = torch.zeros((), dtype=w.dtype, device=w.device)
    for _ in range(n_iters):
        with torch.no_grad():
            y = _apply(spec, x)
            new_sigma = torch.linalg.vector_norm(y)
        if not bool(new_sigma > 0):
            return new_sigma  # A x = 0 for a unit x only happens here if the weight is zero
        with torch.enable_grad():
            (x_next,) = adjoint(y)
        x = x_next.detach()
        x = x / torch.linalg.vector_norm(x)
        done = tol is not None and bool(abs(new_sigma - sigma) <= tol * new_sigma)
        sigma = new_sigma
        if done:
            break
    with torch.no_grad():
        return torch.linalg.vector_norm(_apply(spec, x))


def conv_operator_norm_fft(weight: Tensor, input_size: int | Sequence[int]) -> Tensor:
    """Operator norm of the *circular* stride-1 convolution on n x n inputs (Sedghi et al. 2019).

    A circular convolution is diagonalised by the 2-D DFT: its singular values are those of the
    (out x in) matrices ``K(f) = fft2(weight, s=(n, n))[:, :, f]`` over all n*n frequencies f.
    The operator norm is the largest of them. Equals the SVD of
    ``conv_to_dense(weight, (in, n, n), padding=(k-1)//2, padding_mode="circular")`` for odd k.
    ``input_size`` is n or (h, w); each must be at least the kernel size (a larger kernel would
    wrap around the input onto itself).
    """
    _check_kernel(weight)
    h, w = check_pair("input_size", input_size, 1)
    kh, kw = weight.shape[-2:]
    if kh > h or kw > w:
        raise ValueError(f"input_size {(h, w)} must be at least the kernel size {(kh, kw)}")
    work = weight.detach()
    if work.dtype not in (torch.float32, torch.float64):
        work = work.float()
    coeffs = torch.fft.fft2(work, s=(h, w))  # (out, in, h, w), complex
    per_freq = torch.linalg.matrix_norm(coeffs.permute(2, 3, 0, 1), ord=2)  # (h, w)
    return per_freq.max().to(weight.dtype)


def reshaped_norm_bounds(
    weight: Tensor, stride: int | Sequence[int] = 1, transposed: bool = False
) -> tuple[float, float]:
    """(lower, upper) bounds on a conv layer's operator norm from reshaped-kernel sigmas.

    Conv2d: ``(s0, sqrt(ceil(kh/sh) * ceil(kw/sw)) * s0)`` with s0 the sigma SN uses (dim=0).
    ConvTranspose2d (``transposed=True``): with s0, s1 the sigmas of the dim-0 and dim-1 (SN's)
    reshapes, lower ``max(s0, s1)`` for stride 1 and ``s0`` otherwise, upper
    ``min(sqrt(kh*kw) * s1, sqrt(ceil(kh/sh) * ceil(kw/sw)) * s0)``.
    The lower bound needs one output pixel whose window lies inside the real input, and
    circular padding needs 2p <= k - 1 (see the module docstring for both).
    """
    _check_kernel(weight)
    sh, sw = check_pair("stride", stride, 1)
    kh, kw = weight.shape[-2:]
    factor = math.sqrt(math.ceil(kh / sh) * math.ceil(kw / sw))
    s0 = float(spectral_norm_exact(reshape_weight_to_matrix(weight, dim=0)))
    if not transposed:
        return s0, factor * s0
    s1 = float(spectral_norm_exact(reshape_weight_to_matrix(weight, dim=1)))
    lower = max(s0, s1) if (sh, sw) == (1, 1) else s0
    return lower, min(math.sqrt(kh * kw) * s1, factor * s0)


def has_full_window(
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int],
    padding: int | Sequence[int],
    input_size: int | Sequence[int],
) -> bool:
    """Does some output pixel of a conv read a whole kernel window of real (unpadded) input?

    The condition under which the reshaped-kernel sigma is a lower bound on the operator norm
    with zero padding (:func:`reshaped_norm_bounds`): per axis, some window
    ``[i*s - p, i*s - p + k)`` lies inside ``[0, n)``.
    """
    axes = [check_pair(name, value, minimum) for name, value, minimum in
            [("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0),
             ("input_size", input_size, 1)]]

    def fits(k: int, s: int, p: int, n: int) -> bool:
        n_out = (n + 2 * p - k) // s + 1
        return any(0 <= i * s - p and i * s - p + k <= n for i in range(n_out))

    return all(fits(*axis) for axis in zip(*axes, strict=True))


# --------------------------------------------------------------------------- experiments


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
    (the exercise checks were written with those draws). ``shape`` defaults to (r, r) for r
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
    _check_matrix(W0, "W0")
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


def time_sigma_methods(
    shapes: Sequence[tuple[int, int]],
    repeats: int = 7,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
    methods: Sequence[str] = ("svdvals", "exact", "svd", "power_step", "power_iteration"),
    min_time: float = 0.05,
) -> list[dict[str, float]]:
    """Median seconds per call of exact sigmas (SVD) and of one power iteration, per shape.

    Timings use the standard library's ``timeit`` and are interleaved: every repeat measures
    every shape and method once, so background load hits all of them alike; each sample loops
    a method for at least ``min_time`` seconds. Methods: ``svdvals`` (torch.linalg.svdvals on W
    as stored), ``exact`` (:func:`spectral_norm_exact`, which uses the tall orientation),
    ``svd`` (full torch.linalg.svd), ``power_step`` (one bare iteration: two mat-vecs and two
    normalizations, what SN adds per training step) and ``power_iteration`` (this module's
    function, with its input checks). Returns one dict per shape with the medians and, when
    both are timed, ``ratio = exact / power_step``.
    """
    import statistics
    import timeit

    check_int("repeats", repeats)
    check_number("min_time", min_time, 0, finite=False)
    shapes = [check_pair("shapes", tuple(s), 1) for s in shapes]
    all_stmts = {
        "svdvals": "torch.linalg.svdvals(W)",
        "exact": "spectral_norm_exact(W)",
        "svd": "torch.linalg.svd(W, full_matrices=False)",
        "power_step": "v = F.normalize(W.t() @ u, dim=0); F.normalize(W @ v, dim=0)",
        "power_iteration": "power_iteration(W, u)",
    }
    unknown = [name for name in methods if name not in all_stmts]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {tuple(all_stmts)}; got {methods}")
    stmts = {name: all_stmts[name] for name in methods}
    timers: list[list[tuple[str, timeit.Timer, int]]] = []
    for m, n in shapes:
        env = {
            "torch": torch,
            "F": F,
            "W": torch.randn(m, n, generator=generator, dtype=dtype),
            "u": torch.randn(m, generator=generator, dtype=dtype),
            "power_iteration": power_iteration,
            "spectral_norm_exact": spectral_norm_exact,
        }
        row = []
        for name, stmt in stmts.items():
            timer = timeit.Timer(stmt, globals=env)
            timer.timeit(1)  # warm-up (lazy initialisation, caches)
            once = max(timer.timeit(1), 1e-7)
            row.append((name, timer, max(1, math.ceil(min_time / once))))
        timers.append(row)
    samples: list[dict[str, list[float]]] = [{name: [] for name in stmts} for _ in shapes]
    for _ in range(repeats):
        for i, row in enumerate(timers):
            for name, timer, number in row:
                samples[i][name].append(timer.timeit(number) / number)
    out = []
    for (m, n), sample in zip(shapes, samples, strict=True):
        row_out: dict[str, float] = {"m": m, "n": n}
        row_out.update({name: statistics.median(values) for name, values in sample.items()})
        if "exact" in row_out and "power_step" in row_out:
            row_out["ratio"] = row_out["exact"] / row_out["power_step"]
        out.append(row_out)
    return out
