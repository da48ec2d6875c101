"""Checks of exercise 02: per-sample gradient norms (2.1) and the layer-wise bound (2.2)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sngan_edu.course.exercises.core import (
    _fmt,
    as_float,
    close,
    exercise_check,
    new_checker,
    require_unchanged,
    seeded,
    snapshot,
    tensor_close,
)

_UNCHANGED_MODEL_HINT = (
    "a measurement must not change what it measures: do not write into the model's weights or "
    "buffers, and if you switch it to eval() mode, switch it back (model.train(was_training))."
)


def reference_gradient_norms(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample input-gradient norms by autograd, one sample at a time, on a copy of ``D``."""
    D = copy.deepcopy(D)
    norms = []
    for sample in x:
        point = sample.unsqueeze(0).clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(point).sum(), point)
        norms.append(grad.flatten().norm())
    return torch.stack(norms).detach()


@exercise_check
def check_gradient_norms(gradient_norms: Callable[..., Any]) -> None:
    """Check ``gradient_norms(D, x) -> tensor (batch,)`` of ``||grad_x D(x_i)||_2`` per sample."""
    c = new_checker("gradient_norms", gradient_norms)
    g = seeded(5)

    c.start("a linear critic D(x) = w.x + b has gradient norm |w| at every point")
    linear = nn.Linear(3, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[3.0, -4.0, 12.0]]))
    x = torch.randn(5, 3, generator=g)
    x_before, model_before = snapshot(x), snapshot(linear)
    expected = torch.full((5,), 13.0)
    out = c.call(linear, x)
    if not isinstance(out, torch.Tensor) or out.shape != (5,):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        c.fail("a tensor of shape (5,), one norm per sample", f"{_fmt(out)} (shape {shape})",
               "one norm per sample: each sample's gradient has the sample's shape; take its "
               "norm over all of those dimensions together, not over the batch.")
    if not tensor_close(out, expected):
        first = float(out.detach()[0])
        if close(first / 13.0, 1 / 5, rtol=1e-3):
            hint = ("the norms are divided by the batch size: differentiate D(x).sum(), not "
                    ".mean(); each output depends only on its own sample.")
        elif close(first, 169.0, rtol=1e-3):
            hint = "you returned squared norms; take the square root (.norm())."
        else:
            hint = ("differentiate D(x).sum() with respect to x (torch.autograd.grad), "
                    "not the weights.")
        c.fail(_fmt(expected), _fmt(out), hint)
    require_unchanged(c, x_before, x, "x", "work on a copy: x = x.detach().requires_grad_(True).")
    require_unchanged(c, model_before, linear, "the model", _UNCHANGED_MODEL_HINT)
    c.ok()

    c.start("matches autograd, sample by sample, for a small MLP")
    mlp = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    with torch.no_grad():
        for p in mlp.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    x = torch.randn(6, 4, generator=g)
    ref = reference_gradient_norms(mlp, x)
    before = snapshot(mlp)
    out = c.call(mlp, x.clone())
    if not tensor_close(out, ref):
        c.fail(_fmt(ref), _fmt(out),
               "compute the gradient with respect to the INPUT x at each sample.")
    require_unchanged(c, before, mlp, "the model", _UNCHANGED_MODEL_HINT)
    c.ok()

    c.start("handles image batches (norm over every non-batch dimension)")
    conv = nn.Sequential(nn.Conv2d(2, 3, 3), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(12, 1))
    x = torch.randn(3, 2, 4, 4, generator=g)
    ref = reference_gradient_norms(conv, x)
    before = snapshot(conv)
    out = c.call(conv, x.clone())
    if not tensor_close(out, ref):
        c.fail(_fmt(ref), _fmt(out), "an image's gradient has several dimensions (channels, "
               "height, width): its norm is taken over all of them at once, one norm per "
               "image.")
    require_unchanged(c, before, conv, "the model", _UNCHANGED_MODEL_HINT)
    c.ok()
    c.done()


class _Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x))


