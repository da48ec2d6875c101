"""Checks of exercise 04: the hinge losses (4.1, 4.2) and the mode-coverage metric (4.3); the SN
discriminator that can see the ring's modes (4.4) is checked in
:mod:`~sngan_edu.course.exercises.ring_discriminator`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from sngan_edu import losses
from sngan_edu.course.exercises.core import (
    _fmt,
    as_float,
    close,
    exercise_check,
    new_checker,
    seeded,
    unpack,
)
from sngan_edu.metrics import toy as toy_metrics


def _loss_cases() -> list[tuple[torch.Tensor, torch.Tensor, str, str]]:
    """(d_real, d_fake, what the D check says, what the G check says)."""
    g = seeded(17)
    return [
        (torch.tensor([2.0, 0.5, -0.5]), torch.tensor([-2.0, 0.0, 1.5]),
         "a batch of 3 with some margins met and some not",
         "a batch of 3 fake scores"),
        (torch.randn(16, generator=g) * 2, torch.randn(16, generator=g) * 2,
         "a random batch of 16 (the loss is a mean, not a sum)",
         "a random batch of 16 (the loss is a mean, not a sum)"),
        (torch.full((4,), 3.0), torch.full((4,), -3.0),
         "a perfect discriminator (all margins met): loss 0",
         "scores far below -1 (no hinge: the loss is simply -mean)"),
        (torch.randn(8, 1, generator=g), torch.randn(8, 1, generator=g),
         "D outputs of shape (batch, 1)", "D outputs of shape (batch, 1)"),
    ]


#: Plausible wrong discriminator losses, each with the hint that names it. Matched on every
#: case at once, so that two mistakes that agree on one batch are still told apart.
_WRONG_D_LOSSES: tuple[tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str], ...] = (
    (lambda r, f: (1 - r).mean() + (1 + f).mean(),
     "the hinge is missing: clip each term at 0 with torch.relu (max(0, .)) before averaging, "
     "so that scores beyond the margin stop counting."),
    (lambda r, f: F.relu(1 + r).mean() + F.relu(1 - f).mean(),
     "the signs are swapped: real scores should be pushed ABOVE +1 and fakes BELOW -1."),
    (lambda r, f: F.relu(1 - r).mean() + F.relu(1 - f).mean(),
     "the fake term has the wrong sign: max(0, 1 - D(G(z))) rewards fakes that score LOW "
     "as if they were real. Fakes should be pushed below -1: max(0, 1 + D(G(z)))."),
    (lambda r, f: F.relu(1 + r).mean() + F.relu(1 + f).mean(),
     "the real term has the wrong sign: max(0, 1 + D(x)) pushes real scores DOWN. Real scores "
     "should be pushed above +1: max(0, 1 - D(x))."),
    (lambda r, f: F.relu(1 - r).sum() + F.relu(1 + f).sum(),
     "you summed over the batch: use .mean(), so the loss does not grow with the batch size."),
    (lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
     "that is the vanilla GAN's loss (binary cross-entropy on logits, softplus), not the hinge "
     "loss: the hinge is max(0, 1 -/+ score), flat once the margin is met."),
    (lambda r, f: F.binary_cross_entropy_with_logits(torch.cat([r, f]), torch.cat(
        [torch.ones_like(r), torch.zeros_like(f)])),
     "that is the vanilla GAN's binary cross-entropy, not the hinge loss: the hinge is "
     "max(0, 1 -/+ score), flat once the margin is met."),
    (lambda r, f: f.mean() - r.mean(),
     "that is the Wasserstein critic's loss (no margin, no clipping); the hinge loss clips "
     "each term: max(0, 1 - D(x)) and max(0, 1 + D(G(z)))."),
    (lambda r, f: 0.5 * (F.relu(1 - r).mean() + F.relu(1 + f).mean()),
     "your loss is half the expected one: average each term over its own batch and ADD the two "
     "means (averaging real and fake together halves it)."),
    (lambda r, f: F.relu(-r).mean() + F.relu(f).mean(),
     "the margin is missing: max(0, 1 - D(x)) asks real scores to pass +1, not just 0."),
    (lambda r, f: F.relu(1 - r).mean(),
     "only the real term: add the fake term, the mean of max(0, 1 + D(G(z)))."),
    (lambda r, f: F.relu(1 + f).mean(),
     "only the fake term: add the real term, the mean of max(0, 1 - D(x))."),
)

_WRONG_G_LOSSES: tuple[tuple[Callable[[torch.Tensor], torch.Tensor], str], ...] = (
    (lambda f: F.relu(1 - f).mean(),
     "that is a hinge on the fakes; the SNGAN generator loss has no clipping: it keeps pushing "
     "D(G(z)) up, however high it already is."),
    (lambda f: f.mean(),
     "the sign: the generator wants D(G(z)) LARGE, so it minimizes minus the mean score."),
    (lambda f: -f.sum(),
     "you summed over the batch: use .mean(), so the loss does not grow with the batch size."),
    (lambda f: F.softplus(-f).mean(),
     "that is the non-saturating loss of the vanilla GAN, -log sigmoid(D(G(z))). With the hinge "
     "discriminator, SN-GAN's generator minimizes the raw score: L_G = -E[D(G(z))]."),
    (lambda f: -F.softplus(f).mean(),
     "that is the original minimax generator loss, log(1 - sigmoid(D(G(z)))), which saturates. "
     "With the hinge discriminator, SN-GAN's generator minimizes L_G = -E[D(G(z))]."),
    (lambda f: F.relu(1 + f).mean(),
     "that is the discriminator's fake term; the generator does the opposite, without a hinge: "
     "it minimizes L_G = -E[D(G(z))]."),
)


def _match(values: list[float], candidates, cases, which) -> str | None:
    """The hint of the first candidate that gives ``values`` on every case, else None."""
    for fn, hint in candidates:
        with torch.no_grad():
            expected = [float(which(fn, case)) for case in cases]
        if all(close(v, e, rtol=1e-4, atol=1e-6) for v, e in zip(values, expected, strict=True)):
            return hint
    return None


def _require_gradients(c, out: Any, inputs: dict[str, torch.Tensor],
                       reference: Callable[..., torch.Tensor]) -> None:
    """Fail unless d(out)/d(input) equals the reference loss's, for every input score tensor.

    A loss that detaches one of its inputs (``.detach()``, ``torch.no_grad()``, a Python float)
    has the right value but sends no gradient to that network: the hint names which one.
    """
    names = list(inputs)
    leaves = [inputs[n].detach().clone().requires_grad_(True) for n in names]
    expected = torch.autograd.grad(reference(*leaves), leaves)
    got = torch.autograd.grad(out, [inputs[n] for n in names], allow_unused=True,
                              retain_graph=True)
    for name, g, e in zip(names, got, expected, strict=True):
        if g is None or not torch.allclose(g.double(), e.double(), rtol=1e-4, atol=1e-6):
            if g is None or not bool(g.abs().sum() > 0):
                network = "the discriminator's" if name == "d_real" else (
                    "the generator's (in its step) or the discriminator's (in its own)")
                c.fail(f"a gradient reaching {name}", f"no gradient reaches {name}",
                       f"the loss has the right value but is cut off from {name} "
                       f"(.detach(), torch.no_grad(), .item() or a Python number on it), so "
                       f"{network} update would get nothing from this term. The loss must be "
                       "computed from the scores themselves; the training step decides what to "
                       "detach, not the loss.")
            c.fail(f"the gradient of the hinge loss with respect to {name}",
                   f"{_fmt(g)}", "the value is right but its slope is not: use the same "
                   "operations for the value and the gradient (no constants in place of "
                   "scores).")


@exercise_check
def check_hinge_d_loss(hinge_d_loss: Callable[..., Any]) -> None:
    """Check ``hinge_d_loss(d_real, d_fake)`` = mean(relu(1 - d_real)) + mean(relu(1 + d_fake))."""
    c = new_checker("hinge_d_loss", hinge_d_loss)
    cases = _loss_cases()

    def value_on(real: torch.Tensor, fake: torch.Tensor) -> tuple[Any, float]:
        r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
        out = c.call(r, f)
        return out, as_float(c, out, "the loss")

    for real, fake, description, _ in cases:
        with c.step(description):
            expected = float(losses.hinge_d_loss(real, fake))
            out, value = value_on(real, fake)
            if not close(value, expected):
                values = [value_on(r, f)[1] for r, f, _, _ in cases]
                hint = _match(values, _WRONG_D_LOSSES, cases, lambda fn, case: fn(case[0], case[1]))
                c.fail(f"{expected:.4g}", f"{value:.4g}", hint or (
                    "L_D has two terms, each a mean over its own batch of a hinge max(0, .): try "
                    "your function by hand on d_real = [0.] and d_fake = [0.] (the loss is 2) and "
                    "on d_real = [2.], d_fake = [-2.] (the loss is 0)."))
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                c.fail("a tensor connected to d_real and d_fake (to call .backward())", _fmt(out),
                       "use torch operations (torch.relu, .mean()), not .item() or Python floats.")

    with c.step("gradients reach both the real and the fake scores, as the hinge loss's do"):
        for real, fake, _, _ in cases:
            r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
            _require_gradients(c, c.call(r, f), {"d_real": r, "d_fake": f}, losses.hinge_d_loss)
    c.done()


@exercise_check
def check_hinge_g_loss(hinge_g_loss: Callable[..., Any]) -> None:
    """Check ``hinge_g_loss(d_fake)`` = -mean(d_fake) (the generator loss used with hinge D)."""
    c = new_checker("hinge_g_loss", hinge_g_loss)
    cases = _loss_cases()

    def value_on(fake: torch.Tensor) -> tuple[Any, float]:
        out = c.call(fake.clone().requires_grad_(True))
        return out, as_float(c, out, "the loss")

    for _, fake, _, description in cases:
        with c.step(description):
            expected = float(losses.hinge_g_loss(fake))
            out, value = value_on(fake)
            if not close(value, expected):
                values = [value_on(f)[1] for _, f, _, _ in cases]
                hint = _match(values, _WRONG_G_LOSSES, cases, lambda fn, case: fn(case[1]))
                c.fail(f"{expected:.4g}", f"{value:.4g}", hint or (
                    "compare yours with L_G in the text: no hinge, a mean over the batch, and the "
                    "sign that makes the generator push its scores up."))
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                c.fail("a tensor connected to d_fake", _fmt(out),
                       "use torch operations, not floats.")

    with c.step("the gradient reaching the fake scores is the hinge generator loss's"):
        for _, fake, _, _ in cases:
            f = fake.clone().requires_grad_(True)
            _require_gradients(c, c.call(f), {"d_fake": f}, losses.hinge_g_loss)
    c.done()


# --------------------------------------------------------------------------------------------
# 4.3: mode coverage
# --------------------------------------------------------------------------------------------


def reference_mode_coverage(samples: torch.Tensor, means: torch.Tensor,
                            std: float) -> tuple[int, float]:
    """(modes captured, % high-quality samples) by the course's metric, toy_metrics.mode_metrics."""
    metrics = toy_metrics.mode_metrics(samples, means, std)
    return metrics.modes, metrics.high_quality


