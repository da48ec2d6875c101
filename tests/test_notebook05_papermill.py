"""Notebook 05 run headless by papermill: its parameters are RunConfig's, and a tiny run writes
the same metrics.json as run_sngan with the same parameters (the run itself, its checks, files
and resuming are tested in test_sngan_run.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import papermill
import pytest
import torch

from sngan_edu.experiments.sngan_run import run_sngan
from sngan_edu.train.config import RunConfig
from sngan_edu.train.run_folder import read_metrics

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_sngan_training.ipynb"


def test_parameters_cell_holds_run_configs_fields_and_defaults():
    """The cell declares what a student changes, a dozen of RunConfig's notebook fields with
    their defaults; the others (the operator's options) are injectable all the same."""
    declared = papermill.inspect_notebook(str(NOTEBOOK))
    assert set(declared) < set(RunConfig.names()) and len(declared) <= 12
    assert {"dataset", "steps", "regularizer", "setting", "n_dis", "width", "d_width", "seed",
            "device", "out_dir"} <= set(declared)
    defaults = RunConfig()
    for name, parameter in declared.items():
        assert ast.literal_eval(parameter["default"]) == getattr(defaults, name), name


@pytest.mark.slow
def test_tiny_notebook_run_writes_what_run_sngan_writes(tmp_path):
    # eval_every, z_dim and cpu_threads are not in the parameters cell: injected all the same
    tiny = {"steps": 4, "eval_every": 2, "width": 0.0625, "d_width": 0.0625, "batch_size": 8,
            "z_dim": 16, "cpu_threads": 1}
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "05.ipynb"),
        parameters={**tiny, "out_dir": str(tmp_path / "notebook")},
        cwd=str(NOTEBOOK.parent), kernel_name="python3", progress_bar=False,
    )
    threads = torch.get_num_threads()
    try:
        run_sngan(RunConfig(**tiny, out_dir=str(tmp_path / "library")), progress=False)
    finally:
        torch.set_num_threads(threads)
    from_notebook, from_library = (read_metrics(tmp_path / name) for name in
                                   ("notebook", "library"))
    for record in (from_notebook, from_library):
        record.pop("train_seconds")
        record["parameters"].pop("out_dir")
    assert from_notebook == from_library
    assert from_notebook["step"] == 4 and from_notebook["precision"]["n_samples"] == 10_000
    files = sorted(p.name for p in (tmp_path / "notebook").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "library").iterdir())
