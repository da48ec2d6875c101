"""Friendly checks for the classroom exercises in ``notebooks/exercises/``.

Each ``check_*`` function takes the student's function, calls it on small cases and compares what
it does with an independent reference (SVD, torch's own spectral norm, autograd, the course's
metrics). The checks test behaviour, not code, so any correct solution passes. On success they
print the list of checks passed; on failure they raise :class:`ExerciseFailed` whose message says
what was expected, what came back, and a hint. If the student's function still raises
``NotImplementedError`` (the stub of a student copy), the check raises ``NotImplementedError``
too, with a message that says which function is left to write.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sngan_edu import gan_step, losses, spectral
from sngan_edu.metrics import toy as toy_metrics

__all__ = [
    "ExerciseFailed",
    "check_power_iteration",
    "check_gradient_norms",
    "check_lipschitz_bound",
    "check_sn_forward",
    "check_hinge_d_loss",
    "check_hinge_g_loss",
    "check_mode_coverage",
    "check_discriminator_step",
]

TICK = "\u2714"  # check mark printed for each passed check


class ExerciseFailed(AssertionError):
    """A check failed. The message holds what was expected, what was returned and a hint.

    It subclasses AssertionError so autograders (nbgrader, pytest) count it as a failed test.
    """


def _fmt(value: Any) -> str:
    """Short human-readable form of a number, tensor or tuple (4 significant digits)."""
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return f"{value.item():.4g}" + (" (tensor)" if value.dim() else "")
        if value.numel() <= 8:
            items = ", ".join(f"{x:.4g}" for x in value.detach().flatten().tolist())
            return f"tensor of shape {tuple(value.shape)}: [{items}]"
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Checker:
    """Runs one student function through a list of checks and reports in plain words."""

    def __init__(self, name: str, fn: Callable[..., Any]):
        if not callable(fn):
            raise ValueError(
                f"pass your function itself to the check, e.g. check(my_function), "
                f"not its result; got {type(fn).__name__}"
            )
        self.name = name
        self.fn = fn
        self.passed: list[str] = []

    def call(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.fn(*args, **kwargs)
        except NotImplementedError as err:
            raise NotImplementedError(
                f"{self.name} is not written yet: replace `raise NotImplementedError()` in its "
                "cell with your code, run that cell, then run this check again."
            ) from err
        except ExerciseFailed:
            raise
        except Exception as err:
            raise ExerciseFailed(
                f"{self.name} raised {type(err).__name__}: {err}\n"
                f"  while: {self._current}\n"
                "  hint: read the traceback above this message; it points at the line of your "
                "function that failed."
            ) from err

    def start(self, description: str) -> None:
        self._current = description

    def ok(self) -> None:
        self.passed.append(self._current)

    def fail(self, expected: Any, returned: Any, hint: str) -> None:
        n = len(self.passed) + 1
        raise ExerciseFailed(
            f"{self.name}: check {n} failed: {self._current}\n"
            f"  expected: {expected}\n"
            f"  returned: {returned}\n"
            f"  hint: {hint}"
        )

    def done(self) -> None:
        lines = [f"{self.name}: all {len(self.passed)} checks passed"]
        lines += [f"  {TICK} {text}" for text in self.passed]
        print("\n".join(lines))


def _isolated_rng(check: Callable[..., None]) -> Callable[..., None]:
    """Run a check with its own seeded torch RNG and restore the caller's stream afterwards.

    Checks then give the same verdict every time, and running one in a notebook does not shift
    the notebook's own random numbers.
    """

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return check(*args, **kwargs)

    return wrapper


def _as_float(checker: _Checker, value: Any, what: str) -> float:
    """Turn a Python number or a one-element tensor into a float, or fail with a hint."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            checker.fail(
                f"{what}: a single number",
                _fmt(value),
                "reduce to one number (e.g. .mean() or a dot product), not one value per entry.",
            )
        return float(value.detach().item())
    if isinstance(value, (int, float)):
        return float(value)
    checker.fail(f"{what}: a number or a 0-d tensor", _fmt(value), "return a number.")
    raise AssertionError  # unreachable: fail() raises


