"""True operator norm of a convolution: power iteration, FFT, and the reshaped-kernel bounds.

References: F.conv2d / F.conv_transpose2d applied directly, torch.nn.grad.conv2d_input (the
adjoint), NumPy's SVD of the dense matrix, and closed-form cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sngan_edu.conv_norm import (
    conv_operator_norm,
    conv_operator_norm_fft,
    conv_to_dense,
    has_full_window,
    reshaped_norm_bounds,
)
from sngan_edu.spectral import reshape_weight_to_matrix, spectral_norm_exact


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and immune to other processes on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def kernel(out_c, in_c, kh, kw=None, seed=0, dtype=torch.float64):
    return torch.randn(out_c, in_c, kh, kw or kh, generator=gen(seed), dtype=dtype)


def svd_norm(A: torch.Tensor) -> float:
    return float(np.linalg.svd(A.double().numpy(), compute_uv=False)[0])


def reshaped_sigma(w, transposed=False):
    return float(spectral_norm_exact(reshape_weight_to_matrix(w, dim=1 if transposed else 0)))


# (out, in, k, H, W, stride, padding, padding_mode, transposed, output_padding)
CONFIGS = [
    (4, 3, 3, 6, 6, 1, 1, "zeros", False, 0),
    (4, 3, 3, 6, 5, 1, 0, "zeros", False, 0),
    (3, 2, 4, 8, 8, 2, 1, "zeros", False, 0),  # the paper's 4x4 stride-2 D layers
    (3, 2, 3, 7, 7, 2, 1, "zeros", False, 0),
    (2, 3, 3, 5, 5, 1, 1, "circular", False, 0),
    (2, 3, 2, 4, 4, 1, 0, "circular", False, 0),
    (3, 2, 4, 4, 4, 2, 1, "zeros", True, 0),  # the paper's G deconvs: (in, out, 4, 4), s2, p1
    (3, 2, 3, 4, 3, 2, 1, "zeros", True, 1),
    (2, 2, 3, 5, 5, 1, 1, "zeros", True, 0),
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_dense_matrix_is_the_convolution(cfg):
    o, i, k, h, w_, s, p, mode, tr, op = cfg
    w = kernel(o, i, k)
    c = o if tr else i
    A = conv_to_dense(w, (c, h, w_), s, p, mode, tr, op)
    x = torch.randn(2, c, h, w_, generator=gen(1), dtype=torch.float64)
    if tr:
        y = F.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op)
    elif mode == "circular":
        y = F.conv2d(F.pad(x, (p, p, p, p), mode="circular"), w, stride=s)
    else:
        y = F.conv2d(x, w, stride=s, padding=p)
    torch.testing.assert_close(x.flatten(1) @ A.t(), y.flatten(1))


def test_dense_transpose_is_the_adjoint_conv():
    """A^T is the gradient of conv2d w.r.t. its input (torch.nn.grad.conv2d_input)."""
    w = kernel(3, 2, 4)
    A = conv_to_dense(w, (2, 9, 9), stride=2, padding=1)
    y = torch.randn(1, 3, 4, 4, generator=gen(2), dtype=torch.float64)
    adj = torch.nn.grad.conv2d_input((1, 2, 9, 9), w, y, stride=2, padding=1)
    torch.testing.assert_close(A.t() @ y.flatten(), adj.flatten())


def test_transposed_conv_is_the_adjoint_of_the_conv():
    w = kernel(3, 2, 4)  # conv2d: 2 -> 3 channels; conv_transpose2d with w: 3 -> 2 channels
    A = conv_to_dense(w, (2, 8, 8), stride=2, padding=1)
    T = conv_to_dense(w, (3, 4, 4), stride=2, padding=1, transposed=True)
    torch.testing.assert_close(T, A.t())


@pytest.mark.parametrize("cfg", CONFIGS)
def test_power_iteration_norm_matches_dense_svd(cfg):
    o, i, k, h, w_, s, p, mode, tr, op = cfg
    w = kernel(o, i, k, seed=3)
    c = o if tr else i
    exact = svd_norm(conv_to_dense(w, (c, h, w_), s, p, mode, tr, op))
    est = conv_operator_norm(
        w,
        (c, h, w_),
        s,
        p,
        tr,
        n_iters=5000,
        padding_mode=mode,
        output_padding=op,
        tol=1e-14,
        generator=gen(0),
    )
    assert est.ndim == 0 and est.dtype == torch.float64
    assert float(est) == pytest.approx(exact, rel=1e-6)
    assert float(est) <= exact * (1 + 1e-12)  # a Rayleigh-quotient estimate never overshoots


def test_power_iteration_is_a_lower_bound_that_improves():
    w = kernel(4, 3, 3, seed=4)
    exact = svd_norm(conv_to_dense(w, (3, 8, 8), padding=1))
    estimates = [
        float(conv_operator_norm(w, (3, 8, 8), padding=1, n_iters=n, generator=gen(0)))
        for n in (1, 5, 50)
    ]
    assert estimates == sorted(estimates)
    assert estimates[-1] <= exact * (1 + 1e-12) and estimates[0] < exact


def test_power_iteration_float32_and_grad_and_no_grad():
    w = kernel(4, 3, 3, seed=5, dtype=torch.float32).requires_grad_()
    exact = svd_norm(conv_to_dense(w.detach(), (3, 6, 6), padding=1))
    est = conv_operator_norm(w, (3, 6, 6), padding=1, n_iters=2000, tol=1e-7, generator=gen(0))
    assert est.dtype == torch.float32 and not est.requires_grad
    assert float(est) == pytest.approx(exact, rel=1e-4)
    with torch.no_grad():
        again = conv_operator_norm(
            w, (3, 6, 6), padding=1, n_iters=2000, tol=1e-7, generator=gen(0)
        )
    assert float(again) == pytest.approx(float(est), rel=1e-6)


def test_zero_kernel_and_dead_taps_give_zero():
    assert float(conv_operator_norm(torch.zeros(2, 2, 3, 3), (2, 4, 4), padding=1)) == 0.0
    # a 1x1 input with padding 1 only meets the centre tap; zero it and the operator is zero
    w = kernel(2, 2, 3, seed=6)
    w[:, :, 1, 1] = 0
    assert float(conv_operator_norm(w, (2, 1, 1), padding=1, generator=gen(0))) == 0.0


# ---------------------------------------------------------------------- FFT (Sedghi et al.)


@pytest.mark.parametrize("k, h, w_", [(3, 5, 5), (3, 6, 4), (1, 3, 3), (5, 5, 7)])
def test_fft_matches_dense_circular_svd_odd_kernels(k, h, w_):
    w = kernel(3, 2, k, seed=k)
    p = (k - 1) // 2
    A = conv_to_dense(w, (2, h, w_), padding=p, padding_mode="circular")
    assert A.shape == (3 * h * w_, 2 * h * w_)  # circular, "same" size: a full circulant map
    assert float(conv_operator_norm_fft(w, (h, w_))) == pytest.approx(svd_norm(A), rel=1e-10)


def test_fft_matches_dense_circular_svd_even_kernel():
    """Even kernels: circular padding k-1 on one side gives the same-size circulant map."""
    w = kernel(2, 3, 2, seed=8)
    n = 4
    basis = torch.eye(3 * n * n, dtype=torch.float64).reshape(-1, 3, n, n)
    A = F.conv2d(F.pad(basis, (0, 1, 0, 1), mode="circular"), w).reshape(len(basis), -1).t()
    assert float(conv_operator_norm_fft(w, n)) == pytest.approx(svd_norm(A), rel=1e-10)


def test_fft_agrees_with_power_iteration_on_a_larger_input():
    w = kernel(8, 4, 3, seed=9)
    fft = float(conv_operator_norm_fft(w, 16))
    pi = float(
        conv_operator_norm(
            w,
            (4, 16, 16),
            padding=1,
            padding_mode="circular",
            n_iters=5000,
            tol=1e-13,
            generator=gen(0),
        )
    )
    assert pi == pytest.approx(fft, rel=1e-6)


def test_fft_float32():
    w = kernel(3, 3, 3, seed=10)
    got = conv_operator_norm_fft(w.float(), 6)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(float(conv_operator_norm_fft(w, 6)), rel=1e-5)


# ---------------------------------------------------------------------- reshaped sigma vs truth


def test_equal_taps_attain_the_sqrt_kh_kw_upper_bound():
    """All kh*kw taps equal to one matrix B: the reshaped matrix is [B ... B], sigma sqrt(k)||B||;
    at frequency 0 the conv is (kh*kw) B, so the ratio is exactly sqrt(kh*kw)."""
    B = torch.randn(3, 2, generator=gen(11), dtype=torch.float64)
    for kh, kw in [(3, 3), (4, 4), (3, 1)]:
        w = B[:, :, None, None].expand(3, 2, kh, kw).contiguous()
        ratio = float(conv_operator_norm_fft(w, 8)) / reshaped_sigma(w)
        assert ratio == pytest.approx(math.sqrt(kh * kw), rel=1e-12)
        lower, upper = reshaped_norm_bounds(w)
        assert float(conv_operator_norm_fft(w, 8)) == pytest.approx(upper, rel=1e-12)
        assert lower == pytest.approx(reshaped_sigma(w), rel=1e-12)


def test_single_tap_kernel_attains_the_lower_bound():
    """One nonzero tap: the conv is a shifted 1x1 conv, so the norm equals the reshaped sigma."""
    w = torch.zeros(3, 2, 3, 3, dtype=torch.float64)
    w[:, :, 0, 2] = torch.randn(3, 2, generator=gen(12), dtype=torch.float64)
    true = svd_norm(conv_to_dense(w, (2, 5, 5), padding=1))
    assert true == pytest.approx(reshaped_sigma(w), rel=1e-12)


def test_has_full_window_per_axis_and_its_errors():
    assert has_full_window(3, 1, 1, 32) and has_full_window(4, 2, 1, 6)
    assert not has_full_window(4, 2, 1, 4)  # every window of a 4x4 input reads padding
    assert not has_full_window(3, 1, 1, 2) and not has_full_window(3, 1, 1, 1)
    assert has_full_window((1, 3), (1, 1), (0, 1), (1, 5))  # checked axis by axis
    assert not has_full_window((3, 3), 1, 1, (5, 2))  # one axis without a full window
    with pytest.raises(ValueError, match="padding"):
        has_full_window(3, 1, -1, 5)
    with pytest.raises(ValueError, match="stride"):
        has_full_window(3, 0, 1, 5)


BOUND_CASES = [  # (k, stride, padding, n, padding_mode)
    (3, 1, 1, 5, "zeros"),
    (3, 1, 0, 6, "zeros"),
    (4, 2, 1, 6, "zeros"),
    (4, 2, 1, 4, "zeros"),  # no full window: lower bound not guaranteed
    (3, 2, 1, 5, "zeros"),
    (3, 3, 1, 4, "zeros"),  # no full window
    (3, 1, 1, 1, "zeros"),  # 1x1 input
    (3, 1, 1, 4, "circular"),
    (2, 1, 0, 5, "circular"),
    (5, 1, 2, 6, "circular"),
]


@pytest.mark.parametrize("case", BOUND_CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reshaped_sigma_bounds_hold_where_documented(case, seed):
    k, s, p, n, mode = case
    w = kernel(3, 2, k, seed=seed)
    true = svd_norm(conv_to_dense(w, (2, n, n), s, p, mode))
    sigma = reshaped_sigma(w)
    lower, upper = reshaped_norm_bounds(w, stride=s)
    assert lower == pytest.approx(sigma)
    assert upper == pytest.approx(math.sqrt(math.ceil(k / s) ** 2) * sigma)
    assert true <= upper * (1 + 1e-12)
    if mode == "circular" or has_full_window(k, s, p, n):
        assert true >= lower * (1 - 1e-12)


def test_lower_bound_fails_without_a_full_window():
    """Zero padding on a 1x1 input: only the centre tap acts, the norm can be far below sigma."""
    w = kernel(3, 2, 3, seed=13)
    true = svd_norm(conv_to_dense(w, (2, 1, 1), padding=1))
    assert true == pytest.approx(svd_norm(w[:, :, 1, 1]), rel=1e-12)
    assert true < reshaped_sigma(w)


def test_upper_bound_needs_no_wraparound_for_circular_padding():
    """Circular padding larger than (k-1)/2 reads a pixel in more windows: the bound can fail."""
    B = torch.randn(3, 2, generator=gen(14), dtype=torch.float64)
    w = B[:, :, None, None].expand(3, 2, 2, 2).contiguous()
    true = svd_norm(conv_to_dense(w, (2, 4, 4), padding=1, padding_mode="circular"))
    assert true > reshaped_norm_bounds(w)[1] * 1.1


@pytest.mark.parametrize(
    "k, s, p, n, op", [(4, 2, 1, 4, 0), (3, 1, 1, 5, 0), (3, 2, 1, 4, 1), (2, 2, 0, 3, 0)]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transposed_bounds(k, s, p, n, op, seed):
    w = kernel(3, 2, k, seed=seed)  # ConvTranspose2d(3, 2, k): weight (in=3, out=2, k, k)
    true = svd_norm(conv_to_dense(w, (3, n, n), s, p, transposed=True, output_padding=op))
    lower, upper = reshaped_norm_bounds(w, stride=s, transposed=True)
    s0, s1 = reshaped_sigma(w), reshaped_sigma(w, transposed=True)
    assert upper <= math.sqrt(k * k) * s1 * (1 + 1e-12)
    assert lower * (1 - 1e-12) <= true <= upper * (1 + 1e-12)
    if s == 1:
        assert lower == pytest.approx(max(s0, s1))


def test_transposed_stride_ge_kernel_is_block_diagonal():
    """Stride >= kernel: the transposed conv has norm s0 (dim-0 reshape), not SN's s1 (dim 1);
    s0 can be above s1 (by up to sqrt(kh*kw)) or below it."""
    for in_c, out_c, above in [(1, 3, True), (3, 1, False)]:
        w = kernel(in_c, out_c, 2, seed=15)
        true = svd_norm(conv_to_dense(w, (in_c, 3, 3), stride=2, transposed=True))
        s0, s1 = reshaped_sigma(w), reshaped_sigma(w, transposed=True)
        assert true == pytest.approx(s0, rel=1e-12)
        assert (true > 1.05 * s1) if above else (true < 0.95 * s1)


def test_paper_discriminator_layers_within_bounds():
    """The paper's D on 32x32 inputs (smaller channel counts): true norm between the bounds."""
    layers = [(3, 8, 3, 1, 1, 32), (8, 8, 4, 2, 1, 32), (8, 16, 3, 1, 1, 16)]
    for cin, cout, k, s, p, n in layers:
        w = torch.randn(cout, cin, k, k, generator=gen(cin + k), dtype=torch.float64)
        true = float(
            conv_operator_norm(w, (cin, n, n), s, p, n_iters=500, tol=1e-10, generator=gen(0))
        )
        lower, upper = reshaped_norm_bounds(w, stride=s)
        assert lower * (1 - 1e-9) <= true <= upper


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight": torch.randn(3, 3, 3)}, "4-D conv kernel"),
        ({"weight": torch.zeros(0, 2, 3, 3)}, "empty"),
        ({"weight": torch.ones(3, 2, 3, 3, dtype=torch.int64)}, "floating-point"),
        ({"weight": torch.full((3, 2, 3, 3), float("nan"))}, "NaN or Inf"),
        ({"input_shape": (3, 6, 6)}, "input_shape\\[0\\] = 3 must equal weight.shape\\[1\\] = 2"),
        ({"input_shape": (2, 6)}, "input_shape must be \\(C, H, W\\)"),
        ({"input_shape": (2, 0, 6)}, "positive"),
        ({"stride": 0}, "stride"),
        ({"padding": -1}, "padding"),
        ({"padding_mode": "reflect"}, "padding_mode must be 'zeros' or 'circular'"),
        ({"transposed": True, "input_shape": (3, 4, 4), "padding_mode": "circular"}, "circular"),
        ({"transposed": True, "input_shape": (3, 4, 4), "output_padding": 1}, "output_padding"),
        ({"input_shape": (2, 1, 1)}, "larger than the padded input"),
        ({"n_iters": 0}, "n_iters"),
        ({"tol": -1.0}, "tol"),
    ],
)
def test_conv_operator_norm_rejects_bad_input(kwargs, match):
    args = {"weight": torch.randn(3, 2, 3, 3), "input_shape": (2, 6, 6)} | kwargs
    with pytest.raises(ValueError, match=match):
        conv_operator_norm(**args)


