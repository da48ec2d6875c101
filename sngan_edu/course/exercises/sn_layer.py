"""Checks of exercise 03: the SN forward pass (3.1), its gradient (3.2), and the layers a model
forgot to normalize (3.3)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from sngan_edu import sn
from sngan_edu.course.exercises.core import (
    ExerciseFailed,
    _fmt,
    close,
    exercise_check,
    new_checker,
    require_unchanged,
    seeded,
    snapshot,
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


@exercise_check
def check_sn_forward(sn_forward: Callable[..., Any]) -> None:
    """Check ``sn_forward(W, u) -> (W_sn, u_new)``: one power-iteration step, then W / sigma.

    Reference: torch.nn.utils.parametrizations.spectral_norm with the same u and v. Gradients
    must flow through W (including through sigma) but not through u and v.
    """
    c = new_checker("sn_forward", sn_forward)
    g = seeded(13)

    def run(W: torch.Tensor, u: torch.Tensor):
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

    W = torch.randn(6, 4, generator=g)
    u = F.normalize(torch.randn(6, generator=g), dim=0)
    ref_w, ref_u, ref_grad = torch_sn_reference(W, u)
    sigma = float((W / ref_w).flatten()[0])

    c.start("W_sn = W / sigma and the new u match torch's spectral_norm (2-D weight)")
    W_in, w_sn, u_new = run(W, u)
    if not tensor_close(u_new, ref_u):
        c.fail(_fmt(ref_u), _fmt(u_new), "one step from u: v = normalize(W.T @ u), "
               "u = normalize(W @ v).")
    if not tensor_close(w_sn, ref_w):
        c.fail(f"W / sigma with sigma = {sigma:.4g}, first entry {ref_w.flatten()[0]:.4g}",
               f"first entry {w_sn.detach().flatten()[0].item():.4g}",
               _divisor_hint(W, w_sn, u, sigma))
    c.ok()

    c.start("gradients flow through W and sigma, with u and v held constant")
    if not w_sn.requires_grad:
        c.fail("W_sn connected to W in the autograd graph", "W_sn does not require grad",
               "compute sigma from W itself (u @ W @ v) outside torch.no_grad(); only the "
               "power iteration goes inside no_grad.")
    R = torch.randn(W.shape, generator=seeded(11))
    (grad,) = torch.autograd.grad((w_sn * R).sum(), W_in, allow_unused=True)
    if grad is None or not tensor_close(grad, ref_grad, rtol=1e-3, atol=1e-5):
        if grad is not None and tensor_close(grad, R / sigma, rtol=1e-3, atol=1e-5):
            hint = ("sigma was treated as a constant (.item() or detach?); the gradient must "
                    "also flow through sigma = u @ W @ v, only u and v are constants.")
        else:
            hint = ("run the power iteration under torch.no_grad() (or detach u and v): the "
                    "paper treats u and v as constants when differentiating.")
        c.fail("the gradient of torch's spectral_norm", "a different gradient"
               if grad is not None else "no gradient reached W", hint)
    c.ok()

    c.start("a converged u gives a normalized weight with spectral norm 1 (SVD)")
    U, _, _ = torch.linalg.svd(W.double())
    _, w_sn, _ = run(W, U[:, 0].float())
    top = float(torch.linalg.svdvals(w_sn.detach().double())[0])
    if not close(top, 1.0, rtol=1e-4):
        c.fail("largest singular value of W_sn = 1", f"{top:.5g}",
               "start the iteration from the u you were given.")
    c.ok()

    c.start("conv kernels (out, in, kh, kw) are reshaped to out x (in*kh*kw) for sigma")
    K = torch.randn(4, 2, 3, 3, generator=g)
    uk = F.normalize(torch.randn(4, generator=g), dim=0)
    ref_w, ref_u, _ = torch_sn_reference(K, uk)
    _, k_sn, uk_new = run(K, uk)
    if not (tensor_close(k_sn, ref_w) and tensor_close(uk_new, ref_u)):
        c.fail("the result of torch's spectral_norm on a Conv2d", _fmt(k_sn),
               "the power iteration needs a matrix with one row per output channel (a kernel "
               "is 4-D); then divide the original 4-D W.")
    c.ok()
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
        c.start(what)
        for m, n in shapes:
            W = torch.randn(m, n, generator=g)
            u0 = F.normalize(torch.randn(m, generator=g), dim=0)
            _, u, v = paper_power_step(W, u0)  # one step, as the layer's forward pass holds them
            G = torch.randn(m, n, generator=g)
            ref = reference_sn_gradient(W, u, v, G)
            inputs = {"W": W, "u": u, "v": v, "G": G}
            before = {name: snapshot(t) for name, t in inputs.items()}
            out = _call_without_autograd(c, W, u, v, G)
            if not isinstance(out, torch.Tensor) or out.shape != W.shape:
                c.fail(f"a tensor of shape {tuple(W.shape)}, like W", _fmt(out),
                       "return dL/dW, a matrix of the shape of W.")
            for name, t in inputs.items():
                require_unchanged(c, before[name], t, name, "compute new tensors; never write "
                                  "into the inputs.")
            if not tensor_close(out, ref, rtol=1e-4, atol=1e-6):
                c.fail(f"autograd's gradient, {_fmt(ref.flatten()[:3])}...",
                       f"{_fmt(out.detach().flatten()[:3])}...", _gradient_hint(out, W, u, v, G))
        c.ok()

    case([(4, 4)], "a 4x4 weight: equals autograd's gradient of <G, W / (u^T W v)>")
    case([(6, 3), (3, 6)], "a 6x3 and a 3x6 weight: the same")

    c.start("the gradient is orthogonal to W: scaling W does not change W / sigma")
    W = torch.randn(5, 4, generator=g)
    _, u, v = paper_power_step(W, F.normalize(torch.randn(5, generator=g), dim=0))
    G = torch.randn(5, 4, generator=g)
    out = _call_without_autograd(c, W.clone(), u, v, G)
    inner = float((out.detach().double() * W.double()).sum())
    scale = float(out.detach().double().norm() * W.double().norm())
    if abs(inner) > 1e-4 * scale:
        c.fail("<dL/dW, W> = 0", f"{inner:.3g}", _gradient_hint(out, W, u, v, G))
    c.ok()
    c.done()


# --------------------------------------------------------------------------------------------
# 3.3: the layers a model forgot to normalize
# --------------------------------------------------------------------------------------------

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
        c.start(what)
        got = _names(c, c.call(model))
        require_unchanged(c, before, model, "the model", "only look: do not add or remove "
                          "spectral norm inside this function.", ignore_power_iteration=True)
        if sorted(got) != sorted(expected):
            c.fail(_fmt(expected), _fmt(got), _layer_hint(model, got, expected))
        c.ok()

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
