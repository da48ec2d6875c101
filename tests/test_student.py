"""Student copies: solutions stubbed, hidden tests gone, and every check fails with
NotImplementedError (never an unrelated error); the solution notebooks pass their checks.

The solved sources live in instructor/exercises/; notebooks/exercises/ holds the generated
student copies, which is all a student can open (badges, ``sngan-edu lab``/``notebooks``, the
wheel). No solution text may reach any of those.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
import tomllib
from nbclient import NotebookClient

from sngan_edu import cli
from sngan_edu.course import shipped
from sngan_edu.course.student import (
    SOURCE_MARKERS,
    make_student_copies,
    stale_student_copies,
    student_notebook,
)

REPO = Path(__file__).resolve().parent.parent
EXERCISES = REPO / "instructor" / "exercises"
STUDENT_COPIES = REPO / "notebooks" / "exercises"
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
    assert sorted(p.name for p in STUDENT_COPIES.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    ids = []
    for path in NOTEBOOKS:
        cells = _grade_cells(nbformat.read(path, as_version=4))
        assert cells, f"{path.name} has no check cell"
        ids += [c.metadata.nbgrader.grade_id for c in cells]
    assert len(ids) == len(set(ids))  # nbgrader needs unique grade ids within a notebook
    # the exercises where the student writes the idea that matters (issue 26)
    for new in ("check_track_sigma", "check_sn_gradient", "check_unnormalized_layers",
                "check_sn_ring_discriminator",
                # the core of a chapter, written by the student (issue 37)
                "check_gradient_penalty", "check_conv_operator_norm", "check_generator_step"):
        assert new in ids


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_exercise_opens_with_what_it_asks_its_time_and_its_chapter(path):
    opening = nbformat.read(path, as_version=4).cells[0].source
    assert "You will:" in opening
    assert re.search(r"It follows the chapter `0\d_[a-z_]+\.ipynb`", opening), opening
    assert re.search(r"About \d+ minutes", opening)
    tasks = [c.source for c in nbformat.read(path, as_version=4).cells
             if c.cell_type == "markdown" and "### Exercise" in c.source]
    headers = [re.search(r"### Exercise \d\.\d \(\d points?(, about (\d+) minutes)?\)", t)
               for t in tasks]
    assert tasks and all(headers), tasks
    assert all(int(h.group(2)) <= 15 for h in headers if h.group(2))  # stated: at most 15 min


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


# ------------------------------------------------------------ what a student opens: no solutions
def _blocks(nb: nbformat.NotebookNode, begin: str, end: str) -> list[str]:
    """The text between ``begin`` and ``end`` marker lines, one string per region."""
    found = []
    for cell in nb.cells:
        pattern = re.escape(begin) + r"[^\n]*\n(.*?)\n[ \t]*" + re.escape(end)
        found += [m.group(1) for m in re.finditer(pattern, cell.source, re.DOTALL)]
    return found


def _solution_texts() -> tuple[list[str], list[str]]:
    """(whole solution and hidden-test regions, their distinctive lines) of every source.

    A line is distinctive if it is at least 16 characters long and appears in no exercise
    notebook outside the regions (not a docstring line the stub keeps, say).
    """
    blocks, lines = [], set()
    sources = [nbformat.read(path, as_version=4) for path in NOTEBOOKS]
    outside = {line.strip() for nb in sources for c in student_notebook(nb).cells
               for line in c.source.splitlines()}
    for path, nb in zip(NOTEBOOKS, sources, strict=True):
        regions = (_blocks(nb, "### BEGIN SOLUTION", "### END SOLUTION")
                   + _blocks(nb, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
        assert regions, path
        blocks += [(" ".join(r.split()), len(r.strip().splitlines())) for r in regions]
        lines |= {line.strip() for r in regions for line in r.splitlines()
                  if len(line.strip()) >= 16 and line.strip() not in outside}
    return blocks, sorted(lines)


SOLUTION_BLOCKS, SOLUTION_LINES = _solution_texts()
#: What a solved, executed source shows and a student copy never may.
SOLVED_OUTPUT = re.compile(r"all \d+ checks passed|### (BEGIN|END) (SOLUTION|HIDDEN TESTS)")


def _leaks(path: Path, exercise: bool) -> list[str]:
    """The solution text in the file ``path``: whole regions always (a short one only in an
    exercise notebook: the library implements the same one-liners), and in a notebook the
    markers, solved check outputs and, in an exercise notebook, any distinctive solution line."""
    text = path.read_text(encoding="utf-8", errors="replace")
    found = [m for m in SOURCE_MARKERS if m in text and path.suffix == ".ipynb"]
    flat = " ".join(text.replace("\\n", "\n").replace('\\"', '"').split())
    # a one- or two-line solution may also be the library's own code (losses.hinge_g_loss)
    found += [b[:60] for b, n in SOLUTION_BLOCKS if b in flat and (exercise or n >= 3)]
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        shown = "\n".join(c.source for c in nb.cells) + "\n".join(
            str(o) for c in nb.cells for o in c.get("outputs", []))
        found += [m.group(0) for m in SOLVED_OUTPUT.finditer(shown)]
        if exercise:
            source_lines = {line.strip() for line in shown.splitlines()}
            found += [line for line in SOLUTION_LINES if line in source_lines]
    return found


def test_the_leak_check_finds_solutions_in_the_sources():
    assert len(SOLUTION_LINES) >= 20
    for path in NOTEBOOKS:
        assert _leaks(path, exercise=True), path


def test_the_student_copies_are_up_to_date():
    stale = stale_student_copies(EXERCISES, STUDENT_COPIES)
    assert not stale, ("regenerate: python -m sngan_edu.course.student --force "
                       f"(stale: {[p.name for p in stale]})")


def test_a_changed_source_makes_its_copy_stale(tmp_path):
    make_student_copies(EXERCISES, tmp_path)
    assert stale_student_copies(EXERCISES, tmp_path) == []
    nb = nbformat.read(tmp_path / NOTEBOOKS[0].name, as_version=4)
    nb.cells[0].source += "\nedited"
    nbformat.write(nb, tmp_path / NOTEBOOKS[0].name)
    assert stale_student_copies(EXERCISES, tmp_path) == [tmp_path / NOTEBOOKS[0].name]


@pytest.mark.parametrize("path", sorted(STUDENT_COPIES.glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_solution_text_in_the_repositorys_student_copies(path):
    assert _leaks(path, exercise=True) == []
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code")


def test_no_solution_text_in_what_sngan_edu_lab_copies(tmp_path, monkeypatch):
    # the package ships this repository's notebooks/ (tests/test_cli_course.py checks the
    # mapping); pinned here so that an editable install of another checkout does not interfere
    monkeypatch.setattr(shipped, "notebooks_dir", lambda: REPO / "notebooks")
    written = shipped.copy_notebooks(tmp_path / "course")  # what `sngan-edu lab` copies
    assert {p.relative_to(tmp_path / "course").parent.name for p in written} >= {"exercises"}
    exercises = [p for p in written if p.parent.name == "exercises"]
    assert sorted(p.name for p in exercises) == [p.name for p in NOTEBOOKS]
    for path in written:
        assert _leaks(path, exercise=path in exercises) == [], path


def _wheel_files() -> list[Path]:
    """Every file the wheel ships, from pyproject's package list, package dirs and data globs."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = config.get("package-dir", {})
    files = []
    for package in config["packages"]:
        folder = REPO / dirs.get(package, package.replace(".", "/"))
        files += sorted(folder.glob("*.py"))
        for pattern in config.get("package-data", {}).get(package, []):
            files += sorted(folder.glob(pattern))
    return files


