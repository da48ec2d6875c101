"""Checks of exercise 02, part 2.4: the operator norm of a convolution by power iteration
through the convolution and its transpose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from sngan_edu.course.exercises.core import as_float, close, exercise_check, new_checker, seeded


def reference_conv_operator_norm(weight: torch.Tensor, input_shape: tuple[int, int, int],
                                 stride: int, padding: int) -> float:
    """sigma of the convolution as a linear map on (C, H, W) inputs: SVD of its dense matrix."""
    from sngan_edu.conv_norm import conv_to_dense

    dense = conv_to_dense(weight.double(), input_shape, stride=stride, padding=padding)
    return float(torch.linalg.svdvals(dense)[0])


@exercise_check
def check_conv_operator_norm(conv_operator_norm: Callable[..., Any]) -> None:
    """Check ``conv_operator_norm(weight, input_shape, stride, padding, n_iters) -> float``.

    The largest singular value of x -> conv2d(x, weight, stride, padding) on inputs of shape
    ``input_shape`` = (C, H, W), by power iteration through the convolution and its adjoint
    (the transposed convolution). Compared with the SVD of the convolution's dense matrix.
    """
    c = new_checker("conv_operator_norm", conv_operator_norm)
    g = seeded(47)

    def case(weight: torch.Tensor, shape: tuple[int, int, int], stride: int, padding: int,
             rtol: float = 2e-3) -> None:
        exact = reference_conv_operator_norm(weight, shape, stride, padding)
        reshaped = float(torch.linalg.svdvals(weight.double().flatten(1))[0])
        value = as_float(c, c.call(weight.clone(), shape, stride, padding, 500), "sigma")
        if close(value, exact, rtol=rtol):
            return
        if close(value, reshaped, rtol=1e-3):
            hint = ("that is the norm of the kernel reshaped to a matrix (out x in*kh*kw), the "
                    "number SN divides by. The convolution slides that kernel over the image, "
                    "overlapping itself: its operator norm differs. Run the power iteration "
                    "on the convolution itself.")
        elif close(value, exact ** 2, rtol=1e-2):
            hint = ("you returned sigma squared: one round trip through the convolution and "
                    "its transpose multiplies by sigma^2; sigma is the norm of the convolution "
                    "of a unit input.")
        elif close(value, float(torch.linalg.vector_norm(weight.double())), rtol=1e-3):
            hint = "that is the Frobenius norm of the kernel, not the convolution's sigma."
        elif value < exact:
            hint = ("your estimate is too small: is the map you iterate the convolution's "
                    "A^T A (the transposed convolution with the SAME stride and padding, its "
                    "output the shape of the input)? And did you run all n_iters iterations?")
        else:
            hint = ("power iteration: x <- A^T A x / |A^T A x| with A the convolution and A^T "
                    "its transpose (same stride and padding); then sigma = |A x| for the unit "
                    "x.")
        c.fail(f"{exact:.5g} (SVD of the dense matrix)", f"{value:.5g}", hint)

    with c.step("a 1x1 convolution: the norm of its kernel as a matrix"):
        case(torch.randn(3, 2, 1, 1, generator=g), (2, 5, 5), 1, 0)

    with c.step("a 3x3 convolution with padding 1 on 6x6 inputs (larger than the reshaped norm)"):
        case(torch.randn(2, 2, 3, 3, generator=g), (2, 6, 6), 1, 1)

    with c.step("without padding, 3x3 on 5x5 inputs"):
        case(torch.randn(3, 1, 3, 3, generator=g), (1, 5, 5), 1, 0)

    with c.step("stride 2 (the transpose's output must still have the input's shape)"):
        case(torch.randn(2, 2, 3, 3, generator=g), (2, 8, 8), 2, 1)
        case(torch.randn(2, 1, 4, 4, generator=g), (1, 8, 8), 2, 1)
    c.done()
