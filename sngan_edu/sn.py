"""Spectral normalization written from scratch on ``torch.nn.utils.parametrize``.

SN replaces a layer's weight ``W`` by ``W / sigma(W)``, where ``sigma`` is the largest singular
value of ``W`` reshaped to a matrix (Miyato et al., ICLR 2018). ``sigma`` is estimated by power
iteration with vectors ``u`` and ``v`` that persist between training steps, so one iteration per
step is enough; the estimate is ``sigma = u^T W v`` with ``u`` and ``v`` treated as constants.

The parametrization keeps its vectors in buffers named ``_u`` and ``_v`` and starts exactly like
``torch.nn.utils.parametrizations.spectral_norm`` (same random draws, 15 warm-up iterations), so
state dicts load both ways between the two implementations without renaming any key, and the
same seed gives the same numbers.

Public API: :func:`spectral_norm` (one module), :func:`apply_spectral_norm` (a whole model),
:func:`remove_spectral_norm`, :func:`sigma_report`, :func:`layer_sigmas`,
:func:`normalized_sigmas`, :func:`refresh_power_iteration`, :func:`convert_legacy_state_dict`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sngan_edu.checks import check_int, check_pair, check_positive, is_int
from sngan_edu.spectral import power_iteration_, reshape_weight_to_matrix, sigma_estimate

#: Power iterations run once when SN is attached, so the first estimate is already good.
#: Same number as PyTorch's built-in parametrization.
INIT_POWER_ITERATIONS = 15

CONV_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED_CONV_TYPES: tuple[type[nn.Module], ...] = (
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
#: Layer types :func:`apply_spectral_norm` normalizes by default.
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    *CONV_TYPES,
    *TRANSPOSED_CONV_TYPES,
    nn.Embedding,
)


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

    def __init__(
        self,
        weight: torch.Tensor,
        n_power_iterations: int = 1,
        dim: int = 0,
        eps: float = 1e-12,
    ) -> None:
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

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """The estimate ``u^T W v`` for the current buffers (differentiable in ``weight``)."""
        # Clone: the buffers are updated in place by the next training-mode forward, and a
        # graph built by this forward (e.g. D(real) before D(fake)) must still see these values.
        u = self._u.clone()
        v = self._v.clone()
        return sigma_estimate(self.reshape_weight(weight), u, v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        # Mixed precision: the power iteration and W / sigma stay in float32 under
        # torch.autocast. Autocast on CUDA runs mv (inside sigma = u^T W v) in float16/bfloat16,
        # which would round sigma to about 3 significant digits (fp16) or 2 (bf16) and so miss
        # the norm-1 target by up to 0.05% or 0.4%, differently at every step; and u, v carry
        # over all of training, so their rounding would compound. The layer's own conv/linear
        # still runs in the autocast type (it casts W / sigma), and the backward (run outside
        # autocast, as torch recommends) is float32 too. Without autocast this branch is
        # skipped: float32 results are bit-identical.
        if torch.is_autocast_enabled(weight.device.type):
            with torch.autocast(weight.device.type, enabled=False):
                return self._normalize(weight)
        return self._normalize(weight)

    def _normalize(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.power_iteration(self.reshape_weight(weight.detach()), self.n_power_iterations)
        # Clones for the same reason as in sigma(). The power iteration ran without gradient,
        # so autograd treats u, v as constants and gives the paper's gradient.
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


def _sn_of(module: nn.Module, name: str = "weight") -> nn.Module | None:
    """The spectral-norm parametrization (ours or PyTorch's) on ``module.<name>``, or None."""
    if not parametrize.is_parametrized(module, name):
        return None
    for p in module.parametrizations[name]:
        if isinstance(p, SpectralNorm) or type(p).__name__ == "_SpectralNorm":
            return p
    return None


def is_spectral_normalized(module: nn.Module, name: str = "weight") -> bool:
    """True if ``module.<name>`` carries a spectral-norm parametrization (ours or PyTorch's)."""
    return _sn_of(module, name) is not None


def spectral_norm(
    module: nn.Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> nn.Module:
    """Spectrally normalize ``module.<name>`` in place and return ``module``.

    Works on ONE layer. A whole model has no ``weight`` of its own: use
    :func:`apply_spectral_norm` for that. ``dim=None`` picks 1 for ConvTranspose, else 0.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be the name of a weight parameter; got {name!r}")
    if name not in module._parameters and not parametrize.is_parametrized(module, name):
        has_layers = any(True for _ in _weight_layers(module, DEFAULT_LAYER_TYPES))
        hint = (
            " It looks like a whole model: spectral_norm wraps ONE layer's weight. "
            "Use sngan_edu.sn.apply_spectral_norm(model) to normalize every layer."
            if has_layers
            else ""
        )
        raise ValueError(
            f"name={name!r}: {type(module).__name__} has no parameter called {name!r}.{hint}"
        )
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


def _check_layer_types(layer_types: Iterable[type]) -> tuple[type[nn.Module], ...]:
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


def _weight_layers(
    model: nn.Module, layer_types: tuple[type[nn.Module], ...]
) -> Iterator[tuple[str, nn.Module]]:
    for name, module in model.named_modules():
        if isinstance(module, layer_types) and (
            module._parameters.get("weight") is not None
            or parametrize.is_parametrized(module, "weight")
        ):
            yield name, module


def apply_spectral_norm(
    model: nn.Module,
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    layer_types: Iterable[type[nn.Module]] = DEFAULT_LAYER_TYPES,
) -> nn.Module:
    """Spectrally normalize every layer of ``layer_types`` in ``model`` (in place); return it.

    Layers of other types (BatchNorm, LayerNorm, activations...) are left alone, and layers that
    already carry spectral norm are skipped, so calling it twice is harmless.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    types = _check_layer_types(layer_types)
    # Validate the settings once, before touching any layer.
    _check_settings(torch.ones(1, 1), n_power_iterations, 0, eps)
    layers = [m for _, m in _weight_layers(model, types) if not is_spectral_normalized(m)]
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
        sn = _sn_of(m, name)
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
    """True if any layer of ``model`` is spectrally normalized (by this module)."""
    return len(spectral_norm_layers(model)) > 0


def running_sigma(module: nn.Module, name: str = "weight") -> float:
    """The current estimate ``u^T W v`` of one normalized layer, from its buffers."""
    sn = _sn_of(module, name)
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


def _exact_sigma(matrix: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(matrix.detach().double(), ord=2))


@torch.no_grad()
def normalized_sigmas(model: nn.Module) -> dict[str, float]:
    """Exact sigma (SVD) of each normalized weight ``W / (u^T W v)``, as the forward uses it.

    Equals 1 when the running estimate is exact; above 1 when the estimate lags behind.
    """
    out = {}
    for n, m in spectral_norm_layers(model).items():
        sn = _sn_of(m)
        raw = m.parametrizations.weight.original
        out[n] = _exact_sigma(reshape_weight_to_matrix(raw, sn.dim)) / running_sigma(m)
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
        param = _sn_of(module, name)
        if not hasattr(param, "_u"):  # PyTorch's SN of a 1-D weight keeps no vectors
            continue
        raw = module.parametrizations[name].original
        mat = reshape_weight_to_matrix(raw.detach(), param.dim)
        power_iteration_(mat, param._u, param._v, n_iters, param.eps, order="torch")
    return model


# --------------------------------------------------------------------------------------------
# sigma_report: a table for notebooks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigmaRow:
    """One weight layer of a :class:`SigmaReport`. NaN means "not applicable/unknown"."""

    layer: str
    kind: str
    matrix_shape: tuple[int, int]
    estimate: float  # running u^T W v (NaN without SN)
    exact_raw: float  # sigma of the raw weight matrix, by SVD
    normalized: float  # sigma of the weight the forward uses (W / estimate, or W without SN)
    conv_operator_norm: float  # true operator norm of the layer as used (convs, input known)


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


@dataclass
class SigmaReport:
    """Per-layer sigmas of a model; shows as an HTML table in notebooks, text elsewhere."""

    rows: list[SigmaRow] = field(default_factory=list)
    digits: int = 4

    COLUMNS = (
        ("layer", "layer"),
        ("kind", "type"),
        ("matrix_shape", "matrix"),
        ("estimate", "estimate u^T W v"),
        ("exact_raw", "sigma(W) exact"),
        ("normalized", "sigma(W/estimate)"),
        ("conv_operator_norm", "conv operator norm"),
    )

    def _cells(self, row: SigmaRow) -> list[str]:
        cells = []
        for key, _ in self.COLUMNS:
            value = getattr(row, key)
            if key == "matrix_shape":
                cells.append(f"{value[0]}x{value[1]}")
            elif isinstance(value, float):
                cells.append(_fmt(value, self.digits))
            else:
                cells.append(str(value) if value != "" else "(model)")
        return cells

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, layer: str) -> SigmaRow:
        for row in self.rows:
            if row.layer == layer:
                return row
        raise KeyError(layer)

    def __repr__(self) -> str:
        table = [[title for _, title in self.COLUMNS]] + [self._cells(r) for r in self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(self.COLUMNS))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(t)}</th>" for _, t in self.COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in self._cells(r)) + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pair(value) -> tuple[int, int] | None:
    """A conv attribute as an (h, w) pair, or None (e.g. padding="same": not supported)."""
    try:
        return check_pair("value", value, minimum=0)
    except ValueError:
        return None


