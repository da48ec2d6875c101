"""Power iteration vs SVD for the spectral norm, at the paper's layer sizes.

    .venv/bin/python benchmarks/power_iteration_vs_svd.py [--repeats 7] [--steps 1000] [--threads 1]

One thread by default: see --threads.

Part 1 times, side by side in one run, an exact sigma (torch.linalg.svdvals on W and on W^T,
a full torch.linalg.svd too) and one power iteration, for reshaped weight shapes of the paper's
discriminators up to 512 x 4608 (a 3x3 conv with 512 -> 512 channels). Timings are interleaved
(every repeat measures every shape and method once) and summarised by medians; the ratio
column is the faster exact sigma / one bare power iteration.

Part 2 simulates training: a Gaussian-initialised weight drifts by a small random step each
"training step" and sigma is estimated with ONE power iteration per step, starting from the
previous step's u (what SN does), or from a fresh random u (the circulating mistake). It prints
the relative error |sigma - estimate| / sigma after N steps, against the exact SVD.
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from sngan_edu.experiments.convergence import track_sigma_under_drift
from sngan_edu.experiments.sigma_timing import time_sigma_methods

# (rows, cols) of reshaped weights: the standard CNN's convs (out x in*kh*kw) and ResNet's largest
SHAPES = [(64, 27), (128, 576), (128, 2048), (256, 4096), (512, 2304), (512, 4608)]
TRACK_SHAPES = [(128, 576), (512, 4608)]


def load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"
    except OSError:
        return "load average unavailable"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=1000, help="simulated training steps")
    parser.add_argument(
        "--drift", type=float, default=1e-3, help="relative Frobenius change of W per step"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1; 0 = torch's default, one per core). On a "
        "2-core machine, 2 threads made svdvals of 128 x 576 ~350x slower "
        "(2.8 s vs 7.9 ms) and the timings meaningless; one thread gives stable comparisons.",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.steps < 1 or args.drift < 0:
        parser.error("--repeats and --steps must be >= 1 and --drift >= 0")
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, {load()}"
    )
    print(
        f"\n1) one power iteration vs an exact sigma, float32, median of {args.repeats} "
        "interleaved rounds"
    )
    rows = time_sigma_methods(
        SHAPES, repeats=args.repeats, generator=torch.Generator().manual_seed(args.seed)
    )
    header = (
        f"{'shape':>12} {'svdvals(W) ms':>14} {'exact sigma ms':>15} {'full svd ms':>12}"
        f" {'1 iter ms':>10} {'power_iteration() ms':>21} {'exact / 1 iter':>15}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['m']:>5} x {r['n']:<5} {1e3 * r['svdvals']:>14.3f} {1e3 * r['exact']:>15.3f}"
            f" {1e3 * r['svd']:>12.3f} {1e3 * r['power_step']:>10.4f}"
            f" {1e3 * r['power_iteration']:>21.4f} {r['ratio']:>14.0f}x"
        )
    print(
        "svdvals(W): torch.linalg.svdvals on the wide reshaped weight; exact sigma:"
        " spectral_norm_exact (svdvals of the tall W^T);\n'1 iter': two mat-vecs + two"
        " normalisations, what SN adds per step; power_iteration() adds input checks."
    )

    checkpoints = sorted({1, 10, 100, args.steps} | ({1000} if args.steps >= 1000 else set()))
    checkpoints = [c for c in checkpoints if c <= args.steps]
    print(
        f"\n2) relative error |sigma - estimate| / sigma with ONE power iteration per step, "
        f"W drifting by {args.drift:g} (relative Frobenius) per step, float32"
    )
    print(
        f"{'shape':>12} {'start u':>12} " + " ".join(f"{'step ' + str(c):>11}" for c in checkpoints)
    )
    for m, n in TRACK_SHAPES:
        g = torch.Generator().manual_seed(args.seed + m + n)
        W0 = torch.randn(m, n, generator=g) / n**0.5
        for persistent in (True, False):
            run = track_sigma_under_drift(
                W0,
                args.steps,
                drift=args.drift,
                n_iters=1,
                persistent=persistent,
                generator=torch.Generator().manual_seed(args.seed),
                record_at=checkpoints,
            )
            label = "persistent" if persistent else "fresh random"
            errors = " ".join(f"{float(e):>11.2e}" for e in run.rel_error.abs())
            print(f"{m:>5} x {n:<5} {label:>12} {errors}")
    print(f"\n{load()}")


if __name__ == "__main__":
    main()
