"""The stored notebooks as the tools read them: nbval finds no marker comment in a student's code
(its cell tags sit in metadata), every cell tag is one a tool acts on, every facts file belongs to
a notebook, and each page was stored executed top to bottom without an error."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbval.plugin import find_comment_markers, metadata_tags

from sngan_edu.course.report import HEADLINE_TAG
from sngan_edu.course.shipped import INSTALL_GUARD_TAG
from tools.nbval_facts import FACTS_FOLDER, facts_file

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
# The pages nbval runs: the chapters and the solved exercise sources. The student copies in
# notebooks/exercises/ are generated from the latter and stored unexecuted.
EXECUTED = sorted(NOTEBOOK_DIR.glob("*.ipynb")) + sorted(ROOT.glob("instructor/exercises/*.ipynb"))
NOTEBOOKS = EXECUTED + sorted(NOTEBOOK_DIR.glob("exercises/*.ipynb"))
# What acts on a tag: nbval (its own table), papermill ("parameters"), the demo report and
# `sngan-edu notebooks` (the install guard).
KNOWN_TAGS = {*metadata_tags, "parameters", HEADLINE_TAG, INSTALL_GUARD_TAG}


def _code_cells(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_every_notebook_of_the_course_is_found():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_svd_vs_power_iteration", "05_sngan_training", "appendix_sn_pitfalls",
            "appendix_evaluating_gans"} <= names
    assert sum(p.parent.name == "exercises" for p in NOTEBOOKS) >= 5


def test_nbvals_parser_sees_the_markers_this_test_looks_for():
    # the check below would pass on anything if nbval stopped reading comments
    assert list(find_comment_markers("x = 1\n# NBVAL_IGNORE_OUTPUT\nprint(x)"))
    assert not list(find_comment_markers("# ignore the output of this cell\nprint(1)"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_nbval_marker_comment_in_the_students_code(path):
    for index, cell in enumerate(_code_cells(path)):
        found = list(find_comment_markers(cell.source))
        assert not found, f"code cell {index} carries {found}: use the cell tag instead"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_tag_is_one_a_tool_reads_on_a_code_cell(path):
    cells = nbformat.read(path, as_version=4).cells
    for index, cell in enumerate(cells):
        tags = cell.metadata.get("tags", [])
        assert isinstance(tags, list), f"cell {index}: tags {tags!r} is not a list"
        unknown = set(tags) - KNOWN_TAGS
        assert not unknown, f"cell {index}: no tool reads the tag(s) {sorted(unknown)}"
        assert not tags or cell.cell_type == "code", f"markdown cell {index} is tagged {tags}"
    parameters = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) <= 1, f"papermill reads one parameters cell; cells {parameters}"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: p.stem)
def test_the_stored_page_ran_top_to_bottom_without_an_error(path):
    cells = _code_cells(path)
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    errors = [i for i, c in enumerate(cells) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"code cells {errors} stored an error"


def test_every_facts_file_belongs_to_a_notebook():
    # the nbval facts plugin runs tests/notebook_facts/NAME.py after NAME.ipynb: a file whose
    # notebook is renamed or gone would never run
    files = sorted((ROOT / FACTS_FOLDER).glob("*.py"))
    assert files
    owned = {facts_file(p, ROOT) for p in NOTEBOOKS}
    assert [f.name for f in files if f not in owned] == []
