"""Cost of one critic step of notebook 02 under each constraint (none, clip, gp, sn).

The critic is notebook 02's MLP (2 -> 64 -> 64 -> 64 -> 1) on batches of the ring of 8
Gaussians; one step is :func:`sngan_edu.experiments.critics.critic_step`. All methods are timed
interleaved, round by round, so load on a shared machine hits them alike; the script prints the
median seconds per step and the ratio to no constraint.

    .venv/bin/python benchmarks/critic_steps.py              # batch 128, 30 rounds, 1 thread
    .venv/bin/python benchmarks/critic_steps.py --batch 512 --rounds 100
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Mapping

import torch
from torch import nn

from sngan_edu.data.toy import sample_mixture
from sngan_edu.experiments.critics import CRITIC_METHODS, critic_step, prepare_critic


def make_critic() -> nn.Sequential:
    """Notebook 02's critic."""
    return nn.Sequential(
        nn.Linear(2, 64), nn.LeakyReLU(0.1),
        nn.Linear(64, 64), nn.LeakyReLU(0.1),
        nn.Linear(64, 64), nn.LeakyReLU(0.1),
        nn.Linear(64, 1),
    )


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
        c = copy.deepcopy(critic)
        timed[method] = (c, torch.optim.Adam(c.parameters(), lr=1e-4))
    samples: dict[str, list[float]] = {m: [] for m in timed}
    for _ in range(repeats):
        for method, (c, opt) in timed.items():
            start = time.perf_counter()
            critic_step(c, opt, real, fake, method)
            samples[method].append(time.perf_counter() - start)
    return {m: sorted(s)[len(s) // 2] for m, s in samples.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    real = sample_mixture("ring", args.batch, generator=gen)
    fake = 0.5 * torch.randn(args.batch, 2, generator=gen)
    torch.manual_seed(0)
    base = make_critic()
    critics = {m: prepare_critic(copy.deepcopy(base), m) for m in CRITIC_METHODS}
    times = time_critic_steps(critics, real, fake, repeats=args.rounds)
    print(f"batch {args.batch}, {args.rounds} rounds, {args.threads} thread(s): "
          "median seconds of one critic step")
    for method, seconds in times.items():
        print(f"{method:5s} {seconds * 1e3:8.3f} ms   x{seconds / times['none']:.2f} of none")


if __name__ == "__main__":
    main()