def _coverage(nearest: torch.Tensor, good: torch.Tensor) -> tuple[int, float]:
    return int(nearest[good].unique().numel()), 100 * float(good.double().mean())


def _wrong_coverages(samples: torch.Tensor, means: torch.Tensor,
                     std: float) -> list[tuple[tuple[int, float], str]]:
    """What plausible wrong metrics give on these samples, each with its hint."""
    distance, nearest = torch.cdist(samples.double(), means.double()).min(dim=1)
    offset = (samples.double() - means.double()[nearest]).abs()
    box = (offset <= 3 * std).all(dim=1)
    modes, percent = _coverage(nearest, distance <= 3 * std)
    return [
        ((modes, percent / 100), "return a percentage (0 to 100), not a fraction."),
        (_coverage(nearest, box), "you compared each coordinate with 3 * std (a square box "
         "around the mode). The test is on the Euclidean distance: a point 2.5 std off in x AND "
         "in y is sqrt(2.5^2 + 2.5^2) = 3.5 std away, outside. Use torch.cdist (or the norm "
         "of the difference)."),
        (_coverage(nearest, distance <= 3 * std ** 2), "your threshold 3 * std**2 is not a "
         "distance (it has units of length squared, and here it is tiny): compare the distance "
         "with 3 * std, or the squared distance with (3 * std)**2."),
        (_coverage(nearest, distance ** 2 <= 3 * std), "you compared the SQUARED distance with "
         "3 * std: compare the distance with 3 * std, or the squared distance with "
         "(3 * std)**2."),
        (_coverage(nearest, distance <= std), "the threshold is 3 * std, compared with the "
         "distance to the nearest mode."),
        (_coverage(nearest, distance <= 2 * std), "the threshold is 3 * std, compared with the "
         "distance to the nearest mode."),
        ((int(nearest.unique().numel()), percent), "a mode counts only if a HIGH-QUALITY "
         "sample (within 3 std) is nearest to it; low-quality samples capture nothing."),
    ]


