"""Check of exercise 05: one discriminator step (5.1)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sngan_edu import gan_step, losses
from sngan_edu.course.exercises.core import (
    as_float,
    close,
    exercise_check,
    new_checker,
    require_unchanged,
    seeded,
    snapshot,
    tensor_close,
)


def _reference_discriminator_step(D: nn.Module, G: nn.Module, opt: torch.optim.Optimizer,
                                  real: torch.Tensor, z: torch.Tensor) -> tuple[float, float]:
    """The library's D step (hinge loss, D called on real and fake separately, as students do).

    Returns the loss before the update and the loss of the updated D on the same batch.
    """
    with torch.no_grad():
        fake = G(z)
    step = gan_step.discriminator_step(D, opt, real, fake, losses.hinge_d_loss, joint=False)
    with torch.no_grad():
        after = losses.hinge_d_loss(D(real), D(fake))
    return step.loss.item(), after.item()


class _StepRecorder:
    """Records what a student's step did: optimizer calls, backward passes, gradients into G."""

    def __init__(self, D: nn.Module, G: nn.Module, opt: torch.optim.Optimizer):
        self.events: list[str] = []
        self.g_gradients = 0
        self._handles = []
        zero_grad, step = opt.zero_grad, opt.step

        def recorded_zero_grad(*args: Any, **kwargs: Any) -> Any:
            self.events.append("zero_grad")
            return zero_grad(*args, **kwargs)

        def recorded_step(*args: Any, **kwargs: Any) -> Any:
            grads = [p.grad for group in opt.param_groups for p in group["params"]]
            empty = all(g is None or not bool(g.abs().sum() > 0) for g in grads)
            self.events.append("step with no gradients" if empty else "step")
            return step(*args, **kwargs)

        opt.zero_grad = recorded_zero_grad  # type: ignore[method-assign]
        opt.step = recorded_step  # type: ignore[method-assign]

        def on_d_grad(_: torch.Tensor) -> None:
            if not self.events or self.events[-1] != "backward":
                self.events.append("backward")

        def on_g_grad(grad: torch.Tensor) -> None:
            self.g_gradients += 1

        for p in D.parameters():
            self._handles.append(p.register_post_accumulate_grad_hook(on_d_grad))
        for p in G.parameters():
            self._handles.append(p.register_hook(on_g_grad))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@exercise_check
def check_discriminator_step(discriminator_step: Callable[..., Any]) -> None:
    """Check ``discriminator_step(D, G, opt_D, real, z) -> float``: one hinge-loss update of D.

    Compared with a reference step on identical copies: same loss (a Python number), same new
    D parameters (even when D has stale gradients from before), and the generator never enters
    the backward pass (no gradient reaches it, even if cleared afterwards) and is unchanged.
    """
    c = new_checker("discriminator_step", discriminator_step)
    g = seeded(23)
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.1), nn.Linear(16, 1))
    G = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2))
    real = torch.randn(8, 2, generator=g)
    z = torch.randn(8, 3, generator=g)

    def fresh() -> tuple[nn.Module, nn.Module, torch.optim.Optimizer]:
        d, gen = copy.deepcopy(D), copy.deepcopy(G)
        # stale gradients, as left over by a previous step: a correct step clears them first
        for p in d.parameters():
            p.grad = torch.ones_like(p)
        return d, gen, torch.optim.SGD(d.parameters(), lr=0.1)

    d_ref, g_ref, opt_ref = fresh()
    ref_loss, loss_after = _reference_discriminator_step(d_ref, g_ref, opt_ref, real, z)
    with torch.no_grad():
        fake = G(z)
        vanilla = float(losses.vanilla_d_loss(D(real), D(fake)))
    d_s, g_s, opt_s = fresh()
    inputs = {"G": g_s, "real": real.clone(), "z": z.clone()}
    before = {name: snapshot(obj) for name, obj in inputs.items()}
    recorder = _StepRecorder(d_s, g_s, opt_s)
    c.start("returns the hinge loss of D before the update, as a Python number")
    try:
        out = c.call(d_s, g_s, opt_s, inputs["real"], inputs["z"])
    finally:
        recorder.remove()
    for name in ("real", "z"):
        require_unchanged(c, before[name], inputs[name], name, "do not write into the batch "
                          "(no in-place operations such as z /= ... on the inputs).")
    value = as_float(c, out, "the loss")
    if not close(value, ref_loss, rtol=1e-4):
        if close(value, loss_after, rtol=1e-4):
            hint = ("that is the loss AFTER the update: compute the loss, backward, step, and "
                    "return the loss you computed before stepping (loss.item()).")
        elif close(value, vanilla, rtol=1e-4):
            hint = ("that is the vanilla GAN's binary cross-entropy loss; this step uses the "
                    "hinge loss, mean(relu(1 - D(real))) + mean(relu(1 + D(G(z)))).")
        else:
            hint = ("loss = mean(relu(1 - D(real))) + mean(relu(1 + D(G(z)))); return "
                    "loss.item().")
        c.fail(f"{ref_loss:.4g}", f"{value:.4g}", hint)
    if isinstance(out, torch.Tensor):
        c.fail("a Python number, e.g. loss.item()", f"a tensor ({out.item():.4g})",
               "return loss.item(). A training loop logs this number at every step; a tensor "
               "would keep a reference into autograd (and, on a GPU, force a synchronization "
               "wherever it is printed).")
    c.ok()

    c.start("updates D exactly like zero_grad -> backward -> step (stale gradients cleared)")
    events = recorder.events
    for p_s, p_r, p_0 in zip(d_s.parameters(), d_ref.parameters(), D.parameters(), strict=True):
        if not tensor_close(p_s, p_r, rtol=1e-5, atol=1e-6):
            if torch.equal(p_s.detach(), p_0.detach()):
                if "step with no gradients" in events:
                    hint = ("opt_D.step() found no gradients: zero_grad() ran AFTER "
                            "loss.backward() and cleared them. Clear first, then backward, "
                            "then step.")
                elif not any(e.startswith("step") for e in events):
                    hint = "D did not change: call opt_D.step() after loss.backward()."
                else:
                    hint = "D did not change: call loss.backward() before opt_D.step()."
            elif tensor_close(p_s, p_r - 0.1 * torch.ones_like(p_r), rtol=1e-5, atol=1e-6):
                hint = ("old gradients were added to the new ones: call opt_D.zero_grad() "
                        "before loss.backward().")
            else:
                hint = "one step: opt_D.zero_grad(); loss.backward(); opt_D.step()."
            order = " -> ".join(events) or "no optimizer call and no backward pass"
            c.fail("D's parameters after one reference step", f"different parameters (your "
                   f"step did: {order})", hint)
    c.ok()

    c.start("leaves the generator alone: no gradient ever reaches it, and it is unchanged")
    if recorder.g_gradients:
        c.fail("no gradient computed for G's parameters",
               f"the backward pass went through G ({recorder.g_gradients} gradients computed)",
               "make the fake batch with torch.no_grad() (or G(z).detach()): a discriminator "
               "step must not backpropagate into the generator. Clearing G's gradients "
               "afterwards does not undo the wasted backward pass through G, and with BatchNorm "
               "or a shared optimizer it changes G.")
    require_unchanged(c, before["G"], g_s, "G", "a discriminator step must not change the "
                      "generator: make the fake batch under torch.no_grad().")
    if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in g_s.parameters()):
        c.fail("G without gradients", "G's parameters hold gradients",
               "make the fake batch with torch.no_grad() (or G(z).detach()).")
    c.ok()
    c.done()
