"""Prototype: a class-conditional SN-GAN on the embedded digits ("draw me a 7").

Trains :class:`~sngan_edu.models.conditional.ConditionalGenerator` (conditional BN) against a
spectrally normalized :class:`~sngan_edu.models.conditional.ProjectionDiscriminator` (or, with
``--d concat``, the older :class:`~sngan_edu.models.conditional.ConcatDiscriminator`) with the
course's own step functions (:func:`sngan_edu.gan_step.discriminator_step` and
:func:`~sngan_edu.gan_step.generator_step`): the loop of notebook 05 with a label batch beside
each image batch (real images keep their labels, G's labels are drawn uniformly). The networks
see the labels through :class:`~sngan_edu.models.conditional.BoundLabels`.

Defaults are notebook 05's (G x0.5, D x0.125, Adam setting D with n_dis 3, batch 32, an
average of G's weights with decay 0.99, 3000 G steps, z in R^128, 16x16 digits, all 1,797
images). At the end it prints the time, the class agreement per class (1,000 samples, 100 per
class, from the averaged G; the course's digit classifier) and the overall and per-class FD
against the real digits.

    .venv/bin/python benchmarks/conditional_digits.py --steps 50            # a smoke run
    .venv/bin/python benchmarks/conditional_digits.py --seed 0 --d projection concat
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from sngan_edu.data.images import load_image_data
from sngan_edu.gan_step import discriminator_step, generator_step
from sngan_edu.losses import hinge_d_loss, hinge_g_loss
from sngan_edu.metrics.classifier import load_classifier
from sngan_edu.metrics.conditional import N_PER_CLASS, score_conditional_generator
from sngan_edu.models.conditional import (
    BoundLabels,
    ConcatDiscriminator,
    ConditionalGenerator,
    ProjectionDiscriminator,
)
from sngan_edu.sn import normalized_sigmas

DISCRIMINATORS = {"projection": ProjectionDiscriminator, "concat": ConcatDiscriminator}
NUM_CLASSES = 10


@torch.no_grad()
def update_average(avg: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """avg <- decay * avg + (1 - decay) * model for the weights; buffers (BN statistics) copied."""
    for p_avg, p in zip(avg.parameters(), model.parameters(), strict=True):
        p_avg.lerp_(p, 1 - decay)
    for b_avg, b in zip(avg.buffers(), model.buffers(), strict=True):
        b_avg.copy_(b)


def train(d_kind: str, args: argparse.Namespace) -> dict:
    data = load_image_data("digits", image_size=16, split="all")
    images, labels = data.float_images(), data.labels
    torch.manual_seed(args.seed)
    G = ConditionalGenerator(NUM_CLASSES, args.z_dim, 16, 1, args.width)
    D = DISCRIMINATORS[d_kind](NUM_CLASSES, 16, 1, args.d_width, spectral_norm=True)
    G_avg = copy.deepcopy(G)
    G_on, D_on = BoundLabels(G), BoundLabels(D)
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.9))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.9))
    g = torch.Generator().manual_seed(args.seed)
    b = args.batch_size
    start = time.perf_counter()
    for step in range(args.steps):
        for _ in range(args.n_dis):
            idx = torch.randint(len(images), (b,), generator=g)
            y_fake = torch.randint(NUM_CLASSES, (b,), generator=g)
            z = torch.randn(b, args.z_dim, generator=g)
            with torch.no_grad():
                G_on.labels = y_fake
                fake = G_on(z)
            D_on.labels = torch.cat([labels[idx], y_fake])  # joint forward: real, then fake
            out = discriminator_step(D_on, opt_D, images[idx], fake, hinge_d_loss, "sn")
        y = torch.randint(NUM_CLASSES, (b,), generator=g)
        G_on.labels = D_on.labels = y
        g_loss = generator_step(G_on, D_on, opt_G, torch.randn(b, args.z_dim, generator=g),
                                hinge_g_loss)
        update_average(G_avg, G, args.g_ema)
        if not (torch.isfinite(out.loss) and torch.isfinite(g_loss)):
            raise FloatingPointError(f"the loss is not finite at step {step}")
    seconds = time.perf_counter() - start
    scores = score_conditional_generator(G_avg, load_classifier(), images, labels, args.z_dim,
                                         n_per_class=N_PER_CLASS, seed=0)
    sigmas = normalized_sigmas(D)
    return {"d": d_kind, "seed": args.seed, "steps": args.steps, "train_seconds": seconds,
            "sigma_embed": sigmas.get("embed"), "sigma_max_other": max(
                v for k, v in sigmas.items() if k != "embed"), **scores}


def report(result: dict) -> None:
    print(f"\n{result['d']} D, seed {result['seed']}, {result['steps']} G steps: "
          f"{result['train_seconds']:.0f} s of training")
    print("class      " + " ".join(f"{k:>5d}" for k in range(NUM_CLASSES)) + "   mean   min")
    print("agreement  " + " ".join(f"{a:5.2f}" for a in result["agreement_per_class"])
          + f"  {result['agreement']:5.3f} {result['agreement_min']:5.2f}")
    print("class FD   " + " ".join(f"{f:5.1f}" for f in result["fd_per_class"])
          + f"  {result['class_fd_mean']:5.1f}")
    print(f"overall FD {result['fd']:.2f} ({NUM_CLASSES * N_PER_CLASS} samples against all "
          f"1,797 real digits)")
    if result["sigma_embed"] is not None:
        print(f"sigma of D's normalized class embedding {result['sigma_embed']:.3f}; largest "
              f"of the other layers {result['sigma_max_other']:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d", nargs="+", default=["projection"], choices=list(DISCRIMINATORS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-dis", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--d-width", type=float, default=0.125)
    parser.add_argument("--z-dim", type=int, default=128)
    parser.add_argument("--g-ema", type=float, default=0.99)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for d_kind in args.d:
        results.append(train(d_kind, args))
        report(results[-1])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "runs": results}, handle, indent=1)


if __name__ == "__main__":
    main()
