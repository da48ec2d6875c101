"""Fixtures shared by several test modules."""

import pytest

from sngan_edu import sn


@pytest.fixture
def power_iteration_counts(monkeypatch) -> dict[int, int]:
    """Total power iterations run per ``sn.SpectralNorm`` module (keyed by id) from now on."""
    counts: dict[int, int] = {}
    original = sn.SpectralNorm.power_iteration

    def counting(self, weight_mat, n_iters):
        counts[id(self)] = counts.get(id(self), 0) + n_iters
        return original(self, weight_mat, n_iters)

    monkeypatch.setattr(sn.SpectralNorm, "power_iteration", counting)
    return counts

