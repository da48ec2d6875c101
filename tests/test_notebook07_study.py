"""Notebook 07's stored study (``notebook07_seeds.json``, written by
``benchmarks/conditional_digits.py``): runs of the course's full budget through the library's
run, its summary recomputed from its runs, and the numbers the notebook's text quotes."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

from sngan_edu.assets import load_study
from sngan_edu.train.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "07_conditional_sngan.ipynb"


def benchmark():
    """benchmarks/conditional_digits.py as a module (its ``main`` is not run)."""
    path = ROOT / "benchmarks" / "conditional_digits.py"
    spec = importlib.util.spec_from_file_location("benchmark_conditional_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def study():
    return load_study("notebook07_seeds")


def prose() -> str:
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    return re.sub(r"\s+", " ", " ".join(c.source for c in cells if c.cell_type == "markdown"))


def test_the_study_holds_full_budget_runs_of_the_library(study):
    assert study["steps"] == RunConfig().steps == 3000
    assert study["parameters"] == json.loads(json.dumps(RunConfig(conditional=True).parameters()))
    projection = [r for r in study["runs"] if r["d"] == "projection"]
    assert sorted(r["seed"] for r in projection) == [0, 1, 2]
    for run in study["runs"]:
        assert run["steps"] == 3000 and run["final"]["step"] == 3000
        assert len(run["agreement_per_class"]) == len(run["fd_per_class"]) == 10
        assert run["fd"] == run["final"]["fd"]  # 05's protocol, from the run's last evaluation


def test_the_summary_is_recomputed_from_the_runs(study):
    summary = benchmark().summarize(study["runs"])
    assert json.loads(json.dumps(summary)) == study["summary"]


def test_the_notebook_quotes_the_study(study):
    text = prose()
    rows = {row["d"]: row for row in study["summary"]}
    projection = rows["projection"]
    assert f"{projection['agreement_mean']:.2f}" in text
    assert f"{projection['fd_mean']:.0f}" in text
    fd05 = [r["final"]["fd"] for r in load_study("notebook05_seeds")["runs"]
            if r["regularizer"] == "sn"]
    assert f"{sum(fd05) / len(fd05):.0f}" in text
