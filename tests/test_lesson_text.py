"""Every notebook reads as a lesson: no regression machinery or machine talk in what the student
sees (cell sources, markdown, printed output), and each one opens with what it teaches, why, and
how long it takes, and closes with a summary and where to go next."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb")) + sorted(NOTEBOOK_DIR.glob("exercises/*.ipynb"))

# What the student must never read: test machinery, machine load, our own tuning goals.
FORBIDDEN = re.compile(
    r"nbval|checked cell|output is not checked|stored seed|cpu types?\b|cpu's float|float kernels"
    r"|cpu kernels|load average|shared machine|the goal is|our goal|rescor",
    re.IGNORECASE,
)
TIME = re.compile(r"\b(time|minutes?)\b", re.IGNORECASE)


def _printed(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "text/plain" in output.get("data", {}) and "image/png" not in output["data"]:
            parts.append(output["data"]["text/plain"])
    return "".join(parts)


def test_every_notebook_of_the_course_is_found():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_svd_vs_power_iteration", "05_sngan_training", "appendix_sn_pitfalls",
            "appendix_evaluating_gans"} <= names
    assert sum(p.parent.name == "exercises" for p in NOTEBOOKS) >= 5


def test_the_forbidden_words_are_caught():
    # the check itself: each kind of sentence the read-through found is matched
    for sentence in ("# NBVAL_IGNORE_OUTPUT", "the next cell's output is not checked",
                     "exact digits depend on the CPU's float kernels", "the goal is not met",
                     "we rescored the stored seeds"):
        assert FORBIDDEN.search(sentence), sentence
    for sentence in ("a 3x3 conv kernel", "restart the kernel", "the goal of the generator"):
        assert not FORBIDDEN.search(sentence), sentence


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_test_machinery_or_machine_talk_in_the_students_page(path):
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert "NBVAL" not in cell.source.upper(), f"cell {index}: {cell.source[:80]}"
        for text in (cell.source, _printed(cell)):
            found = FORBIDDEN.search(text)
            assert found is None, f"cell {index} says {found.group(0)!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opens_with_what_why_and_time_and_ends_with_summary_and_next(path):
    markdown = [c.source for c in nbformat.read(path, as_version=4).cells
                if c.cell_type == "markdown"]
    opening, closing = markdown[0], markdown[-1]
    assert re.search(r"you will|what you learn", opening, re.IGNORECASE), "no 'you will learn'"
    assert TIME.search(opening), "no reading or run time in the first cell"
    assert re.search(r"summary", closing, re.IGNORECASE), "the last cell is not a summary"
    assert re.search(r"\bnext\b", closing, re.IGNORECASE), "no next step at the end"