def _close(a: float, b: float, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    return abs(a - b) <= atol + rtol * abs(b)


def _tensor_close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.detach().double(), b.detach().double(),
                                                 rtol=rtol, atol=atol)


def _matrix_with_singular_values(m: int, n: int, values: list[float], seed: int) -> torch.Tensor:
    """An m x n float32 matrix with the given singular values and random singular vectors."""
    generator = torch.Generator().manual_seed(seed)
    matrix = spectral.matrix_with_singular_values(values, (m, n), generator, haar=False)
    return matrix.float()


# --------------------------------------------------------------------------------------------
# 01: power iteration
# --------------------------------------------------------------------------------------------


def _paper_power_step(
    W: torch.Tensor, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of Algorithm 1 of the SNGAN paper from u: (sigma, u_new, v), by the library."""
    sigma, u_new, v, _ = spectral.power_iteration(W.detach(), u, n_iters=1)
    return sigma, u_new, v


def _unpack_power(checker: _Checker, out: Any, m: int, n: int):
    if not (isinstance(out, tuple) and len(out) == 3):
        checker.fail("a tuple (sigma, u, v)", _fmt(out),
                     "end your function with `return sigma, u, v`.")
    sigma, u, v = out
    sigma = _as_float(checker, sigma, "sigma")
    for vec, name, size in ((u, "u", m), (v, "v", n)):
        if not isinstance(vec, torch.Tensor) or vec.shape != (size,):
            shape = tuple(vec.shape) if isinstance(vec, torch.Tensor) else type(vec).__name__
            hint = (
                "u has one entry per row of W (W @ v) and v one per column (W.T @ u)."
                if isinstance(vec, torch.Tensor) and vec.shape in ((m,), (n,))
                else "keep u and v as 1-D tensors (torch.mv or @ with 1-D vectors)."
            )
            checker.fail(f"{name} as a tensor of shape ({size},)", f"shape {shape}", hint)
    return sigma, u, v


@_isolated_rng
def check_power_iteration(power_iteration: Callable[..., Any]) -> None:
    """Check ``power_iteration(W, u, n_iters) -> (sigma, u, v)`` (paper's Algorithm 1).

    Each iteration: ``v = normalize(W.T @ u)``, ``u = normalize(W @ v)``; then
    ``sigma = u @ W @ v``. Compared with a one-step reference and with torch.linalg.svdvals.
    """
    c = _Checker("power_iteration", power_iteration)
    W = _matrix_with_singular_values(5, 3, [3.0, 1.0, 0.5], seed=1)
    u0 = F.normalize(torch.randn(5, generator=torch.Generator().manual_seed(2)), dim=0)
    W_before, u_before = W.clone(), u0.clone()

    c.start("returns (sigma, u, v) with u of length rows(W) and v of length cols(W)")
    sigma, u, v = _unpack_power(c, c.call(W, u0.clone(), 1), 5, 3)
    c.ok()

    c.start("does not change W")
    if not torch.equal(W, W_before):
        c.fail("W unchanged", "W was modified in place", "compute new tensors; never write into W.")
    c.ok()

    c.start("one iteration from a given u matches v = W^T u/|W^T u|, u = W v/|W v|, "
            "sigma = u^T W v")
    ref_sigma, ref_u, ref_v = _paper_power_step(W, u_before)
    if not (_tensor_close(u, ref_u) and _tensor_close(v, ref_v)):
        if _tensor_close(u, -ref_u) or _tensor_close(v, -ref_v):
            hint = "the signs differ: start from the given u and compute v = W.T @ u first."
        elif abs(float(u.norm()) - 1) > 1e-3 or abs(float(v.norm()) - 1) > 1e-3:
            hint = (f"u and v must be unit vectors (yours have norms {float(u.norm()):.4g} and "
                    f"{float(v.norm()):.4g}): divide each by its norm.")
        else:
            hint = ("start from the u you were given (do not draw a new random one) and do "
                    "exactly n_iters iterations: first v from u, then u from v.")
        c.fail(f"u = {_fmt(ref_u)}, v = {_fmt(ref_v)}", f"u = {_fmt(u)}, v = {_fmt(v)}", hint)
    if not _close(sigma, float(ref_sigma)):
        if _close(sigma, float(ref_sigma) ** 2, rtol=1e-3):
            hint = "you returned sigma squared: use u @ W @ v (or the norm of W @ v)."
        elif _close(sigma, float(torch.linalg.matrix_norm(W)), rtol=1e-3):
            hint = "that is the Frobenius norm of W; sigma is u @ W @ v."
        else:
            hint = "sigma is u @ W @ v with the NEW u and v (equivalently the norm of W @ v)."
        c.fail(f"sigma = {float(ref_sigma):.4g}", f"sigma = {sigma:.4g}", hint)
    c.ok()

    c.start("the same inputs give the same result (no fresh random vector inside)")
    again, _, _ = _unpack_power(c, c.call(W, u_before.clone(), 1), 5, 3)
    if again != sigma:
        c.fail(f"sigma = {sigma:.6g} again", f"sigma = {again:.6g}",
               "use the u passed in; a fresh random u each call makes the estimate noisy.")
    c.ok()

    c.start("starting from the top singular vector gives sigma exactly after one iteration")
    U, _, _ = torch.linalg.svd(W.double())
    top = U[:, 0].float()
    exact = float(spectral.spectral_norm_exact(W.double()))
    sig_top, _, _ = _unpack_power(c, c.call(W, top.clone(), 1), 5, 3)
    if not _close(sig_top, exact, rtol=1e-4):
        c.fail(f"{exact:.5g} (SVD)", f"{sig_top:.5g}",
               "warm starts are the point of power iteration in SN: use the u you were given.")
    c.ok()

    c.start("converges to the largest singular value (SVD) on tall and wide matrices")
    for m, n, seed in ((7, 4, 3), (3, 8, 4)):
        M = _matrix_with_singular_values(m, n, [2.5, 1.2, 0.3], seed=seed)
        start = F.normalize(torch.randn(m, generator=torch.Generator().manual_seed(seed)), dim=0)
        s, _, _ = _unpack_power(c, c.call(M, start, 60), m, n)
        exact = float(spectral.spectral_norm_exact(M.double()))
        if not _close(s, exact, rtol=1e-4):
            c.fail(f"{exact:.5g} for a {m}x{n} matrix after 60 iterations", f"{s:.5g}",
                   "loop n_iters times, updating v and then u from the latest values.")
    c.ok()
    c.done()


# --------------------------------------------------------------------------------------------
# 02: Lipschitz constants
# --------------------------------------------------------------------------------------------


def _reference_gradient_norms(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample input-gradient norms by autograd, one sample at a time (independent reference)."""
    norms = []
    for sample in x:
        point = sample.unsqueeze(0).clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(point).sum(), point)
        norms.append(grad.flatten().norm())
    return torch.stack(norms)


@_isolated_rng
def check_gradient_norms(gradient_norms: Callable[..., Any]) -> None:
    """Check ``gradient_norms(D, x) -> tensor (batch,)`` of ``||grad_x D(x_i)||_2`` per sample."""
    c = _Checker("gradient_norms", gradient_norms)
    g = torch.Generator().manual_seed(5)

    c.start("a linear critic D(x) = w.x + b has gradient norm |w| at every point")
    w = torch.tensor([[3.0], [-4.0], [12.0]])
    linear = nn.Linear(3, 1)
    with torch.no_grad():
        linear.weight.copy_(w.T)
    x = torch.randn(5, 3, generator=g)
    x_before = x.clone()
    out = c.call(linear, x)
    if not isinstance(out, torch.Tensor) or out.shape != (5,):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        c.fail("a tensor of shape (5,), one norm per sample", f"{_fmt(out)} (shape {shape})",
               "take the norm of each sample's gradient over all its dimensions: "
               "grad.flatten(1).norm(dim=1).")
    expected = torch.full((5,), 13.0)
    if not _tensor_close(out, expected):
        ratio = float(out.detach()[0]) / 13.0
        if _close(ratio, 1 / 5, rtol=1e-3):
            hint = ("the norms are divided by the batch size: differentiate D(x).sum(), not "
                    ".mean(); each output depends only on its own sample.")
        elif _close(float(out.detach()[0]), 169.0, rtol=1e-3):
            hint = "you returned squared norms; take the square root (.norm())."
        else:
            hint = ("differentiate D(x).sum() with respect to x (torch.autograd.grad), "
                    "not the weights.")
        c.fail(_fmt(expected), _fmt(out), hint)
    if not torch.equal(x, x_before):
        c.fail("x unchanged", "x was modified",
               "work on a copy: x = x.detach().requires_grad_(True).")
    c.ok()

    c.start("matches autograd, sample by sample, for a small MLP")
    mlp = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    for p in mlp.parameters():
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=g))
    x = torch.randn(6, 4, generator=g)
    out = c.call(mlp, x)
    ref = _reference_gradient_norms(mlp, x)
    if not isinstance(out, torch.Tensor) or not _tensor_close(out, ref):
        c.fail(_fmt(ref), _fmt(out),
               "compute the gradient with respect to the INPUT x at each sample.")
    c.ok()

    c.start("handles image batches (norm over every non-batch dimension)")
    conv = nn.Sequential(nn.Conv2d(2, 3, 3), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(12, 1))
    x = torch.randn(3, 2, 4, 4, generator=g)
    out = c.call(conv, x)
    ref = _reference_gradient_norms(conv, x)
    if not isinstance(out, torch.Tensor) or not _tensor_close(out, ref):
        c.fail(_fmt(ref), _fmt(out), "flatten each sample's gradient before the norm: "
               "grad.flatten(1).norm(dim=1).")
    c.ok()
    c.done()


