"""Notebook 06's watch of the discriminator's scale over several seeds: what holds for every seed.

    .venv/bin/python benchmarks/watch_seeds.py                 # seeds 0-4, prints a summary
    .venv/bin/python benchmarks/watch_seeds.py --update-stored  # also writes the results

A 120-step GAN run is chaotic: on another CPU type (other float kernels) it is, in effect, a
run with another seed. So notebook 06 states of its watch what holds over the seeds here (a
median, a range, a count), and its facts file asserts of the notebook's own run only what holds
for every one of them. The runs are :data:`sngan_edu.experiments.lipschitz_runs.WATCH_RUNS`,
made by :func:`~sngan_edu.experiments.lipschitz_runs.watch_discriminator` with ``seed`` set;
seed 0 is the notebook's. Results: benchmarks/results/watch_seeds.json (the measured series of
every run; tests/test_watch_seeds.py ties the notebook's text to them).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from sngan_edu.experiments.lipschitz_runs import (
    WATCH_EVERY,
    WATCH_RUNS,
    WATCH_STEPS,
    watch_discriminator,
)

ROOT = Path(__file__).resolve().parent.parent
STORED = Path(__file__).resolve().parent / "results" / "watch_seeds.json"
LATE = 30  # "once D has learned anything": measurements from this step on


def run_key(setting: str, regularizer: str, init: str) -> str:
    return f"{setting}_{regularizer}_{init}"


def one_seed(seed: int) -> dict:
    """Every watch run of the notebook with ``seed``: the recorded series, by run key."""
    out = {}
    for setting, reg, init in WATCH_RUNS:
        w = watch_discriminator(setting, reg, steps=WATCH_STEPS, every=WATCH_EVERY, seed=seed,
                                init=init)
        out[run_key(setting, reg, init)] = {
            "steps": w.steps, "layers": w.layers, "product": w.product,
            "largest_layer": w.largest_layer, "grad_fake": w.grad_fake,
            "grad_real": w.grad_real}
    return out


def late(run: dict, name: str = "grad_fake") -> list[float]:
    """A run's ``name`` series from step LATE on."""
    return [v for step, v in zip(run["steps"], run[name], strict=True) if step >= LATE]


def summary(seeds: dict[str, dict]) -> dict[str, dict]:
    """Per run key, over the seeds: range of grad_fake from step LATE on, the range of the
    seeds' medians of it, the final product, the largest layer factor, and the smallest and
    largest layer factor of any layer at any step."""
    keys = next(iter(seeds.values())).keys()
    table = {}
    for key in keys:
        runs = [seeds[s][key] for s in seeds]
        grads = [g for r in runs for g in late(r)]
        medians = [statistics.median(late(r)) for r in runs]
        factors = [v for r in runs for values in r["layers"].values() for v in values]
        table[key] = {
            "late_grad_fake_range": [min(grads), max(grads)],
            "late_grad_fake_median": statistics.median(grads),
            "seed_medians_range": [min(medians), max(medians)],
            "final_product_range": [min(r["product"][-1] for r in runs),
                                    max(r["product"][-1] for r in runs)],
            "final_grad_fake_range": [min(r["grad_fake"][-1] for r in runs),
                                      max(r["grad_fake"][-1] for r in runs)],
            "top_layer_range": [min(max(r["largest_layer"]) for r in runs),
                                max(max(r["largest_layer"]) for r in runs)],
            "layer_factor_range": [min(factors), max(factors)],
        }
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--update-stored", action="store_true",
                        help=f"write the results to {STORED.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    start = time.time()
    seeds = {}
    for seed in args.seeds:
        seeds[str(seed)] = one_seed(seed)
        print(f"seed {seed} done ({time.time() - start:.0f} s)", flush=True)
    table = summary(seeds)
    for key, row in table.items():
        print(key, {k: [round(v, 3) for v in val] if isinstance(val, list) else round(val, 3)
                    for k, val in row.items()})
    if args.update_stored:
        STORED.parent.mkdir(parents=True, exist_ok=True)
        STORED.write_text(json.dumps({
            "command": "python benchmarks/watch_seeds.py --update-stored "
                       + " ".join(["--seeds", *map(str, args.seeds)]),
            "machine": {"platform": platform.platform(), "processor": platform.processor()},
            "steps": WATCH_STEPS, "every": WATCH_EVERY, "late_from": LATE,
            "seconds": round(time.time() - start, 1), "summary": table, "seeds": seeds},
            indent=1) + "\n")
        print("wrote", STORED.relative_to(ROOT))


if __name__ == "__main__":
    main()
