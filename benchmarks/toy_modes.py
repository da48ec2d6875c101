"""Toy mode-collapse benchmark (notebook 04): GAN variants on the ring of 8 / grid of 25 Gaussians.

For each dataset, method and seed, trains the toy MLP GAN of
:func:`sngan_edu.models.toy_mlp.toy_gan` with :class:`sngan_edu.train.Trainer`, scores 2500
samples with the PacGAN metrics (:func:`sngan_edu.metrics.toy.toy_metrics`) and prints one line
per run with its wall time, then a table of mean +- std over seeds. With ``--out`` the results go
to a JSON file that notebook 04 reads (``data/toy_results.json``). Runs use one CPU thread.

    .venv/bin/python benchmarks/toy_modes.py --seeds 5 --steps 16000 --out data/toy_results.json
    .venv/bin/python benchmarks/toy_modes.py --methods gan sn --datasets ring --seeds 1 --steps 500

Two processes (one per dataset) can share a 2-core machine; merge their files with
``--combine a.json b.json --out data/toy_results.json``. Wall times are noisy on a shared CPU:
every file records the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from sngan_edu.data.toy import DATASETS, make_sampler
from sngan_edu.experiments.toy_runs import TOY_METHODS, toy_gan
from sngan_edu.metrics.toy import N_EVAL_SAMPLES, format_results_table, summarize_runs, toy_metrics
from sngan_edu.train.trainer import Trainer


def run_one(method: str, dataset: str, steps: int, seed: int) -> dict:
    """Train one run and return its metrics, wall time and CPU time (of training only).

    With one thread, the process's CPU time is what the run costs on an idle core; unlike the
    wall time it hardly changes when other processes share the machine.
    """
    G, D, config = toy_gan(method, dataset, steps, seed, num_threads=1)
    trainer = Trainer(G, D, make_sampler(dataset), config)
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    m = toy_metrics(trainer.sample(N_EVAL_SAMPLES, seed=seed), dataset)
    return {"dataset": dataset, "method": method, "seed": seed, "steps": trainer.step,
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2), **m.as_dict()}


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not available everywhere
        return None


def combine(paths: list[str]) -> dict:
    """Merge result files (their runs; the metadata of each file is kept in ``parts``)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    runs = [r for part in parts for r in part["runs"]]
    return {"parts": [p["meta"] for p in parts], "meta": parts[0]["meta"], "runs": runs,
            "summary": summarize_runs(runs)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    methods = list(TOY_METHODS)
    parser.add_argument("--methods", nargs="+", default=methods, choices=methods)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    parser.add_argument("--steps", type=int, default=16000,
                        help="generator steps of GAN/SN runs (WGANs get a fraction, see toy_gan)")
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="merge result files into --out")
    args = parser.parse_args(argv)
    if args.combine:
        if not args.out:
            parser.error("--combine needs --out")
        result = combine(args.combine)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        print(format_results_table(result["summary"]))
        return
    if args.seeds < 1 or args.steps < 1:
        parser.error("--seeds and --steps must be positive")
    torch.set_num_threads(1)

    meta = {
        "command": " ".join(["python benchmarks/toy_modes.py", *(sys.argv[1:] if argv is None
                                                                 else argv)]),
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_average(), "threads": 1, "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "steps": args.steps, "seeds": args.seeds, "eval_samples": N_EVAL_SAMPLES,
    }
    runs = []
    for dataset in args.datasets:
        for method in args.methods:
            for seed in range(args.seeds):
                r = run_one(method, dataset, args.steps, seed)
                runs.append(r)
                print(f"{dataset:5s} {method:9s} seed {seed}: modes {r['modes']}/{r['n_modes']}  "
                      f"hq {r['high_quality']:5.1f}%  rKL {r['reverse_kl']:.3f}  "
                      f"{r['steps']} steps {r['seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU "
                      f"(load {load_average()})",
                      flush=True)
    meta["load_after"] = load_average()
    summary = summarize_runs(runs)
    print()
    print(format_results_table(summary))
    print(f"load average before/after: {meta['load_before']} / {meta['load_after']}")
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "runs": runs, "summary": summary},
                                             indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
