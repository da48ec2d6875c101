"""What an exact sigma costs against one power iteration (notebook 01, section 5).

SN adds one power iteration per training step: two mat-vecs and two normalizations, O(m n),
against O(m n min(m, n)) for the SVD that computes sigma exactly.
"""

from __future__ import annotations

import math
import statistics
import timeit
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sngan_edu.checks import check_int, check_number, check_pair
from sngan_edu.spectral import power_iteration, spectral_norm_exact

#: The statements timed, by method name (``W`` is m x n, ``u`` has length m).
STATEMENTS = {
    "svdvals": "torch.linalg.svdvals(W)",
    "exact": "spectral_norm_exact(W)",
    "svd": "torch.linalg.svd(W, full_matrices=False)",
    "power_step": "v = F.normalize(W.t() @ u, dim=0); F.normalize(W @ v, dim=0)",
    "power_iteration": "power_iteration(W, u)",
}


def _timers(m: int, n: int, stmts: dict[str, str], dtype: torch.dtype,
            generator: torch.Generator | None, min_time: float) -> list:
    """``(name, timer, loops per sample)`` for each statement on a random m x n matrix."""
    env = {
        "torch": torch,
        "F": F,
        "W": torch.randn(m, n, generator=generator, dtype=dtype),
        "u": torch.randn(m, generator=generator, dtype=dtype),
        "power_iteration": power_iteration,
        "spectral_norm_exact": spectral_norm_exact,
    }
    row = []
    for name, stmt in stmts.items():
        timer = timeit.Timer(stmt, globals=env)
        timer.timeit(1)  # warm-up (lazy initialisation, caches)
        once = max(timer.timeit(1), 1e-7)
        row.append((name, timer, max(1, math.ceil(min_time / once))))
    return row


def time_sigma_methods(
    shapes: Sequence[tuple[int, int]],
    repeats: int = 7,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
    methods: Sequence[str] = ("svdvals", "exact", "svd", "power_step", "power_iteration"),
    min_time: float = 0.05,
) -> list[dict[str, float]]:
    """Median seconds per call of exact sigmas (SVD) and of one power iteration, per shape.

    Timings use the standard library's ``timeit`` and are interleaved: every repeat measures
    every shape and method once, so background load hits all of them alike; each sample loops
    a method for at least ``min_time`` seconds. Methods: ``svdvals`` (torch.linalg.svdvals on W
    as stored), ``exact`` (:func:`spectral_norm_exact`, which uses the tall orientation),
    ``svd`` (full torch.linalg.svd), ``power_step`` (one bare iteration: two mat-vecs and two
    normalizations, what SN adds per training step) and ``power_iteration``
    (:func:`sngan_edu.spectral.power_iteration`, with its input checks). Returns one dict per
    shape with the medians and, when both are timed, ``ratio = exact / power_step``.
    """
    check_int("repeats", repeats)
    check_number("min_time", min_time, 0, finite=False)
    shapes = [check_pair("shapes", tuple(s), 1) for s in shapes]
    unknown = [name for name in methods if name not in STATEMENTS]
    if unknown or not methods:
        raise ValueError(
            f"methods must be a non-empty subset of {tuple(STATEMENTS)}; got {methods}")
    stmts = {name: STATEMENTS[name] for name in methods}
    timers = [_timers(m, n, stmts, dtype, generator, min_time) for m, n in shapes]
    samples: list[dict[str, list[float]]] = [{name: [] for name in stmts} for _ in shapes]
    for _ in range(repeats):
        for i, row in enumerate(timers):
            for name, timer, number in row:
                samples[i][name].append(timer.timeit(number) / number)
    out = []
    for (m, n), sample in zip(shapes, samples, strict=True):
        row_out: dict[str, float] = {"m": m, "n": n}
        row_out.update({name: statistics.median(values) for name, values in sample.items()})
        if "exact" in row_out and "power_step" in row_out:
            row_out["ratio"] = row_out["exact"] / row_out["power_step"]
        out.append(row_out)
    return out
