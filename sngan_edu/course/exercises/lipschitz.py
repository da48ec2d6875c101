"""Checks of exercise 02: per-sample gradient norms (2.1), the layer-wise bound (2.2) and the
gradient penalty of WGAN-GP (2.3); the convolution's operator norm (2.4) is in
:mod:`~sngan_edu.course.exercises.conv_operator`."""

from __future__ import annotations

import copy
import functools
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


def _linear_norms_hint(out: torch.Tensor) -> str:
    """Name the mistake of ``out`` for a linear critic whose gradient norm is 13 everywhere."""
    first = float(out.detach()[0])
    if close(first / 13.0, 1 / 5, rtol=1e-3):
        return ("the norms are divided by the batch size: differentiate D(x).sum(), not "
                ".mean(); each output depends only on its own sample.")
    if close(first, 169.0, rtol=1e-3):
        return "you returned squared norms; take the square root (.norm())."
    return "differentiate D(x).sum() with respect to x (torch.autograd.grad), not the weights."


def _check_against_autograd(c, model: nn.Module, x: torch.Tensor, hint: str) -> None:
    ref = reference_gradient_norms(model, x)
    before = snapshot(model)
    out = c.call(model, x.clone())
    if not tensor_close(out, ref):
        c.fail(_fmt(ref), _fmt(out), hint)
    require_unchanged(c, before, model, "the model", _UNCHANGED_MODEL_HINT)


@exercise_check
def check_gradient_norms(gradient_norms: Callable[..., Any]) -> None:
    """Check ``gradient_norms(D, x) -> tensor (batch,)`` of ``||grad_x D(x_i)||_2`` per sample."""
    c = new_checker("gradient_norms", gradient_norms)
    g = seeded(5)

    with c.step("a linear critic D(x) = w.x + b has gradient norm |w| at every point"):
        linear = nn.Linear(3, 1)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[3.0, -4.0, 12.0]]))
        x = torch.randn(5, 3, generator=g)
        model_before = snapshot(linear)
        expected = torch.full((5,), 13.0)
        out = c.call(linear, x)
        if not isinstance(out, torch.Tensor) or out.shape != (5,):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            c.fail("a tensor of shape (5,), one norm per sample", f"{_fmt(out)} (shape {shape})",
                   "one norm per sample: each sample's gradient has the sample's shape; take its "
                   "norm over all of those dimensions together, not over the batch.")
        if not tensor_close(out, expected):
            c.fail(_fmt(expected), _fmt(out), _linear_norms_hint(out))
        require_unchanged(c, model_before, linear, "the model", _UNCHANGED_MODEL_HINT)

    with c.step("matches autograd, sample by sample, for a small MLP"):
        mlp = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
        with torch.no_grad():
            for p in mlp.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        _check_against_autograd(c, mlp, torch.randn(6, 4, generator=g),
                                "compute the gradient with respect to the INPUT x at each sample.")

    with c.step("handles image batches (norm over every non-batch dimension)"):
        conv = nn.Sequential(nn.Conv2d(2, 3, 3), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(12, 1))
        _check_against_autograd(c, conv, torch.randn(3, 2, 4, 4, generator=g),
                                "an image's gradient has several dimensions (channels, height, "
                                "width): its norm is taken over all of them at once, one norm per "
                                "image.")
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


def _layer_norms(modules: Any) -> list[float]:
    """The largest singular value (SVD) of the weight of each nn.Linear in ``modules``."""
    return [float(torch.linalg.svdvals(m.weight.detach().double())[0])
            for m in modules if isinstance(m, nn.Linear)]


def reference_lipschitz_bound(net: nn.Module) -> float:
    """Product of the largest singular values of the Linear weights of ``net`` (by SVD)."""
    return math.prod(_layer_norms(net.modules()))


def _random_mlp(g: torch.Generator, *sizes: int, act: type[nn.Module] = nn.ReLU
                ) -> nn.Sequential:
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


def _check_bound(c, net: nn.Module, hint: Callable[[float], str], at_least: float = 0.0
                 ) -> None:
    """The student's bound for ``net`` must be the reference (and not below ``at_least``)."""
    exact = reference_lipschitz_bound(net)
    before = snapshot(net)
    value = as_float(c, c.call(net), "bound")
    require_unchanged(c, before, net, "the model", _UNCHANGED_MODEL_HINT)
    if value < at_least * (1 - 1e-5) or not close(value, exact, rtol=1e-3):
        expected = f"{exact:.4g}" + (f" (at least the measured {at_least:.4g})"
                                     if at_least else "")
        c.fail(expected, f"{value:.4g}", hint(value))


