"""A run's folder: its files, its ``metrics.json``, and the checks before a run trains there.

A folder holds one run. :func:`claim_folder` takes it for a run: the lock
(:class:`~sngan_edu.train.lock.FolderLock`: a second run is refused while one trains), then
:func:`check_run_folder`: ``resume=False`` refuses a folder holding a run unless
``overwrite=True`` (which deletes the old run's files, :data:`RUN_FILES`); ``resume=True``
refuses a folder with nothing to resume, a checkpoint written with other parameters (naming
them) or ``steps`` below the checkpoint's step.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from sngan_edu.train import checkpoint as ckpt
from sngan_edu.train.config import RESUME_FREE_FIELDS, RunConfig
from sngan_edu.train.distributed import is_main_process
from sngan_edu.train.lock import FolderLock

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from sngan_edu.train.trainer import Trainer

METRICS_FILE, SIGMA_FILE = "metrics.json", "sigma_history.json"
# What a run writes into out_dir (overwrite=True deletes these and nothing else).
RUN_FILES = (ckpt.CHECKPOINT_NAME, METRICS_FILE, SIGMA_FILE, "samples", "samples_final.png",
             "real.png")


# ---------------------------------------------------------------- metrics.json
class _MetricsRecordFields(TypedDict):
    parameters: dict[str, Any]
    optimizer: dict[str, float | int]
    step: int
    final: dict[str, float]
    metrics: list[dict[str, float]]
    train_seconds: float
    n_params: dict[str, int]
    precision: dict[str, float] | None


class MetricsRecord(_MetricsRecordFields, total=False):
    """A run's ``metrics.json``, written by :func:`run_sngan` and read by the sweep and rescore.

    - ``parameters``: :meth:`RunConfig.parameters` (:meth:`RunConfig.from_parameters` reads
      it back);
    - ``optimizer``: the resolved Adam settings and ``n_dis``
      (:attr:`~sngan_edu.train.config.RunConfig.optimizer`);
    - ``step``: the generator steps trained (fewer than ``steps`` if ``max_minutes`` stopped it);
    - ``final``: the last evaluation, ``{"step", "classes", "class_kl", "confidence", "fd",
      "confidence_plain"}`` (only ``step`` without a classifier; ``confidence_plain`` for the
      digits);
    - ``metrics``: every evaluation, rows like ``final``;
    - ``train_seconds``: wall time of training, resumed sessions included;
    - ``n_params``: ``{"G": ..., "D": ...}``;
    - ``precision``: the mean confidence of 10,000 fresh samples (noise seed 1) with its
      standard error, ``{"n_samples", "seed", "confidence", "confidence_se",
      "confidence_se_1000"}`` (the last: the standard error of ``final``'s 1,000-sample mean);
      None without a classifier;
    - ``fidelity`` (CIFAR-10 and STL-10 only, when the Inception weights are available):
      ``{"inception_score", "inception_score_std", "fid"}``.
    """

    fidelity: dict[str, float]


def metrics_record(
    config: RunConfig, trainer: Trainer, n_params: Mapping[str, int],
    precision: Mapping[str, float] | None,
) -> MetricsRecord:
    """The ``metrics.json`` of a run trained by ``trainer`` (see :class:`MetricsRecord`)."""
    return {
        "parameters": config.parameters(),
        "optimizer": dict(config.optimizer),
        "step": trainer.step,
        "final": trainer.history["metrics"][-1],
        "metrics": trainer.history["metrics"],
        "train_seconds": round(trainer.elapsed, 1),
        "n_params": dict(n_params),
        "precision": None if precision is None else dict(precision),
    }


def write_metrics(out_dir: str | Path, record: MetricsRecord) -> Path:
    """Write ``record`` to ``out_dir/metrics.json`` atomically; return the path."""
    return ckpt.write_json_atomic(record, Path(out_dir) / METRICS_FILE)


def read_metrics(run_dir: str | Path) -> MetricsRecord:
    """A finished run's ``metrics.json``; ValueError naming the file if it is missing or not a
    run's record."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a finished notebook 05 run: no {METRICS_FILE} in it")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); rerun the run or restore the "
                         "file") from None
    if not isinstance(record, dict) or not isinstance(record.get("parameters"), dict):
        raise ValueError(f"{path} is not a run's record (no 'parameters' in it)")
    return record


