"""PNG sample grids of images in [-1, 1], as training runs write them (no matplotlib).

A grid is torchvision's ``make_grid`` layout: ``GRID_NROW`` tiles per row, ``GRID_PADDING``
white pixels between them, written by ``save_image``. Drawing grids on figures lives in
:mod:`sngan_edu.plots.images`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import save_image

VALUE_RANGE = (-1.0, 1.0)  # the range of the generators' tanh
GRID_NROW, GRID_PADDING = 8, 1  # the layout of the PNG grids save_grid writes


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = GRID_NROW) -> Path:
    """Write a PNG grid of images in [-1, 1] (torchvision ``save_image``); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.detach().float().cpu(), path, nrow=nrow, padding=GRID_PADDING,
               normalize=True, value_range=VALUE_RANGE, pad_value=1.0)
    return path


__all__ = ["GRID_NROW", "GRID_PADDING", "VALUE_RANGE", "save_grid"]
