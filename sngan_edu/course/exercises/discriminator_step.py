"""Checks of exercise 05: one discriminator step (5.1), and what both training steps share; the
generator step with the average of G's weights (5.2) is checked in
:mod:`~sngan_edu.course.exercises.generator_step`."""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from sngan_edu import gan_step, losses, sn
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


def _reference_steps(D: nn.Module, G: nn.Module, real: torch.Tensor, z: torch.Tensor,
                     fresh: Callable[[], tuple[nn.Module, nn.Module, torch.optim.Optimizer]]
                     ) -> list[dict[str, Any]]:
    """The correct D steps, each on fresh copies: D called on real then fake, on fake then real,
    or once on the concatenated batch. With SN and BatchNorm in D they differ a little (each
    training-mode forward runs a power iteration and updates the batch statistics), and any of
    them is a correct step. Each gives its loss, D's state after it, and the loss after it."""
    references = []
    for order in ("real, fake", "fake, real", "joint"):
        d, gen, opt = fresh()
        with torch.no_grad():
            fake = gen(z)
        if order == "joint":
            d_real, d_fake = gan_step.score_real_and_fake(d, real, fake, joint=True)
        elif order == "real, fake":
            d_real, d_fake = d(real), d(fake)
        else:
            d_fake = d(fake)
            d_real = d(real)
        loss = losses.hinge_d_loss(d_real, d_fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
        state = {k: v.detach().clone() for k, v in d.state_dict().items()}
        after = copy.deepcopy(d)
        with torch.no_grad():
            loss_after = float(losses.hinge_d_loss(after(real), after(fake)))
            vanilla = float(losses.vanilla_d_loss(d_real, d_fake))
        references.append({"order": order, "loss": loss.item(), "state": state,
                           "loss_after": loss_after, "vanilla": vanilla, "D": d})
    return references


def _discriminator(g: torch.Generator) -> nn.Module:
    """A small D as the course trains them: SN on every Linear, and a BatchNorm layer."""
    D = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.LeakyReLU(0.1),
                      nn.Linear(16, 16), nn.LeakyReLU(0.1), nn.Linear(16, 1))
    with torch.no_grad():
        for p in D.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    sn.apply_spectral_norm(D)
    return D


_EVAL_HINT = (
    "D ran in eval mode during its own training step (D.eval(), or a layer of it switched to "
    "eval). In eval mode spectral norm stops its power iteration (the estimate of sigma "
    "freezes at its last value) and BatchNorm normalizes with its running averages instead of "
    "the batch, so D would train a different network from the one it is. A training step "
    "runs D in training mode; eval() is for sampling and evaluation."
)


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


@contextlib.contextmanager
def _watching_modes(D: nn.Module) -> Iterator[list[tuple[str, bool]]]:
    """The (layer name, training) of every forward pass through D's layers meanwhile."""
    modes: list[tuple[str, bool]] = []
    hooks = [m.register_forward_pre_hook(
        lambda module, args, name=name: modes.append((name, module.training)))
        for name, m in D.named_modules()]
    try:
        yield modes
    finally:
        for hook in hooks:
            hook.remove()


def _require_training_mode(c, modes: list[tuple[str, bool]], expected: str) -> None:
    evaluated = sorted({name or "D" for name, training in modes
                        if not training and "parametrizations" not in name})
    if evaluated:
        c.fail(expected, f"eval mode in {', '.join(evaluated[:3])}", _EVAL_HINT)


def _require_number(c, out: Any, hint: str) -> None:
    if isinstance(out, torch.Tensor):
        c.fail("a Python number, e.g. loss.item()", f"a tensor ({out.item():.4g})", hint)


def _d_loss_hint(value: float, references: list[dict[str, Any]]) -> str:
    if any(close(value, r["loss_after"], rtol=1e-4) for r in references):
        return ("that is the loss AFTER the update: compute the loss, backward, step, and "
                "return the loss you computed before stepping (loss.item()).")
    if any(close(value, r["vanilla"], rtol=1e-4) for r in references):
        return ("that is the vanilla GAN's binary cross-entropy loss; this step uses the "
                "hinge loss, mean(relu(1 - D(real))) + mean(relu(1 + D(G(z)))).")
    return "loss = mean(relu(1 - D(real))) + mean(relu(1 + D(G(z)))); return loss.item()."


def _d_update_hint(p_s: torch.Tensor, p_r: torch.Tensor, p_0: torch.Tensor,
                   events: list[str]) -> str:
    """Name the mistake of a D parameter ``p_s`` that is not the reference's ``p_r``."""
    if torch.equal(p_s.detach(), p_0.detach()):
        if "step with no gradients" in events:
            return ("opt_D.step() found no gradients: zero_grad() ran AFTER loss.backward() "
                    "and cleared them. Clear first, then backward, then step.")
        if not any(e.startswith("step") for e in events):
            return "D did not change: call opt_D.step() after loss.backward()."
        return "D did not change: call loss.backward() before opt_D.step()."
    if tensor_close(p_s, p_r - 0.1 * torch.ones_like(p_r), rtol=1e-5, atol=1e-6):
        return ("old gradients were added to the new ones: call opt_D.zero_grad() before "
                "loss.backward().")
    return "one step: opt_D.zero_grad(); loss.backward(); opt_D.step()."


