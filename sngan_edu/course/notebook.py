"""What every notebook shares: a one-line setup (seeds, small figures, tidy printing) and a check
that papermill's ``-p NAME VALUE`` named parameters the notebook has.

papermill injects the values it is given as a cell whose source starts with ``# Parameters``,
after the cell tagged ``parameters``; a misspelt ``-p stepz 50`` only adds a variable nobody
reads, and the run goes on with the defaults. :func:`check_injected_parameters`, called in the
notebook after its parameters cell, reads the cells the kernel executed (IPython's ``In``),
parses the injected cell's assignments and refuses names the notebook does not know.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterable

import numpy as np
import torch

FIGURE_DPI = 72  # small stored PNGs keep the notebooks light in git


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one integer."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _use_inline_backend() -> None:
    """Show figures inline even if MPLBACKEND (e.g. Agg) leaked into the kernel's environment."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell":
        shell.run_line_magic("matplotlib", "inline")


def setup_notebook(seed: int = 0, dpi: int = FIGURE_DPI) -> None:
    """Seed everything and set matplotlib defaults used throughout the course."""
    import matplotlib.pyplot as plt

    _use_inline_backend()
    seed_everything(seed)
    plt.rcParams.update(
        {
            "figure.dpi": dpi,
            "savefig.dpi": dpi,
            "figure.figsize": (6.0, 3.6),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    torch.set_printoptions(precision=4, sci_mode=False)
    np.set_printoptions(precision=4, suppress=True)


INJECTED_MARKER = "# Parameters"  # how papermill's injected cell starts (its comment line)


def assigned_names(source: str) -> list[str]:
    """The variable names a cell's source assigns at its top level, in order."""
    names: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return names


def injected_names(sources: Iterable[str]) -> list[str]:
    """The names assigned by papermill's injected cells among ``sources`` (cell sources)."""
    names: list[str] = []
    for source in sources:
        if isinstance(source, str) and source.lstrip().startswith(INJECTED_MARKER):
            names += [n for n in assigned_names(source) if n not in names]
    return names


def _executed_sources() -> list[str]:
    """The cell sources this IPython kernel executed (IPython's ``In``); [] outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    if shell is None:
        return []
    return list(shell.user_ns.get("In", []))


def check_injected_parameters(allowed: Iterable[str]) -> None:
    """ValueError if papermill was given a parameter not in ``allowed`` (the names of the
    notebook's parameters cell), listing the unknown names and the valid ones. Does nothing
    outside IPython or when papermill injected no parameters."""
    allowed = tuple(allowed)
    unknown = [n for n in injected_names(_executed_sources()) if n not in allowed]
    if unknown:
        raise ValueError(
            f"unknown notebook parameter(s) {unknown} (given to papermill with -p NAME VALUE); "
            f"check the spelling: the parameters are {allowed}")


__all__ = ["FIGURE_DPI", "INJECTED_MARKER", "assigned_names", "check_injected_parameters",
           "injected_names", "seed_everything", "setup_notebook"]
