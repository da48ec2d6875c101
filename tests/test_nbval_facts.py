"""The nbval facts plugin: facts run after a notebook's last cell, in its kernel, and can fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]  # tools/ lives here


def _project(tmp_path, facts: str):
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output("stream", name="stdout", text="42\n")
    nb.cells = [nbformat.v4.new_code_cell("x = 41 + 1\nprint(x)", outputs=[out],
                                          execution_count=1)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "lesson.ipynb")
    (tmp_path / "tests" / "notebook_facts").mkdir(parents=True)
    (tmp_path / "tests" / "notebook_facts" / "lesson.py").write_text(facts)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p",
         "tools.nbval_facts", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-o", "addopts=", str(tmp_path / "lesson.ipynb")],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
    )


def test_facts_see_the_notebooks_variables(tmp_path):
    run = _project(tmp_path, "def fact_answer():\n    assert x == 42\n")
    assert run.returncode == 0, run.stdout
    assert "2 passed" in run.stdout  # the cell and its facts


def test_a_false_fact_fails_and_is_named(tmp_path):
    run = _project(tmp_path, "def fact_ok():\n    assert x == 42\n\n"
                             "def fact_wrong():\n    assert x == 43, f'x is {x}'\n")
    assert run.returncode == 1
    assert "fact_wrong failed" in run.stdout and "x is 42" in run.stdout
    assert "fact_ok failed" not in run.stdout
