"""Toy mode-collapse benchmark (notebook 04): GAN variants on the ring of 8 / grid of 25 Gaussians.

For each dataset, method and seed, trains the toy MLP GAN of
:func:`sngan_edu.experiments.toy_runs.toy_gan` with :class:`sngan_edu.train.trainer.Trainer`,
scores 2500 samples with the PacGAN metrics (:func:`sngan_edu.metrics.toy.toy_metrics`) and
prints one line per run with its CPU time, then a table of mean +- std over seeds. With
``--out`` the results go to a JSON file, like the study notebook 04 reads
(``sngan_edu/assets/studies/toy_results.json``), and the 2500 scored samples of each run to
``<out stem>_samples.npz`` beside it (keys ``<dataset>_<method>_seed<k>``). Runs use one CPU thread.

    .venv/bin/python benchmarks/toy_modes.py --datasets grid --methods gan sn --seeds 5 \
        --steps 16000 --out /tmp/toy/grid.json
    .venv/bin/python benchmarks/toy_modes.py --methods gan sn --datasets ring --seeds 1 --steps 500

Two processes (one per dataset or method) can share a 2-core machine; merge their files with
``--combine a.json b.json --out sngan_edu/assets/studies/toy_results.json`` (their sample files
are merged too).

What the comparison with the published tables is, and is not: every method here gets the same
generator steps, networks and batch, but the settings were tuned for SN-GAN on these mixtures
(lr 1e-3 falling linearly to 0, 16000 steps of batch 256), and SN-GAN's input scale 0.5/std
uses the true mode std, which no published method is given. PacGAN's grid numbers come from
another setup (G 4x400 with BatchNorm, D 3x200 maxout, lr 1e-4, beta1 0.8, batch 100, 10 runs).
The WGANs (``--methods wgan-gp clip``) run with their papers' defaults, untuned here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from sngan_edu.data.toy import DATASETS, make_sampler
from sngan_edu.experiments.toy_runs import TOY_METHODS, toy_gan
from sngan_edu.metrics.toy import N_EVAL_SAMPLES, format_results_table, toy_metrics
from sngan_edu.train.trainer import Trainer


def run_one(method: str, dataset: str, steps: int, seed: int) -> dict:
    """Train one run and return its metrics, wall time and CPU time (of training only).

    With one thread, the process's CPU time is what the run costs on an idle core; unlike the
    wall time it hardly changes when other processes share the machine.
    """
    G, D, config = toy_gan(method, dataset, steps, seed, cpu_threads=1)
    trainer = Trainer(G, D, make_sampler(dataset), config)
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    samples = trainer.sample(N_EVAL_SAMPLES, seed=seed)
    m = toy_metrics(samples, dataset)
    return {"dataset": dataset, "method": method, "seed": seed, "steps": trainer.step,
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2), **m.as_dict(),
            "samples": samples.numpy()}


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize_runs(runs: list[dict]) -> list[dict]:
    """Mean and sample std over seeds per (dataset, method), in first-seen order.

    ``runs`` are dicts with dataset, method, modes, high_quality, reverse_kl, seconds and
    cpu_seconds (as :func:`run_one` returns them). Runs with no high-quality sample have NaN
    reverse KL; they are left out of the KL mean and counted in ``kl_undefined``.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    summary = []
    for (dataset, method), rows in groups.items():
        modes = _mean_std([float(r["modes"]) for r in rows])
        hq = _mean_std([float(r["high_quality"]) for r in rows])
        kl = _mean_std([float(r["reverse_kl"]) for r in rows])
        secs = _mean_std([float(r["seconds"]) for r in rows])
        cpu = [float(r["cpu_seconds"]) for r in rows]  # one thread: robust to machine load
        summary.append({
            "dataset": dataset, "method": method, "seeds": len(rows),
            "n_modes": rows[0]["n_modes"], "steps": rows[0]["steps"],
            "modes_mean": modes[0], "modes_std": modes[1],
            "hq_mean": hq[0], "hq_std": hq[1],
            "kl_mean": kl[0], "kl_std": kl[1],
            "kl_undefined": sum(math.isnan(float(r["reverse_kl"])) for r in rows),
            "full_coverage": sum(r["modes"] == r["n_modes"] for r in rows),
            "seconds_mean": secs[0], "seconds_max": max(float(r["seconds"]) for r in rows),
            "cpu_seconds_mean": _mean_std(cpu)[0], "cpu_seconds_max": max(cpu),
        })
    return summary


def run_key(run: dict) -> str:
    """The key of a run's samples in the samples file: ``<dataset>_<method>_seed<k>``."""
    return f"{run['dataset']}_{run['method']}_seed{run['seed']}"


def samples_path(results_path: str | Path) -> Path:
    """Where the samples of a results file live: ``<stem>_samples.npz`` beside it."""
    results_path = Path(results_path)
    return results_path.with_name(f"{results_path.stem}_samples.npz")


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not available everywhere
        return None


def combine(paths: list[str]) -> dict:
    """Merge result files (their runs; the metadata of each file is kept in ``parts``)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    runs = [r for part in parts for r in part["runs"]]
    metas = [m for p in parts for m in p.get("parts", [p["meta"]])]
    result = {"parts": metas, "meta": metas[0], "runs": runs, "summary": summarize_runs(runs)}
    notes = [n for p in parts for n in p.get("notes", [])]
    if notes:  # e.g. which runs of a part were left out, and why
        result["notes"] = notes
    return result


def combine_samples(paths: list[str], out: str | Path) -> None:
    """Merge the samples files beside ``paths`` (those that have one) beside ``out``."""
    arrays: dict[str, np.ndarray] = {}
    for p in paths:
        if samples_path(p).is_file():
            with np.load(samples_path(p)) as f:
                arrays.update({k: f[k] for k in f.files})
    if arrays:
        np.savez_compressed(samples_path(out), **arrays)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    methods = list(TOY_METHODS)
    parser.add_argument("--methods", nargs="+", default=methods, choices=methods)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    parser.add_argument("--steps", type=int, default=16000,
                        help="generator steps of every run")
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="merge result files into --out")
    args = parser.parse_args(argv)
    if args.combine:
        if not args.out:
            parser.error("--combine needs --out")
        result = combine(args.combine)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        combine_samples(args.combine, args.out)
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
    runs, samples = [], {}
    for dataset in args.datasets:
        for method in args.methods:
            for seed in range(args.seeds):
                r = run_one(method, dataset, args.steps, seed)
                samples[run_key(r)] = r.pop("samples")
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
        np.savez_compressed(samples_path(args.out), **samples)
        print(f"wrote {args.out} and {samples_path(args.out)}")


if __name__ == "__main__":
    main()
