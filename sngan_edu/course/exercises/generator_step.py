"""Checks of exercise 05, part 5.2: one generator step through D, then the average of G's
weights (an exponential moving average)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sngan_edu import gan_step, losses
from sngan_edu.course.exercises.core import (
    as_float,
    close,
    exercise_check,
    new_checker,
    seeded,
    tensor_close,
)
from sngan_edu.course.exercises.discriminator_step import (
    _discriminator,
    _require_number,
    _require_training_mode,
    _watching_modes,
)


def _average(G_avg: nn.Module, G: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for p_avg, p in zip(G_avg.parameters(), G.parameters(), strict=True):
            p_avg.mul_(decay).add_(p, alpha=1 - decay)


def _fresh_g_step(D: nn.Module, G: nn.Module, G_avg: nn.Module
                  ) -> tuple[nn.Module, nn.Module, nn.Module, torch.optim.Optimizer]:
    """Copies of D, G and G_avg, and G's optimizer. G holds stale gradients (a correct step
    clears them first); D holds its own, from its last step (the G step leaves them alone)."""
    d, gen, avg = copy.deepcopy(D), copy.deepcopy(G), copy.deepcopy(G_avg)
    for p in gen.parameters():
        p.grad = torch.ones_like(p)
    for p in d.parameters():
        p.grad = torch.full_like(p, 0.5)
    return d, gen, avg, torch.optim.SGD(gen.parameters(), lr=0.1)


def _g_loss_hint(value: float, D: nn.Module, G: nn.Module, z: torch.Tensor) -> str:
    with torch.no_grad():
        d_fake = copy.deepcopy(D)(G(z))
    wrong = [
        (float(F.relu(1 - d_fake).mean()), "that is a hinge on the fake scores; the "
         "generator's loss has no hinge: minus the mean score."),
        (float(d_fake.mean()), "the sign: G wants D(G(z)) LARGE, so it minimizes minus the "
         "mean score."),
        (float(F.softplus(-d_fake).mean()), "that is the vanilla GAN's generator loss; "
         "with the hinge discriminator, G minimizes -mean(D(G(z)))."),
    ]
    return next((h for w, h in wrong if close(value, w, rtol=1e-3)),
                "the loss G minimizes is minus the mean of D's scores on G(z), computed "
                "before G's update.")


def _check_g_update(c, g_s: nn.Module, g_ref: nn.Module, G: nn.Module) -> None:
    for p_s, p_r, p_0 in zip(g_s.parameters(), g_ref.parameters(), G.parameters(), strict=True):
        if tensor_close(p_s, p_r, rtol=1e-5, atol=1e-6):
            continue
        if torch.equal(p_s.detach(), p_0.detach()):
            hint = ("G did not change: no gradient reached it (G(z) detached or made "
                    "under torch.no_grad()?), or opt_G.step() was not called. This step "
                    "trains G THROUGH D: the fakes must stay connected to G.")
        elif tensor_close(p_s, p_r - 0.1 * torch.ones_like(p_r), rtol=1e-5, atol=1e-6):
            hint = ("old gradients were added to the new ones: clear G's gradients before "
                    "the backward pass.")
        else:
            hint = "one step of G: clear its gradients, backward, opt_G.step()."
        c.fail("G's parameters after one reference step", "different parameters", hint)


def _check_d_untouched(c, d_s: nn.Module, d_ref: nn.Module, D: nn.Module) -> None:
    """D's parameters as they were, its buffers as after one pass, its gradients untouched."""
    for (name, p), p_0 in zip(d_s.named_parameters(), D.parameters(), strict=True):
        if not torch.equal(p.detach(), p_0.detach()):
            c.fail(f"D's parameter {name} unchanged", "it was changed",
                   "the generator step must not change D: only opt_G steps, and it holds G's "
                   "parameters alone.")
    reference_state = d_ref.state_dict()
    for key, value in d_s.state_dict().items():
        if key in reference_state and not tensor_close(value, reference_state[key],
                                                       rtol=1e-5, atol=1e-6):
            c.fail(f"D's buffer {key} as after one forward pass of the fakes",
                   "a different value", "D's buffers (spectral norm's u, BatchNorm's "
                   "statistics) move at every forward pass in training mode: score the fakes "
                   "once, with no extra passes through D.")
    for name, p in d_s.named_parameters():
        if p.grad is None or not torch.equal(p.grad, torch.full_like(p, 0.5)):
            c.fail(f"D's gradients untouched ({name})", "the backward pass changed them",
                   "the backward pass of G's loss also filled D's gradients. Freeze D's "
                   "parameters (they should not require gradients) during G's step, and give "
                   "them back afterwards: nothing is computed for D, and D's next step starts "
                   "from clean gradients.")
        if not p.requires_grad:
            c.fail(f"D's parameters trainable again after the step ({name})",
                   "requires_grad is still False", "give D back its requires_grad after G's "
                   "step, or D's own step cannot learn.")