def _single_layer_hint(value: float, net: nn.Module) -> str:
    if close(value, float(torch.linalg.matrix_norm(net[0].weight.detach().double())),
             rtol=1e-3):
        return ("that is the Frobenius norm (the default norm of a matrix in torch.linalg), "
                "which is larger than the spectral norm, the largest singular value.")
    return "the spectral norm of a layer is the largest singular value of its weight."


def _mlp_hint(value: float, net: nn.Module) -> str:
    norms = _layer_norms(net.modules())
    if close(value, sum(norms), rtol=1e-3):
        return "you added the norms; the bound for a composition is their PRODUCT."
    if any(close(value, norm, rtol=1e-3) for norm in norms):
        return ("that is one layer's norm: multiply the spectral norms of EVERY nn.Linear "
                "in model.modules().")
    return "multiply the spectral norms of every nn.Linear in model.modules()."


def _nested_hint(value: float, net: nn.Module) -> str:
    if close(value, math.prod(_layer_norms(net.children())), rtol=1e-3):
        return ("you multiplied only the top-level layers: model.children() lists the "
                "direct children, so every Linear inside a block or a Sequential was "
                "skipped. Walk the whole tree of modules.")
    return ("multiply the spectral norms of every nn.Linear of the model, at every "
            "depth (inside blocks, Sequentials and ModuleLists).")


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

    with c.step("a single layer: its largest singular value (SVD)"):
        single = _random_mlp(g, 4, 3)
        _check_bound(c, single, lambda value: _single_layer_hint(value, single))

    with c.step("a 3-layer ReLU MLP: the product of the layers' spectral norms"):
        net = _random_mlp(g, 5, 8, 8, 1)
        _check_bound(c, net, lambda value: _mlp_hint(value, net))

    with c.step("nested modules (blocks inside blocks, a ModuleList): every Linear at any depth"):
        nested = _NestedCritic(g)
        _check_bound(c, nested, lambda value: _nested_hint(value, nested))

    with c.step("the bound is never below a measured gradient norm"):
        tanh_net = _random_mlp(g, 3, 6, 1, act=nn.Tanh)
        measured = float(reference_gradient_norms(tanh_net, torch.randn(64, 3, generator=g)).max())
        _check_bound(c, tanh_net, lambda value: "multiply the spectral norms of every nn.Linear "
                     "in the model.", at_least=measured)
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


def _check_penalty(c, D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                   eps: torch.Tensor) -> None:
    """The student's penalty: its value, and its gradient with respect to D's parameters."""
    expected = reference_gradient_penalty(D, real, fake, eps)
    params = list(D.parameters())
    expected_grads = [torch.zeros_like(p) if e is None else e for p, e in zip(
        params, torch.autograd.grad(expected, params, allow_unused=True), strict=True)]
    before = snapshot(D)
    out = c.call(D, real.clone(), fake.clone(), eps.clone())
    require_unchanged(c, before, D, "D", _UNCHANGED_MODEL_HINT)
    value, expected_value = as_float(c, out, "the penalty"), float(expected.detach())
    if not close(value, expected_value, rtol=1e-4, atol=1e-7):
        hint = next((h for kwargs, h in _PENALTY_MISTAKES
                     if close(value, float(reference_gradient_penalty(
                         D, real, fake, eps, **kwargs).detach()), rtol=1e-4, atol=1e-7)), None)
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
    case = functools.partial(_check_penalty, c)

    with c.step("a linear critic D(x) = w.x + b: its gradient is w everywhere, penalty "
                "(|w| - 1)^2"):
        linear = nn.Linear(3, 1)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[2.0, -1.0, 2.0]]))  # |w| = 3: penalty 4
        case(linear, torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g),
             torch.rand(6, generator=g))

    with c.step("an MLP critic on 2-D points: equals autograd's penalty, and D can learn from it"):
        mlp = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
        with torch.no_grad():
            for p in mlp.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        case(mlp, torch.randn(10, 2, generator=g), torch.randn(10, 2, generator=g) + 2,
             torch.rand(10, generator=g))

    with c.step("a conv critic on image batches: eps spreads over each image, one norm per image"):
        conv = nn.Sequential(nn.Conv2d(1, 3, 3), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(12, 1))
        case(conv, torch.randn(4, 1, 4, 4, generator=g), torch.randn(4, 1, 4, 4, generator=g),
             torch.rand(4, generator=g))
    c.done()
