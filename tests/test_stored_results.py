"""The figures notebook 05 quotes are the ones in the committed result files."""

import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "05_sngan_training.ipynb"


def seed_range(name: str, key: str, digits: int, regularizer: str = "sn") -> str:
    runs = json.loads((ROOT / "data" / name).read_text())["runs"]
    values = [r["final"][key] if key in r["final"] else r[key]  # a score, or train_seconds
              for r in runs if r["regularizer"] == regularizer and r["status"] == "ok"]
    assert len(values) == 3  # three seeds
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


@pytest.mark.parametrize(
    ("results", "key", "digits", "regularizer"),
    [("notebook05_seeds.json", "confidence", 2, "sn"),
     ("notebook05_seeds.json", "confidence", 3, "sn"),
     ("notebook05_seeds.json", "fd", 0, "sn"), ("notebook05_seeds.json", "fd", 0, "none"),
     ("notebook05_seeds.json", "confidence_plain", 2, "sn"),
     ("notebook05_seeds.json", "confidence_plain", 2, "none"),
     ("notebook05_seeds.json", "train_seconds", 0, "sn"),
     ("notebook05_translate_seeds.json", "confidence", 3, "sn"),
     ("notebook05_translate_seeds.json", "fd", 0, "sn")],
)
def test_quoted_ranges_match_the_result_files(results, key, digits, regularizer):
    text = " ".join(c.source for c in nbformat.read(NOTEBOOK, 4).cells if c.cell_type == "markdown")
    assert seed_range(results, key, digits, regularizer) in text.replace("\n", " ")


def test_the_translate_runs_differ_from_the_defaults_only_in_translate():
    base = json.loads((ROOT / "data" / "notebook05_seeds.json").read_text())
    shifted = json.loads((ROOT / "data" / "notebook05_translate_seeds.json").read_text())
    assert shifted["parameters"] == {**base["parameters"], "translate": 1}
    assert shifted["steps"] == base["steps"]
