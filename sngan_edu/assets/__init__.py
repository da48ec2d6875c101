"""Files the course needs at run time, shipped inside the package (found wherever it is installed).

- ``digits_classifier.pt`` / ``digits_classifier_plain.pt``: the small classifiers that score
  generated digits (:mod:`sngan_edu.metrics.classifier`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def asset_path(name: str) -> Path:
    """The path of the shipped file ``name`` (a wheel installs the package as plain files)."""
    path = Path(str(files(__name__) / name))
    if not path.exists():
        raise ValueError(f"{name!r} is not a file shipped with sngan_edu (looked in {path.parent})")
    return path


__all__ = ["asset_path"]
