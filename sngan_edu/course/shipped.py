"""The course notebooks as the package ships them, and what makes them run anywhere.

The notebooks (the repository's top-level ``notebooks/``) are installed as the data package
``sngan_edu.course_notebooks``, so ``sngan-edu notebooks DEST`` (:func:`copy_notebooks`) works
from a wheel. Each notebook but 05 opens with

- a markdown line of badges (:func:`badges_markdown`): "Open in Colab" and Binder, and
- the install guard (:data:`INSTALL_GUARD`), a first code cell that installs the course with
  ``%pip`` when ``sngan_edu`` cannot be imported (Colab, a fresh Binder or Python) and does
  nothing, silently, where it can (the project's own venv). It must not import the library.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path
from typing import Any

from sngan_edu.assets import GITHUB_REPO

NOTEBOOKS_PACKAGE = "sngan_edu.course_notebooks"
#: What ``pip`` installs in Colab or Binder: the course from its git repository.
INSTALL_TARGET = f"sngan-edu @ git+https://github.com/{GITHUB_REPO}"
#: The first code cell of every notebook (IPython source: the %pip line is a magic).
INSTALL_GUARD = (
    "# Colab, Binder or a fresh Python: install the course if it is missing (here it does "
    "nothing)\n"
    "try:\n"
    "    import sngan_edu  # noqa: F401\n"
    "except ImportError:\n"
    f'    %pip install --quiet "{INSTALL_TARGET}"'
)
INSTALL_GUARD_TAG = "install-guard"  # the cell's tag, so tools (and tests) can find it
BADGES_MARKER = "colab-badge.svg"  # a first markdown cell holding this has its badges


def notebooks_dir() -> Path:
    """The folder of the installed course notebooks (``notebooks/`` in an editable install)."""
    return Path(str(files(NOTEBOOKS_PACKAGE)))


def course_notebooks() -> list[Path]:
    """The shipped notebooks, relative to :func:`notebooks_dir`: the lessons, the appendices
    and ``exercises/*.ipynb``."""
    root = notebooks_dir()
    found = sorted(root.glob("*.ipynb")) + sorted((root / "exercises").glob("*.ipynb"))
    return [p.relative_to(root) for p in found]


def copy_notebooks(dest: str | Path, overwrite: bool = False, keep_existing: bool = False
                   ) -> list[Path]:
    """Copy the course notebooks into the folder ``dest`` (made if missing); return the copies.

    A file already in ``dest`` with a notebook's name is a student's work: FileExistsError
    naming them, and nothing copied, unless ``overwrite`` (replace them) or ``keep_existing``
    (keep them, copy only the missing notebooks) is True.
    """
    if not isinstance(dest, str | Path) or not str(dest):
        raise ValueError(f"dest must be a folder path; got {dest!r}")
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite must be True or False; got {overwrite!r}")
    if not isinstance(keep_existing, bool):
        raise ValueError(f"keep_existing must be True or False; got {keep_existing!r}")
    if overwrite and keep_existing:
        raise ValueError("overwrite and keep_existing: at most one may be True")
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"dest must be a folder; {dest} is a file")
    names = course_notebooks()
    if dest.resolve() == notebooks_dir().resolve():  # e.g. `make lab` in the repository
        if overwrite:
            raise ValueError(f"dest {dest} is where the notebooks are installed from")
        return []
    if not names:
        raise FileNotFoundError(f"no notebooks found in {notebooks_dir()}: the package is "
                                "installed without its data files")
    existing = [str(n) for n in names if (dest / n).exists()]
    if keep_existing:
        names = [n for n in names if str(n) not in existing]
    elif existing and not overwrite:
        raise FileExistsError(f"{dest} already holds {', '.join(existing)}; keep your work "
                              "there and pick another folder, or overwrite (--force)")
    root = notebooks_dir()
    written = []
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, target)
        written.append(target)
    return written


def colab_url(notebook: str) -> str:
    """The "Open in Colab" address of a notebook path relative to ``notebooks/``."""
    return f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/main/notebooks/{notebook}"


def binder_url(notebook: str | None = None) -> str:
    """The Binder address that opens ``notebook`` (relative to ``notebooks/``) in JupyterLab
    (the repository's root without one)."""
    base = f"https://mybinder.org/v2/gh/{GITHUB_REPO}/main"
    if notebook is None:
        return base
    return f"{base}?labpath=notebooks%2F{notebook.replace('/', '%2F')}"


def badges_markdown(notebook: str) -> str:
    """The markdown line of badges for a notebook (path relative to ``notebooks/``)."""
    return (f"[![Open in Colab](https://colab.research.google.com/assets/{BADGES_MARKER})]"
            f"({colab_url(notebook)}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(notebook)})")


INSTALL_GUARD_ID = "sngan-edu-install-guard"


def _lines(text: str) -> list[str]:
    """Notebook JSON's form of a cell source: lines that keep their newline."""
    return text.splitlines(keepends=True)


def add_install_guard_and_badges(nb: dict[str, Any], notebook: str) -> bool:
    """Give a notebook (its JSON as a dict, changed in place) the badges line at the top of its
    first markdown cell and :data:`INSTALL_GUARD` as its first code cell, unless it has them;
    return whether it changed. ``notebook``: its path relative to ``notebooks/`` (for the
    badges). Working on the JSON, not nbformat's objects, keeps the rest byte-identical."""
    if not isinstance(notebook, str) or not notebook.endswith(".ipynb"):
        raise ValueError(f"notebook must be a path ending in .ipynb; got {notebook!r}")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise ValueError("nb must be a notebook's JSON (a dict with a list of cells)")
    changed = False
    markdown = next((c for c in cells if c["cell_type"] == "markdown"), None)
    if markdown is not None and BADGES_MARKER not in "".join(markdown["source"]):
        markdown["source"] = _lines(badges_markdown(notebook) + "\n\n") + markdown["source"]
        changed = True
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    if first_code == len(cells) or "".join(cells[first_code]["source"]) != INSTALL_GUARD:
        guard = {"cell_type": "code", "execution_count": None, "id": INSTALL_GUARD_ID,
                 "metadata": {"tags": [INSTALL_GUARD_TAG]}, "outputs": [],
                 "source": _lines(INSTALL_GUARD)}
        if nb.get("nbformat_minor", 0) < 5 or nb.get("nbformat", 4) < 4:
            guard.pop("id")
        cells.insert(first_code, guard)
        changed = True
    return changed


__all__ = ["INSTALL_GUARD", "INSTALL_GUARD_TAG", "INSTALL_TARGET", "add_install_guard_and_badges",
           "badges_markdown",
           "binder_url", "colab_url", "copy_notebooks", "course_notebooks", "notebooks_dir"]
