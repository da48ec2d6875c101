"""Checks of exercise 03, part 3.3: the layers a model forgot to normalize (Linear and
convolution layers without spectral norm, at any depth of the model)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrizations

from sngan_edu import sn
from sngan_edu.course.exercises.core import (
    _fmt,
    exercise_check,
    new_checker,
    require_unchanged,
    snapshot,
)

#: The layers with a weight matrix or kernel that SN normalizes in the exercise.
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)


def reference_unnormalized_layers(model: nn.Module) -> list[str]:
    """Names (as in ``model.named_modules()``) of the weight layers without spectral norm."""
    return [name for name, m in model.named_modules()
            if isinstance(m, WEIGHT_LAYERS) and not sn.is_spectral_normalized(m)]


class _Block(nn.Module):
    """A residual block: two convs inside a Sequential, one shortcut conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.shortcut = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class _CNNDiscriminator(nn.Module):
    """The standard CNN's layout in small: convs inside ``main``, a ``linear`` head."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(4, 4, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(4, 8, 3, padding=1), nn.LeakyReLU(0.1),
        )
        self.linear = nn.Linear(8 * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.main(x).flatten(1))


class _ResNetDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.blocks = nn.ModuleList([_Block(4), _Block(4)])
        self.norm = nn.BatchNorm2d(4)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.seq = nn.Conv1d(4, 2, 3)
        self.head = nn.Linear(8, 1)


def _children_loop(model: nn.Module) -> nn.Module:
    """The snippet that circulates: SN on each direct child that is a layer."""
    for child in model.children():
        if isinstance(child, WEIGHT_LAYERS):
            parametrizations.spectral_norm(child)
    return model


def _names(c, out: Any) -> list[str]:
    if isinstance(out, str) or not isinstance(out, (list, tuple, set)):
        c.fail("a list of layer names, e.g. ['main.0', 'linear']", _fmt(out),
               "collect the names from model.named_modules() in a list and return it.")
    items = list(out)
    if any(isinstance(x, nn.Module) for x in items):
        c.fail("the layers' NAMES (strings), e.g. 'main.0'", _fmt(items),
               "model.named_modules() yields (name, module) pairs: keep the name.")
    if not all(isinstance(x, str) for x in items):
        c.fail("a list of strings", _fmt(items), "return the names, as strings.")
    if len(set(items)) != len(items):
        c.fail("each layer once", _fmt(items), "list each layer once.")
    return items


def _layer_hint(model: nn.Module, got: list[str], expected: list[str]) -> str:
    modules = dict(model.named_modules())
    missing = [n for n in expected if n not in got]
    extra = [n for n in got if n not in expected]
    for name in extra:
        module = modules.get(name)
        if module is None:
            return (f"{name!r} is not the name of a module of this model: use the names that "
                    "model.named_modules() gives.")
        if isinstance(module, nn.modules.batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm):
            return (f"{name!r} is a {type(module).__name__}: its weight is a per-channel scale "
                    "(a vector), not a matrix, and SN does not apply to it. Only Linear and "
                    "convolution layers count.")
        if sn.is_spectral_normalized(module):
            return (f"{name!r} already has spectral norm. With torch's parametrization (and "
                    "sngan_edu's) there is no weight_orig attribute: ask "
                    "is_spectral_normalized(layer).")
        if not isinstance(module, WEIGHT_LAYERS):
            return (f"{name!r} is a {type(module).__name__}, not a layer with a weight matrix: "
                    "only Linear and convolution layers count.")
    for name in missing:
        module = modules[name]
        if torch.nn.utils.parametrize.is_parametrized(module, "weight"):
            kinds = ", ".join(type(p).__name__ for p in module.parametrizations["weight"])
            return (f"{name!r} is parametrized ({kinds}), but not by spectral norm: "
                    "is_parametrized() is True for weight norm too. Ask "
                    "is_spectral_normalized(layer).")
        if "." in name and all("." not in n for n in got):
            return (f"you missed {name!r}, a layer inside a nested module: model.children() "
                    "lists only the top level. Walk the whole tree with model.named_modules().")
        if not isinstance(module, nn.Linear | nn.Conv2d):
            return (f"you missed {name!r}, a {type(module).__name__}: every kind of convolution "
                    "(Conv1d/2d/3d, ConvTranspose) has a weight kernel to normalize.")
    return (f"missing {missing}, not expected {extra}: walk model.named_modules() and keep "
            "each Linear or convolution layer whose weight has no spectral norm.")


@exercise_check
def check_unnormalized_layers(unnormalized_layers: Callable[..., Any]) -> None:
    """Check ``unnormalized_layers(model) -> list of names`` of weight layers without SN.

    A weight layer is a Linear or a convolution of any kind (:data:`WEIGHT_LAYERS`); names are
    those of ``model.named_modules()``; the order does not matter. SN by torch's
    parametrization and by ``sngan_edu.sn`` both count; weight norm does not.
    """
    c = new_checker("unnormalized_layers", unnormalized_layers)
    torch.manual_seed(41)

    def case(model: nn.Module, what: str) -> None:
        expected = reference_unnormalized_layers(model)
        before = snapshot(model)
        with c.step(what):
            got = _names(c, c.call(model))
            require_unchanged(c, before, model, "the model", "only look: do not add or remove "
                              "spectral norm inside this function.", ignore_power_iteration=True)
            if sorted(got) != sorted(expected):
                c.fail(_fmt(expected), _fmt(got), _layer_hint(model, got, expected))

    case(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)),
         "a plain MLP: both Linear layers")
    case(sn.apply_spectral_norm(_CNNDiscriminator()),
         "every layer normalized by apply_spectral_norm: none")
    case(_children_loop(_CNNDiscriminator()), "SN by a loop over model.children(): the convs "
         "inside `main` were missed")
    mixed = _ResNetDiscriminator()
    parametrizations.spectral_norm(mixed.stem)
    sn.spectral_norm(mixed.blocks[0].body[0])
    parametrizations.spectral_norm(mixed.blocks[1].shortcut)
    parametrizations.weight_norm(mixed.head)
    case(mixed, "nested blocks, BatchNorm, ConvTranspose, Conv1d, weight norm, both SN "
         "implementations")
    c.done()
