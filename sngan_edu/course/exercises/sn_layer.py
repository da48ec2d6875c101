"""Checks of exercise 03: the SN forward pass (3.1) and its gradient (3.2); the layers a model
forgot to normalize (3.3) are checked in :mod:`~sngan_edu.course.exercises.forgotten_layers`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from sngan_edu.course.exercises.core import (
    ExerciseFailed,
    _fmt,
    close,
    exercise_check,
    new_checker,
    seeded,
    tensor_close,
    unpack,
)
from sngan_edu.course.exercises.power_iteration import paper_power_step


def torch_sn_reference(W: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                  torch.Tensor]:
    """W/sigma, the new u, and dL/dW for L = sum(W/sigma * R), by torch's own spectral_norm.

    The paper's step from u gives (u_new, v); torch's parametrization in eval mode divides by
    u_new^T W v with u, v held constant, which is exactly the paper's forward pass.
    """
    weight = W.detach().clone()
    mat = weight.flatten(1)
    with torch.no_grad():
        _, u_new, v = paper_power_step(mat, u)
    if weight.dim() == 2:
        module: nn.Module = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    else:
        module = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), bias=False)
    with torch.no_grad():
        module.weight.copy_(weight)
    module = parametrizations.spectral_norm(module)
    param = module.parametrizations.weight[0]
    with torch.no_grad():
        param._u.copy_(u_new)
        param._v.copy_(v)
    module.eval()  # eval: torch uses the stored u, v without another power iteration
    w_sn = module.weight
    R = torch.randn(weight.shape, generator=seeded(11))
    (grad,) = torch.autograd.grad((w_sn * R).sum(), module.parametrizations.weight.original)
    return w_sn.detach(), u_new, grad


def _divisor_hint(W: torch.Tensor, w_sn: torch.Tensor, u: torch.Tensor,
                  sigma: float) -> str:
    """Name what the student divided W by (or what else they did) instead of sigma."""
    mat, out = W.detach().flatten(1).double(), w_sn.detach().flatten(1).double()
    ratio = mat / out
    if bool(torch.isfinite(ratio).all()) and torch.allclose(ratio, ratio.flatten()[0],
                                                           rtol=1e-4, atol=0):
        divisor = float(ratio.flatten()[0])
        exact = float(torch.linalg.svdvals(mat)[0])
        _, _, v = paper_power_step(mat.float(), u)
        named = [
            (math.sqrt(sigma), "you divided by the square root of sigma; divide by sigma itself."),
            (sigma ** 2, "you divided by sigma squared; divide by sigma = u'^T W v itself."),
            (float(torch.linalg.matrix_norm(mat)), "you divided by the Frobenius norm of W; SN "
             "divides by its largest singular value, estimated as sigma = u'^T W v."),
            (exact, "you divided by the exact sigma (SVD). The layer divides by its "
             "power-iteration estimate u'^T W v, one cheap step per call: use the new u and v."),
            (float(u.double() @ mat @ v.double()), "you computed sigma with the OLD u: after the "
             "step, sigma = u_new^T W v with the new u."),
        ]
        for value, hint in named:
            if close(divisor, value, rtol=1e-3):
                return hint
        return (f"you divided W by {divisor:.4g}; the layer divides by the estimate "
                f"sigma = u'^T W v = {sigma:.4g}, with the new u' and v.")
    spectrum_in = torch.linalg.svdvals(mat)
    spectrum_out = torch.linalg.svdvals(out)
    if not torch.allclose(spectrum_out / spectrum_out[0], spectrum_in / spectrum_in[0],
                          rtol=1e-3, atol=1e-6):
        return ("your result changes the SHAPE of the spectrum (singular values not all divided "
                "by the same number): SN divides the whole of W by one number, sigma. "
                "U Sigma^(-1/2) V^T, a formula that circulates, is not spectral normalization.")
    return "W_sn must be W divided by one number, the estimate sigma = u'^T W v."


def _run_sn_forward(c, W: torch.Tensor, u: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W handed over, requiring grad; W_sn; u_new) of the student's ``sn_forward(W, u)``."""
    W = W.clone().requires_grad_(True)
    out = c.call(W, u.clone())
    w_sn, u_new = unpack(c, out, ("W_sn", "u_new"), "end with `return W / sigma, u`.")
    if not isinstance(w_sn, torch.Tensor) or w_sn.shape != W.shape:
        c.fail(f"W_sn with the shape of W, {tuple(W.shape)}", _fmt(w_sn),
               "divide the original W (not the reshaped matrix) by sigma.")
    if not isinstance(u_new, torch.Tensor) or u_new.shape != u.shape:
        c.fail(f"u_new of shape {tuple(u.shape)}", _fmt(u_new),
               "return the updated left vector u (one entry per output unit).")
    return W, w_sn, u_new