@_isolated_rng
def check_lipschitz_bound(lipschitz_bound: Callable[..., Any]) -> None:
    """Check ``lipschitz_bound(model) -> float``: product of its Linear layers' spectral norms.

    The activations of the models given (ReLU, LeakyReLU, Tanh) are 1-Lipschitz, so the product
    of the layers' largest singular values bounds the Lipschitz constant of the whole model.
    """
    c = _Checker("lipschitz_bound", lipschitz_bound)
    g = torch.Generator().manual_seed(7)

    def model(*sizes: int, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(act())
        net = nn.Sequential(*layers)
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        return net

    def reference(net: nn.Sequential) -> float:
        return math.prod(float(torch.linalg.svdvals(m.weight.detach().double())[0])
                         for m in net.modules() if isinstance(m, nn.Linear))

    c.start("a single layer: its largest singular value (SVD)")
    single = model(4, 3)
    value = _as_float(c, c.call(single), "bound")
    exact = reference(single)
    if not _close(value, exact, rtol=1e-3):
        fro = float(torch.linalg.matrix_norm(single[0].weight.detach().double()))
        hint = ("that is the Frobenius norm, which is larger than the spectral norm; use "
                "torch.linalg.matrix_norm(W, ord=2) or svdvals(W)[0]."
                if _close(value, fro, rtol=1e-3)
                else "the spectral norm of a layer is the largest singular value of its weight.")
        c.fail(f"{exact:.4g}", f"{value:.4g}", hint)
    c.ok()

    c.start("a 3-layer ReLU MLP: the product of the layers' spectral norms")
    net = model(5, 8, 8, 1)
    value = _as_float(c, c.call(net), "bound")
    exact = reference(net)
    if not _close(value, exact, rtol=1e-3):
        norms = [float(torch.linalg.svdvals(m.weight.detach().double())[0])
                 for m in net.modules() if isinstance(m, nn.Linear)]
        hint = ("you added the norms; the bound for a composition is their PRODUCT."
                if _close(value, sum(norms), rtol=1e-3)
                else "multiply the spectral norms of every nn.Linear in model.modules().")
        c.fail(f"{exact:.4g}", f"{value:.4g}", hint)
    c.ok()

    c.start("the bound is never below a measured gradient norm")
    tanh_net = model(3, 6, 1, act=nn.Tanh)
    value = _as_float(c, c.call(tanh_net), "bound")
    measured = float(_reference_gradient_norms(tanh_net, torch.randn(64, 3, generator=g)).max())
    if value < measured * (1 - 1e-5) or not _close(value, reference(tanh_net), rtol=1e-3):
        c.fail(f"{reference(tanh_net):.4g} (at least the measured {measured:.4g})",
               f"{value:.4g}", "multiply the spectral norms of every nn.Linear in the model.")
    c.ok()
    c.done()


# --------------------------------------------------------------------------------------------
# 03: the spectral normalization forward pass
# --------------------------------------------------------------------------------------------


def _torch_sn_reference(W: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                    torch.Tensor]:
    """W/sigma and dL/dW for L = sum(W/sigma * R) using torch's own spectral_norm parametrization.

    The paper's step from u gives (u_new, v); torch's parametrization in eval mode divides by
    u_new^T W v with u, v held constant, which is exactly the paper's forward pass.
    """
    weight = W.detach().clone()
    mat = weight.flatten(1)
    with torch.no_grad():
        _, u_new, v = _paper_power_step(mat, u)
    if weight.dim() == 2:
        module: nn.Module = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    else:
        module = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), bias=False)
    with torch.no_grad():
        module.weight.copy_(weight)
    module = torch.nn.utils.parametrizations.spectral_norm(module)
    sn = module.parametrizations.weight[0]
    with torch.no_grad():
        sn._u.copy_(u_new)
        sn._v.copy_(v)
    module.eval()  # eval: torch uses the stored u, v without another power iteration
    w_sn = module.weight
    R = torch.randn(weight.shape, generator=torch.Generator().manual_seed(11))
    (grad,) = torch.autograd.grad((w_sn * R).sum(), module.parametrizations.weight.original)
    return w_sn.detach(), u_new, grad


