"""Per-layer sigmas of a model, read without side effects: a table and a history over steps.

For each weight layer: the running estimate ``u^T W v``, the exact ``sigma(W)`` (SVD), sigma of
the weight the forward uses, ``sigma(W / u^T W v)`` (1 when the estimate is exact; the paper's
Figure 9 found 1 to 1.05 during training), and for 2-D convs the operator norm of the layer on
its input. No power iteration runs and no buffer changes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from sngan_edu import sn
from sngan_edu.layer_info import conv_layer_operator_norm, layer_role, record_input_shapes
from sngan_edu.spectral import reshape_weight_to_matrix


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


@torch.no_grad()
def sigma_report(
    model: nn.Module,
    input_shapes: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None = None,
    layer_types: Iterable[type[nn.Module]] = sn.DEFAULT_LAYER_TYPES,
    conv_iters: int = 200,
) -> SigmaReport:
    """Per-layer sigmas of every weight layer (normalized or not), without side effects.

    ``input_shapes``: either the model's input shape without the batch, e.g. ``(3, 32, 32)``
    (one forward pass records every layer's input), or a dict layer name -> input shape. With
    it, 2-D conv layers also get their true operator norm (which can exceed the reshaped-kernel
    sigma); without it that column is "-".
    """
    types = sn.check_layer_types(layer_types)
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
    return SigmaReport([_row(name, module, shapes.get(name), conv_iters)
                        for name, module in sn.weight_layers(model, types)])


def _row(name: str, module: nn.Module, input_shape: tuple[int, ...] | None,
         conv_iters: int) -> SigmaRow:
    param = sn.spectral_norm_of(module)
    if param is not None:
        raw = module.parametrizations.weight.original.detach()
        mat = reshape_weight_to_matrix(raw, param.dim)
        estimate = sn.running_sigma(module)
    else:
        raw = module.weight.detach()
        mat = reshape_weight_to_matrix(raw, sn.default_dim(module)) if raw.ndim > 1 else raw[None]
        estimate = float("nan")
    exact = sn.exact_sigma(mat)
    used = raw / estimate if param is not None else raw
    op_norm = float("nan")
    if input_shape is not None:
        op_norm = conv_layer_operator_norm(module, used, input_shape, n_iters=conv_iters)
    return SigmaRow(
        layer=name,
        kind=layer_role(module),
        matrix_shape=tuple(mat.shape),
        estimate=estimate,
        exact_raw=exact,
        normalized=exact / estimate if param is not None else exact,
        conv_operator_norm=op_norm,
    )


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
    for name, module in sn.spectral_norm_layers(model).items():
        estimate = sn.running_sigma(module)
        if exact:
            raw = module.parametrizations.weight.original
            dim = sn.spectral_norm_of(module).dim
            exact_raw = sn.exact_sigma(reshape_weight_to_matrix(raw, dim))
            record = (int(step), estimate, exact_raw, exact_raw / estimate)
        else:
            record = (int(step), estimate, float("nan"), float("nan"))
        history.setdefault(name, []).append(record)
    return history