def _is_conv2d_like(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))


@torch.no_grad()
def record_input_shapes(
    model: nn.Module, sample_shape: tuple[int, ...], layer_types=DEFAULT_LAYER_TYPES
) -> dict[str, tuple[int, ...]]:
    """Per-layer input shape (without batch) seen in one forward pass of a zero input.

    Runs in eval mode (no power iteration, no BatchNorm statistics update) and restores
    every module's mode afterwards.
    """
    if not all(is_int(s) and s > 0 for s in sample_shape):
        raise ValueError(
            f"input_shapes must be a shape of positive ints without the batch, e.g. (3, 32, 32); "
            f"got {sample_shape!r}"
        )
    modes = {m: m.training for m in model.modules()}
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, module in _weight_layers(model, tuple(layer_types)):

        def hook(_mod, args, _name=name):
            if args and torch.is_tensor(args[0]):
                shapes.setdefault(_name, tuple(args[0].shape[1:]))

        hooks.append(module.register_forward_pre_hook(hook))
    try:
        model.eval()
        param = next(model.parameters(), None)
        device = param.device if param is not None else None
        dtype = param.dtype if param is not None else None
        model(torch.zeros(1, *sample_shape, device=device, dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    return shapes


def conv_layer_operator_norm(
    module: nn.Module, weight: torch.Tensor, input_shape: tuple[int, ...], n_iters: int = 200
) -> float:
    """True operator norm of a 2-D conv / transposed conv layer with ``weight``, or NaN.

    Uses :func:`sngan_edu.spectral.conv_operator_norm` (power iteration through the conv, with
    a fixed seed so reports are reproducible). NaN for layers it does not cover (1-D/3-D convs,
    groups, dilation, string or reflect padding).
    """
    if not _is_conv2d_like(module) or module.groups != 1 or _pair(module.dilation) != (1, 1):
        return float("nan")
    stride, padding = _pair(module.stride), _pair(module.padding)
    if stride is None or padding is None or module.padding_mode not in ("zeros", "circular"):
        return float("nan")
    transposed = isinstance(module, nn.ConvTranspose2d)
    from sngan_edu.spectral import conv_operator_norm

    generator = torch.Generator(device=weight.device).manual_seed(0)
    value = conv_operator_norm(
        weight.detach(),
        tuple(input_shape),
        stride=stride,
        padding=padding,
        transposed=transposed,
        n_iters=n_iters,
        padding_mode=module.padding_mode,
        output_padding=_pair(module.output_padding) if transposed else 0,
        generator=generator,
    )
    return float(value)


def layer_role(module: nn.Module) -> str:
    """A weight layer named by what it does: "conv 3x3 s1", "convT 4x4 s2", "linear 256->1"."""
    if isinstance(module, nn.modules.conv._ConvNd):
        kind = "convT" if isinstance(module, nn.modules.conv._ConvTransposeNd) else "conv"
        kernel = "x".join(map(str, module.kernel_size))
        same = len(set(module.stride)) == 1
        stride = "s" + (str(module.stride[0]) if same else "x".join(map(str, module.stride)))
        return f"{kind} {kernel} {stride}"
    if isinstance(module, nn.Linear):
        return f"linear {module.in_features}->{module.out_features}"
    return type(module).__name__.removeprefix("Parametrized").lower()


def layer_roles(
    model: nn.Module, layer_types: Iterable[type[nn.Module]] = DEFAULT_LAYER_TYPES
) -> dict[str, str]:
    """``{module name: "k: role"}`` for every weight layer, numbered from the input, e.g.
    ``{"main.0": "1: conv 3x3 s1", ..., "linear": "8: linear 256->1"}``."""
    layers = _weight_layers(model, _check_layer_types(layer_types))
    return {name: f"{i}: {layer_role(module)}" for i, (name, module) in enumerate(layers, start=1)}


@torch.no_grad()
def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the forward pass uses, computed without running a power iteration."""
    sn = _sn_of(module)
    if sn is None:
        return module.weight.detach()
    raw = module.parametrizations.weight.original.detach()
    return raw / running_sigma(module)


@torch.no_grad()
def sigma_report(
    model: nn.Module,
    input_shapes: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None = None,
    layer_types: Iterable[type[nn.Module]] = DEFAULT_LAYER_TYPES,
    conv_iters: int = 200,
) -> SigmaReport:
    """Per-layer sigmas of every weight layer (normalized or not), without side effects.

    ``input_shapes``: either the model's input shape without the batch, e.g. ``(3, 32, 32)``
    (one forward pass records every layer's input), or a dict layer name -> input shape. With
    it, 2-D conv layers also get their true operator norm (which can exceed the reshaped-kernel
    sigma); without it that column is "-".
    """
    types = _check_layer_types(layer_types)
    if input_shapes is None:
        shapes: Mapping[str, tuple[int, ...]] = {}
    elif isinstance(input_shapes, Mapping):
        shapes = input_shapes
    elif isinstance(input_shapes, (tuple, list)):
        shapes = record_input_shapes(model, tuple(input_shapes), types)
    else:
        raise ValueError(
            "input_shapes must be None, a shape like (3, 32, 32) or a dict layer -> shape; "
            f"got {input_shapes!r}"
        )
    rows = []
    for name, module in _weight_layers(model, types):
        sn = _sn_of(module)
        if sn is not None:
            raw = module.parametrizations.weight.original.detach()
            mat = reshape_weight_to_matrix(raw, sn.dim)
            estimate = running_sigma(module)
        else:
            raw = module.weight.detach()
            mat = reshape_weight_to_matrix(raw, default_dim(module)) if raw.ndim > 1 else raw[None]
            estimate = float("nan")
        exact = _exact_sigma(mat)
        normalized = exact / estimate if sn is not None else exact
        op_norm = float("nan")
        if name in shapes:
            used = raw / estimate if sn is not None else raw
            op_norm = conv_layer_operator_norm(module, used, shapes[name], n_iters=conv_iters)
        rows.append(
            SigmaRow(
                layer=name,
                kind=layer_role(module),
                matrix_shape=tuple(mat.shape),
                estimate=estimate,
                exact_raw=exact,
                normalized=normalized,
                conv_operator_norm=op_norm,
            )
        )
    return SigmaReport(rows)


# --------------------------------------------------------------------------------------------
# Interoperability with PyTorch's older hook-based torch.nn.utils.spectral_norm
# --------------------------------------------------------------------------------------------


def convert_legacy_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename keys of a state dict saved with the old ``torch.nn.utils.spectral_norm`` hooks.

    ``X.weight_orig``/``X.weight_u``/``X.weight_v`` become ``X.parametrizations.weight.original``
    and ``X.parametrizations.weight.0._u``/``._v``, the keys of this module and of
    ``torch.nn.utils.parametrizations.spectral_norm``. Many published SNGAN checkpoints use the
    old keys.
    """
    renames = {
        "weight_orig": "parametrizations.weight.original",
        "weight_u": "parametrizations.weight.0._u",
        "weight_v": "parametrizations.weight.0._v",
    }
    out = {}
    for key, value in state_dict.items():
        prefix, _, last = key.rpartition(".")
        if last in renames:
            key = f"{prefix}.{renames[last]}" if prefix else renames[last]
        out[key] = value
    return out


# --------------------------------------------------------------------------------------------
# Sigma histories for live plots (see sngan_edu.plots.sigma.draw_sigma_history)
# --------------------------------------------------------------------------------------------

#: One record: (step, running estimate u^T W v, exact sigma of the raw W, sigma of W/estimate).
SigmaRecord = tuple[int, float, float, float]
SigmaHistory = dict[str, list[SigmaRecord]]


@torch.no_grad()
def record_sigma_history(
    history: SigmaHistory, model: nn.Module, step: int, exact: bool = True
) -> SigmaHistory:
    """Append one :data:`SigmaRecord` per normalized layer of ``model`` to ``history``.

    ``exact=False`` skips the SVDs (the last two fields are NaN): the cheap choice for big
    models logged often. No power iteration runs and no buffer changes.
    """
    for name, module in spectral_norm_layers(model).items():
        estimate = running_sigma(module)
        if exact:
            raw = module.parametrizations.weight.original
            exact_raw = _exact_sigma(reshape_weight_to_matrix(raw, _sn_of(module).dim))
            record = (int(step), estimate, exact_raw, exact_raw / estimate)
        else:
            record = (int(step), estimate, float("nan"), float("nan"))
        history.setdefault(name, []).append(record)
    return history