@_isolated_rng
def check_sn_forward(sn_forward: Callable[..., Any]) -> None:
    """Check ``sn_forward(W, u) -> (W_sn, u_new)``: one power-iteration step, then W / sigma.

    Reference: torch.nn.utils.parametrizations.spectral_norm with the same u and v. Gradients
    must flow through W (including through sigma) but not through u and v.
    """
    c = _Checker("sn_forward", sn_forward)
    g = torch.Generator().manual_seed(13)

    def run(W: torch.Tensor, u: torch.Tensor):
        W = W.clone().requires_grad_(True)
        out = c.call(W, u.clone())
        if not (isinstance(out, tuple) and len(out) == 2):
            c.fail("a tuple (W_sn, u_new)", _fmt(out), "end with `return W / sigma, u`.")
        w_sn, u_new = out
        if not isinstance(w_sn, torch.Tensor) or w_sn.shape != W.shape:
            c.fail(f"W_sn with the shape of W, {tuple(W.shape)}", _fmt(w_sn),
                   "divide the original W (not the reshaped matrix) by sigma.")
        if not isinstance(u_new, torch.Tensor) or u_new.shape != u.shape:
            c.fail(f"u_new of shape {tuple(u.shape)}", _fmt(u_new),
                   "return the updated left vector u (one entry per output unit).")
        return W, w_sn, u_new

    W = torch.randn(6, 4, generator=g)
    u = F.normalize(torch.randn(6, generator=g), dim=0)
    ref_w, ref_u, ref_grad = _torch_sn_reference(W, u)

    c.start("W_sn = W / sigma and the new u match torch's spectral_norm (2-D weight)")
    W_in, w_sn, u_new = run(W, u)
    if not _tensor_close(u_new, ref_u):
        c.fail(_fmt(ref_u), _fmt(u_new), "one step from u: v = normalize(W.T @ u), "
               "u = normalize(W @ v).")
    if not _tensor_close(w_sn, ref_w):
        ratio = (w_sn.detach() / ref_w).flatten()[0].item()
        c.fail(f"W / sigma, e.g. first entry {ref_w.flatten()[0]:.4g}",
               f"first entry {w_sn.detach().flatten()[0].item():.4g} ({ratio:.3g} x expected)",
               "sigma = u @ W @ v with the new u and v; divide all of W by it (not by sqrt, "
               "not only the largest singular value).")
    c.ok()

    c.start("gradients flow through W and sigma, with u and v held constant")
    if not w_sn.requires_grad:
        c.fail("W_sn connected to W in the autograd graph", "W_sn does not require grad",
               "compute sigma from W itself (u @ W @ v) outside torch.no_grad(); only the "
               "power iteration goes inside no_grad.")
    R = torch.randn(W.shape, generator=torch.Generator().manual_seed(11))
    (grad,) = torch.autograd.grad((w_sn * R).sum(), W_in, allow_unused=True)
    if grad is None or not _tensor_close(grad, ref_grad, rtol=1e-3, atol=1e-5):
        sigma = float((W.flatten() / ref_w.flatten())[0])
        if grad is not None and _tensor_close(grad, R / sigma, rtol=1e-3, atol=1e-5):
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
    if not _close(top, 1.0, rtol=1e-4):
        c.fail("largest singular value of W_sn = 1", f"{top:.5g}",
               "start the iteration from the u you were given.")
    c.ok()

    c.start("conv kernels (out, in, kh, kw) are reshaped to out x (in*kh*kw) for sigma")
    K = torch.randn(4, 2, 3, 3, generator=g)
    uk = F.normalize(torch.randn(4, generator=g), dim=0)
    ref_w, ref_u, _ = _torch_sn_reference(K, uk)
    _, k_sn, uk_new = run(K, uk)
    if not (_tensor_close(k_sn, ref_w) and _tensor_close(uk_new, ref_u)):
        c.fail("the result of torch's spectral_norm on a Conv2d", _fmt(k_sn),
               "use W.reshape(W.shape[0], -1) (or W.flatten(1)) for the power iteration, "
               "then divide the original 4-D W.")
    c.ok()
    c.done()