def _check_gradient_flow(c, W: torch.Tensor, w_sn: torch.Tensor, ref_grad: torch.Tensor,
                         sigma: float) -> None:
    """dL/dW for L = sum(W_sn * R) must be torch's: through W and sigma, not through u, v."""
    if not w_sn.requires_grad:
        c.fail("W_sn connected to W in the autograd graph", "W_sn does not require grad",
               "compute sigma from W itself (u @ W @ v) outside torch.no_grad(); only the "
               "power iteration goes inside no_grad.")
    R = torch.randn(W.shape, generator=seeded(11))
    (grad,) = torch.autograd.grad((w_sn * R).sum(), W, allow_unused=True)
    if grad is None or not tensor_close(grad, ref_grad, rtol=1e-3, atol=1e-5):
        if grad is not None and tensor_close(grad, R / sigma, rtol=1e-3, atol=1e-5):
            hint = ("sigma was treated as a constant (.item() or detach?); the gradient must "
                    "also flow through sigma = u @ W @ v, only u and v are constants.")
        else:
            hint = ("run the power iteration under torch.no_grad() (or detach u and v): the "
                    "paper treats u and v as constants when differentiating.")
        c.fail("the gradient of torch's spectral_norm", "a different gradient"
               if grad is not None else "no gradient reached W", hint)


@exercise_check
def check_sn_forward(sn_forward: Callable[..., Any]) -> None:
    """Check ``sn_forward(W, u) -> (W_sn, u_new)``: one power-iteration step, then W / sigma.

    Reference: torch.nn.utils.parametrizations.spectral_norm with the same u and v. Gradients
    must flow through W (including through sigma) but not through u and v.
    """
    c = new_checker("sn_forward", sn_forward)
    g = seeded(13)
    W = torch.randn(6, 4, generator=g)
    u = F.normalize(torch.randn(6, generator=g), dim=0)
    ref_w, ref_u, ref_grad = torch_sn_reference(W, u)
    sigma = float((W / ref_w).flatten()[0])

    with c.step("W_sn = W / sigma and the new u match torch's spectral_norm (2-D weight)"):
        W_in, w_sn, u_new = _run_sn_forward(c, W, u)
        if not tensor_close(u_new, ref_u):
            c.fail(_fmt(ref_u), _fmt(u_new), "one step from u: v = normalize(W.T @ u), "
                   "u = normalize(W @ v).")
        if not tensor_close(w_sn, ref_w):
            c.fail(f"W / sigma with sigma = {sigma:.4g}, first entry {ref_w.flatten()[0]:.4g}",
                   f"first entry {w_sn.detach().flatten()[0].item():.4g}",
                   _divisor_hint(W, w_sn, u, sigma))

    with c.step("gradients flow through W and sigma, with u and v held constant"):
        _check_gradient_flow(c, W_in, w_sn, ref_grad, sigma)

    with c.step("a converged u gives a normalized weight with spectral norm 1 (SVD)"):
        U, _, _ = torch.linalg.svd(W.double())
        _, w_sn, _ = _run_sn_forward(c, W, U[:, 0].float())
        top = float(torch.linalg.svdvals(w_sn.detach().double())[0])
        if not close(top, 1.0, rtol=1e-4):
            c.fail("largest singular value of W_sn = 1", f"{top:.5g}",
                   "start the iteration from the u you were given.")

    with c.step("conv kernels (out, in, kh, kw) are reshaped to out x (in*kh*kw) for sigma"):
        K = torch.randn(4, 2, 3, 3, generator=g)
        uk = F.normalize(torch.randn(4, generator=g), dim=0)
        ref_w, ref_u, _ = torch_sn_reference(K, uk)
        _, k_sn, uk_new = _run_sn_forward(c, K, uk)
        if not (tensor_close(k_sn, ref_w) and tensor_close(uk_new, ref_u)):
            c.fail("the result of torch's spectral_norm on a Conv2d", _fmt(k_sn),
                   "the power iteration needs a matrix with one row per output channel (a kernel "
                   "is 4-D); then divide the original 4-D W.")
    c.done()


