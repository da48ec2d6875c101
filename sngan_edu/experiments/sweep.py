"""The robustness sweep: notebook 05's run for settings A-F, with and without SN.

    sngan-edu sweep --jobs 2 --update-stored      # the stored CPU sweep on the digits
    sngan-edu sweep --steps 100000 --results runs/cifar_sweep.json \\
        -p dataset cifar10 -p image_size 32 -p width 1 -p d_width 1 -p batch_size 64 \\
        -p cpu_threads null -p device cuda            # the paper's, on a GPU

Each run is :func:`sngan_edu.experiments.sngan_run.run_sngan`, the function behind notebook
05 (``-p NAME VALUE`` sets any of its parameters), with its own ``out_dir``
(``<out>/<setting>_<regularizer>_seed<k>/``, holding metrics.json, sample grids and the
checkpoint). A run whose folder already holds a finished ``metrics.json`` with the same
parameters is not repeated, so an interrupted sweep continues. A run that fails (e.g. the
unnormalized GAN diverging to NaN at a high learning rate) is recorded as failed with its error,
not dropped. The collected results go to one JSON file (``--results``, by default
``<out>/sweep_results.json``); the study that notebook 06 plots ships with the package
(:data:`STORED_RESULTS`) and a sweep changes it only when asked (``--update-stored``, meant for
the repository's editable install: new seeds of the same study are added to it). ``--jobs 2``
runs two at a time, each in its own process (each run uses one CPU thread, so a 2-core machine
takes both).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sngan_edu.assets import study_path
from sngan_edu.checks import check_choice, check_int
from sngan_edu.experiments.sngan_run import METRICS_FILE, RunConfig, read_metrics, run_sngan
from sngan_edu.regularizers import REGULARIZER_NAMES, get_regularizer
from sngan_edu.train.presets import PRESET_NAMES

NOTEBOOK = "05_sngan_training.ipynb"  # the notebook whose run the sweep repeats
#: The study notebook 06 reads, shipped with the package (sngan_edu/assets/studies/).
STORED_RESULTS = study_path("sweep_results.json")
RESULTS_NAME = "sweep_results.json"  # a sweep's own results file, in its --out folder
DEFAULT_OUT = Path("runs") / "sweep"
SETTINGS = ("A", "B", "C", "D", "E", "F")
REGULARIZERS = ("sn", "none")
# The sweep's own model: notebook 05's CPU model (G at width 0.5, D at 0.125, batch 32, 3000
# generator updates by default) with each setting's own n_dis, sampled from G itself as in the
# paper's Figure 1 (no averaged G: the study is about how the optimizer settings train), one CPU
# thread per run (so two runs can share a machine). Pinned here so that the stored study stays
# what it is whatever notebook 05's defaults become. The paper's model: -p width 1 -p d_width 1
# -p batch_size 64.
SWEEP_PARAMETERS: dict[str, Any] = {"width": 0.5, "d_width": 0.125, "g_ema": None,
                                    "translate": 0, "z_dim": 128, "batch_size": 32,
                                    "lr_decay": "none", "cpu_threads": 1}
DEFAULT_STEPS = 3000


def run_name(setting: str, regularizer: str, seed: int) -> str:
    """Folder name of one run."""
    return f"{setting}_{regularizer}_seed{seed}"


def _parse_value(text: str) -> Any:
    """Papermill-style value from the command line: JSON if it parses (1, 0.5, null, true)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_parameters(
    setting: str, regularizer: str, seed: int, steps: int, out_root: Path,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters the sweep sets for one run (a finished run is reused if its metrics.json
    holds the same): each setting's own ``n_dis``, one evaluation at the end, the sweep's model."""
    folder = Path(out_root) / run_name(setting, regularizer, seed)
    return {
        "setting": setting, "regularizer": regularizer, "seed": seed, "steps": steps,
        "n_dis": None, "eval_every": steps, "out_dir": str(folder.resolve()), "resume": False,
        **SWEEP_PARAMETERS, **(extra or {}),
    }


def run_config(parameters: dict[str, Any]) -> RunConfig:
    """The run of ``parameters`` (data_root: RunConfig's default, the per-user data folder)."""
    return RunConfig.from_parameters(parameters)


def run_one(
    setting: str, regularizer: str, seed: int, steps: int, out_root: Path,
    extra: dict[str, Any] | None = None, force: bool = False,
) -> dict[str, Any]:
    """Run notebook 05's training for one (setting, regularizer, seed); return its result
    record."""
    parameters = run_parameters(setting, regularizer, seed, steps, out_root, extra)
    folder = Path(parameters["out_dir"])
    record: dict[str, Any] = {"setting": setting, "regularizer": regularizer, "seed": seed}
    if not force and (folder / METRICS_FILE).is_file():
        saved = read_metrics(folder)
        same = all(saved["parameters"].get(k) == v for k, v in parameters.items())
        if same and saved.get("step") == steps:
            return {**record, **_summarise(saved), "status": "ok", "reused": True}
    start = time.perf_counter()
    try:
        # A folder reaching here holds no reusable run (other parameters, a failed or an
        # unfinished run, or --force): its files are replaced, which run_sngan does only when
        # asked (overwrite=True).
        result = run_sngan(run_config({**parameters, "overwrite": True}), progress=False)
    except Exception as err:  # a diverged (or otherwise failed) run is a result too
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        return {**record, "status": "failed", "error": reason,
                "seconds": round(time.perf_counter() - start, 1)}
    return {**record, **_summarise(result.record), "status": "ok",
            "seconds": round(time.perf_counter() - start, 1)}


def _summarise(saved: dict[str, Any]) -> dict[str, Any]:
    """The parts of a run's metrics.json that the sweep table needs."""
    final = {k: v for k, v in saved.get("final", {}).items() if k != "step"}
    return {"step": saved.get("step"), "final": final, "optimizer": saved.get("optimizer"),
            "train_seconds": saved.get("train_seconds")}


def run_sweep(
    settings=SETTINGS, regularizers=REGULARIZERS, seeds=(0,), steps: int = DEFAULT_STEPS,
    out_root: Path = DEFAULT_OUT, extra: dict[str, Any] | None = None,
    results_path: Path | None = None, force: bool = False,
    verbose: bool = True, command: str = "sngan-edu sweep", jobs: int = 1,
) -> dict[str, Any]:
    """Run every (setting, regularizer, seed), ``jobs`` at a time (in as many processes: each
    run sets torch's threads and seeds its global random state); write the results JSON to
    ``results_path`` (None: write none; pass :data:`STORED_RESULTS` to update the stored study)
    and return it (runs in sweep order, whatever order they finish in)."""
    for s in settings:
        check_choice("settings", s, PRESET_NAMES)
    for r in regularizers:
        get_regularizer(r, "regularizers")
    check_int("steps", steps)
    check_int("jobs", jobs)
    out_root = Path(out_root)
    cells = [(setting, reg, seed) for seed in seeds for setting in settings for reg in regularizers]
    for cell in cells:  # a bad -p parameter fails here, before any run
        run_config(run_parameters(*cell, steps, out_root, extra)).validate()

    def report(cell: tuple[str, str, int], rec: dict[str, Any]) -> None:
        if verbose:
            scores = rec.get("final") or rec.get("error", "")
            print(f"{run_name(*cell):18s} {rec['status']:6s} {scores}", flush=True)

    runs: list[dict[str, Any]] = []
    if jobs == 1:
        for cell in cells:
            runs.append(run_one(*cell, steps, out_root, extra, force))
            report(cell, runs[-1])
    else:
        context = multiprocessing.get_context("spawn")  # a fresh torch in each process
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(run_one, *cell, steps, out_root, extra, force): i
                       for i, cell in enumerate(cells)}
            done: dict[int, dict[str, Any]] = {}
            for future in as_completed(futures):
                i = futures[future]
                done[i] = future.result()
                report(cells[i], done[i])
        runs = [done[i] for i in range(len(cells))]
    machine = this_machine()
    for run in runs:
        if not run.get("reused"):
            run["machine"] = machine
    parameters = {**SWEEP_PARAMETERS, **(extra or {})}
    results = {"commands": [command], "notebook": NOTEBOOK, "steps": steps,
               "parameters": parameters, "runs": runs}
    if results_path is not None:
        results_path = Path(results_path)
        stored = load_results(results_path) if results_path.is_file() else None
        if stored is not None and all(stored[k] == results[k] for k in SAME_STUDY):
            results = merge_results(stored, results)  # e.g. more seeds of the stored study
        elif stored is not None and verbose:
            print(f"replacing {results_path}: it holds a study with other "
                  f"{', '.join(k for k in SAME_STUDY if stored[k] != results[k])}")
        for run in runs:  # keep the final sample grids beside the results (small PNGs)
            if run["status"] == "ok":
                name = run_name(run["setting"], run["regularizer"], run["seed"])
                kept = keep_sample_grid(out_root / name, run["step"],
                                        samples_folder(results_path) / f"{name}.png")
                if kept:
                    run["samples"] = kept
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    return results


def load_results(path: str | Path = STORED_RESULTS) -> dict[str, Any]:
    """Read a results JSON written by :func:`run_sweep`.

    Files written before sweeps could be extended hold one ``command`` and one ``machine`` for
    all runs; they are read in today's form (a list of ``commands``, a ``machine`` per run).
    """
    results = json.loads(Path(path).read_text())
    if "command" in results:
        results["commands"] = [results.pop("command")]
    machine = results.pop("machine", None)
    for run in results["runs"]:
        if machine is not None:
            run.setdefault("machine", machine)
    return results


# What makes two results files one study (so more seeds of it can be added to it).
SAME_STUDY = ("notebook", "steps", "parameters")


def merge_results(stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with the runs of ``new`` added; a new run replaces a stored one of the same
    (setting, regularizer, seed). Runs are ordered by seed, then as the sweep orders them."""
    for key in SAME_STUDY:
        if stored[key] != new[key]:
            raise ValueError(f"cannot merge sweeps with different {key}: "
                             f"{stored[key]!r} vs {new[key]!r}")

    def cell(run: dict[str, Any]) -> tuple[str, str, int]:
        return run["setting"], run["regularizer"], run["seed"]

    before = {cell(r): r for r in stored["runs"]}
    for run in new["runs"]:  # a run reused from its folder ran where the stored one did
        if run.get("reused") and "machine" in before.get(cell(run), {}):
            run.setdefault("machine", before[cell(run)]["machine"])
    replaced = {cell(r) for r in new["runs"]}
    runs = [r for r in stored["runs"] if cell(r) not in replaced] + new["runs"]
    # the sweep's own pair first (SN, then its baseline), then the registry's other methods
    names = REGULARIZERS + tuple(n for n in REGULARIZER_NAMES if n not in REGULARIZERS)
    order = {name: i for i, name in enumerate(names)}
    runs.sort(key=lambda r: (r["seed"], r["setting"], order.get(r["regularizer"], 99)))
    return {**stored, "commands": stored["commands"] + new["commands"], "runs": runs}


def this_machine() -> dict[str, Any]:
    """The platform, the CPU model (Linux) and the core count, recorded with each run."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sweep's command-line options (``sngan-edu sweep`` and this module's ``main``)."""
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    parser.add_argument("--regularizers", nargs="+", default=list(REGULARIZERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help="generator updates per run")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time (each uses cpu_threads threads; 2 on 2 cores)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder of the runs")
    parser.add_argument("--results", default=None,
                        help=f"results JSON to write (default: <out>/{RESULTS_NAME})")
    parser.add_argument("--update-stored", action="store_true",
                        help=f"add the results to the stored study notebook 06 reads "
                             f"({STORED_RESULTS}) instead")
    parser.add_argument("--force", action="store_true", help="re-run finished runs too")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="a parameter of notebook 05's run (RunConfig), repeatable")


def run_from_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser,
                       words: list[str], prog: str = "sngan-edu sweep") -> None:
    """Run the sweep that parsed command-line options ``args`` ask for; ``words``: the options
    as typed (recorded in the results file)."""
    if args.update_stored and args.results is not None:
        parser.error("--results and --update-stored: give one (where to write the results)")
    command = " ".join([prog, *words])
    extra = {name: _parse_value(value) for name, value in args.parameter}
    out = Path(args.out)
    if args.update_stored:
        results = STORED_RESULTS
    else:
        results = Path(args.results) if args.results is not None else out / RESULTS_NAME
    run_sweep(args.settings, args.regularizers, tuple(args.seeds), args.steps, out,
              extra, results, force=args.force, command=command, jobs=args.jobs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    words = list(sys.argv[1:] if argv is None else argv)
    run_from_arguments(parser.parse_args(words), parser, words,
                       prog="python -m sngan_edu.experiments.sweep")


def sweep_table(results: dict[str, Any], metrics=("classes", "confidence", "fd")) -> list[dict]:
    """One row per (setting, regularizer): the mean of each metric over the runs that finished
    (None if none did) and its lowest and highest value (``<metric>_range``), with the number
    of runs and of failures."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in results["runs"]:
        groups.setdefault((run["setting"], run["regularizer"]), []).append(run)
    rows = []
    for (setting, reg), runs in sorted(groups.items()):
        ok = [r for r in runs if r["status"] == "ok"]
        row: dict[str, Any] = {"setting": setting, "regularizer": reg, "runs": len(runs),
                               "failed": len(runs) - len(ok)}
        for m in metrics:
            values = [r["final"][m] for r in ok if m in r.get("final", {})]
            row[m] = sum(values) / len(values) if values else None
            row[f"{m}_range"] = (min(values), max(values)) if values else None
        rows.append(row)
    return rows


def same_seed_losses(results: dict[str, Any], baseline: str = "none", metric: str = "fd"
                     ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """SN against ``baseline`` run by run: the (setting, seed) pairs where both runs finished,
    and those of them where SN's ``metric`` (lower is better) is not the lower one."""
    final = {(r["setting"], r["regularizer"], r["seed"]): r["final"]
             for r in results["runs"] if r["status"] == "ok"}
    pairs = sorted((s, seed) for (s, reg, seed) in final
                   if reg == "sn" and (s, baseline, seed) in final)
    lost = [(s, seed) for s, seed in pairs
            if final[(s, "sn", seed)][metric] >= final[(s, baseline, seed)][metric]]
    return pairs, lost


# A run "works" when it draws digits: a Fréchet distance below WORKS_MAX_FD (notebook 05's bar
# for its default run; real held-out digits score about 9) and at least WORKS_MIN_CLASSES of
# the ten classes. A lower FD than a run that does not work is no win.
WORKS_MAX_FD, WORKS_MIN_CLASSES = 100.0, 8


def run_works(run: dict[str, Any], max_fd: float = WORKS_MAX_FD,
              min_classes: float = WORKS_MIN_CLASSES) -> bool:
    """Whether one run of a results file finished with FD < ``max_fd`` and at least
    ``min_classes`` classes (a failed run does not work)."""
    final = run.get("final") or {}
    return (run.get("status") == "ok" and final.get("fd") is not None
            and final["fd"] < max_fd and final.get("classes", 0) >= min_classes)


def wins_where_runs_work(results: dict[str, Any], baseline: str = "none",
                         max_fd: float = WORKS_MAX_FD, min_classes: float = WORKS_MIN_CLASSES,
                         ) -> list[dict[str, Any]]:
    """SN against ``baseline`` run by run, counting a win only where a run works
    (:func:`run_works`). One row per setting that has same-seed pairs, in setting order:
    ``pairs``; ``sn_works`` and ``baseline_works`` (runs that work); ``sn_wins`` (SN works and
    the baseline does not, or has the higher FD); ``baseline_wins`` (the reverse, a tie
    included); ``neither`` (pairs where no run works: no winner)."""
    by_cell = {(r["setting"], r["regularizer"], r["seed"]): r for r in results["runs"]}
    rows = []
    for setting in sorted({s for (s, reg, _) in by_cell if reg == "sn"}):
        seeds = sorted(seed for (s, reg, seed) in by_cell
                       if s == setting and reg == "sn" and (s, baseline, seed) in by_cell)
        if not seeds:
            continue
        row = {"setting": setting, "pairs": len(seeds), "sn_works": 0, "baseline_works": 0,
               "sn_wins": 0, "baseline_wins": 0, "neither": 0}
        for seed in seeds:
            sn_run, base_run = by_cell[(setting, "sn", seed)], by_cell[(setting, baseline, seed)]
            sn_ok = run_works(sn_run, max_fd, min_classes)
            base_ok = run_works(base_run, max_fd, min_classes)
            row["sn_works"] += sn_ok
            row["baseline_works"] += base_ok
            if not (sn_ok or base_ok):
                row["neither"] += 1
            elif sn_ok and (not base_ok or sn_run["final"]["fd"] < base_run["final"]["fd"]):
                row["sn_wins"] += 1
            else:
                row["baseline_wins"] += 1
        rows.append(row)
    return rows


def samples_folder(results_path: str | Path) -> Path:
    """Where a results JSON keeps its runs' final sample grids: ``<stem>_samples/`` beside it."""
    results_path = Path(results_path)
    return results_path.with_name(f"{results_path.stem}_samples")


def keep_sample_grid(run_folder: Path, step: int, target: Path) -> str | None:
    """Copy a run's final sample grid (notebook 05's ``samples/step_<step>.png``) to ``target``,
    one channel if its colour channels are equal (grey digits: a third of the bytes); return the
    file name, or None if the run wrote no grid."""
    source = run_folder / "samples" / f"step_{step:06d}.png"
    if not source.is_file():
        return None
    with Image.open(source) as grid:
        pixels = np.asarray(grid.convert("RGB"))
    if (pixels == pixels[..., :1]).all():
        pixels = pixels[..., 0]
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(target, optimize=True)
    return target.name


def read_png(path: str | Path) -> torch.Tensor:
    """A PNG as a (C, H, W) uint8 tensor (C = 1 for grey, 3 for colour)."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L" if image.mode in ("L", "1") else "RGB"))
    return torch.from_numpy(pixels.copy()).reshape(*pixels.shape[:2], -1).permute(2, 0, 1)


def load_sample_grids(results: dict[str, Any], results_path: str | Path) -> dict[str, torch.Tensor]:
    """The stored final sample grid of each run that has one, by run name, as (C, H, W) uint8."""
    folder = samples_folder(results_path)
    grids = {}
    for run in results["runs"]:
        name = run.get("samples")
        if name and (folder / name).is_file():
            grids[run_name(run["setting"], run["regularizer"], run["seed"])] = read_png(
                folder / name)
    return grids


if __name__ == "__main__":
    main()
