"""Adam settings of the SNGAN paper (Table 1: A-F) and its ResNet setting, as named presets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdamPreset:
    """One optimizer setting: Adam learning rate and betas, and D updates per G update."""

    lr: float
    beta1: float
    beta2: float
    n_dis: int


# Exact values from Miyato et al. (2018), Table 1, and the ResNet runs (Appendix B.4).
PRESETS: dict[str, AdamPreset] = {
    "A": AdamPreset(lr=1e-4, beta1=0.5, beta2=0.9, n_dis=5),
    "B": AdamPreset(lr=1e-4, beta1=0.5, beta2=0.999, n_dis=1),
    "C": AdamPreset(lr=2e-4, beta1=0.5, beta2=0.999, n_dis=1),
    "D": AdamPreset(lr=1e-3, beta1=0.5, beta2=0.9, n_dis=5),
    "E": AdamPreset(lr=1e-3, beta1=0.5, beta2=0.999, n_dis=5),
    "F": AdamPreset(lr=1e-3, beta1=0.9, beta2=0.999, n_dis=5),
    "resnet": AdamPreset(lr=2e-4, beta1=0.0, beta2=0.9, n_dis=5),
}

PRESET_NAMES = tuple(PRESETS)


def get_preset(name: str) -> AdamPreset:
    """The preset called ``name`` (one of A-F or "resnet"); ValueError otherwise."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {PRESET_NAMES}; got {name!r}")
    return PRESETS[name]
