"""Cost of one discriminator step of the paper's standard CNN D with each Lipschitz control.

Variants, all from the same initial weights on the same batches:
  none   - no normalization (hinge loss)
  ours   - sngan_edu.sn.apply_spectral_norm (hinge loss)
  torch  - torch.nn.utils.parametrizations.spectral_norm on the same layers (hinge loss)
  gp     - no normalization, WGAN loss + gradient penalty (lambda 10)
One step = D(real) and D(fake) forwards, backward, Adam update. We also time the SN work
alone (normalized weights computed twice and backpropagated, no convolutions) for both SN
implementations: a small, steady number that load on a shared machine barely blurs.
Everything runs interleaved (round-robin, rotating the order every round) so load changes on a
shared machine hit all variants alike; we report medians and ratios.

    .venv/bin/python benchmarks/sn_overhead.py --threads 1  # batch 64, 32x32, 15 rounds
    .venv/bin/python benchmarks/sn_overhead.py --rounds 30

On a busy 2-core machine use --threads 1: two threads competing with other processes make
timings erratic (inter-quartile ranges of seconds).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from sngan_edu import sn
from sngan_edu.models.standard_cnn import Discriminator
from sngan_edu.regularizers import gradient_penalty

VARIANTS = ("none", "ours", "torch", "gp")


def torch_apply(model: nn.Module) -> nn.Module:
    """PyTorch's built-in SN on exactly the layers apply_spectral_norm would normalize."""
    for module in list(model.modules()):
        if isinstance(module, sn.DEFAULT_LAYER_TYPES):
            torch_spectral_norm(module)
    return model


def make_step(variant: str, D: nn.Module, real: torch.Tensor, fake: torch.Tensor):
    opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        if variant == "gp":
            loss = D(fake).mean() - D(real).mean() + gradient_penalty(D, real, fake, lam=10.0)
        else:  # hinge loss
            loss = torch.relu(1 - D(real)).mean() + torch.relu(1 + D(fake)).mean()
        loss.backward()
        opt.step()

    return step


def sn_work(model: nn.Module, grads: list[torch.Tensor]):
    """Only the SN part of a step: compute every normalized weight twice (one per forward pass,
    as D(real) and D(fake) do) and backpropagate a fixed gradient through them."""
    layers = [m for m in model.modules() if sn.is_spectral_normalized(m)]

    def step() -> None:
        weights = [m.weight for m in layers for _ in range(2)]
        torch.autograd.backward(weights, grads)
        for m in layers:
            m.parametrizations.weight.original.grad = None

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    base = Discriminator(image_size=args.image_size, width=args.width)
    real = torch.randn(args.batch, 3, args.image_size, args.image_size)
    fake = torch.randn(args.batch, 3, args.image_size, args.image_size)
    models = {
        "none": copy.deepcopy(base),
        "ours": sn.apply_spectral_norm(copy.deepcopy(base)),
        "torch": torch_apply(copy.deepcopy(base)),
        "gp": copy.deepcopy(base),
    }
    steps = {v: make_step(v, models[v], real, fake) for v in VARIANTS}
    for _ in range(args.warmup):
        for v in VARIANTS:
            steps[v]()
    layers = [m for m in models["ours"].modules() if sn.is_spectral_normalized(m)]
    grads = [torch.randn_like(m.weight) for m in layers for _ in range(2)]
    steps["ours (SN work only)"] = sn_work(models["ours"], grads)
    steps["torch (SN work only)"] = sn_work(models["torch"], grads)
    names = list(steps)
    times: dict[str, list[float]] = {v: [] for v in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for v in order:
            start = time.perf_counter()
            steps[v]()
            times[v].append(time.perf_counter() - start)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"standard CNN D, batch {args.batch}, {args.image_size}x{args.image_size}, width "
        f"{args.width}, {args.rounds} interleaved rounds, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {load:.2f}"
    )
    med = {v: statistics.median(t) for v, t in times.items()}
    for v in names:
        q1, _, q3 = statistics.quantiles(times[v], n=4)
        print(f"  {v:20s} median {med[v] * 1e3:8.1f} ms   (IQR {q1 * 1e3:.1f}-{q3 * 1e3:.1f})")
    print(f"  ours  / none  = {med['ours'] / med['none']:.3f}")
    print(f"  torch / none  = {med['torch'] / med['none']:.3f}")
    print(f"  ours  / torch = {med['ours'] / med['torch']:.3f}")
    print(f"  gp    / none  = {med['gp'] / med['none']:.3f}")
    print(f"  gp    / ours  = {med['gp'] / med['ours']:.3f}")
    # The SN work alone is small and steady, so this share is a load-robust view of the overhead.
    for v in ("ours", "torch"):
        work = med[f"{v} (SN work only)"]
        print(f"  {v} SN work alone = {100 * work / med['none']:.1f}% of a step without SN")
    # Paired per-round ratio: robust to load drifting between rounds.
    paired = [a / b for a, b in zip(times["ours"], times["torch"], strict=True)]
    print(f"  ours / torch, median of per-round ratios = {statistics.median(paired):.3f}")


if __name__ == "__main__":
    main()
