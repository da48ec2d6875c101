"""A model's weight layers described: their role, the input each one sees, its operator norm.

SN normalizes the reshaped kernel, ``sigma(W_mat) = 1``; the layer as a map on images has
operator norm ``||conv||`` between that and ``sqrt(kh*kw)`` times it (:mod:`sngan_edu.conv_norm`),
which depends on the input each layer sees. These helpers name each layer ("conv 3x3 s1"),
record its input shape with one forward pass, and compute that operator norm.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from sngan_edu import sn
from sngan_edu.checks import check_pair, is_int
from sngan_edu.conv_norm import conv_operator_norm


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
    model: nn.Module, layer_types: Iterable[type[nn.Module]] = sn.DEFAULT_LAYER_TYPES
) -> dict[str, str]:
    """``{module name: "k: role"}`` for every weight layer, numbered from the input, e.g.
    ``{"main.0": "1: conv 3x3 s1", ..., "linear": "8: linear 256->1"}``."""
    layers = sn.weight_layers(model, sn.check_layer_types(layer_types))
    return {name: f"{i}: {layer_role(module)}" for i, (name, module) in enumerate(layers, start=1)}


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
    model: nn.Module, sample_shape: tuple[int, ...], layer_types=sn.DEFAULT_LAYER_TYPES
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
    for name, module in sn.weight_layers(model, tuple(layer_types)):

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

    Uses :func:`sngan_edu.conv_norm.conv_operator_norm` (power iteration through the conv, with
    a fixed seed so reports are reproducible). NaN for layers it does not cover (1-D/3-D convs,
    groups, dilation, string or reflect padding).
    """
    if not _is_conv2d_like(module) or module.groups != 1 or _pair(module.dilation) != (1, 1):
        return float("nan")
    stride, padding = _pair(module.stride), _pair(module.padding)
    if stride is None or padding is None or module.padding_mode not in ("zeros", "circular"):
        return float("nan")
    transposed = isinstance(module, nn.ConvTranspose2d)
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
