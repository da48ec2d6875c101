"""The exercise notebooks work in a real nbgrader course.

A temporary course (its own nbgrader_config.py and gradebook) gets every exercise notebook as
the source of one assignment; ``nbgrader generate_assignment`` releases it, and ``nbgrader
autograde`` grades three submissions of exercise 03: the solutions (full marks), the released
stubs (zero) and the solutions with one wrong function (that function's check cell loses its
points, the others keep theirs). nbgrader runs as a subprocess of this venv's Python, as a
teacher would run it. Only exercise 03 is autograded, to keep the test to tens of seconds.

``nbgrader autograde`` logs a warning "Attribute 'checksum' for cell ... has changed!" for a
check cell with hidden tests: nbgrader stores that cell's checksum before clearing the hidden
tests (jupyter/nbgrader#1961); it restores the hidden tests and grades correctly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

EXERCISES = Path(__file__).resolve().parent.parent / "instructor" / "exercises"
ASSIGNMENT = "ps1"
GRADED = "03_sn_forward"
WRONG_ANSWER = {  # the mistake that check_sn_gradient names: sigma treated as a constant
    "sn_gradient": "def sn_gradient(W, u, v, G):\n    return G / (u @ W @ v)\n",
}

pytest.importorskip("nbgrader")


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # nbgrader runs `alembic` to create the gradebook: this venv's bin must be on the PATH
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _solution_cells(nb: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> the solution code of a source notebook, without the nbgrader markers."""
    markers = ("### BEGIN SOLUTION", "### END SOLUTION")
    return {c.metadata.nbgrader.grade_id: "\n".join(
        line for line in c.source.splitlines() if line.strip() not in markers)
        for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


def _points(nb: nbformat.NotebookNode) -> dict[str, float]:
    return {c.metadata.nbgrader.grade_id: float(c.metadata.nbgrader.points)
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}


def _submit(course: Path, student: str, nb: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{GRADED}.ipynb")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nbgrader_course")
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        "c.CourseDirectory.course_id = 'sngan-edu-test'\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{root / 'gradebook.db'}'\n"
        "c.Execute.timeout = 300\n",
        encoding="utf-8",
    )
    source = root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for path in sorted(EXERCISES.glob("*.ipynb")):
        shutil.copy(path, source / path.name)
    _nbgrader(root, "generate_assignment", ASSIGNMENT)

    released = nbformat.read(root / "release" / ASSIGNMENT / f"{GRADED}.ipynb", as_version=4)
    solutions = _solution_cells(nbformat.read(source / f"{GRADED}.ipynb", as_version=4))

    def filled(overrides: dict[str, str]) -> nbformat.NotebookNode:
        nb = nbformat.from_dict(released)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = overrides.get(grade_id, solutions[grade_id])
        return nb

    _submit(root, "correct", filled({}))
    _submit(root, "stub", released)
    _submit(root, "wrong", filled(WRONG_ANSWER))
    _nbgrader(root, "autograde", ASSIGNMENT)
    return root


def _scores(course: Path, student: str) -> tuple[float, float, dict[str, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "sngan-edu-test") as gb:
        nb = gb.find_submission_notebook(GRADED, ASSIGNMENT, student)
        return nb.score, nb.max_score, {g.name: g.score for g in nb.grades}


def test_generate_assignment_releases_every_exercise_without_solutions(course):
    from nbgrader.api import Gradebook

    total = 0.0
    for path in sorted(EXERCISES.glob("*.ipynb")):
        released = nbformat.read(course / "release" / ASSIGNMENT / path.name, as_version=4)
        text = "\n".join(c.source for c in released.cells)
        assert "### BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        assert "raise NotImplementedError()" in text
        assert all(not c.get("outputs") for c in released.cells if c.cell_type == "code")
        total += sum(_points(nbformat.read(path, as_version=4)).values())
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "sngan-edu-test") as gb:
        assert gb.find_assignment(ASSIGNMENT).max_score == total


def test_a_correct_submission_scores_full_marks(course):
    score, max_score, grades = _scores(course, "correct")
    points = _points(nbformat.read(EXERCISES / f"{GRADED}.ipynb", as_version=4))
    assert max_score == sum(points.values()) and len(points) >= 3
    assert grades == points and score == max_score


def test_a_stub_scores_zero(course):
    score, max_score, grades = _scores(course, "stub")
    assert max_score > 0 and score == 0 and set(grades.values()) == {0.0}


def test_a_wrong_answer_loses_the_points_of_its_check_cell_only(course):
    score, max_score, grades = _scores(course, "wrong")
    points = _points(nbformat.read(EXERCISES / f"{GRADED}.ipynb", as_version=4))
    assert grades == {**points, "check_sn_gradient": 0.0}
    assert score == max_score - points["check_sn_gradient"]
    graded = nbformat.read(course / "autograded" / "wrong" / ASSIGNMENT / f"{GRADED}.ipynb",
                           as_version=4)
    (cell,) = [c for c in graded.cells
               if c.metadata.get("nbgrader", {}).get("grade_id") == "check_sn_gradient"]
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    assert error.ename == "ExerciseFailed" and "treated sigma as a constant" in error.evalue
