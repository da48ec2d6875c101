"""Notebook 02's experiment: the same critic trained under each constraint on the same batches.

A Wasserstein critic maximizes E[D(real)] - E[D(fake)] over fixed sample pools (the generator
is frozen: we study the critic). Without a constraint the gap grows without bound; weight
clipping, the gradient penalty and spectral normalization (:mod:`sngan_edu.regularizers`) each
keep D Lipschitz in their own way, which the recorded gaps and gradient-norm landscapes show.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from sngan_edu.checks import check_choice, check_int
from sngan_edu.gan_step import discriminator_step
from sngan_edu.lipschitz import gradient_norm_grid
from sngan_edu.losses import wasserstein_d_loss
from sngan_edu.regularizers import clip_weights, get_regularizer

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