# ---------------------------------------------------------------- the run folder
def run_files(out: Path) -> list[str]:
    """The files in ``out`` that show it holds a run: ``checkpoint.pt``, ``metrics.json``."""
    return [name for name in (ckpt.CHECKPOINT_NAME, METRICS_FILE) if (out / name).exists()]


def clear_run(out: Path) -> None:
    """Delete the files a run wrote into ``out`` (:data:`RUN_FILES`, and temporary files of a
    killed write); other files stay."""
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for name in (ckpt.CHECKPOINT_NAME, METRICS_FILE, SIGMA_FILE):
        ckpt.remove_orphans(out / name)


def check_resumable(config: RunConfig, out: Path) -> None:
    """ValueError unless ``out`` holds a checkpoint that ``config`` continues: the same run
    settings (those of :data:`~sngan_edu.train.config.RESUME_FREE_FIELDS` aside) and ``steps``
    not below its step."""
    path = out / ckpt.CHECKPOINT_NAME
    if not path.is_file():
        raise ValueError(f"resume=True but there is nothing to resume at {out}: no "
                         f"{ckpt.CHECKPOINT_NAME} in it; use resume=False to start a new run")
    state = ckpt.load(path)
    ckpt.check_same_config(
        state["config"], config.settings(), RESUME_FREE_FIELDS, path,
        fix="resume=True continues a run only with its own parameters: set them back, or use "
            "resume=False with overwrite=True (or another out_dir) to start afresh")
    ckpt.check_not_past(config.steps, int(state["step"]), path,
                        fix=", or resume=False with overwrite=True to start afresh")


def check_run_folder(config: RunConfig, out: Path) -> None:
    """ValueError if ``config`` may not train into ``out``: a run is there and neither
    ``resume`` nor ``overwrite`` is set, or ``resume`` cannot continue it."""
    if config.resume:
        check_resumable(config, out)
        return
    found = run_files(out)
    if found and not config.overwrite:
        raise ValueError(
            f"out_dir {out} already holds a run ({', '.join(found)}) and resume=False; use "
            "resume=True to continue it, overwrite=True to delete it and start afresh, or "
            "another out_dir")


def check_out_dir(out: Path) -> None:
    """ValueError unless ``out`` is a folder this process can write into (made if missing)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} is a file, not a folder; choose another out_dir")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"out_dir {out} cannot be made ({err.strerror or err}); choose a "
                         "folder you can write to") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"out_dir {out} is not writable; choose a folder you can write to")


def claim_folder(config: RunConfig, out: Path) -> FolderLock | None:
    """Take ``out`` for the run of ``config``: its lock (rank 0 alone, returned; None on the
    other ranks), the checks of :func:`check_run_folder`, then (rank 0) the old run's files
    deleted if ``overwrite`` and orphan temporary files removed."""
    if is_main_process():
        check_out_dir(out)
    lock = FolderLock(out).acquire() if is_main_process() else None
    try:
        check_run_folder(config, out)
        if lock is not None:
            if config.overwrite:
                clear_run(out)
            for name in (ckpt.CHECKPOINT_NAME, METRICS_FILE, SIGMA_FILE):
                ckpt.remove_orphans(out / name)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


__all__ = ["METRICS_FILE", "RUN_FILES", "SIGMA_FILE", "MetricsRecord", "check_out_dir",
           "check_resumable",
           "check_run_folder", "claim_folder", "clear_run", "metrics_record", "read_metrics",
           "run_files", "write_metrics"]
