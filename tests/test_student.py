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
    ids = []
    for path in NOTEBOOKS:
        cells = _grade_cells(nbformat.read(path, as_version=4))
        assert cells, f"{path.name} has no check cell"
        ids += [c.metadata.nbgrader.grade_id for c in cells]
    assert len(ids) == len(set(ids))  # nbgrader needs unique grade ids within a notebook
    # the exercises where the student writes the idea that matters (issue 26)
    for new in ("check_track_sigma", "check_sn_gradient", "check_unnormalized_layers",
                "check_sn_ring_discriminator"):
        assert new in ids


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_test_machinery_in_the_students_text(path):
    source = nbformat.read(path, as_version=4)
    for cell in source.cells:
        assert "NBVAL" not in cell.source.upper().replace("NBVAL-", "")
        text = cell.source + "".join(o.get("text", "") for o in cell.get("outputs", []))
        assert "nbval" not in text.lower()
    student = student_notebook(source)
    assert not any(t.startswith("nbval-") for c in student.cells
                   for t in c.metadata.get("tags", []))
    # the source keeps its tags for the regression test
    tagged = [c for c in source.cells if c.metadata.get("tags")]
    assert all(c.metadata["tags"] for c in tagged)


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


def test_an_endless_loop_in_a_returned_copy_fails_its_check_under_papermill(tmp_path):
    """The README's grading command: the check's time limit works inside a kernel (SIGALRM on
    the kernel's main thread), so papermill reports the failed check instead of hanging."""
    import papermill

    (written,) = [p for p in make_student_copies(EXERCISES, tmp_path)
                  if p.name == "02_lipschitz.ipynb"]
    nb = nbformat.read(written, as_version=4)
    (solution,) = [c for c in nb.cells
                   if c.metadata.get("nbgrader", {}).get("grade_id") == "gradient_norms"]
    solution.source = "def gradient_norms(D, x):\n    while True:\n        pass\n"
    nb.cells.insert(1, nbformat.v4.new_code_cell(
        "import sngan_edu.course.exercises.core as core\ncore.TIME_LIMIT_S = 2"))
    nbformat.write(nb, written)
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(str(written), str(tmp_path / "checked.ipynb"),
                                   kernel_name="python3", execution_timeout=120,
                                   progress_bar=False, cwd=str(EXERCISES))
    assert info.value.ename == "ExerciseFailed"
    assert "did not finish within the check's time limit of 2 s" in info.value.evalue