def test_conv_to_dense_rejects_large_inputs():
    with pytest.raises(ValueError, match="C\\*H\\*W <= 16384"):
        conv_to_dense(torch.randn(2, 3, 3, 3), (3, 128, 128))


@pytest.mark.parametrize(
    "weight, size, match",
    [
        (torch.randn(3, 3), 5, "4-D conv kernel"),
        (torch.randn(2, 2, 5, 5), 4, "at least the kernel size"),
        (torch.randn(2, 2, 3, 3), 0, "input_size"),
        (torch.full((2, 2, 3, 3), float("inf")), 5, "NaN or Inf"),
    ],
)
def test_fft_rejects_bad_input(weight, size, match):
    with pytest.raises(ValueError, match=match):
        conv_operator_norm_fft(weight, size)


def test_lower_bound_fails_for_a_4x4_stride_2_conv_on_a_4x4_input():
    """Notebook 03's layer: 4x4 kernel, stride 2, padding 1, 4x4 input. Every window overlaps the
    padding, so the reshaped sigma is no lower bound: the true norm falls below it for some
    kernels (and lies above for others)."""
    ratios = []
    for seed in range(8):
        w = torch.randn(8, 4, 4, 4, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
        assert not has_full_window(4, 2, 1, 4)
        true = svd_norm(conv_to_dense(w, (4, 4, 4), stride=2, padding=1))
        ratios.append(true / reshaped_sigma(w))
    assert min(ratios) < 0.99 and max(ratios) > 1.01
    # With a larger input some window is full, and the bound holds again for the same kernels.
    for seed in range(8):
        w = torch.randn(8, 4, 4, 4, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
        assert has_full_window(4, 2, 1, 6)
        true = svd_norm(conv_to_dense(w, (4, 6, 6), stride=2, padding=1))
        assert true >= reshaped_sigma(w) * (1 - 1e-12)
