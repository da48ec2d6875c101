"""A latent prior with a discrete part: Gaussian z whose last entries become a one-hot code.

A generator is a continuous map, so from one connected Gaussian it cannot reach ten separate
clusters (the ten digits) without also producing samples in between. Giving it a few discrete
values to start from (InfoGAN's categorical code, Chen et al. 2016, here without the mutual
information term) lets each value land on its own cluster. The code is drawn *from* z: the
last ``categories`` entries are replaced by the one-hot vector of their argmax, which is uniform
over the categories for Gaussian z. So every caller keeps passing plain ``N(0, I)`` noise (the
training loop, sample grids, re-scoring, torch-fidelity) and the generator applies the code
as its first step. Nothing tells G which digit a category should be: it is unsupervised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_categories(categories: int, z_dim: int) -> None:
    """ValueError unless ``categories`` is 0 (plain Gaussian) or in 2..z_dim-1."""
    ok = isinstance(categories, int) and not isinstance(categories, bool) and (
        categories == 0 or 2 <= categories < z_dim
    )
    if not ok:
        raise ValueError(
            f"z_categories must be 0 (a plain Gaussian latent) or an integer from 2 to "
            f"z_dim - 1 = {z_dim - 1}; got {categories!r}"
        )


def with_category_code(z: torch.Tensor, categories: int) -> torch.Tensor:
    """``z`` (N, z_dim) with its last ``categories`` entries replaced by their argmax, one-hot.

    ``categories=0`` returns ``z`` unchanged.
    """
    if categories == 0:
        return z
    code = F.one_hot(z[:, -categories:].argmax(dim=1), categories).to(z.dtype)
    return torch.cat([z[:, :-categories], code], dim=1)
