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
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from sngan_edu import sn as sn_lib

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
    if steps < 0:
        raise ValueError(f"adversarial_steps must be >= 0; got {steps}")
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
    if n_interpolates < 0:
        raise ValueError(f"n_interpolates must be >= 0; got {n_interpolates}")
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
    if n < 2:
        raise ValueError(f"n must be >= 2; got {n}")
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
    their true operator norm, which can be larger. Embeddings are lookups, not maps of the
    input, and are skipped.
    """
    if exact_conv and input_shapes is None:
        raise ValueError("exact_conv=True needs input_shapes, e.g. (3, 32, 32)")
    report = sn_lib.sigma_report(
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
    """
    factors = layer_lipschitz_factors(model, input_shapes, exact_conv)
    if not factors:
        raise ValueError("model has no Linear or Conv layer to bound")
    return math.prod(factors.values())


# --------------------------------------------------------------------------------------------
# Constraining: gradient penalty and weight clipping (spectral norm lives in sngan_edu.sn)
# --------------------------------------------------------------------------------------------


def gradient_penalty(
    D: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    lam: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``lam * E[(||grad D(x_hat)|| - 1)^2]`` on random interpolates x_hat.

    Differentiable w.r.t. D's parameters (``create_graph=True``); add it to the critic loss.
    D runs in its current mode.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0 (WGAN-GP uses 10); got {lam}")
    x_hat = interpolates(real, fake, generator=generator)
    norms = gradient_norms(D, x_hat, create_graph=True, eval_mode=False)
    return lam * (norms - 1.0).pow(2).mean()


@torch.no_grad()
def clip_weights(model: nn.Module, c: float = 0.01) -> nn.Module:
    """Clamp every parameter of ``model`` to ``[-c, c]`` in place (the original WGAN)."""
    if not (isinstance(c, (int, float)) and c > 0):
        raise ValueError(f"c must be a positive number (WGAN uses 0.01); got {c!r}")
    for p in model.parameters():
        p.clamp_(-c, c)
    return model


# --------------------------------------------------------------------------------------------
# One experiment: the same critic trained with each constraint (notebook 02)
# --------------------------------------------------------------------------------------------

CRITIC_METHODS = ("none", "clip", "gp", "sn")


def _check_method(method: str) -> None:
    if method not in CRITIC_METHODS:
        raise ValueError(f"method must be one of {CRITIC_METHODS}; got {method!r}")


def prepare_critic(critic: nn.Module, method: str) -> nn.Module:
    """Apply a method's one-time change to a critic: SN for "sn", nothing otherwise."""
    _check_method(method)
    if method == "sn":
        sn_lib.apply_spectral_norm(critic)
    return critic


def critic_step(
    critic: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
    method: str,
    clip: float = 0.01,
    lam: float = 10.0,
    generator: torch.Generator | None = None,
) -> float:
    """One Wasserstein critic update ``max E[D(real)] - E[D(fake)]`` under ``method``.

    "none": no constraint; "clip": clamp weights to [-clip, clip] after the step; "gp":
    add the gradient penalty; "sn": the critic already has spectral norm (prepare_critic).
    Returns the estimated Wasserstein distance E[D(real)] - E[D(fake)] before the step.

    Real and fake go through the critic as ONE concatenated batch (unless it has BatchNorm,
    whose batch statistics would then mix them): each forward of an SN layer in training mode
    runs a power iteration, so two calls would run two per step and score the two halves with
    slightly different normalized weights. The gradient penalty still needs its own forward.
    """
    from sngan_edu.train import has_batchnorm, score_real_and_fake

    _check_method(method)
    optimizer.zero_grad(set_to_none=True)
    d_real, d_fake = score_real_and_fake(critic, real, fake, joint=not has_batchnorm(critic))
    gap = d_real.mean() - d_fake.mean()
    loss = -gap
    if method == "gp":
        loss = loss + gradient_penalty(critic, real, fake, lam=lam, generator=generator)
    loss.backward()
    optimizer.step()
    if method == "clip":
        clip_weights(critic, clip)
    return float(gap.detach())


@dataclass
class CriticRun:
    """What :func:`train_critics` records for one method."""

    method: str
    critic: nn.Module
    gaps: list[float] = field(default_factory=list)
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


def train_critics(
    make_critic: Callable[[], nn.Module],
    real: torch.Tensor,
    fake: torch.Tensor,
    methods: Sequence[str] = CRITIC_METHODS,
    steps: int = 500,
    batch_size: int = 128,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.9),
    snapshot_steps: Sequence[int] = (),
    seed: int = 0,
) -> dict[str, CriticRun]:
    """Train one critic per method from the SAME initial weights on the same batches.

    ``real`` / ``fake`` are fixed sample pools (the generator is frozen: we study the critic).
    ``snapshot_steps``: steps (0 = before training) at which a state dict copy is stored.
    """
    for m in methods:
        _check_method(m)
    if steps < 0 or batch_size < 1:
        raise ValueError(f"steps must be >= 0 and batch_size >= 1; got {steps}, {batch_size}")
    torch.manual_seed(seed)
    init = make_critic().state_dict()
    runs = {}
    for method in methods:
        critic = make_critic()
        critic.load_state_dict(init)
        if method == "clip":
            clip_weights(critic)  # start inside the box, as WGAN does after every step
        prepare_critic(critic, method)
        runs[method] = CriticRun(method, critic)
    optimizers = {
        m: torch.optim.Adam(r.critic.parameters(), lr=lr, betas=betas) for m, r in runs.items()
    }
    batches = torch.Generator().manual_seed(seed)
    for step in range(steps + 1):
        for run in runs.values():
            if step in snapshot_steps:
                run.snapshots[step] = {k: v.clone() for k, v in run.critic.state_dict().items()}
        if step == steps:
            break
        i = torch.randint(0, len(real), (batch_size,), generator=batches)
        j = torch.randint(0, len(fake), (batch_size,), generator=batches)
        mix_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=batches))
        for method, run in runs.items():
            g = torch.Generator().manual_seed(mix_seed)
            run.gaps.append(
                critic_step(run.critic, optimizers[method], real[i], fake[j], method, generator=g)
            )
    return runs