class _NestedCritic(nn.Module):
    """Linear layers at three depths: a top-level stem and head, blocks in a ModuleList."""

    def __init__(self, g: torch.Generator):
        super().__init__()
        self.stem = nn.Linear(3, 6)
        self.blocks = nn.ModuleList([_Block(6), _Block(6)])
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(6, 1))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def reference_lipschitz_bound(net: nn.Module) -> float:
    """Product of the largest singular values of the Linear weights of ``net`` (by SVD)."""
    return math.prod(float(torch.linalg.svdvals(m.weight.detach().double())[0])
                     for m in net.modules() if isinstance(m, nn.Linear))


@exercise_check
def check_lipschitz_bound(lipschitz_bound: Callable[..., Any]) -> None:
    """Check ``lipschitz_bound(model) -> float``: product of its Linear layers' spectral norms.

    The activations of the models given (ReLU, LeakyReLU, Tanh) are 1-Lipschitz, so the product
    of the layers' largest singular values bounds the Lipschitz constant of the whole model.
    Every reference is computed before the student's function sees the model, and the model
    must come back unchanged.
    """
    c = new_checker("lipschitz_bound", lipschitz_bound)
    g = seeded(7)

    def model(*sizes: int, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(act())
        net = nn.Sequential(*layers)
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        return net

    def measure(net: nn.Module, what: str) -> float:
        before = snapshot(net)
        value = as_float(c, c.call(net), what)
        require_unchanged(c, before, net, "the model", _UNCHANGED_MODEL_HINT)
        return value

    c.start("a single layer: its largest singular value (SVD)")
    single = model(4, 3)
    exact = reference_lipschitz_bound(single)
    fro = float(torch.linalg.matrix_norm(single[0].weight.detach().double()))
    value = measure(single, "bound")
    if not close(value, exact, rtol=1e-3):
        hint = ("that is the Frobenius norm (the default norm of a matrix in torch.linalg), "
                "which is larger than the spectral norm, the largest singular value."
                if close(value, fro, rtol=1e-3)
                else "the spectral norm of a layer is the largest singular value of its weight.")
        c.fail(f"{exact:.4g}", f"{value:.4g}", hint)
    c.ok()

    c.start("a 3-layer ReLU MLP: the product of the layers' spectral norms")
    net = model(5, 8, 8, 1)
    exact = reference_lipschitz_bound(net)
    norms = [float(torch.linalg.svdvals(m.weight.detach().double())[0])
             for m in net.modules() if isinstance(m, nn.Linear)]
    value = measure(net, "bound")
    if not close(value, exact, rtol=1e-3):
        if close(value, sum(norms), rtol=1e-3):
            hint = "you added the norms; the bound for a composition is their PRODUCT."
        elif any(close(value, norm, rtol=1e-3) for norm in norms):
            hint = ("that is one layer's norm: multiply the spectral norms of EVERY nn.Linear "
                    "in model.modules().")
        else:
            hint = "multiply the spectral norms of every nn.Linear in model.modules()."
        c.fail(f"{exact:.4g}", f"{value:.4g}", hint)
    c.ok()

    c.start("nested modules (blocks inside blocks, a ModuleList): every Linear at any depth")
    nested = _NestedCritic(g)
    exact = reference_lipschitz_bound(nested)
    top_level = math.prod(float(torch.linalg.svdvals(m.weight.detach().double())[0])
                          for m in nested.children() if isinstance(m, nn.Linear))
    value = measure(nested, "bound")
    if not close(value, exact, rtol=1e-3):
        if close(value, top_level, rtol=1e-3):
            hint = ("you multiplied only the top-level layers: model.children() lists the "
                    "direct children, so every Linear inside a block or a Sequential was "
                    "skipped. Walk the whole tree of modules.")
        else:
            hint = ("multiply the spectral norms of every nn.Linear of the model, at every "
                    "depth (inside blocks, Sequentials and ModuleLists).")
        c.fail(f"{exact:.4g}", f"{value:.4g}", hint)
    c.ok()

    c.start("the bound is never below a measured gradient norm")
    tanh_net = model(3, 6, 1, act=nn.Tanh)
    exact = reference_lipschitz_bound(tanh_net)
    measured = float(reference_gradient_norms(tanh_net, torch.randn(64, 3, generator=g)).max())
    value = measure(tanh_net, "bound")
    if value < measured * (1 - 1e-5) or not close(value, exact, rtol=1e-3):
        c.fail(f"{exact:.4g} (at least the measured {measured:.4g})",
               f"{value:.4g}", "multiply the spectral norms of every nn.Linear in the model.")
    c.ok()
    c.done()


# --------------------------------------------------------------------------------------------
# 2.3: the gradient penalty of WGAN-GP
# --------------------------------------------------------------------------------------------


def _spread(eps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return eps.reshape(-1, *([1] * (like.dim() - 1)))


def reference_gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                               eps: torch.Tensor, *, batch_norm: bool = False,
                               one_sided: bool = False, squared: bool = True,
                               where: str = "between", reduce: str = "mean",
                               norm_of_square: bool = False, divided: bool = False
                               ) -> torch.Tensor:
    """mean over the batch of (||grad D(x_hat_i)|| - 1)^2, x_hat = eps real + (1 - eps) fake.

    Differentiable with respect to D's parameters (create_graph). The keyword arguments give
    the mistakes the check names: the norm of the whole batch's gradient, a one-sided penalty,
    no square, the penalty at the real or fake points only, a sum, the squared norm, and the
    gradient of D's mean score (norms divided by the batch size).
    """
    if where == "real":
        x = real
    elif where == "fake":
        x = fake
    else:
        x = _spread(eps, real) * real + (1 - _spread(eps, real)) * fake
    x = x.detach().clone().requires_grad_(True)
    scores = D(x)
    out = scores.mean() if divided else scores.sum()
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    norms = grad.flatten().norm().expand(len(x)) if batch_norm else grad.flatten(1).norm(dim=1)
    if norm_of_square:
        norms = norms ** 2
    gap = torch.relu(norms - 1) if one_sided else norms - 1
    terms = gap ** 2 if squared else gap.abs()
    return terms.sum() if reduce == "sum" else terms.mean()


_PENALTY_MISTAKES: tuple[tuple[dict[str, Any], str], ...] = (
    ({"batch_norm": True}, "you took ONE norm of the whole batch's gradient. The penalty asks "
     "each interpolate's own gradient to have norm 1: one norm per sample (over all of that "
     "sample's other dimensions), then the mean over the batch of the squared gaps."),
    ({"one_sided": True}, "that is a one-sided penalty (only norms above 1 are penalized, as in "
     "WGAN-LP). WGAN-GP's penalty is two-sided: norms below 1 are pulled up too."),
    ({"squared": False}, "the gap to 1 is squared in WGAN-GP's penalty, not taken as an "
     "absolute value."),
    ({"norm_of_square": True}, "you used the SQUARED norm of the gradient; the penalty pulls "
     "the norm itself towards 1."),
    ({"where": "real"}, "you penalized the gradient at the real samples. WGAN-GP takes it at "
     "random points on the segments between real and fake samples, a fraction eps of the way "
     "from each fake to its real sample."),
    ({"where": "fake"}, "you penalized the gradient at the fake samples. WGAN-GP takes it at "
     "random points on the segments between real and fake samples, a fraction eps of the way "
     "from each fake to its real sample."),
    ({"reduce": "sum"}, "you summed over the batch: take the mean, so the penalty does not grow "
     "with the batch size."),
    ({"divided": True}, "your gradients are divided by the batch size: differentiate the SUM "
     "of D's scores (each score depends only on its own sample, so the gradient of the sum "
     "holds every sample's own gradient), not their mean."),
)


@exercise_check
def check_gradient_penalty(gradient_penalty: Callable[..., Any]) -> None:
    """Check ``gradient_penalty(D, real, fake, eps) -> tensor``, WGAN-GP's penalty (no lambda).

    ``x_hat_i = eps_i real_i + (1 - eps_i) fake_i`` (``eps`` has one number per sample); the
    result is ``mean_i (||grad_x D(x_hat_i)|| - 1)^2``, a 0-dim tensor that D can be trained on:
    its gradient with respect to D's parameters must be the reference's (the gradient is part
    of the graph). Compared with autograd on a linear critic (known answer), an MLP and a conv
    critic on image batches.
    """
    c = new_checker("gradient_penalty", gradient_penalty)
    g = seeded(43)

    def case(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> None:
        expected = reference_gradient_penalty(D, real, fake, eps)
        params = [p for p in D.parameters()]
        expected_grads = [torch.zeros_like(p) if e is None else e for p, e in zip(
            params, torch.autograd.grad(expected, params, allow_unused=True), strict=True)]
        before = snapshot(D)
        out = c.call(D, real.clone(), fake.clone(), eps.clone())
        require_unchanged(c, before, D, "D", _UNCHANGED_MODEL_HINT)
        value = as_float(c, out, "the penalty")
        expected_value = float(expected.detach())
        if not close(value, expected_value, rtol=1e-4, atol=1e-7):
            hint = next((h for kwargs, h in _PENALTY_MISTAKES
                         if close(value, float(reference_gradient_penalty(
                             D, real, fake, eps, **kwargs).detach()), rtol=1e-4, atol=1e-7)),
                        None)
            c.fail(f"{expected_value:.5g}", f"{value:.5g}", hint or (
                "three steps: the interpolates between each real and fake sample, the gradient "
                "of D's scores with respect to them (one per sample), and the mean of the "
                "squared gaps between each gradient's norm and 1."))
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            c.fail("a tensor D can be trained on (connected to D's parameters)",
                   f"{_fmt(out)}, not connected to D's parameters",
                   "the penalty is part of D's loss, so D's optimizer must be able to "
                   "differentiate it: the gradient you compute must itself be recorded by "
                   "autograd (it is a function of D's weights), not returned as a constant. "
                   "Look at the options of the function that computes it.")
        grads = torch.autograd.grad(out, params, allow_unused=True)
        for p_grad, e_grad in zip(grads, expected_grads, strict=True):
            if p_grad is None and not bool(e_grad.abs().sum() > 0):
                continue  # a bias: the penalty does not depend on it
            if p_grad is None or not tensor_close(p_grad, e_grad, rtol=1e-3, atol=1e-6):
                c.fail("the penalty's gradient with respect to D's parameters",
                       "a different gradient" if p_grad is not None else "none",
                       "compute the penalty from D's own output at the interpolates, with the "
                       "gradient recorded by autograd, and no detached piece in between.")

    c.start("a linear critic D(x) = w.x + b: its gradient is w everywhere, penalty (|w| - 1)^2")
    linear = nn.Linear(3, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[2.0, -1.0, 2.0]]))  # |w| = 3: penalty 4
    case(linear, torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g),
         torch.rand(6, generator=g))
    c.ok()

    c.start("an MLP critic on 2-D points: equals autograd's penalty, and D can learn from it")
    mlp = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    with torch.no_grad():
        for p in mlp.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    case(mlp, torch.randn(10, 2, generator=g), torch.randn(10, 2, generator=g) + 2,
         torch.rand(10, generator=g))
    c.ok()

    c.start("a conv critic on image batches: eps spreads over each image, one norm per image")
    conv = nn.Sequential(nn.Conv2d(1, 3, 3), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(12, 1))
    case(conv, torch.randn(4, 1, 4, 4, generator=g), torch.randn(4, 1, 4, 4, generator=g),
         torch.rand(4, generator=g))
    c.ok()
    c.done()


# --------------------------------------------------------------------------------------------
# 2.4: the operator norm of a convolution by power iteration
# --------------------------------------------------------------------------------------------


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

    c.start("a 1x1 convolution: the norm of its kernel as a matrix")
    case(torch.randn(3, 2, 1, 1, generator=g), (2, 5, 5), 1, 0)
    c.ok()

    c.start("a 3x3 convolution with padding 1 on 6x6 inputs (larger than the reshaped norm)")
    case(torch.randn(2, 2, 3, 3, generator=g), (2, 6, 6), 1, 1)
    c.ok()

    c.start("without padding, 3x3 on 5x5 inputs")
    case(torch.randn(3, 1, 3, 3, generator=g), (1, 5, 5), 1, 0)
    c.ok()

    c.start("stride 2 (the transpose's output must still have the input's shape)")
    case(torch.randn(2, 2, 3, 3, generator=g), (2, 8, 8), 2, 1)
    case(torch.randn(2, 1, 4, 4, generator=g), (1, 8, 8), 2, 1)
    c.ok()
    c.done()