# --------------------------------------------------------------------------------------------
# 3.2: the gradient of W / sigma, checked against autograd
# --------------------------------------------------------------------------------------------


def reference_sn_gradient(W: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
                          G: torch.Tensor) -> torch.Tensor:
    """dL/dW for L = <G, W / (u^T W v)> with u, v constant, by autograd (float64)."""
    W64 = W.detach().double().clone().requires_grad_(True)
    sigma = u.double() @ W64 @ v.double()
    (grad,) = torch.autograd.grad((G.double() * W64 / sigma).sum(), W64)
    return grad.to(W.dtype)


def _gradient_hint(out: torch.Tensor, W: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
                   G: torch.Tensor) -> str:
    W, u, v, G = (t.detach().double() for t in (W, u, v, G))
    sigma = u @ W @ v
    lam = (G * W / sigma).sum()
    U, _, Vh = torch.linalg.svd(W)
    u1, v1 = U[:, 0], Vh[0]
    lam1 = (G * W / (u1 @ W @ v1)).sum()
    candidates = [
        (G / sigma, "you treated sigma as a constant. W / sigma depends on W through sigma too "
         "(d sigma / dW = u v^T): that adds a second term, along u v^T."),
        ((G + lam * torch.outer(u, v)) / sigma, "the sign of the sigma term: differentiating "
         "1 / sigma gives -1 / sigma^2, so the term along u v^T is SUBTRACTED."),
        ((G - (G * W).sum() * torch.outer(u, v)) / sigma, "lambda is the inner product of G "
         "with the NORMALIZED weight W / sigma, not with W."),
        (G - lam * torch.outer(u, v), "divide the whole result by sigma: both terms carry "
         "1 / sigma."),
        ((G - lam * torch.outer(u, v)) / sigma ** 2, "the whole result is divided by sigma "
         "once, not by sigma squared."),
        ((G - lam1 * torch.outer(u1, v1)) / (u1 @ W @ v1), "you used the exact singular "
         "vectors (SVD); the layer differentiates its own estimate u^T W v, with the u and v "
         "you were given."),
    ]
    if W.shape[0] == W.shape[1]:
        candidates.append(((G - lam * torch.outer(v, u)) / sigma, "the outer product is the "
                           "wrong way round: d(u^T W v)/dW = u v^T, an (out x in) matrix like "
                           "W: torch.outer(u, v)."))
    for value, hint in candidates:
        if tensor_close(out.double(), value, rtol=1e-4, atol=1e-7):
            return hint
    return ("derive it again, term by term: W_SN = W * (1 / sigma) is a product, so dL/dW has "
            "one term from W itself and one from 1 / sigma, whose derivative is "
            "-(1 / sigma^2) d sigma / dW with d sigma / dW = u v^T. The second term is scaled "
            "by how much G and W_SN agree (a single number).")