def _unpack_coverage(c, out: Any) -> tuple[float, float]:
    modes, percent = unpack(c, out, ("modes_captured", "high_quality_percent"),
                            "end with `return modes, percent`.")
    return as_float(c, modes, "modes_captured"), as_float(c, percent, "high_quality_percent")


def _same_coverage(got: tuple[float, float], expected: tuple[float, float]) -> bool:
    return got[0] == expected[0] and close(got[1], expected[1], atol=1e-4)


def _check_ring_coverage(c, samples: torch.Tensor, ring: torch.Tensor, std: float,
                         hint: str) -> None:
    """Coverage of ``samples`` around the ``ring``'s modes; ``hint`` unless a known mistake."""
    expected = reference_mode_coverage(samples, ring, std)
    wrong = _wrong_coverages(samples, ring, std)
    got = _unpack_coverage(c, c.call(samples.clone(), ring.clone(), std))  # checked unchanged
    if not _same_coverage(got, expected):
        hint = next((h for value, h in wrong if _same_coverage(got, value)), hint)
        c.fail(f"({expected[0]}, {expected[1]:.4g})", f"({got[0]:g}, {got[1]:.4g})", hint)


def _hard_coded_hint(got: tuple[float, float], expected: tuple[int, float],
                     samples: torch.Tensor, modes: torch.Tensor, width: float,
                     ring: torch.Tensor, std: float) -> str:
    """Name the ring's numbers used in place of the arguments, on another mixture."""
    distance, nearest = torch.cdist(samples.double(), modes.double()).min(dim=1)
    ring_distance, ring_nearest = torch.cdist(samples.double(), ring.double()).min(dim=1)
    hard_coded = [
        (_coverage(nearest, distance <= 3 * std), f"you used the ring's std ({std}) instead "
         f"of the std passed in (here {width}): the metric must work for any mixture."),
        (_coverage(ring_nearest, ring_distance <= 3 * width), "you used the ring's means "
         "instead of the means passed in: the metric must work for any mixture."),
        (_coverage(ring_nearest, ring_distance <= 3 * std), "you used the ring's means and "
         "std instead of the arguments: the metric must work for any mixture."),
        ((min(8, expected[0]), got[1]), "at most 8 modes are counted: count the distinct "
         "nearest modes among any number of means."),
    ]
    return next((h for value, h in hard_coded if _same_coverage(got, value)),
                "compute everything from the samples, means and std you are given.")


