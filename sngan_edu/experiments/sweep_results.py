"""The results of a robustness sweep: its JSON file, its sample grids, and the comparisons
notebook 06 draws from them (:mod:`sngan_edu.experiments.sweep` runs the sweep)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sngan_edu.assets import study_path
from sngan_edu.regularizers import REGULARIZER_NAMES

#: The study notebook 06 reads, shipped with the package (sngan_edu/assets/studies/).
STORED_RESULTS = study_path("sweep_results.json")
REGULARIZERS = ("sn", "none")


def run_name(setting: str, regularizer: str, seed: int) -> str:
    """Folder name of one run."""
    return f"{setting}_{regularizer}_seed{seed}"


def load_results(path: str | Path = STORED_RESULTS) -> dict[str, Any]:
    """Read a results JSON written by :func:`run_sweep`, as a list of ``commands`` and a
    ``machine`` per run (some stored studies hold one ``command`` and one ``machine``)."""
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


# A run "works" when it draws digits: a Fréchet distance below WORKS_MAX_FD (a default; notebook
# 06 passes the bar it measures from real digits scored as the runs are, 1,000 against all 1,797
# digits) and at least WORKS_MIN_CLASSES of the ten classes. A lower FD than a run that does not
# work is no win.
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