# --------------------------------------------------------------------------------------------
# 04: hinge loss and mode coverage
# --------------------------------------------------------------------------------------------


def _loss_cases() -> list[tuple[torch.Tensor, torch.Tensor, str, str]]:
    """(d_real, d_fake, what the D check says, what the G check says)."""
    g = torch.Generator().manual_seed(17)
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


@_isolated_rng
def check_hinge_d_loss(hinge_d_loss: Callable[..., Any]) -> None:
    """Check ``hinge_d_loss(d_real, d_fake)`` = mean(relu(1 - d_real)) + mean(relu(1 + d_fake))."""
    c = _Checker("hinge_d_loss", hinge_d_loss)
    for real, fake, description, _ in _loss_cases():
        c.start(description)
        r = real.clone().requires_grad_(True)
        f = fake.clone().requires_grad_(True)
        out = c.call(r, f)
        value = _as_float(c, out, "the loss")
        expected = float(losses.hinge_d_loss(real, fake))
        if not _close(value, expected):
            no_relu = float((1 - real).mean() + (1 + fake).mean())
            swapped = float(F.relu(1 + real).mean() + F.relu(1 - fake).mean())
            summed = float(F.relu(1 - real).sum() + F.relu(1 + fake).sum())
            if _close(value, no_relu):
                hint = "clip each term at 0 with torch.relu (max(0, .)) before averaging."
            elif _close(value, swapped):
                hint = ("the signs are swapped: real scores should be pushed ABOVE +1, "
                        "fakes below -1.")
            elif _close(value, summed):
                hint = "use .mean() over the batch, not .sum()."
            else:
                hint = "E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))], each a mean over the batch."
            c.fail(f"{expected:.4g}", f"{value:.4g}", hint)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            c.fail("a tensor connected to d_real and d_fake (to call .backward())", _fmt(out),
                   "use torch operations (torch.relu, .mean()), not .item() or Python floats.")
        c.ok()
    c.done()


