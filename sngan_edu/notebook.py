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


def setup_notebook(seed: int = 0, dpi: int = FIGURE_DPI) -> None:
    """Seed everything and set matplotlib defaults used throughout the course."""
    import matplotlib.pyplot as plt

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
