"""The figures notebook 05 quotes are the ones in the committed result files."""

import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "05_sngan_training.ipynb"


def sn_range(name: str, key: str, digits: int) -> str:
    runs = json.loads((ROOT / "data" / name).read_text())["runs"]
    values = [r["final"][key] for r in runs if r["regularizer"] == "sn" and r["status"] == "ok"]
    assert len(values) == 3  # three seeds
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


@pytest.mark.parametrize(
    ("results", "key", "digits"),
    [("notebook05_seeds.json", "confidence", 2), ("notebook05_seeds.json", "confidence", 3),
     ("notebook05_seeds.json", "fd", 0),
     ("notebook05_translate_seeds.json", "confidence", 3),
     ("notebook05_translate_seeds.json", "fd", 0)],
)
def test_quoted_ranges_match_the_result_files(results, key, digits):
    text = " ".join(c.source for c in nbformat.read(NOTEBOOK, 4).cells if c.cell_type == "markdown")
    assert sn_range(results, key, digits) in text.replace("\n", " ")


def test_the_translate_runs_differ_from_the_defaults_only_in_translate():
    base = json.loads((ROOT / "data" / "notebook05_seeds.json").read_text())
    shifted = json.loads((ROOT / "data" / "notebook05_translate_seeds.json").read_text())
    assert shifted["parameters"] == {**base["parameters"], "translate": 1}
    assert shifted["steps"] == base["steps"]