@_isolated_rng
def check_hinge_g_loss(hinge_g_loss: Callable[..., Any]) -> None:
    """Check ``hinge_g_loss(d_fake)`` = -mean(d_fake) (the generator loss used with hinge D)."""
    c = _Checker("hinge_g_loss", hinge_g_loss)
    for _, fake, _, description in _loss_cases():
        c.start(description)
        f = fake.clone().requires_grad_(True)
        out = c.call(f)
        value = _as_float(c, out, "the loss")
        expected = float(losses.hinge_g_loss(fake))
        if not _close(value, expected):
            if _close(value, float(F.relu(1 - fake).mean())):
                hint = ("that is a hinge on the fakes; the SNGAN generator loss is simply "
                        "-mean(D(G(z))), with no clipping.")
            elif _close(value, -expected):
                hint = "the sign: the generator wants D(G(z)) LARGE, so it minimizes -mean."
            else:
                hint = "return -d_fake.mean()."
            c.fail(f"{expected:.4g}", f"{value:.4g}", hint)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            c.fail("a tensor connected to d_fake", _fmt(out), "use torch operations, not floats.")
        c.ok()
    c.done()


def reference_mode_coverage(samples: torch.Tensor, means: torch.Tensor,
                            std: float) -> tuple[int, float]:
    """(modes captured, % high-quality samples) by the course's metric, toy_metrics.mode_metrics."""
    metrics = toy_metrics.mode_metrics(samples, means, std)
    return metrics.modes, metrics.high_quality