_AUTOGRAD_HINT = (
    "your function asks autograd for the gradient (backward, torch.autograd.grad or a graph "
    "built under enable_grad). This exercise is the derivation itself: the check runs your "
    "function with autograd switched off. Work the chain rule through W_SN = W / sigma by hand "
    "(sigma = u^T W v depends on W too) and compute the result with plain tensor operations."
)


def _call_without_autograd(c, *args: Any) -> Any:
    """``c.call(*args)`` under torch.no_grad(), failing if the function used autograd anyway.

    Autograd use is seen three ways: a saved-tensor hook fires whenever an operation records a
    graph for backward (also under ``torch.enable_grad()``), and ``torch.autograd.grad``,
    ``torch.autograd.backward`` and ``Tensor.backward`` are replaced by recorders meanwhile
    (the check runs in its own process, so nothing outside it sees the replacement).
    """
    used: list[str] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        used.append("graph")
        return t

    def recorder(name: str) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            used.append(name)
            raise RuntimeError(f"{name} is switched off for this exercise")
        return record

    originals = (torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward)
    torch.autograd.grad = recorder("torch.autograd.grad")
    torch.autograd.backward = recorder("torch.autograd.backward")
    torch.Tensor.backward = recorder("Tensor.backward")
    try:
        with torch.no_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = c.call(*args)
    except ExerciseFailed:
        if not used:
            raise
        out = None
    finally:
        torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward = originals
    if used:
        c.fail("a gradient derived by hand, without autograd", f"autograd was used "
               f"({used[0]})", _AUTOGRAD_HINT)
    return out


@exercise_check
def check_sn_gradient(sn_gradient: Callable[..., Any]) -> None:
    """Check ``sn_gradient(W, u, v, G) -> dL/dW`` for ``L = <G, W / sigma>``, ``sigma = u^T W v``.

    u and v are the power-iteration vectors (constants); G is the gradient arriving at the
    normalized weight. Compared with autograd (the paper's equation (12)); the student's
    function runs with autograd switched off, since the exercise is the derivation.
    """
    c = new_checker("sn_gradient", sn_gradient)
    g = seeded(31)

    def case(shapes: list[tuple[int, int]], what: str) -> None:
        with c.step(what):
            for m, n in shapes:
                W = torch.randn(m, n, generator=g)
                u0 = F.normalize(torch.randn(m, generator=g), dim=0)
                _, u, v = paper_power_step(W, u0)  # one step, as the layer's forward pass
                G = torch.randn(m, n, generator=g)
                ref = reference_sn_gradient(W, u, v, G)
                out = _call_without_autograd(c, W, u, v, G)
                if not isinstance(out, torch.Tensor) or out.shape != W.shape:
                    c.fail(f"a tensor of shape {tuple(W.shape)}, like W", _fmt(out),
                           "return dL/dW, a matrix of the shape of W.")
                if not tensor_close(out, ref, rtol=1e-4, atol=1e-6):
                    c.fail(f"autograd's gradient, {_fmt(ref.flatten()[:3])}...",
                           f"{_fmt(out.detach().flatten()[:3])}...",
                           _gradient_hint(out, W, u, v, G))

    case([(4, 4)], "a 4x4 weight: equals autograd's gradient of <G, W / (u^T W v)>")
    case([(6, 3), (3, 6)], "a 6x3 and a 3x6 weight: the same")

    with c.step("the gradient is orthogonal to W: scaling W does not change W / sigma"):
        W = torch.randn(5, 4, generator=g)
        _, u, v = paper_power_step(W, F.normalize(torch.randn(5, generator=g), dim=0))
        G = torch.randn(5, 4, generator=g)
        out = _call_without_autograd(c, W.clone(), u, v, G)
        inner = float((out.detach().double() * W.double()).sum())
        scale = float(out.detach().double().norm() * W.double().norm())
        if abs(inner) > 1e-4 * scale:
            c.fail("<dL/dW, W> = 0", f"{inner:.3g}", _gradient_hint(out, W, u, v, G))
    c.done()
