"""One-line setup shared by every notebook: seeds, small figures, tidy printing."""

from __future__ import annotations

import random

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