def check_mode_coverage(mode_coverage: Callable[..., Any]) -> None:
    """Check ``mode_coverage(samples, means, std) -> (modes_captured, high_quality_percent)``.

    A sample is high quality if it lies within 3 std of its nearest mode; a mode is captured if
    at least one high-quality sample is nearest to it (reference: toy_metrics.mode_metrics).
    """
    c = _Checker("mode_coverage", mode_coverage)
    angles = torch.arange(8) * 2 * math.pi / 8
    ring = torch.stack([angles.cos(), angles.sin()], dim=1)
    std = 0.01
    g = torch.Generator().manual_seed(19)

    def run(samples: torch.Tensor, hint: str) -> None:
        expected = reference_mode_coverage(samples, ring, std)
        out = c.call(samples.clone(), ring.clone(), std)
        if not (isinstance(out, tuple) and len(out) == 2):
            c.fail("a tuple (modes_captured, high_quality_percent)", _fmt(out),
                   "end with `return modes, percent`.")
        modes = _as_float(c, out[0], "modes_captured")
        percent = _as_float(c, out[1], "high_quality_percent")
        if modes == expected[0] and _close(percent, expected[1], atol=1e-4):
            return
        # name the most likely slip: each alternative is a plausible wrong metric
        distance, nearest = torch.cdist(samples.double(), ring.double()).min(dim=1)
        within_1_std = 100 * float((distance <= std).double().mean())
        any_nearest = int(nearest.unique().numel())
        percent_ok = _close(percent, expected[1], atol=1e-4)
        if not percent_ok and _close(percent, expected[1] / 100, atol=1e-6):
            hint = "return a percentage (0 to 100), not a fraction."
        elif not percent_ok and _close(percent, within_1_std, atol=1e-4):
            hint = "the threshold is 3 * std, compared with the distance to the nearest mode."
        elif percent_ok and modes == any_nearest:
            hint = ("a mode counts only if a HIGH-QUALITY sample (within 3 std) is nearest to "
                    "it; low-quality samples capture nothing.")
        c.fail(f"({expected[0]}, {expected[1]:.4g})", f"({modes:g}, {percent:.4g})", hint)

    c.start("samples exactly on all 8 ring modes: 8 modes, 100 % high quality")
    run(ring.repeat(5, 1), "assign each sample to its nearest mode (torch.cdist + min) and "
        "count the distinct modes.")
    c.ok()

    c.start("samples within 1.5 std of 3 modes: 3 modes, 100 % high quality")
    near = ring[[0, 3, 5]].repeat(20, 1) + std * torch.randn(60, 2, generator=g).clamp(-1, 1)
    run(near, "count the distinct nearest modes of the high-quality samples.")
    c.ok()

    c.start("samples 5 std away from their mode are low quality and capture nothing")
    far = ring[:4] + torch.tensor([5 * std, 0.0])
    run(torch.cat([far, ring[4:6]]), "a sample is high quality only within 3 std of its "
        "nearest mode.")
    c.ok()

    c.start("samples 2.5 std away still count (the threshold is 3 std)")
    run(ring + torch.tensor([0.0, 2.5 * std]), "compare the Euclidean distance to the nearest "
        "mode with 3 * std.")
    c.ok()

    c.start("a random cloud agrees with the course's metric (toy_metrics.mode_metrics)")
    cloud = torch.randn(500, 2, generator=g) * 0.7
    cloud[:100] = ring[torch.arange(100) % 8] + std * torch.randn(100, 2, generator=g)
    run(cloud, "use the Euclidean distance to the nearest mode (torch.cdist).")
    c.ok()
    c.done()


