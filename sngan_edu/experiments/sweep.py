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
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from sngan_edu.checks import check_choice, check_int
from sngan_edu.experiments.sngan_run import run_sngan
from sngan_edu.experiments.sweep_results import (
    REGULARIZERS,
    SAME_STUDY,
    STORED_RESULTS,
    WORKS_MAX_FD,
    WORKS_MIN_CLASSES,
    keep_sample_grid,
    load_results,
    load_sample_grids,
    merge_results,
    read_png,
    run_name,
    run_works,
    same_seed_losses,
    samples_folder,
    sweep_table,
    this_machine,
    wins_where_runs_work,
)
from sngan_edu.regularizers import get_regularizer
from sngan_edu.train.config import RunConfig
from sngan_edu.train.presets import PRESET_NAMES
from sngan_edu.train.run_folder import METRICS_FILE, read_metrics

NOTEBOOK = "05_sngan_training.ipynb"  # the notebook whose run the sweep repeats
RESULTS_NAME = "sweep_results.json"  # a sweep's own results file, in its --out folder
DEFAULT_OUT = Path("runs") / "sweep"
SETTINGS = ("A", "B", "C", "D", "E", "F")
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


def stored_study(results_path: Path | None, study: dict[str, Any],
                 replace: bool) -> dict[str, Any] | None:
    """The results at ``results_path`` to add the new runs to: those of the same ``study``
    (notebook, steps, parameters), else None. Another study there is a ValueError unless
    ``replace``, which deletes its sample grids (the file itself is rewritten at the end)."""
    if results_path is None or not Path(results_path).is_file():
        return None
    stored = load_results(results_path)
    other = [k for k in SAME_STUDY if stored[k] != study[k]]
    if not other:
        return stored
    if not replace:
        detail = "; ".join(f"{k}: {stored[k]!r} there, {study[k]!r} here" for k in other)
        raise ValueError(f"{results_path} holds a study with other {', '.join(other)} "
                         f"({detail}); pass replace=True (--replace-stored) to replace it whole, "
                         "or write the results elsewhere")
    shutil.rmtree(samples_folder(results_path), ignore_errors=True)
    return None


def run_cells(cells: list[tuple[str, str, int]], steps: int, out_root: Path,
              extra: dict[str, Any] | None, force: bool, jobs: int,
              verbose: bool) -> list[dict[str, Any]]:
    """:func:`run_one` of every cell, ``jobs`` at a time; the records in the cells' order."""
    def report(cell: tuple[str, str, int], rec: dict[str, Any]) -> None:
        if verbose:
            scores = rec.get("final") or rec.get("error", "")
            print(f"{run_name(*cell):18s} {rec['status']:6s} {scores}", flush=True)

    done: dict[int, dict[str, Any]] = {}
    if jobs == 1:
        for i, cell in enumerate(cells):
            done[i] = run_one(*cell, steps, out_root, extra, force)
            report(cell, done[i])
        return [done[i] for i in range(len(cells))]
    context = multiprocessing.get_context("spawn")  # a fresh torch in each process
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(run_one, *cell, steps, out_root, extra, force): i
                   for i, cell in enumerate(cells)}
        for future in as_completed(futures):
            i = futures[future]
            done[i] = future.result()
            report(cells[i], done[i])
    return [done[i] for i in range(len(cells))]


def run_sweep(
    settings=SETTINGS, regularizers=REGULARIZERS, seeds=(0,), steps: int = DEFAULT_STEPS,
    out_root: Path = DEFAULT_OUT, extra: dict[str, Any] | None = None,
    results_path: Path | None = None, force: bool = False,
    verbose: bool = True, command: str = "sngan-edu sweep", jobs: int = 1,
    replace: bool = False,
) -> dict[str, Any]:
    """Run every (setting, regularizer, seed), ``jobs`` at a time (in as many processes: each
    run sets torch's threads and seeds its global random state); write the results JSON to
    ``results_path`` (None: write none; :data:`STORED_RESULTS`: the stored study), with the
    final sample grids beside it, and return it (runs in sweep order). Runs of the study already
    in ``results_path`` are kept (:func:`stored_study`: another study is refused before any run
    unless ``replace``)."""
    for s in settings:
        check_choice("settings", s, PRESET_NAMES)
    for r in regularizers:
        get_regularizer(r, "regularizers")
    check_int("steps", steps)
    check_int("jobs", jobs)
    out_root = Path(out_root)
    cells = [(setting, reg, seed) for seed in seeds for setting in settings for reg in regularizers]
    for cell in cells:  # a bad -p parameter fails here, before any run
        run_config(run_parameters(*cell, steps, out_root, extra))
    study = {"notebook": NOTEBOOK, "steps": steps,
             "parameters": {**SWEEP_PARAMETERS, **(extra or {})}}
    stored = stored_study(results_path, study, replace)
    runs = run_cells(cells, steps, out_root, extra, force, jobs, verbose)
    machine = this_machine()
    for run in runs:
        if not run.get("reused"):
            run["machine"] = machine
    results = {"commands": [command], **study, "runs": runs}
    if results_path is None:
        return results
    results_path = Path(results_path)
    if stored is not None:
        results = merge_results(stored, results)  # e.g. more seeds of the stored study
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
    parser.add_argument("--replace-stored", action="store_true",
                        help="let the results replace a results file holding another study "
                             "(other steps or parameters) whole, sample grids included")
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
    try:  # a bad option or results file stops here, before any run
        run_sweep(args.settings, args.regularizers, tuple(args.seeds), args.steps, out,
                  extra, results, force=args.force, command=command, jobs=args.jobs,
                  replace=args.replace_stored)
    except ValueError as err:
        parser.error(str(err))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    words = list(sys.argv[1:] if argv is None else argv)
    run_from_arguments(parser.parse_args(words), parser, words,
                       prog="python -m sngan_edu.experiments.sweep")




__all__ = [  # the results' helpers too: notebook 06 reads the study through this module
    "DEFAULT_OUT", "DEFAULT_STEPS", "NOTEBOOK", "REGULARIZERS", "RESULTS_NAME", "SAME_STUDY",
    "SETTINGS", "STORED_RESULTS", "SWEEP_PARAMETERS", "WORKS_MAX_FD", "WORKS_MIN_CLASSES",
    "add_arguments", "keep_sample_grid", "load_results", "load_sample_grids", "merge_results",
    "read_png", "run_cells", "run_config", "run_name", "run_one", "run_parameters", "run_sweep",
    "run_works", "stored_study",
    "same_seed_losses", "samples_folder", "sweep_table", "this_machine", "wins_where_runs_work",
]


if __name__ == "__main__":
    main()
