"""Lipschitz constants of critics: measured gradient norms, the layer-wise bound, and the three
ways GANs keep a critic Lipschitz (weight clipping, gradient penalty, spectral normalization).

A function f is K-Lipschitz if |f(x) - f(y)| <= K ||x - y||. For a differentiable f the
smallest K is sup_x ||grad f(x)||, so gradient norms measured anywhere are LOWER bounds on K,
and the product of per-layer spectral norms (1-Lipschitz activations in between) is an UPPER
bound for a feed-forward chain.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from sngan_edu import sn as sn_lib
from sngan_edu.checks import check_int
from sngan_edu.sigma_report import sigma_report

# --------------------------------------------------------------------------------------------
# Measuring: gradient norms (lower bounds)
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode inside the block and restore every module's mode after.

    Measuring must not change the model: in training mode every forward would advance the
    spectral-norm power iteration (and BatchNorm statistics).
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.training = mode


def _scalar_outputs(out: torch.Tensor, n: int) -> torch.Tensor:
    if out.numel() != n:
        raise ValueError(
            f"D must return one number per sample (shape (N,) or (N, 1)); got {tuple(out.shape)}"
        )
    return out.reshape(n)


def gradient_norms(
    D: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    create_graph: bool = False,
    eval_mode: bool = True,
) -> torch.Tensor:
    """``||grad_x D(x_i)||_2`` for every sample ``x_i`` of the batch ``x``; shape ``(N,)``.

    D must treat samples independently (no BatchNorm in training mode), so the gradient of
    ``D(x).sum()`` w.r.t. ``x_i`` is the gradient of ``D(x_i)``. ``eval_mode`` runs D in eval
    mode (measuring must not advance power iterations).
    """
    if not torch.is_tensor(x) or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a batch tensor of shape (N, ...), N >= 1; got {x!r:.60}")
    x = x.detach().requires_grad_(True)
    ctx = evaluation_mode(D) if eval_mode and isinstance(D, nn.Module) else contextlib.nullcontext()
    with ctx, torch.enable_grad():
        out = _scalar_outputs(D(x), x.shape[0])
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=create_graph)
    return grad.flatten(1).norm(dim=1)


def interpolates(
    real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``eps * real + (1 - eps) * fake`` with one ``eps ~ U(0, 1)`` per sample (WGAN-GP)."""
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape; got {real.shape} and {fake.shape}"
        )
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    return eps * real.detach() + (1 - eps) * fake.detach()


@dataclass
class LipschitzEstimate:
    """Lower bounds on a critic's Lipschitz constant from three places; ``value`` is the max.

    ``data``: max gradient norm on the given samples; ``interpolates``: on random points between
    real and fake; ``adversarial``: after a small gradient-ascent search for steep spots (on
    difference quotients |D(x)-D(y)|/||x-y||, which, unlike gradient norms, have useful
    gradients for piecewise-linear critics).
    """

    data: float
    interpolates: float
    adversarial: float

    @property
    def value(self) -> float:
        return max(v for v in (self.data, self.interpolates, self.adversarial) if not math.isnan(v))

    def __float__(self) -> float:
        return self.value

    def __repr__(self) -> str:
        return (
            f"LipschitzEstimate(value={self.value:.4g}, data={self.data:.4g}, "
            f"interpolates={self.interpolates:.4g}, adversarial={self.adversarial:.4g})"
        )


def _quotient(D, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    diff = (_scalar_outputs(D(x), n) - _scalar_outputs(D(y), n)).abs()
    return diff / (x - y).flatten(1).norm(dim=1).clamp_min(1e-12)


def adversarial_lipschitz(
    D: nn.Module,
    start: torch.Tensor,
    steps: int = 20,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> float:
    """Gradient ascent on difference quotients ``|D(x) - D(y)| / ||x - y||`` from ``start``.

    Pairs start at ``x`` and ``x + r * g/||g||`` (g the gradient at x, r small); both points
    move by normalized gradient steps of ``step_size`` (default: 5% of the data's RMS norm).
    Returns the largest quotient or gradient norm seen: a lower bound on the constant.
    """
    check_int("adversarial_steps", steps, minimum=0)
    x = start.detach().clone()
    scale = float(x.flatten(1).norm(dim=1).pow(2).mean().sqrt()) or 1.0
    step = step_size if step_size is not None else 0.05 * scale
    best = float(gradient_norms(D, x).max())
    if steps == 0:
        return best
    with evaluation_mode(D), torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(_scalar_outputs(D(xg), x.shape[0]).sum(), xg)
        g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.ndim - 1)))
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        y = x + 0.1 * step * (g + 0.01 * noise)
        for _ in range(steps):
            x.requires_grad_(True)
            y.requires_grad_(True)
            q = _quotient(D, x, y)
            best = max(best, float(q.detach().max()))
            gx, gy = torch.autograd.grad(q.sum(), (x, y))
            with torch.no_grad():
                for p, gp in ((x, gx), (y, gy)):
                    norm = gp.flatten(1).norm(dim=1).clamp_min(1e-12)
                    p.add_(step * gp / norm.view(-1, *([1] * (x.ndim - 1))))
            x, y = x.detach(), y.detach()
            step *= 0.85  # shrink so pairs settle instead of jumping around
    best = max(best, float(gradient_norms(D, x).max()), float(gradient_norms(D, y).max()))
    return best


