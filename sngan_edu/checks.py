"""Argument checks shared by the whole library: bad input fails at once with a ValueError that
names the parameter, the allowed values and what was given, before any long work starts."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any


def check_choice(name: str, value: Any, allowed: Collection[Any]) -> Any:
    """``value`` if it is one of ``allowed``; else ValueError "name must be one of ..."."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}; got {value!r}")
    return value


def is_int(value: Any) -> bool:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(
    name: str, value: Any, minimum: int = 1, maximum: int | None = None, *, note: str = ""
) -> int:
    """``value`` if it is an integer in [minimum, maximum]; else a ValueError naming ``name``.

    ``note`` is added after the allowed range, e.g. ``" (1 or 3)"`` or ``" for a 4-D weight"``.
    """
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        if maximum is not None:
            wanted = f"an integer in [{minimum}, {maximum}]"
        elif minimum == 1:
            wanted = "a positive integer"
        elif minimum == 0:
            wanted = "a non-negative integer"
        else:
            wanted = f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {wanted}{note}; got {value!r}")
    return value


def check_pair(name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    """``(h, w)`` from an int or a pair of ints, each >= ``minimum`` (a stride, a padding...)."""
    pair = (value, value) if is_int(value) else value
    try:
        a, b = pair
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints; got {value!r}") from None
    if not (is_int(a) and is_int(b) and a >= minimum and b >= minimum):
        raise ValueError(f"{name} must contain integers >= {minimum}; got {value!r}")
    return int(a), int(b)


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    finite: bool = True,
    what: str | None = None,
) -> float:
    """``value`` if it is a real number (not a bool) in the interval from ``low`` to ``high``.

    The ends are included unless ``open_low`` / ``open_high``; ``None`` leaves that side free.
    NaN never passes, infinity only with ``finite=False``. The message says ``name must be
    <what>; got <value>``, with ``what`` built from the interval unless given, e.g. "a number in
    (0, 1)", "a finite number >= 0", "a number > 0" (``finite=False``).
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok and finite:
        ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        if what is None:
            kind = "a finite number" if finite and (low is None or high is None) else "a number"
            if low is not None and high is not None:
                what = (f"{kind} in {'(' if open_low else '['}{low:g}, "
                        f"{high:g}{')' if open_high else ']'}")
            elif low is not None:
                what = f"{kind} {'>' if open_low else '>='} {low:g}"
            elif high is not None:
                what = f"{kind} {'<' if open_high else '<='} {high:g}"
            else:
                what = kind
        raise ValueError(f"{name} must be {what}; got {value!r}")
    return value


def check_positive(name: str, value: Any, what: str = "a positive number") -> float:
    """``value`` if it is a real number > 0 (not a bool); else ValueError "name must be what"."""
    return check_number(name, value, 0, open_low=True, finite=False, what=what)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is True or False; else a ValueError naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_pair",
    "check_positive",
    "is_int",
]
