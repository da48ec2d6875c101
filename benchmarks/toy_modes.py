"""Toy mode-collapse benchmark (notebook 04): GAN variants on the ring of 8 / grid of 25 Gaussians.

For each method, dataset and seed, trains the toy MLP GAN with :class:`sngan_edu.train.Trainer`
and prints modes captured, % high-quality samples and reverse KL (2500 samples, PacGAN
definitions, :func:`sngan_edu.toy_metrics.toy_metrics`) as mean +- std over seeds, plus the
wall time of every run. Example (a quick check)::

    .venv/bin/python benchmarks/toy_modes.py --methods gan sn --datasets ring --seeds 1 --steps 200

Wall times are noisy on a shared CPU; note ``uptime`` when quoting them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sngan_edu.models.toy_mlp import ToyDiscriminator, ToyGenerator
from sngan_edu.toy import make_sampler, mixture_std
from sngan_edu.toy_metrics import toy_metrics
from sngan_edu.train import TrainConfig, Trainer

# Shared by all methods: Adam(lr 1e-3, betas 0.5/0.9), batch 256, z in R^2, 3x128 MLPs.
COMMON = dict(batch_size=256, z_dim=2, lr=1e-3, beta1=0.5, beta2=0.9, n_dis=1)
# SN-GAN's discriminator multiplies its input by 0.5 / std (10 on the grid, 50 on the ring), so
# that its logit may change by up to 1.5 across the 3-std zone of one mode (see notebook 04).
SN_SCALE_TIMES_STD = 0.5
# method -> (TrainConfig overrides, discriminator input scale; None means 0.5 / std)
METHODS: dict[str, tuple[dict, float | None]] = {
    "gan": (dict(loss="vanilla", regularizer="none"), 1.0),
    "sn": (dict(loss="vanilla", regularizer="sn"), None),
    "wgan-gp": (dict(loss="wasserstein", regularizer="gp", lr=1e-4, n_dis=5), 1.0),
    "clip": (dict(loss="wasserstein", regularizer="clip", lr=5e-5, n_dis=5), 1.0),
}
DATASETS = ("ring", "grid")


def make_trainer(method: str, dataset: str, steps: int, seed: int, callbacks=()) -> Trainer:
    """A seeded Trainer for ``method`` on ``dataset`` (models built after seeding)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}")
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}; got {dataset!r}")
    overrides, scale = METHODS[method]
    torch.manual_seed(seed)
    if scale is None:
        scale = SN_SCALE_TIMES_STD / mixture_std(dataset)
    G, D = ToyGenerator(z_dim=2), ToyDiscriminator(input_scale=scale)
    config = TrainConfig(
        steps=steps, seed=seed, progress=False, num_threads=1, device="cpu",
        **{**COMMON, **overrides},
    )
    return Trainer(G, D, make_sampler(dataset), config, callbacks=callbacks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    parser.add_argument("--steps", type=int, default=1500, help="generator steps per run")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.steps < 1:
        parser.error("--seeds and --steps must be positive")
    torch.set_num_threads(1)

    rows = []
    for dataset in args.datasets:
        for method in args.methods:
            results, times = [], []
            for seed in range(args.seeds):
                trainer = make_trainer(method, dataset, args.steps, seed)
                start = time.perf_counter()
                trainer.fit()
                times.append(time.perf_counter() - start)
                m = toy_metrics(trainer.sample(2500, seed=0), dataset)
                results.append(m)
                print(f"{dataset:5s} {method:8s} seed {seed}: modes {m.modes}/{m.n_modes}  "
                      f"hq {m.high_quality:5.1f}%  rKL {m.reverse_kl:.3f}  {times[-1]:.1f} s",
                      flush=True)
            rows.append((dataset, method, results, times))

    def stat(values: list[float], fmt: str) -> str:
        values = [v for v in values if v == v]  # drop NaN (no high-quality sample)
        if not values:
            return "nan"
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):{fmt}} +- {spread:{fmt}}"

    print(f"\n{args.steps} steps, {args.seeds} seed(s), 1 thread")
    print(f"{'dataset':7s} {'method':8s} {'modes':>14s} {'% high qual.':>16s} "
          f"{'reverse KL':>16s}  seconds/run")
    for dataset, method, results, times in rows:
        print(f"{dataset:7s} {method:8s} {stat([r.modes for r in results], '.1f'):>14s} "
              f"{stat([r.high_quality for r in results], '.1f'):>16s} "
              f"{stat([r.reverse_kl for r in results], '.2f'):>16s}  "
              + " ".join(f"{t:.0f}" for t in times))


if __name__ == "__main__":
    main()
