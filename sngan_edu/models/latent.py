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

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sngan_edu.checks import is_int


def check_categories(categories: int, z_dim: int) -> None:
    """ValueError unless ``categories`` is 0 (plain Gaussian) or in 2..z_dim-1."""
    if not (is_int(categories) and (categories == 0 or 2 <= categories < z_dim)):
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


class CategoryCode(nn.Module):
    """The generator's first step: :func:`with_category_code` with a fixed number of categories.

    The count has no weights, so it is saved as the module's extra state: a checkpoint then
    refuses to load into a generator with another count instead of silently changing the prior.
    """

    def __init__(self, categories: int, z_dim: int) -> None:
        super().__init__()
        check_categories(categories, z_dim)
        self.categories = categories

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return with_category_code(z, self.categories)

    def extra_repr(self) -> str:
        return f"categories={self.categories}"

    def get_extra_state(self) -> dict[str, int]:
        return {"categories": self.categories}

    def set_extra_state(self, state: dict[str, int]) -> None:
        saved = state["categories"]
        if saved != self.categories:
            raise ValueError(
                f"these weights were trained with z_categories={saved}, but this generator has "
                f"z_categories={self.categories}; build it with z_categories={saved}"
            )

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # Weights saved before the code existed carry no count: they used the plain prior.
        state_dict.setdefault(prefix + "_extra_state", {"categories": 0})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
