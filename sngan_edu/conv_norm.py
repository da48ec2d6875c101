"""The operator norm of a 2-D convolution, and how it relates to the sigma SN normalizes.

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

from sngan_edu.checks import check_int, check_pair, check_positive
from sngan_edu.spectral import check_real, reshape_weight_to_matrix, spectral_norm_exact

__all__ = [
    "conv_to_dense",
    "conv_operator_norm",
    "conv_operator_norm_fft",
    "reshaped_norm_bounds",
    "has_full_window",
]


def _check_kernel(weight: Tensor, layout: str = "(out, in, kh, kw)") -> None:
    """Raise ValueError unless ``weight`` is a finite, non-empty, real floating-point 4-D kernel."""
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a 4-D conv kernel {layout}; got {shape}")
    if weight.numel() == 0:
        raise ValueError(f"weight must not be empty; got shape {tuple(weight.shape)}")
    check_real(weight, "weight")


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
