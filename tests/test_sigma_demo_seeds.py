"""Notebook 03's sigma demo over five seeds (benchmarks/sigma_demo_seeds.py): the text's numbers
are those of the stored study, and its facts hold for every stored seed."""

import json
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
STORED = json.loads((ROOT / "benchmarks" / "results" / "sigma_demo_seeds.json").read_text())
NUMBER_WORDS = {4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def _text() -> str:
    cells = nbformat.read(ROOT / "notebooks" / "03_spectral_norm_layer.ipynb", 4).cells
    (text,) = [c.source for c in cells
               if c.cell_type == "markdown" and "other random starts" in c.source]
    return " ".join(text.split())


def test_the_study_has_five_seeds_with_the_notebooks_seed_first():
    assert list(STORED["seeds"]) == ["0", "1", "2", "3", "4"]


def test_the_text_quotes_the_range_over_the_seeds():
    text = _text()
    low, high = STORED["range"]["layers_above_1_1_first_50_steps"]
    assert f"{NUMBER_WORDS[low]} to {NUMBER_WORDS[high]} of the eight layers go above 1.1" in text
    low, high = STORED["range"]["max_first_50_steps"]
    assert f"between {low:.2f} and {high:.1f}" in text
    assert STORED["range"]["max_after_step_100"][1] < 1.06  # "within about 5% of 1"
    assert "within about 5% of 1" in text


def test_the_facts_thresholds_hold_for_every_seed():
    for row in STORED["seeds"].values():
        assert row["max_first_50_steps"] > 1.2
        assert row["layers_above_1_1_first_50_steps"] >= 3
        assert row["max_after_step_100"] < 1.1
