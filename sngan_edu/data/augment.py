"""Differentiable translation of D's inputs (DiffAugment, Zhao et al., NeurIPS 2020).

With few real images (1,797 digits), D memorises them and its feedback to G gets worse. Showing
D every image, real AND fake, shifted by a few random pixels makes memorising harder. Because
the same random shift is applied to fakes in the generator step too and the shift is plain
indexing, gradients flow back to G unchanged, and G still learns the unshifted images: shifting
both distributions the same way leaves "real vs fake" as the only thing D can tell apart.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sngan_edu.checks import check_int


def check_max_shift(max_shift: int, image_size: int, name: str = "max_shift") -> None:
    """ValueError (naming ``name``) unless ``max_shift`` is a whole number of pixels below half
    of ``image_size``: a larger shift would move most of the image out of view."""
    check_int(name, max_shift, minimum=0)
    if 2 * max_shift >= image_size:
        raise ValueError(f"{name} must be below half the image side ({image_size} px); "
                         f"got {max_shift}")


def random_translate(x: Tensor, max_shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Shift each image of ``x`` (N, C, H, W) by its own random (dy, dx) in [-max_shift, max_shift].

    Pixels shifted in from outside repeat the border (no artificial frame). ``max_shift=0``
    returns ``x`` itself. Differentiable in ``x``; the shifts come from ``generator`` (on CPU).
    """
    if x.dim() != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W); got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    check_max_shift(max_shift, min(h, w))
    if max_shift == 0:
        return x
    shifts = torch.randint(0, 2 * max_shift + 1, (2, n, 1, 1), generator=generator).to(x.device)
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    # Output pixel (i, j) of image k reads padded pixel (i + dy_k, j + dx_k), dy_k in [0, 2s].
    rows = torch.arange(h, device=x.device).view(1, h, 1) + shifts[0]
    cols = torch.arange(w, device=x.device).view(1, 1, w) + shifts[1]
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


__all__ = ["check_max_shift", "random_translate"]