def critic_at(run: CriticRun, step: int, make_critic: Callable[[], nn.Module]) -> nn.Module:
    """A fresh critic (built like ``run``'s) holding ``run``'s weights at snapshot ``step``."""
    if step not in run.snapshots:
        raise ValueError(
            f"step must be one of the snapshot steps {sorted(run.snapshots)}; got {step}"
        )
    critic = prepare_critic(make_critic(), run.method)
    critic.load_state_dict(run.snapshots[step])
    return critic


def snapshot_landscapes(
    runs: Mapping[str, CriticRun],
    make_critic: Callable[[], nn.Module],
    xlim: tuple[float, float] = (-2.0, 2.0),
    ylim: tuple[float, float] = (-2.0, 2.0),
    n: int = 48,
) -> dict[tuple[str, int], torch.Tensor]:
    """Gradient-norm grids (:func:`gradient_norm_grid`) of every method at every snapshot."""
    grids = {}
    for method, run in runs.items():
        for step in sorted(run.snapshots):
            critic = critic_at(run, step, make_critic)
            grids[(method, step)] = gradient_norm_grid(critic, xlim, ylim, n)
    return grids


def time_critic_steps(
    critics: Mapping[str, nn.Module],
    real: torch.Tensor,
    fake: torch.Tensor,
    repeats: int = 30,
) -> dict[str, float]:
    """Median seconds of one critic step per method, measured interleaved (fair under load).

    Keys of ``critics`` are methods; each critic is deep-copied so training state is untouched.
    """
    import copy

    timed = {}
    for method, critic in critics.items():
        _check_method(method)
        c = copy.deepcopy(critic)
        timed[method] = (c, torch.optim.Adam(c.parameters(), lr=1e-4))
    samples: dict[str, list[float]] = {m: [] for m in timed}
    for _ in range(repeats):
        for method, (c, opt) in timed.items():
            start = time.perf_counter()
            critic_step(c, opt, real, fake, method)
            samples[method].append(time.perf_counter() - start)
    return {m: sorted(s)[len(s) // 2] for m, s in samples.items()}