def _check_d_update(c, d_s: nn.Module, matched: dict[str, Any], D: nn.Module,
                    events: list[str]) -> None:
    """D's parameters and buffers are those of the reference step ``matched``."""
    for p_s, p_r, p_0 in zip(d_s.parameters(), matched["D"].parameters(), D.parameters(),
                             strict=True):
        if not tensor_close(p_s, p_r, rtol=1e-5, atol=1e-6):
            order = " -> ".join(events) or "no optimizer call and no backward pass"
            c.fail("D's parameters after one reference step", f"different parameters (your "
                   f"step did: {order})", _d_update_hint(p_s, p_r, p_0, events))
    state = d_s.state_dict()
    for key, expected in matched["state"].items():
        if key in state and not tensor_close(state[key], expected, rtol=1e-5, atol=1e-6):
            c.fail(f"D's buffer {key} as after one training step",
                   "a different value",
                   "D's buffers (spectral norm's u, BatchNorm's running statistics) move at "
                   "every forward pass in training mode: call D once on the real and once on "
                   "the fake batch (or once on both together), no extra forward passes, and "
                   "not under torch.no_grad() or in eval mode.")


def _check_g_left_alone(c, g_gradients: int, before: Any, G: nn.Module) -> None:
    if g_gradients:
        c.fail("no gradient computed for G's parameters",
               f"the backward pass went through G ({g_gradients} gradients computed)",
               "make the fake batch with torch.no_grad() (or G(z).detach()): a discriminator "
               "step must not backpropagate into the generator. Clearing G's gradients "
               "afterwards does not undo the wasted backward pass through G, and with BatchNorm "
               "or a shared optimizer it changes G.")
    require_unchanged(c, before, G, "G", "a discriminator step must not change the "
                      "generator: make the fake batch under torch.no_grad().")
    if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in G.parameters()):
        c.fail("G without gradients", "G's parameters hold gradients",
               "make the fake batch with torch.no_grad() (or G(z).detach()).")


def _fresh_d_step(D: nn.Module, G: nn.Module
                  ) -> tuple[nn.Module, nn.Module, torch.optim.Optimizer]:
    """Copies of D and G, and D's optimizer; D holds stale gradients, as left over by a
    previous step (a correct step clears them first)."""
    d, gen = copy.deepcopy(D), copy.deepcopy(G)
    for p in d.parameters():
        p.grad = torch.ones_like(p)
    return d, gen, torch.optim.SGD(d.parameters(), lr=0.1)


@exercise_check
def check_discriminator_step(discriminator_step: Callable[..., Any]) -> None:
    """Check ``discriminator_step(D, G, opt_D, real, z) -> float``: one hinge-loss update of D.

    D has spectral norm on every Linear and a BatchNorm layer, as the course's discriminators
    do. Compared with reference steps on identical copies (D called on real and fake in either
    order, or once on both): same loss (a Python number), same new D parameters and buffers
    (even when D has stale gradients from before), D in training mode in every forward pass,
    and the generator never enters the backward pass (no gradient reaches it, even if cleared
    afterwards) and is unchanged.
    """
    c = new_checker("discriminator_step", discriminator_step)
    g = seeded(23)
    D = _discriminator(g)
    G = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2))
    real = torch.randn(8, 2, generator=g)
    z = torch.randn(8, 3, generator=g)
    references = _reference_steps(D, G, real, z, functools.partial(_fresh_d_step, D, G))
    d_s, g_s, opt_s = _fresh_d_step(D, G)
    g_before = snapshot(g_s)
    recorder = _StepRecorder(d_s, g_s, opt_s)
    with c.step("returns the hinge loss of D before the update, as a Python number"):
        try:
            with _watching_modes(d_s) as modes:
                out = c.call(d_s, g_s, opt_s, real.clone(), z.clone())
        finally:
            recorder.remove()
        _require_training_mode(c, modes, "D in training mode in every forward pass of its step")
        value = as_float(c, out, "the loss")
        matched = next((r for r in references if close(value, r["loss"], rtol=1e-4)), None)
        if matched is None:
            c.fail(f"{references[0]['loss']:.4g}", f"{value:.4g}", _d_loss_hint(value, references))
        _require_number(c, out, "return loss.item(). A training loop logs this number at every "
                        "step; a tensor would keep a reference into autograd (and, on a GPU, force "
                        "a synchronization wherever it is printed).")

    with c.step("updates D exactly like zero_grad -> backward -> step (stale gradients cleared), "
                "spectral norm and BatchNorm included"):
        _check_d_update(c, d_s, matched, D, recorder.events)

    with c.step("leaves the generator alone: no gradient ever reaches it, and it is unchanged"):
        _check_g_left_alone(c, recorder.g_gradients, g_before, g_s)
    c.done()