def _check_other_mixtures(c, ring: torch.Tensor, std: float, g: torch.Generator) -> None:
    for k, width in ((5, 0.2), (13, 0.03), (8, 0.05)):
        modes = torch.rand(k, 2, generator=g) * 8 - 4
        picked = torch.randint(0, k - 2, (300,), generator=g)  # the last two modes get none
        samples = modes[picked] + 1.8 * width * torch.randn(300, 2, generator=g)
        expected = reference_mode_coverage(samples, modes, width)
        got = _unpack_coverage(c, c.call(samples.clone(), modes.clone(), width))
        if not _same_coverage(got, expected):
            c.fail(f"({expected[0]}, {expected[1]:.4g}) for {k} modes of std {width}",
                   f"({got[0]:g}, {got[1]:.4g})",
                   _hard_coded_hint(got, expected, samples, modes, width, ring, std))


@exercise_check
def check_mode_coverage(mode_coverage: Callable[..., Any]) -> None:
    """Check ``mode_coverage(samples, means, std) -> (modes_captured, high_quality_percent)``.

    A sample is high quality if it lies within 3 std (Euclidean distance) of its nearest mode; a
    mode is captured if at least one high-quality sample is nearest to it (reference:
    toy_metrics.mode_metrics).
    """
    c = new_checker("mode_coverage", mode_coverage)
    angles = torch.arange(8) * 2 * math.pi / 8
    ring = torch.stack([angles.cos(), angles.sin()], dim=1)
    std = 0.01
    g = seeded(19)
    near = ring[[0, 3, 5]].repeat(20, 1) + std * torch.randn(60, 2, generator=g).clamp(-1, 1)
    cloud = torch.randn(500, 2, generator=g) * 0.7
    cloud[:100] = ring[torch.arange(100) % 8] + std * torch.randn(100, 2, generator=g)
    cases = (
        ("samples exactly on all 8 ring modes: 8 modes, 100 % high quality", ring.repeat(5, 1),
         "assign each sample to its nearest mode (torch.cdist + min) and count the distinct "
         "modes."),
        ("samples within 1.5 std of 3 modes: 3 modes, 100 % high quality", near,
         "count the distinct nearest modes of the high-quality samples."),
        ("samples 5 std away from their mode are low quality and capture nothing",
         torch.cat([ring[:4] + torch.tensor([5 * std, 0.0]), ring[4:6]]),
         "a sample is high quality only within 3 std of its nearest mode."),
        ("samples 2.5 std away still count (the threshold is 3 std)",
         ring + torch.tensor([0.0, 2.5 * std]),
         "compare the Euclidean distance to the nearest mode with 3 * std."),
        ("samples 2.5 std off in x AND in y are 3.5 std away: low quality",
         torch.cat([ring + torch.tensor([2.5 * std, 2.5 * std]), ring[:2]]),
         "the distance is Euclidean: sqrt(dx^2 + dy^2), compared with 3 * std."),
        ("a random cloud agrees with the course's metric (toy_metrics.mode_metrics)", cloud,
         "use the Euclidean distance to the nearest mode (torch.cdist)."),
    )
    for description, samples, hint in cases:
        with c.step(description):
            _check_ring_coverage(c, samples, ring, std, hint)

    with c.step("mixtures you have not seen: other numbers of modes, places and widths"):
        _check_other_mixtures(c, ring, std, g)
    c.done()
