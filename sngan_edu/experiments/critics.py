"""Critics under constraints: notebook 01's 1-D picture and notebook 02's experiment.

:func:`optimal_discriminator_1d` is the motivation of the course in one dimension: real and fake
data as two narrow bumps, the optimal (unconstrained) discriminator between them, and the
gradient a generator would get from it.

Notebook 02 trains the same critic under each constraint on the same batches. Its page writes
the three critic updates out (clipping, the gradient penalty, SN) and hands them to
:func:`train_critics` as ``step_fns``; by default the runner uses :func:`critic_step`, the same
updates through :func:`sngan_edu.gan_step.discriminator_step` (tests/test_chapter_code.py checks
that the two give the same weights).

A Wasserstein critic maximizes E[D(real)] - E[D(fake)] over fixed sample pools (the generator
is frozen: we study the critic). Without a constraint the gap grows without bound; weight
clipping, the gradient penalty and spectral normalization (:mod:`sngan_edu.regularizers`) each
keep D Lipschitz in their own way, which the recorded gaps and gradient-norm landscapes show.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn

from sngan_edu.checks import check_choice, check_int, check_number
from sngan_edu.gan_step import discriminator_step
from sngan_edu.lipschitz import evaluation_mode, gradient_norm_grid
from sngan_edu.losses import wasserstein_d_loss
from sngan_edu.regularizers import clip_weights, get_regularizer


class OptimalD1D(NamedTuple):
    """The optimal discriminator between two 1-D Gaussian bumps, and what a generator gets.

    All tensors are float64 and indexed like ``x``. The generator moves a fake sample x against
    the gradient of its loss, so ``-grad`` is the direction it moves (positive: to the right).
    """

    x: Tensor
    real_density: Tensor
    fake_density: Tensor
    d_star: Tensor  # D*(x) = p_real / (p_real + p_fake)
    d_star_slope: Tensor  # dD*/dx
    minimax_grad: Tensor  # d/dx log(1 - D*(x)): the original generator loss of the GAN paper
    nonsaturating_grad: Tensor  # d/dx -log D*(x): the "non-saturating" generator loss
    logit_slope: float  # d/dx log(p_real / p_fake) = (real_mean - fake_mean) / std^2


def optimal_discriminator_1d(
    x: Tensor,
    real_mean: float = 2.0,
    fake_mean: float = -2.0,
    std: float = 0.1,
) -> OptimalD1D:
    """The optimal discriminator D* = p_real / (p_real + p_fake) for real data N(real_mean, std^2)
    and fake data N(fake_mean, std^2), on the points ``x``, with the generator's gradients.

    Its logit log(p_real / p_fake) is linear with slope (real_mean - fake_mean) / std^2, so
    D*(x) = sigmoid(slope * (x - midpoint)): about 0 on the fake bump, about 1 on the real one,
    with a jump between them that gets steeper as the bumps get narrower (disjoint supports in
    the limit). At the fake samples D* is flat: the original generator loss log(1 - D) has
    gradient -D* * slope, which underflows to 0; the non-saturating loss -log D has gradient
    -(1 - D*) * slope, about -slope, set by the width of the bumps rather than by how far the
    fake data is from the real data, and unbounded as std -> 0. Computed in closed form
    (log-sigmoid arithmetic, no overflow).
    """
    check_number("std", std, 0, open_low=True, what="a positive number")
    check_number("real_mean", real_mean)
    check_number("fake_mean", fake_mean)
    if real_mean == fake_mean:
        raise ValueError("real_mean and fake_mean must differ (the bumps must be apart)")
    x = torch.as_tensor(x, dtype=torch.float64)
    slope = (real_mean - fake_mean) / std**2
    logit = slope * (x - 0.5 * (real_mean + fake_mean))
    d_star = torch.sigmoid(logit)
    one_minus = torch.sigmoid(-logit)
    norm = 1.0 / (std * (2 * torch.pi) ** 0.5)
    return OptimalD1D(
        x=x,
        real_density=norm * torch.exp(-0.5 * ((x - real_mean) / std) ** 2),
        fake_density=norm * torch.exp(-0.5 * ((x - fake_mean) / std) ** 2),
        d_star=d_star,
        d_star_slope=slope * d_star * one_minus,
        minimax_grad=-slope * d_star,
        nonsaturating_grad=-slope * one_minus,
        logit_slope=float(slope),
    )


def critic_slopes(critic: nn.Module, x: Tensor) -> Tensor:
    """dD/dx of a critic on 1-D inputs ``x`` of shape (n, 1); returns shape (n,), detached.

    Measured in eval mode (an SN critic runs no power iteration), training mode restored after.
    """
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), evaluation_mode(critic):
        (grad,) = torch.autograd.grad(critic(x).sum(), x)
    return grad.detach().reshape(-1)


#: The order of notebook 02's tables and figures: from no constraint to spectral norm.
CRITIC_METHODS = ("none", "clip", "gp", "sn")


def _check_method(method: str) -> None:
    check_choice("method", method, CRITIC_METHODS)


def prepare_critic(critic: nn.Module, method: str) -> nn.Module:
    """Apply a method's one-time change to a critic (SN for "sn", nothing otherwise)."""
    _check_method(method)
    return get_regularizer(method, "method").prepare(critic)


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

    The update is :func:`sngan_edu.gan_step.discriminator_step` with the Wasserstein loss.
    """
    _check_method(method)
    seen = discriminator_step(critic, optimizer, real, fake, wasserstein_d_loss, method,
                              gp_lambda=lam, clip_c=clip, generator=generator)
    return float(seen.d_real.mean() - seen.d_fake.mean())


#: One critic update ``step(critic, optimizer, real, fake)`` -> E[D(real)] - E[D(fake)] before it.
CriticStep = Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor], float]


def library_steps(methods: Sequence[str] = CRITIC_METHODS) -> dict[str, CriticStep]:
    """``{method: step}`` with :func:`critic_step` for each method (the runner's default)."""
    for m in methods:
        _check_method(m)
    return {m: functools.partial(critic_step, method=m) for m in methods}


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
    step_fns: Mapping[str, CriticStep] | None = None,
) -> dict[str, CriticRun]:
    """Train one critic per method from the SAME initial weights on the same batches.

    ``real`` / ``fake`` are fixed sample pools (the generator is frozen: we study the critic).
    ``snapshot_steps``: steps (0 = before training) at which a state dict copy is stored.
    ``step_fns``: ``{method: step(critic, optimizer, real, fake)}`` returning the estimate
    E[D(real)] - E[D(fake)] before the update (default :func:`library_steps`). The runner
    prepares each critic (:func:`prepare_critic`; "clip" also starts inside the box) and seeds
    torch's global random numbers before every step, the same seed for every method, so the
    gradient penalty's interpolates are reproducible without a generator argument.
    """
    for m in methods:
        _check_method(m)
    steps_by_method = library_steps(methods) if step_fns is None else dict(step_fns)
    missing = [m for m in methods if m not in steps_by_method]
    if missing:
        raise ValueError(f"step_fns must have a step for every method; missing {missing}")
    check_int("steps", steps, minimum=0)
    check_int("batch_size", batch_size)
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
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(mix_seed)
                gap = steps_by_method[method](run.critic, optimizers[method], real[i], fake[j])
            run.gaps.append(float(gap))
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

