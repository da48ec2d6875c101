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
               "take the norm of each sample's gradient over all its dimensions: "
               "grad.flatten(1).norm(dim=1).")
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
        c.fail(_fmt(ref), _fmt(out), "flatten each sample's gradient before the norm: "
               "grad.flatten(1).norm(dim=1).")
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
        hint = ("that is the Frobenius norm, which is larger than the spectral norm; use "
                "torch.linalg.matrix_norm(W, ord=2) or svdvals(W)[0]."
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