def _average_hint(p_s: torch.Tensor, p_0: torch.Tensor, p_g: torch.Tensor,
                  p_g0: torch.Tensor, decay: float) -> str:
    """Name the mistake of an averaged parameter ``p_s`` (from ``p_0``; G's ``p_g0`` -> ``p_g``)."""
    candidates = [
        (p_0, "G_avg did not change: after G's step, move each of its parameters a "
         "fraction (1 - decay) of the way towards G's new value."),
        (p_g, "G_avg became a copy of G: the point of the average is to move only a "
         "fraction (1 - decay) of the way, so that it smooths G's last steps."),
        ((1 - decay) * p_0 + decay * p_g, "decay and 1 - decay are swapped: the average "
         "keeps a fraction decay (0.9 here, 0.999 in practice) of its own value and takes "
         "1 - decay of G's."),
        (decay * p_0 + (1 - decay) * p_g0, "you averaged G's OLD weights: update the "
         "average after opt_G.step(), with the weights that step produced."),
    ]
    return next((h for value, h in candidates if tensor_close(p_s, value, rtol=1e-5, atol=1e-7)),
                "p_avg = decay * p_avg + (1 - decay) * p for every pair of parameters of "
                "G_avg and G, after G's step.")


def _check_average(c, avg_s: nn.Module, avg_ref: nn.Module, G_avg0: nn.Module,
                   g_ref: nn.Module, G: nn.Module, decay: float) -> None:
    for (name, p_s), p_r, p_0, p_g, p_g0 in zip(
            avg_s.named_parameters(), avg_ref.parameters(), G_avg0.parameters(),
            g_ref.parameters(), G.parameters(), strict=True):
        if p_s.requires_grad != p_0.requires_grad:
            c.fail("G_avg's parameters as they were (only their values move)",
                   f"{name}: requires_grad changed", "update the average's values under "
                   "torch.no_grad(); do not replace its parameters.")
        if not tensor_close(p_s, p_r, rtol=1e-5, atol=1e-7):
            c.fail(f"{name} = {decay} * old average + {1 - decay:.1f} * G's new weight",
                   "a different value", _average_hint(p_s, p_0, p_g, p_g0, decay))


@exercise_check
def check_generator_step(generator_step: Callable[..., Any]) -> None:
    """Check ``generator_step(D, G, G_avg, opt_G, z, decay) -> float``: one update of G, then
    the average of its weights.

    G minimizes the hinge generator loss -mean(D(G(z))) through D (D in training mode, as the
    course's loop runs it), with D's parameters and gradients untouched; then every parameter
    of ``G_avg`` becomes ``decay * p_avg + (1 - decay) * p`` with G's NEW parameters. Returns
    the loss before the update as a Python number. Compared with ``gan_step.generator_step``
    on identical copies.
    """
    c = new_checker("generator_step", generator_step)
    g = seeded(53)
    D = _discriminator(g)
    G = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2))
    z = torch.randn(8, 3, generator=g)
    decay = 0.9
    G_avg0 = copy.deepcopy(G)
    with torch.no_grad():  # an average that has drifted from G, as after some training
        for p in G_avg0.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    d_ref, g_ref, avg_ref, opt_ref = _fresh_g_step(D, G, G_avg0)
    ref_loss = float(gan_step.generator_step(g_ref, d_ref, opt_ref, z.clone(),
                                             losses.hinge_g_loss))
    _average(avg_ref, g_ref, decay)
    d_s, g_s, avg_s, opt_s = _fresh_g_step(D, G, G_avg0)

    with c.step("returns the hinge generator loss before the update, as a Python number"):
        with _watching_modes(d_s) as modes:
            out = c.call(d_s, g_s, avg_s, opt_s, z.clone(), decay)
        _require_training_mode(c, modes, "D in training mode, as the training loop runs it")
        value = as_float(c, out, "the loss")
        if not close(value, ref_loss, rtol=1e-4):
            c.fail(f"{ref_loss:.4g}", f"{value:.4g}", _g_loss_hint(value, D, G, z))
        _require_number(c, out, "return loss.item(): a logged number, not a piece of the autograd "
                        "graph.")

    with c.step("updates G exactly like zero_grad -> backward -> step (stale gradients cleared)"):
        _check_g_update(c, g_s, g_ref, G)

    with c.step("leaves D's parameters and gradients as they were (D is not trained here)"):
        _check_d_untouched(c, d_s, d_ref, D)

    with c.step(f"then moves every weight of G_avg towards G's NEW weights: "
                f"decay * avg + (1 - decay) * new (decay = {decay})"):
        _check_average(c, avg_s, avg_ref, G_avg0, g_ref, G, decay)
    c.done()
