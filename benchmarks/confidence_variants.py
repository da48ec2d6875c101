"""Which changes to notebook 05's defaults raise the generated digits' mean confidence?

Each variant trains notebook 05's default run (standard CNN, G width 0.5, D width 0.125, SN,
hinge loss, Adam setting D with n_dis 3, batch 32, averaged G at 0.99, 3000 steps) with one
change, for several seeds, and scores 10,000 fresh samples (noise seed 1) with the course's
digit classifier. It prints each run and, per variant, the mean over seeds; a variant is only
worth adopting if it beats ``base`` by more than the seed spread (about 0.01-0.02 here).

    python benchmarks/confidence_variants.py --variants base z_dim_32 --seeds 0 1 2
    python benchmarks/confidence_variants.py --jobs 2          # every variant, two at a time

Runs use one CPU thread each, so ``--jobs 2`` fills a 2-core machine; train times are then
comparable only within one invocation. Scores depend on the thread count and the CPU (GAN
training is chaotic), so compare variants measured on the same machine.
"""

from __future__ import annotations

import argparse
import statistics
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from sngan_edu.data.images import load_image_data
from sngan_edu.metrics import images as image_metrics
from sngan_edu.metrics.classifier import DIGITS_CLASSIFIER, load_classifier
from sngan_edu.models.standard_cnn import Discriminator, Generator
from sngan_edu.train.config import RunConfig
from sngan_edu.train.trainer import Trainer

DEFAULTS: dict[str, Any] = {"width": 0.5, "d_width": 0.125, "z_dim": 128, "steps": 3000,
                            "n_dis": 3, "lr_g": None, "lr_d": None, "batch_size": 32,
                            "z_categories": 0}
# One change each from DEFAULTS (the training time changes with some of them: see the output).
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "z_dim_32": {"z_dim": 32},
    "d_width_0.25_n_dis_2": {"d_width": 0.25, "n_dis": 2},
    "lr_g_5e-4": {"lr_g": 5e-4},
    "lr_d_2e-3": {"lr_d": 2e-3},
    "width_0.75_2400_steps": {"width": 0.75, "steps": 2400},
    "n_dis_2_3800_steps": {"n_dis": 2, "steps": 3800},
    "4500_steps": {"steps": 4500},
    "z_categories_10": {"z_categories": 10},  # a one-hot code in z (models.latent)
}


def run_variant(name: str, seed: int) -> dict[str, Any]:
    """Train one variant for one seed on one thread; return its 10,000-sample scores."""
    torch.set_num_threads(1)
    p = {**DEFAULTS, **VARIANTS[name]}
    data = load_image_data("digits", None, 16, split="all")
    torch.manual_seed(seed)
    G = Generator(z_dim=p["z_dim"], image_size=16, channels=1, width=p["width"],
                  z_categories=p["z_categories"])
    D = Discriminator(image_size=16, channels=1, width=p["d_width"])
    config = RunConfig(steps=p["steps"], batch_size=p["batch_size"], z_dim=p["z_dim"],
                       setting="D", n_dis=p["n_dis"], lr_g=p["lr_g"], lr_d=p["lr_d"],
                       loss="hinge", regularizer="sn", seed=seed, device="cpu", g_ema=0.99,
                       channels_last=True, progress=False, out_dir=None, cpu_threads=None)
    trainer = Trainer(G, D, data.sample, config)
    trainer.fit()
    classifier = load_classifier(DIGITS_CLASSIFIER, device="cpu")
    scores = image_metrics.classifier_metrics(classifier, trainer.sample(10_000, seed=1),
                                              data.float_images(2000).cpu())
    return {"variant": name, "seed": seed, "seconds": trainer.elapsed, **scores}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (1 thread each)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise ValueError(f"--jobs must be a positive integer; got {args.jobs}")
    names = [name for name in args.variants for _ in args.seeds]
    seeds = [seed for _ in args.variants for seed in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run_variant, names, seeds))
    for r in results:
        print(f"{r['variant']:22s} seed {r['seed']}: confidence {r['confidence']:.3f}  "
              f"FD {r['fd']:5.1f}  classes {r['classes']:2d}  train {r['seconds']:.0f} s")
    print("\nmean over seeds (10,000 fresh samples each):")
    for name in args.variants:
        conf = [r["confidence"] for r in results if r["variant"] == name]
        spread = statistics.stdev(conf) if len(conf) > 1 else float("nan")
        print(f"{name:22s} confidence {statistics.mean(conf):.3f}  (seed sd {spread:.3f}, "
              f"{len(conf)} seeds)")


if __name__ == "__main__":
    main()