# --------------------------------------------------------------------------------------------
# 05: one discriminator step
# --------------------------------------------------------------------------------------------


def _reference_discriminator_step(D: nn.Module, G: nn.Module, opt: torch.optim.Optimizer,
                                  real: torch.Tensor, z: torch.Tensor) -> float:
    """The library's D step (hinge loss, D called on real and fake separately, as students do)."""
    with torch.no_grad():
        fake = G(z)
    step = gan_step.discriminator_step(D, opt, real, fake, losses.hinge_d_loss, joint=False)
    return step.loss.item()


@_isolated_rng
def check_discriminator_step(discriminator_step: Callable[..., Any]) -> None:
    """Check ``discriminator_step(D, G, opt_D, real, z) -> float``: one hinge-loss update of D.

    Compared with a reference step on identical copies: same loss, same new D parameters (even
    when D has stale gradients from before), generator untouched and without gradients.
    """
    c = _Checker("discriminator_step", discriminator_step)
    g = torch.Generator().manual_seed(23)
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
    ref_loss = _reference_discriminator_step(d_ref, g_ref, opt_ref, real, z)
    d_s, g_s, opt_s = fresh()
    g_before = [p.detach().clone() for p in g_s.parameters()]

    c.start("returns the hinge loss of D before the update")
    value = _as_float(c, c.call(d_s, g_s, opt_s, real.clone(), z.clone()), "the loss")
    if not _close(value, ref_loss, rtol=1e-4):
        c.fail(f"{ref_loss:.4g}", f"{value:.4g}",
               "loss = mean(relu(1 - D(real))) + mean(relu(1 + D(G(z)))); return loss.item().")
    c.ok()

    c.start("updates D exactly like zero_grad -> backward -> step (stale gradients cleared)")
    for p_s, p_r, p_0 in zip(d_s.parameters(), d_ref.parameters(), D.parameters(), strict=True):
        if not _tensor_close(p_s, p_r, rtol=1e-5, atol=1e-6):
            if torch.equal(p_s.detach(), p_0.detach()):
                hint = "D did not change: call opt_D.step() after loss.backward()."
            elif _tensor_close(p_s, p_r - 0.1 * torch.ones_like(p_r), rtol=1e-5, atol=1e-6):
                hint = ("old gradients were added to the new ones: call opt_D.zero_grad() "
                        "before loss.backward().")
            else:
                hint = "one step: opt_D.zero_grad(); loss.backward(); opt_D.step()."
            c.fail("D's parameters after one reference step", "different parameters", hint)
    c.ok()

    c.start("leaves the generator alone (no update, no gradients: the fake batch is detached)")
    changed = any(not torch.equal(a, b.detach())
                  for a, b in zip(g_before, g_s.parameters(), strict=True))
    grads = any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in g_s.parameters())
    if changed or grads:
        c.fail("G unchanged, with no gradients",
               "G's parameters changed" if changed else "G's parameters received gradients",
               "make the fake batch with torch.no_grad() (or G(z).detach()): a discriminator "
               "step must not backpropagate into the generator.")
    c.ok()
    c.done()
