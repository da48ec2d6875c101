"""Argument checks shared by the whole library: bad input fails at once with a ValueError that
names the parameter, the allowed values and what was given, before any long work starts."""

from __future__ import annotations

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


def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` if it is an integer in [minimum, maximum]; else a ValueError naming ``name``."""
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        if maximum is not None:
            wanted = f"an integer in [{minimum}, {maximum}]"
        elif minimum == 1:
            wanted = "a positive integer"
        elif minimum == 0:
            wanted = "a non-negative integer"
        else:
            wanted = f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {wanted}; got {value!r}")
    return value


def check_positive(name: str, value: Any, what: str = "a positive number") -> float:
    """``value`` if it is a real number > 0 (not a bool); else ValueError "name must be what"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be {what}; got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is True or False; else a ValueError naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


__all__ = ["check_bool", "check_choice", "check_int", "check_positive", "is_int"]
