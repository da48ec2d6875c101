"""Checks of exercise 05: one discriminator step (5.1), one generator step with the average of
G's weights (5.2)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
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


def _hinge(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return losses.hinge_d_loss(d_real, d_fake)


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
        loss = _hinge(d_real, d_fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
        state = {k: v.detach().clone() for k, v in d.state_dict().items()}
        after = copy.deepcopy(d)
        with torch.no_grad():
            loss_after = float(_hinge(after(real), after(fake)))
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

    def fresh() -> tuple[nn.Module, nn.Module, torch.optim.Optimizer]:
        d, gen = copy.deepcopy(D), copy.deepcopy(G)
        # stale gradients, as left over by a previous step: a correct step clears them first
        for p in d.parameters():
            p.grad = torch.ones_like(p)
        return d, gen, torch.optim.SGD(d.parameters(), lr=0.1)

    references = _reference_steps(D, G, real, z, fresh)
    first = references[0]
    d_s, g_s, opt_s = fresh()
    inputs = {"G": g_s, "real": real.clone(), "z": z.clone()}
    before = {name: snapshot(obj) for name, obj in inputs.items()}
    recorder = _StepRecorder(d_s, g_s, opt_s)
    modes: list[tuple[str, bool]] = []
    hooks = [m.register_forward_pre_hook(
        lambda module, args, name=name: modes.append((name, module.training)))
        for name, m in d_s.named_modules()]
    c.start("returns the hinge loss of D before the update, as a Python number")
    try:
        out = c.call(d_s, g_s, opt_s, inputs["real"], inputs["z"])
    finally:
        recorder.remove()
        for hook in hooks:
            hook.remove()
    evaluated = sorted({name or "D" for name, training in modes
                        if not training and "parametrizations" not in name})
    if evaluated:
        c.fail("D in training mode in every forward pass of its step",
               f"eval mode in {', '.join(evaluated[:3])}", _EVAL_HINT)
    value = as_float(c, out, "the loss")
    matched = next((r for r in references if close(value, r["loss"], rtol=1e-4)), None)
    if matched is None:
        if any(close(value, r["loss_after"], rtol=1e-4) for r in references):
            hint = ("that is the loss AFTER the update: compute the loss, backward, step, and "
                    "return the loss you computed before stepping (loss.item()).")
        elif any(close(value, r["vanilla"], rtol=1e-4) for r in references):
            hint = ("that is the vanilla GAN's binary cross-entropy loss; this step uses the "
                    "hinge loss, mean(relu(1 - D(real))) + mean(relu(1 + D(G(z)))).")
        else:
            hint = ("loss = mean(relu(1 - D(real))) + mean(relu(1 + D(G(z)))); return "
                    "loss.item().")
        c.fail(f"{first['loss']:.4g}", f"{value:.4g}", hint)
    if isinstance(out, torch.Tensor):
        c.fail("a Python number, e.g. loss.item()", f"a tensor ({out.item():.4g})",
               "return loss.item(). A training loop logs this number at every step; a tensor "
               "would keep a reference into autograd (and, on a GPU, force a synchronization "
               "wherever it is printed).")
    c.ok()

    c.start("updates D exactly like zero_grad -> backward -> step (stale gradients cleared), "
            "spectral norm and BatchNorm included")
    events = recorder.events
    d_ref = matched["D"]
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
    state = d_s.state_dict()
    for key, expected in matched["state"].items():
        if key in state and not tensor_close(state[key], expected, rtol=1e-5, atol=1e-6):
            c.fail(f"D's buffer {key} as after one training step",
                   "a different value",
                   "D's buffers (spectral norm's u, BatchNorm's running statistics) move at "
                   "every forward pass in training mode: call D once on the real and once on "
                   "the fake batch (or once on both together), no extra forward passes, and "
                   "not under torch.no_grad() or in eval mode.")
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


# --------------------------------------------------------------------------------------------
# 5.2: the generator step, and the average of G's weights
# --------------------------------------------------------------------------------------------


def _average(G_avg: nn.Module, G: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for p_avg, p in zip(G_avg.parameters(), G.parameters(), strict=True):
            p_avg.mul_(decay).add_(p, alpha=1 - decay)


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

    def fresh() -> tuple[nn.Module, nn.Module, nn.Module, torch.optim.Optimizer]:
        d, gen, avg = copy.deepcopy(D), copy.deepcopy(G), copy.deepcopy(G_avg0)
        for p in gen.parameters():  # stale gradients: a correct step clears them first
            p.grad = torch.ones_like(p)
        for p in d.parameters():  # D's own, from its last step: the G step leaves them alone
            p.grad = torch.full_like(p, 0.5)
        return d, gen, avg, torch.optim.SGD(gen.parameters(), lr=0.1)

    d_ref, g_ref, avg_ref, opt_ref = fresh()
    ref_loss = float(gan_step.generator_step(g_ref, d_ref, opt_ref, z.clone(),
                                             losses.hinge_g_loss))
    _average(avg_ref, g_ref, decay)
    d_s, g_s, avg_s, opt_s = fresh()
    modes: list[tuple[str, bool]] = []
    hooks = [m.register_forward_pre_hook(
        lambda module, args, name=name: modes.append((name, module.training)))
        for name, m in d_s.named_modules()]

    c.start("returns the hinge generator loss before the update, as a Python number")
    try:
        out = c.call(d_s, g_s, avg_s, opt_s, z.clone(), decay)
    finally:
        for hook in hooks:
            hook.remove()
    evaluated = sorted({name or "D" for name, training in modes
                        if not training and "parametrizations" not in name})
    if evaluated:
        c.fail("D in training mode, as the training loop runs it",
               f"eval mode in {', '.join(evaluated[:3])}", _EVAL_HINT)
    value = as_float(c, out, "the loss")
    if not close(value, ref_loss, rtol=1e-4):
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
        hint = next((h for w, h in wrong if close(value, w, rtol=1e-3)),
                    "the loss G minimizes is minus the mean of D's scores on G(z), computed "
                    "before G's update.")
        c.fail(f"{ref_loss:.4g}", f"{value:.4g}", hint)
    if isinstance(out, torch.Tensor):
        c.fail("a Python number, e.g. loss.item()", f"a tensor ({out.item():.4g})",
               "return loss.item(): a logged number, not a piece of the autograd graph.")
    c.ok()

    c.start("updates G exactly like zero_grad -> backward -> step (stale gradients cleared)")
    for p_s, p_r, p_0 in zip(g_s.parameters(), g_ref.parameters(), G.parameters(), strict=True):
        if not tensor_close(p_s, p_r, rtol=1e-5, atol=1e-6):
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
    c.ok()

    c.start("leaves D's parameters and gradients as they were (D is not trained here)")
    for (name, p), p_0 in zip(d_s.named_parameters(), D.parameters(), strict=True):
        if not torch.equal(p.detach(), p_0.detach()):
            c.fail(f"D's parameter {name} unchanged", "it was changed",
                   "the generator step must not change D: only opt_G steps, and it holds G's "
                   "parameters alone.")
    reference_state = d_ref.state_dict()
    for key, value_ in d_s.state_dict().items():
        if key in reference_state and not tensor_close(value_, reference_state[key],
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
    c.ok()

    c.start(f"then moves every weight of G_avg towards G's NEW weights: "
            f"decay * avg + (1 - decay) * new (decay = {decay})")
    for (name, p_s), p_r, p_0, p_g, p_g0 in zip(
            avg_s.named_parameters(), avg_ref.parameters(), G_avg0.parameters(),
            g_ref.parameters(), G.parameters(), strict=True):
        if p_s.requires_grad != p_0.requires_grad:
            c.fail("G_avg's parameters as they were (only their values move)",
                   f"{name}: requires_grad changed", "update the average's values under "
                   "torch.no_grad(); do not replace its parameters.")
        if tensor_close(p_s, p_r, rtol=1e-5, atol=1e-7):
            continue
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
        hint = next((h for value_, h in candidates
                     if tensor_close(p_s, value_, rtol=1e-5, atol=1e-7)),
                    "p_avg = decay * p_avg + (1 - decay) * p for every pair of parameters of "
                    "G_avg and G, after G's step.")
        c.fail(f"{name} = {decay} * old average + {1 - decay:.1f} * G's new weight",
               "a different value", hint)
    c.ok()
    c.done()
