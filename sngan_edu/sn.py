"""Spectral normalization (Miyato et al., ICLR 2018) as a ``torch.nn.utils.parametrize`` layer.

SN replaces a layer's weight by ``W_SN = W / sigma(W)``, sigma the largest singular value of
``W`` reshaped to a matrix. sigma is estimated by power iteration with vectors ``u``, ``v`` that
persist between training steps (one iteration per step, in training mode only)::

    u <- W v / ||W v||,   v <- W^T u / ||W^T u||,   sigma ~ u^T W v,

with ``u``, ``v`` constants for autograd, so the gradient is the paper's equation (12),
``dL/dW = (G - <G, W_SN> u v^T) / sigma`` for ``G = dL/dW_SN``.

It behaves like ``torch.nn.utils.parametrizations.spectral_norm``: the same ``_u``/``_v``
buffers and state-dict keys (they load both ways), the same random draws and 15 warm-up
iterations (equal seeds give equal numbers), correct second derivatives, and it works under
``torch.func.grad``, ``jvp`` and ``vmap`` where torch's does. Two deliberate differences: it
refuses a second SN on one weight, and a 1-D weight (not a linear map), with a ValueError.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sngan_edu.checks import check_int, check_positive
from sngan_edu.spectral import power_iteration_, reshape_weight_to_matrix, sigma_estimate

#: Power iterations run once when SN is attached, so the first estimate is already good.
#: Same number as PyTorch's built-in parametrization.
INIT_POWER_ITERATIONS = 15

CONV_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED_CONV_TYPES: tuple[type[nn.Module], ...] = (
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
#: Layer types :func:`apply_spectral_norm` normalizes by default.
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear, *CONV_TYPES, *TRANSPOSED_CONV_TYPES, nn.Embedding)


def divide_by_sigma(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor, dim: int = 0):
    """``W / sigma`` with ``sigma = u^T W v``, differentiable in ``W`` (u and v are constants).

    Plain autograd: with ``G = dL/dW_SN`` the gradient is equation (12) of the paper,
    ``dL/dW = (G - <G, W_SN> u v^T) / sigma``, and second derivatives (gradient penalties,
    ``torch.autograd.gradgradcheck``) and ``torch.func`` transforms work as for any torch code.
    """
    return weight / sigma_estimate(reshape_weight_to_matrix(weight, dim), u, v)


class SpectralNorm(nn.Module):
    """The parametrization ``W -> W / sigma(W)`` with a persistent power-iteration state.

    ``dim`` is the output dimension of the weight: it is moved to the front and the rest is
    flattened, giving the matrix whose largest singular value is estimated (0 for Linear and
    Conv, 1 for ConvTranspose whose weight is ``(in, out, k...)``).
    """

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        _check_settings(weight, n_power_iterations, dim, eps)
        self.dim = dim % weight.ndim
        self.n_power_iterations = int(n_power_iterations)
        self.eps = float(eps)
        weight_mat = self.reshape_weight(weight.detach())
        h, w = weight_mat.shape
        # Same draws, in the same order, as PyTorch's built-in: equal seeds give equal vectors.
        u = weight_mat.new_empty(h).normal_(0, 1)
        v = weight_mat.new_empty(w).normal_(0, 1)
        self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
        self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
        self.power_iteration(weight_mat, INIT_POWER_ITERATIONS)

    def reshape_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """Move ``dim`` to the front and flatten the rest: ``(out, in * k...)``."""
        return reshape_weight_to_matrix(weight, self.dim)

    @torch.no_grad()
    def power_iteration(self, weight_mat: torch.Tensor, n_iters: int) -> None:
        """Run ``n_iters`` power iterations, updating the ``_u``/``_v`` buffers in place.

        In place matters: ``DataParallel`` replicas share buffer storage with the original
        module, so in-place updates are the ones that survive a replicated forward pass.
        The iteration is :func:`sngan_edu.spectral.power_iteration_` in PyTorch's order (``u``
        from ``v`` first), so the numbers equal its built-in parametrization bit for bit.
        """
        power_iteration_(weight_mat, self._u, self._v, n_iters, self.eps, order="torch")

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        # Under torch.autocast the power iteration and W / sigma stay in float32: a float16 mv
        # would round sigma to ~3 digits, differently every step, and u, v carry that rounding
        # through training. The layer's own conv/linear still runs in the autocast type.
        if torch.is_autocast_enabled(weight.device.type):
            with torch.autocast(weight.device.type, enabled=False):
                return self._normalize(weight)
        return self._normalize(weight)

    def _normalize(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.power_iteration(self.reshape_weight(weight.detach()), self.n_power_iterations)
        # Clones: the next training-mode forward updates the buffers in place, and the graph of
        # this one (e.g. D(real) before D(fake)) must keep these values. The power iteration
        # ran without gradient, so autograd treats u, v as constants: the paper's gradient.
        return divide_by_sigma(weight, self._u.clone(), self._v.clone(), self.dim)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        # Assigning module.weight = X stores X as the raw weight (like PyTorch's version).
        return value

    def extra_repr(self) -> str:
        return f"n_power_iterations={self.n_power_iterations}, dim={self.dim}, eps={self.eps:g}"


def _check_settings(weight: torch.Tensor, n_power_iterations: int, dim: int, eps: float) -> None:
    check_int("n_power_iterations", n_power_iterations)
    check_positive("eps", eps)
    if weight.ndim < 2:
        raise ValueError(
            f"the weight must have at least 2 dimensions (a matrix or a conv kernel); got shape "
            f"{tuple(weight.shape)}. A 1-D weight (e.g. a BatchNorm scale) is not a linear map "
            "to normalize"
        )
    if weight.numel() == 0:
        raise ValueError(f"the weight is empty (shape {tuple(weight.shape)}); nothing to normalize")
    check_int("dim", dim, -weight.ndim, weight.ndim - 1,
              note=f" for a weight of shape {tuple(weight.shape)}")


def default_dim(module: nn.Module) -> int:
    """Output dimension of a module's weight: 1 for ConvTranspose, 0 otherwise."""
    return 1 if isinstance(module, TRANSPOSED_CONV_TYPES) else 0


