"""Files the course needs at run time, shipped inside the package (found wherever it is installed).

- ``digits_classifier.pt`` / ``digits_classifier_plain.pt``: the small classifiers that score
  generated digits (:mod:`sngan_edu.metrics.classifier`).
- ``studies/``: the stored study results the notebooks read (:func:`study_path`,
  :func:`load_study`): ``toy_results.json`` (+ ``toy_results_samples.npz``, notebook 04),
  ``sweep_results.json`` (+ ``sweep_results_samples/``, notebook 06), ``notebook05_*.json``
  (notebook 05) and ``sweep_e_sn_seeds.json``.
- ``jupyter/overrides.json5``: the course's JupyterLab defaults (:func:`jupyter_settings_dir`).

Nothing here depends on the current folder: every path comes from :mod:`importlib.resources`.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

#: The GitHub owner/name of the course (Colab and Binder badges, the install guard's URL).
GITHUB_REPO = "sngan-edu/sngan-edu"
STUDIES = "studies"


def _package_folder() -> Path:
    return Path(str(files(__name__)))


def asset_path(name: str) -> Path:
    """The path of the shipped file ``name`` (a wheel installs the package as plain files)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty file name; got {name!r}")
    path = _package_folder() / name
    if not path.exists():
        raise ValueError(f"{name!r} is not a file shipped with sngan_edu (looked in {path.parent})")
    return path


def studies_dir() -> Path:
    """The folder of the stored study results (``sngan_edu/assets/studies``)."""
    return _package_folder() / STUDIES


def study_names() -> list[str]:
    """The stored studies, by file name (``*.json`` in :func:`studies_dir`)."""
    return sorted(p.name for p in studies_dir().glob("*.json"))


def study_path(name: str) -> Path:
    """The path of the stored study file ``name`` (e.g. ``"sweep_results.json"``,
    ``"toy_results_samples.npz"`` or ``"sweep_results_samples"``); ValueError naming the
    stored studies if there is none of that name."""
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ValueError(f"name must be the file name of a stored study; got {name!r}")
    path = studies_dir() / name
    if not path.exists():
        raise ValueError(f"name: {name!r} is not a stored study; the studies are "
                         f"{study_names()} (in {studies_dir()})")
    return path


def load_study(name: str) -> dict[str, Any]:
    """A stored study's JSON (``name`` with or without ``.json``), e.g.
    ``load_study("notebook05_seeds")``."""
    if isinstance(name, str) and name and not name.endswith(".json"):
        name = f"{name}.json"
    return json.loads(study_path(name).read_text())


def jupyter_settings_dir() -> Path:
    """The folder holding the course's JupyterLab ``overrides.json5`` (for
    ``--LabApp.app_settings_dir``)."""
    return asset_path("jupyter")


__all__ = ["GITHUB_REPO", "asset_path", "jupyter_settings_dir", "load_study", "studies_dir",
           "study_names", "study_path"]