def empirical_lipschitz(
    D: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor | None = None,
    n_interpolates: int = 256,
    adversarial_steps: int = 20,
    generator: torch.Generator | None = None,
) -> LipschitzEstimate:
    """Measured lower bounds on D's Lipschitz constant (see :class:`LipschitzEstimate`).

    ``real`` (and ``fake``) are sample batches; interpolates need ``fake``. The adversarial
    search starts from the 16 points with the largest gradient norms. D runs in eval mode.
    """
    check_int("n_interpolates", n_interpolates, minimum=0)
    points = real if fake is None else torch.cat([real, fake])
    norms = gradient_norms(D, points)
    data = float(norms.max())
    inter = float("nan")
    if fake is not None and n_interpolates > 0:
        n = min(len(real), len(fake))
        idx = torch.randint(0, n, (n_interpolates,), generator=generator, device=real.device)
        mixed = interpolates(real[idx], fake[idx], generator=generator)
        inter = float(gradient_norms(D, mixed).max())
    starts = points[norms.argsort(descending=True)[:16]]
    adv = adversarial_lipschitz(D, starts, steps=adversarial_steps, generator=generator)
    return LipschitzEstimate(data=data, interpolates=inter, adversarial=adv)


def gradient_norm_grid(
    D: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    xlim: tuple[float, float] = (-2.0, 2.0),
    ylim: tuple[float, float] = (-2.0, 2.0),
    n: int = 64,
) -> torch.Tensor:
    """``||grad_x D(x)||`` on an ``n x n`` grid over a 2-D input plane; row i is y, column j x.

    For heat maps of a 2-D critic's gradient-norm landscape.
    """
    check_int("n", n, minimum=2)
    param = next(D.parameters(), None) if isinstance(D, nn.Module) else None
    device = param.device if param is not None else torch.device("cpu")
    xs = torch.linspace(*xlim, n, device=device)
    ys = torch.linspace(*ylim, n, device=device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    return gradient_norms(D, points).reshape(n, n).cpu()


# --------------------------------------------------------------------------------------------
# Bounding: the layer-wise product (an upper bound)
# --------------------------------------------------------------------------------------------

_BOUND_TYPES = (nn.Linear, *sn_lib.CONV_TYPES, *sn_lib.TRANSPOSED_CONV_TYPES)


def layer_lipschitz_factors(
    model: nn.Module,
    input_shapes: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None = None,
    exact_conv: bool = False,
    conv_iters: int = 200,
) -> dict[str, float]:
    """Per-layer Lipschitz constant of every Linear/Conv layer as the forward pass uses it.

    The weight used is ``W / (u^T W v)`` for normalized layers (no power iteration is run).
    By default each factor is sigma of the reshaped weight; with ``exact_conv=True`` (and
    ``input_shapes``: the model's input shape, or a dict layer -> input shape) 2-D convs get
    their true operator norm, which is usually larger; it can be smaller only when no output
    pixel sees a full kernel window of real (unpadded) input (see :mod:`sngan_edu.conv_norm`).
    Embeddings are lookups, not maps of the input, and are skipped.
    """
    if exact_conv and input_shapes is None:
        raise ValueError("exact_conv=True needs input_shapes, e.g. (3, 32, 32)")
    report = sigma_report(
        model, input_shapes if exact_conv else None, layer_types=_BOUND_TYPES, conv_iters=conv_iters
    )
    factors = {}
    for row in report.rows:
        value = row.normalized
        if exact_conv and not math.isnan(row.conv_operator_norm):
            value = row.conv_operator_norm
        factors[row.layer] = value
    return factors


def product_bound(
    model: nn.Module,
    input_shapes: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None = None,
    exact_conv: bool = False,
) -> float:
    """Upper bound on the Lipschitz constant: the product of per-layer constants.

    Valid for a feed-forward chain of Linear/Conv layers with 1-Lipschitz activations (ReLU,
    leaky ReLU, tanh) and no BatchNorm; residual connections need a different bound. With the
    reshaped-kernel sigma (``exact_conv=False``) it is the bound SN controls, but not a strict
    bound for convolutions, whose true norm can be up to sqrt(kh*kw) times larger (stride 1).
    The reshaped sigma is a lower bound on a conv's norm only when some output pixel sees a full
    kernel window of real input (not padding).
    """
    factors = layer_lipschitz_factors(model, input_shapes, exact_conv)
    if not factors:
        raise ValueError("model has no Linear or Conv layer to bound")
    return math.prod(factors.values())