def spectral_norm_of(module: nn.Module, name: str = "weight") -> nn.Module | None:
    """The spectral-norm parametrization (ours or PyTorch's) on ``module.<name>``, or None."""
    if not parametrize.is_parametrized(module, name):
        return None
    for p in module.parametrizations[name]:
        if isinstance(p, SpectralNorm) or type(p).__name__ == "_SpectralNorm":
            return p
    return None


def is_spectral_normalized(module: nn.Module, name: str = "weight") -> bool:
    """True if ``module.<name>`` carries a spectral-norm parametrization (ours or PyTorch's)."""
    return spectral_norm_of(module, name) is not None


def spectral_norm(module: nn.Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> nn.Module:
    """Spectrally normalize ``module.<name>`` in place and return ``module``.

    Works on ONE layer. A whole model has no ``weight`` of its own: use
    :func:`apply_spectral_norm` for that. ``dim=None`` picks 1 for ConvTranspose, else 0.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be the name of a weight parameter; got {name!r}")
    if name not in module._parameters and not parametrize.is_parametrized(module, name):
        has_layers = any(True for _ in weight_layers(module, DEFAULT_LAYER_TYPES))
        hint = (" It looks like a whole model: spectral_norm wraps ONE layer's weight. "
                "Use sngan_edu.sn.apply_spectral_norm(model) to normalize every layer."
                if has_layers else "")
        raise ValueError(
            f"name={name!r}: {type(module).__name__} has no parameter called {name!r}.{hint}")
    if is_spectral_normalized(module, name):
        raise ValueError(f"name={name!r}: {type(module).__name__}.{name} already has spectral norm")
    if module._parameters.get(name) is None and not parametrize.is_parametrized(module, name):
        raise ValueError(f"name={name!r}: {type(module).__name__}.{name} is None")
    weight = getattr(module, name)
    if dim is None:
        dim = default_dim(module)
    sn = SpectralNorm(weight, n_power_iterations=n_power_iterations, dim=dim, eps=eps)
    parametrize.register_parametrization(module, name, sn)
    return module


_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def check_layer_types(layer_types: Iterable[type]) -> tuple[type[nn.Module], ...]:
    """``layer_types`` as a tuple of module classes; ValueError for anything else or for norms."""
    types = tuple(layer_types) if not isinstance(layer_types, type) else (layer_types,)
    bad = [t for t in types if not (isinstance(t, type) and issubclass(t, nn.Module))]
    if not types or bad:
        raise ValueError(
            "layer_types must be a non-empty tuple of torch.nn.Module subclasses, e.g. "
            f"(nn.Linear, nn.Conv2d); got {layer_types!r}"
        )
    norms = [t.__name__ for t in types if issubclass(t, _NORM_TYPES)]
    if norms:
        raise ValueError(
            f"layer_types contains normalization layers ({', '.join(norms)}); their 1-D "
            "scale is not a weight matrix and must not be spectrally normalized"
        )
    return types


def weight_layers(model: nn.Module,
                  layer_types: tuple[type[nn.Module], ...]) -> Iterator[tuple[str, nn.Module]]:
    """``(name, module)`` for every module of ``layer_types`` in ``model`` that has a weight."""
    for name, module in model.named_modules():
        if isinstance(module, layer_types) and (
            module._parameters.get("weight") is not None
            or parametrize.is_parametrized(module, "weight")
        ):
            yield name, module


def apply_spectral_norm(model: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12,
                        layer_types: Iterable[type[nn.Module]] = DEFAULT_LAYER_TYPES) -> nn.Module:
    """Spectrally normalize every layer of ``layer_types`` in ``model`` (in place); return it.

    Layers of other types (BatchNorm, LayerNorm, activations...) are left alone, and layers that
    already carry spectral norm are skipped, so calling it twice is harmless.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    types = check_layer_types(layer_types)
    # Validate the settings once, before touching any layer.
    _check_settings(torch.ones(1, 1), n_power_iterations, 0, eps)
    layers = [m for _, m in weight_layers(model, types) if not is_spectral_normalized(m)]
    for module in layers:
        spectral_norm(module, n_power_iterations=n_power_iterations, eps=eps)
    return model


def remove_spectral_norm(module: nn.Module, name: str = "weight") -> nn.Module:
    """Remove spectral norm from ``module`` and all its submodules, keeping ``W / sigma``.

    The normalized weight is computed with the stored ``u``/``v`` (no extra power iteration,
    unlike PyTorch's removal in training mode). Raises ValueError if nothing was normalized.
    """
    targets = [m for m in module.modules() if is_spectral_normalized(m, name)]
    if not targets:
        raise ValueError(f"name={name!r}: no spectral norm found on {type(module).__name__}")
    for m in targets:
        sn = spectral_norm_of(m, name)
        was_training = sn.training
        sn.eval()
        try:
            parametrize.remove_parametrizations(m, name, leave_parametrized=True)
        finally:
            sn.train(was_training)
    return module


# --------------------------------------------------------------------------------------------
# Reading sigmas without side effects (no power iteration, no change to any buffer)
# --------------------------------------------------------------------------------------------


def spectral_norm_layers(model: nn.Module, name: str = "weight") -> dict[str, nn.Module]:
    """Every spectrally normalized submodule of ``model`` by qualified name ("" for itself)."""
    return {n: m for n, m in model.named_modules() if is_spectral_normalized(m, name)}


@torch.no_grad()
def has_spectral_norm(model: nn.Module) -> bool:
    """True if any layer of ``model`` is spectrally normalized (ours or PyTorch's)."""
    return len(spectral_norm_layers(model)) > 0


@torch.no_grad()
def running_sigma(module: nn.Module, name: str = "weight") -> float:
    """The current estimate ``u^T W v`` of one normalized layer, from its buffers."""
    sn = spectral_norm_of(module, name)
    if sn is None:
        raise ValueError(f"module has no spectral norm on {name!r}")
    raw = module.parametrizations[name].original
    return float(sigma_estimate(reshape_weight_to_matrix(raw, sn.dim), sn._u, sn._v))


@torch.no_grad()
def layer_sigmas(model: nn.Module) -> dict[str, float]:
    """Cheap per-layer running estimates ``u^T W v`` (no SVD), for logging in training loops.

    Keys are qualified module names in model order; works with PyTorch's built-in SN too.
    """
    return {n: running_sigma(m) for n, m in spectral_norm_layers(model).items()}


def exact_sigma(matrix: torch.Tensor) -> float:
    """sigma of a matrix by SVD in float64 (NaN if it holds NaN), for reports and checks."""
    return float(torch.linalg.matrix_norm(matrix.detach().double(), ord=2))


@torch.no_grad()
def normalized_sigmas(model: nn.Module) -> dict[str, float]:
    """Exact sigma (SVD) of each normalized weight ``W / (u^T W v)``, as the forward uses it.

    Equals 1 when the running estimate is exact; above 1 when the estimate lags behind.
    """
    out = {}
    for n, m in spectral_norm_layers(model).items():
        sn = spectral_norm_of(m)
        raw = m.parametrizations.weight.original
        out[n] = exact_sigma(reshape_weight_to_matrix(raw, sn.dim)) / running_sigma(m)
    return out


@torch.no_grad()
def refresh_power_iteration(
    model: nn.Module, n_iters: int = INIT_POWER_ITERATIONS, name: str = "weight"
) -> nn.Module:
    """Run ``n_iters`` power iterations on every spectrally normalized layer of ``model``.

    Works with this module's SN and PyTorch's built-in, in training or eval mode (the modes are
    left unchanged), without gradients; only the ``_u``/``_v`` buffers change, in place. Use it
    when the buffers no longer hold unit singular-vector estimates for the current weights,
    e.g. on the copy kept by ``torch.optim.swa_utils.AveragedModel(..., use_buffers=True)``:
    an average of unit vectors is shorter than 1, so ``u^T W v`` underestimates sigma and the
    averaged layers are no longer normalized. The first iteration restores unit length; the
    rest move ``u, v`` towards the top singular vectors of the current ``W``. Returns ``model``.
    """
    check_int("n_iters", n_iters)
    for module in spectral_norm_layers(model, name).values():
        param = spectral_norm_of(module, name)
        if not hasattr(param, "_u"):  # PyTorch's SN of a 1-D weight keeps no vectors
            continue
        raw = module.parametrizations[name].original
        mat = reshape_weight_to_matrix(raw.detach(), param.dim)
        power_iteration_(mat, param._u, param._v, n_iters, param.eps, order="torch")
    return model


@torch.no_grad()
def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the forward pass uses, computed without running a power iteration."""
    sn = spectral_norm_of(module)
    if sn is None:
        return module.weight.detach()
    raw = module.parametrizations.weight.original.detach()
    return raw / running_sigma(module)


# --------------------------------------------------------------------------------------------
# Interoperability with PyTorch's older hook-based torch.nn.utils.spectral_norm
# --------------------------------------------------------------------------------------------


def convert_legacy_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename keys of a state dict saved with the old ``torch.nn.utils.spectral_norm`` hooks.

    ``X.weight_orig``/``X.weight_u``/``X.weight_v`` become ``X.parametrizations.weight.original``
    and ``X.parametrizations.weight.0._u``/``._v``, the keys of this module and of
    ``torch.nn.utils.parametrizations.spectral_norm``, so published SN-GAN checkpoints saved with
    the old hooks load into either.
    """
    renames = {"weight_orig": "parametrizations.weight.original",
               "weight_u": "parametrizations.weight.0._u",
               "weight_v": "parametrizations.weight.0._v"}
    out = {}
    for key, value in state_dict.items():
        prefix, _, last = key.rpartition(".")
        if last in renames:
            key = f"{prefix}.{renames[last]}" if prefix else renames[last]
        out[key] = value
    return out
