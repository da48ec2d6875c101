"""Notebook 07's study: the class-conditional SN-GAN on the embedded digits, over seeds.

Each run is the library's run (:func:`sngan_edu.experiments.sngan_run.run_sngan`) of
``RunConfig(conditional=True, d_conditioning=D, seed=S)`` with notebook 05's other defaults
(G x0.5 with conditional BN, D x0.125 with SN on every layer and the class embedding, Adam
setting D with n_dis 3, batch 32, the average of G's weights, 3000 G steps, 16x16 digits, all
1,797 images), on one CPU thread. After training it scores the averaged G with
:func:`sngan_edu.metrics.conditional.score_conditional_generator` (1,000 samples, 100 requested
as each class, fixed noise; the course's digit classifier): class agreement and FD per class,
and the overall FD of the run's final evaluation (05's protocol: 1,000 samples, classes in turn,
against the real digits). It prints the table per D and writes the runs with their mean and
sample standard deviation to ``--out`` (the stored study notebook 07 reads).

    .venv/bin/python benchmarks/conditional_digits.py --steps 50 --seeds 0 --out /tmp/c.json
    .venv/bin/python benchmarks/conditional_digits.py --d projection concat --seeds 0 1 2 --jobs 2
    .venv/bin/python benchmarks/conditional_digits.py --merge a.json b.json   # one study of two
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sngan_edu.assets import studies_dir
from sngan_edu.experiments.sngan_run import run_sngan
from sngan_edu.metrics.classifier import load_classifier
from sngan_edu.metrics.conditional import N_PER_CLASS, score_conditional_generator
from sngan_edu.sn import normalized_sigmas
from sngan_edu.train.config import RunConfig

NUM_CLASSES = 10
STORED = studies_dir() / "notebook07_seeds.json"
SUMMARIZED = ("agreement", "agreement_min", "fd", "class_fd_mean", "train_seconds")


def one_run(d_kind: str, seed: int, steps: int, out_root: str) -> dict:
    """Train one conditional run through the library (continuing the checkpoint of an
    interrupted one: resuming is bit for bit) and score it."""
    out = Path(out_root) / f"{d_kind}_seed{seed}"
    resume = (out / "checkpoint.pt").is_file()
    config = RunConfig(conditional=True, d_conditioning=d_kind, seed=seed, steps=steps,
                       cpu_threads=1, out_dir=str(out), overwrite=not resume, resume=resume,
                       progress=False, eval_every=max(1, min(500, steps)))
    result = run_sngan(config)
    data, trainer = result.data, result.trainer
    scores = score_conditional_generator(trainer.sampling_generator, load_classifier(),
                                         data.float_images(), data.labels.cpu(), config.z_dim,
                                         n_per_class=N_PER_CLASS, seed=0)
    sigmas = normalized_sigmas(trainer.D)
    return {"d": d_kind, "seed": seed, "steps": trainer.step,
            "train_seconds": round(result.fit_seconds, 1), **scores,
            "fd_requested": scores["fd"], "fd": result.final["fd"],
            "final": result.final, "sigma_embed": sigmas.get("embed"),
            "sigma_others": {k: v for k, v in sigmas.items() if k != "embed"}}


def summarize(runs: list[dict]) -> list[dict]:
    """Per D: the mean and sample standard deviation over seeds of each summarized score and
    of the agreement and FD of each class."""
    rows = []
    for d_kind in dict.fromkeys(r["d"] for r in runs):
        mine = [r for r in runs if r["d"] == d_kind]
        row = {"d": d_kind, "seeds": [r["seed"] for r in mine]}
        series = {k: [r[k] for r in mine] for k in SUMMARIZED}
        for k in range(NUM_CLASSES):
            series[f"agreement_{k}"] = [r["agreement_per_class"][k] for r in mine]
            series[f"fd_{k}"] = [r["fd_per_class"][k] for r in mine]
        for key, values in series.items():
            row[f"{key}_mean"] = statistics.fmean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["agreement_min_of_means"] = min(row[f"agreement_{k}_mean"]
                                            for k in range(NUM_CLASSES))
        rows.append(row)
    return rows


def report(rows: list[dict]) -> None:
    for row in rows:
        print(f"\n{row['d']} D, seeds {row['seeds']}: mean (std)")
        for name in ("agreement", "fd"):
            print(f"{'class agreement' if name == 'agreement' else 'class FD':16s}"
                  + " ".join(f"{k}: {row[f'{name}_{k}_mean']:.2f}({row[f'{name}_{k}_std']:.2f})"
                             for k in range(NUM_CLASSES)))
        print(" | ".join(f"{k} {row[f'{k}_mean']:.3f} ({row[f'{k}_std']:.3f})"
                         for k in SUMMARIZED))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d", nargs="+", default=["projection", "concat"],
                        choices=["projection", "concat"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=RunConfig().steps)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (one thread each)")
    parser.add_argument("--runs", default="runs/conditional", help="the runs' folders")
    parser.add_argument("--out", default=str(STORED), help="where the study is written")
    parser.add_argument("--merge", nargs="+", default=None, metavar="STUDY",
                        help="train nothing: write the runs of these study files as one")
    args = parser.parse_args(argv)
    if args.merge:
        studies = [json.loads(Path(name).read_text()) for name in args.merge]
        runs = [run for study in studies for run in study["runs"]]
        args.steps = studies[0]["steps"]
        if any(study["steps"] != args.steps for study in studies):
            raise SystemExit("the studies to merge have different steps")
        write_study(args, argv, runs, sum(study["wall_seconds"] for study in studies),
                    merged=[study["command"] for study in studies])
        report(summarize(runs))
        return
    jobs = [(d, s, args.steps, args.runs) for d in args.d for s in args.seeds]
    start = time.perf_counter()
    runs: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for run in pool.map(one_run, *zip(*jobs, strict=True)):
            runs.append(run)  # the study so far is written after each run
            write_study(args, argv, runs, time.perf_counter() - start)
    report(summarize(runs))
    print(f"\nwritten to {args.out}")


def write_study(args: argparse.Namespace, argv: list[str] | None, runs: list[dict],
                seconds: float, merged: list[str] | None = None) -> None:
    """Write the study of ``runs`` to ``args.out`` (``merged``: the commands of the studies
    merged into it, recorded as its ``command``)."""
    study = {"command": merged or "python benchmarks/conditional_digits.py " + " ".join(
                 sys.argv[1:] if argv is None else argv),
             "notebook": "07_conditional_sngan.ipynb", "steps": args.steps,
             "parameters": RunConfig(conditional=True).parameters(),
             "machine": {"platform": platform.platform(), "processor": platform.processor(),
                         "jobs": args.jobs},
             "n_per_class": N_PER_CLASS, "wall_seconds": round(seconds),
             "summary": summarize(runs), "runs": runs}
    Path(args.out).write_text(json.dumps(study, indent=1) + "\n")


if __name__ == "__main__":
    main()