def test_no_solution_text_in_the_wheel():
    files = _wheel_files()
    assert REPO / "notebooks" / "exercises" / NOTEBOOKS[0].name in files
    assert not any(f.is_relative_to(REPO / "instructor") for f in files)
    for path in files:
        assert _leaks(path, exercise=path.parent == STUDENT_COPIES) == [], path


def test_student_refuses_to_overwrite_unless_forced(tmp_path, capsys):
    dest = tmp_path / "student"
    assert cli.main(["student", str(EXERCISES), str(dest)]) == 0
    mine = dest / NOTEBOOKS[0].name
    mine.write_text("my work")
    with pytest.raises(SystemExit):
        cli.main(["student", str(EXERCISES), str(dest)])
    assert "already holds" in capsys.readouterr().err and mine.read_text() == "my work"
    assert cli.main(["student", str(EXERCISES), str(dest), "--force"]) == 0
    assert mine.read_text() != "my work"


def test_student_refuses_student_copies_as_source(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["student", str(STUDENT_COPIES), str(tmp_path / "out")])
    assert "instructor/exercises" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_module_regenerates_and_checks_the_repositorys_copies(tmp_path, monkeypatch):
    from sngan_edu.course import student

    monkeypatch.chdir(REPO)
    assert student.main(["--check"]) == 0
    assert student.main([str(EXERCISES), str(tmp_path), "--check"]) == 1  # nothing there yet
    assert student.main([str(EXERCISES), str(tmp_path)]) == 0
    assert student.main([str(EXERCISES), str(tmp_path), "--check"]) == 0
    assert sys.modules["sngan_edu.course.student"] is student
