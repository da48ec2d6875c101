"""Checks of exercise 04, part 4.4: an SN discriminator that can see the ring's modes (spectral
norm on every layer, and an input stretch of order 1 / std before the first one)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sngan_edu.course.exercises.core import _fmt, close, exercise_check, new_checker, seeded
from sngan_edu.course.exercises.forgotten_layers import reference_unnormalized_layers


def _hook_spectral_norm(module: nn.Module) -> bool:
    """True if ``module`` carries torch's older hook-based ``torch.nn.utils.spectral_norm``."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    return any(isinstance(hook, SpectralNorm) for hook in module._forward_pre_hooks.values())


def unnormalized_linear_layers(D: nn.Module) -> list[str]:
    """Names of D's Linear layers with no spectral norm of any of torch's or sngan_edu's kinds
    (the parametrization, the older forward-pre-hook one)."""
    return [name for name in reference_unnormalized_layers(D)
            if isinstance(D.get_submodule(name), nn.Linear)
            and not _hook_spectral_norm(D.get_submodule(name))]


def effective_sigmas(D: nn.Module, points: torch.Tensor, run: Callable[..., Any]
                     ) -> dict[str, float]:
    """sigma (SVD) of the weight each Linear layer of D uses in a forward pass in eval mode."""
    used: dict[str, torch.Tensor] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            used.setdefault(name, module.weight.detach().clone())
        return hook

    hooks = [m.register_forward_hook(record(name))
             for name, m in D.named_modules() if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            run(D, points.clone())
    finally:
        for hook in hooks:
            hook.remove()
    return {name: float(torch.linalg.svdvals(w.double().flatten(1))[0])
            for name, w in used.items()}


def input_jacobians(D: nn.Module, points: torch.Tensor, run: Callable[..., Any]
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values of the input map, and D's gradient norms, at each of ``points``.

    The input map takes a data point to what D's first Linear layer sees (a stretch, for a
    ToyDiscriminator with an input scale; the identity for a plain MLP): the singular values
    of its Jacobian say how much D stretches each direction of the plane before its normalized
    layers. The gradient norms of the whole D tell whether something after them (a scaled
    output) steepens it further.
    """
    first = next((m for m in D.modules() if isinstance(m, nn.Linear)), None)
    if first is None:
        return torch.full((len(points), 2), math.nan), torch.full((len(points),), math.nan)
    seen: list[torch.Tensor] = []
    handle = first.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        x = points.clone().requires_grad_(True)
        scores = run(D, x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(scores.sum(), x, retain_graph=True)
    if not seen or not seen[0].requires_grad:
        return torch.zeros(len(points), 2), grad.norm(dim=1).detach()
    inner = seen[0].reshape(len(points), -1)
    rows = [torch.autograd.grad(inner[:, k].sum(), x, retain_graph=True)[0]
            for k in range(inner.shape[1])]
    jacobians = torch.stack(rows, dim=1)  # (N, features, 2)
    return torch.linalg.svdvals(jacobians.double()), grad.norm(dim=1).detach().double()


def _check_scores(c, D: Any, points: torch.Tensor) -> None:
    if not isinstance(D, nn.Module):
        c.fail("a torch.nn.Module (the discriminator)", _fmt(D),
               "build the network and return it: `return D`.")
    D.train()
    scores = c.run(D, points.clone())
    if not isinstance(scores, torch.Tensor) or scores.shape not in ((8,), (8, 1)):
        c.fail("scores of shape (8,) or (8, 1) for 8 points", _fmt(scores),
               "the last layer has ONE output: a score per point.")


def _check_every_layer_normalized(c, D: nn.Module, nearby: torch.Tensor) -> None:
    """Every Linear layer carries SN, and the weight it uses has sigma 1 once converged."""
    layers = [name for name, m in D.named_modules() if isinstance(m, nn.Linear)]
    missing = unnormalized_linear_layers(D)
    if not layers:
        c.fail("Linear layers with spectral norm", "no nn.Linear in the model",
               "use ToyDiscriminator (or an nn.Sequential of nn.Linear and activations).")
    if missing:
        c.fail("spectral norm on every layer", f"no spectral norm on {missing} (of {layers})",
               "spectral_norm wraps one layer at a time: call apply_spectral_norm(D) on the "
               "model, which normalizes every Linear layer in it.")
    with torch.no_grad():
        for _ in range(50):  # training-mode passes: the power iterations converge
            c.run(D, nearby.clone())
    D.eval()
    sigmas = effective_sigmas(D, nearby, c.run)
    off = {name: s for name, s in sigmas.items() if not 0.9 <= s <= 1.1}
    if off:
        name, value = next(iter(off.items()))
        c.fail("sigma 1 for the weight every Linear layer uses",
               f"sigma {value:.3g} for {name}",
               "the layer carries something called spectral norm, but the weight it uses is "
               "not divided by its largest singular value. Use torch's spectral_norm or "
               "sngan_edu's apply_spectral_norm rather than your own.")


def _stretch_hint(smallest: float, largest: float, std: float) -> str:
    """Name what is wrong with an input stretch from ``smallest`` to ``largest``."""
    change = 3 * std * largest
    if smallest < 0.1 / std <= largest:
        return (f"your D stretches one direction of the plane by {largest:.3g} but "
                f"another only by {smallest:.3g}: along that one it is as blind as an "
                "unscaled D, and the ring's modes lie in every direction. Stretch both "
                "coordinates by the same factor of order 1 / std.")
    if close(largest, 1.0, rtol=1e-3):
        return (f"your D sees the points unscaled. With spectral norm every layer has "
                f"sigma 1, so D is at most 1-Lipschitz: across the 3-std zone of a mode "
                f"(3 * {std} = {3 * std:g}) its score can change by at most {change:.2g}, "
                "far too little to tell a sharp sample from a blurry one. Multiply the "
                "input by a factor of order 1 / std before the first layer (e.g. "
                "ToyDiscriminator(input_scale=...)).")
    if largest < 1:
        return (f"your D multiplies its input by {largest:.3g}, which SHRINKS it (did you "
                "multiply by std?): divide by std instead, so that one std of data becomes "
                "about one unit for D.")
    if largest < 0.1 / std:
        return (f"a stretch of {largest:.3g} lets D's score change by at most {change:.2g} "
                "across a mode's 3-std zone; choose a factor of order 1 / std "
                "(e.g. 0.5 / std).")
    return (f"a stretch of {largest:.3g} lets D's score change by up to {change:.3g} "
            "across one mode: so steep that the bound no longer holds D back on the "
            "scale of the data. Choose a factor of order 1 / std (e.g. 0.5 / std).")


def _check_stretch(c, D: nn.Module, points: torch.Tensor, std: float) -> None:
    """D stretches every direction by 0.1/std to 5/std, and no more after its layers."""
    stretches, gradients = input_jacobians(D, points, c.run)
    D.train()
    largest, smallest = float(stretches[:, 0].max()), float(stretches[:, -1].min())
    steepest = float(gradients.max())
    if math.isfinite(largest) and steepest > 1.2 * largest + 1e-6:
        c.fail(f"D at most as steep as its input stretch ({largest:.3g})",
               f"gradient norms up to {steepest:.3g}",
               f"D is {steepest / max(largest, 1e-12):.3g} times steeper than its input "
               "stretch: something after the normalized layers scales the score (a factor on "
               "the output?). That does not let D resolve a mode: its layers still see the "
               "modes as they are, and the loss sees scores multiplied everywhere (the "
               "sigmoid or hinge saturates sooner). The stretch belongs BEFORE the first "
               "layer: multiply the input, not the output.")
    if not (0.1 / std <= smallest and largest <= 5 / std):
        c.fail("a stretch between 0.1/std = 10 and 5/std = 500 in every direction",
               f"{smallest:.4g} to {largest:.4g}", _stretch_hint(smallest, largest, std))


@exercise_check
def check_sn_ring_discriminator(sn_ring_discriminator: Callable[..., Any]) -> None:
    """Check ``sn_ring_discriminator(std) -> nn.Module``: an SN critic that can resolve a mode.

    The critic scores a batch of 2-D points (N, 2) -> (N,) or (N, 1); every Linear layer
    carries spectral norm (any correct one: torch's parametrization or its older hook-based
    ``torch.nn.utils.spectral_norm``, sngan_edu's), so that the weight each uses has sigma 1
    once its power iteration has run; its input map stretches EVERY direction of the plane by
    a factor between 0.1/std and 5/std before the first layer; and nothing after the
    normalized layers steepens it again (a scaled output), so that, 1-Lipschitz after the
    stretch, its score may change by 0.3 to 15 across the 3-std zone of one mode.
    """
    c = new_checker("sn_ring_discriminator", sn_ring_discriminator)
    std = 0.01
    angles = torch.arange(8) * 2 * math.pi / 8
    points = torch.stack([angles.cos(), angles.sin()], dim=1)
    nearby = (points.repeat(4, 1) + 3 * std * torch.randn(32, 2, generator=seeded(29)))

    with c.step("returns a torch module that scores a batch of points: (N, 2) -> N scores"):
        D = c.call(std)
        _check_scores(c, D, points)

    with c.step("every Linear layer carries spectral norm: the weight it uses has sigma 1 (SVD)"):
        _check_every_layer_normalized(c, D, nearby)

    with c.step("stretches every direction of the plane by 0.1/std to 5/std, and nothing after "
                "the normalized layers steepens it (std = 0.01)"):
        _check_stretch(c, D, torch.cat([points, nearby]), std)
    c.done()
