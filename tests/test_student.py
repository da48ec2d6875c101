"""Student copies: solutions stubbed, hidden tests gone, and every check fails with
NotImplementedError (never an unrelated error); the solution notebooks pass their checks."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from sngan_edu.course.student import make_student_copies, student_notebook

EXERCISES = Path(__file__).resolve().parent.parent / "notebooks" / "exercises"
NOTEBOOKS = sorted(EXERCISES.glob("*.ipynb"))


def _execute(nb: nbformat.NotebookNode, allow_errors: bool) -> nbformat.NotebookNode:
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=allow_errors,
        resources={"metadata": {"path": str(EXERCISES)}},
    )
    client.execute()
    return nb


def _grade_cells(nb: nbformat.NotebookNode) -> list:
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def _errors(cell) -> list[str]:
    return [o["ename"] for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def test_there_are_exercise_notebooks_with_checks():
    assert len(NOTEBOOKS) >= 5
    for path in NOTEBOOKS:
        assert _grade_cells(nbformat.read(path, as_version=4)), f"{path.name} has no check cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copy_strips_solutions(path):
    source = nbformat.read(path, as_version=4)
    student = student_notebook(source)
    text = "\n".join(c.source for c in student.cells)
    assert "### BEGIN SOLUTION" not in text
    assert "BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError" in text
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    # the source notebook is untouched
    assert "### BEGIN SOLUTION" in "\n".join(c.source for c in source.cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copy_fails_every_check_with_not_implemented(path, tmp_path):
    (written,) = [p for p in make_student_copies(EXERCISES, tmp_path) if p.name == path.name]
    nb = _execute(nbformat.read(written, as_version=4), allow_errors=True)
    for cell in _grade_cells(nb):
        assert _errors(cell) == ["NotImplementedError"], (cell.source, _errors(cell))
    unrelated = {e for c in nb.cells for e in _errors(c)} - {"NotImplementedError"}
    assert not unrelated


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solution_passes_every_check(path):
    nb = _execute(nbformat.read(path, as_version=4), allow_errors=True)
    failing = [c.source for c in nb.cells if _errors(c)]
    assert not failing
