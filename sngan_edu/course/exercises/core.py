"""What every exercise check shares: the checker, the decorator that runs a check safely, and
the number handling.

A check must give a fair verdict whatever the student's function does. So every check

- runs in a child process killed at the time limit (:data:`TIME_LIMIT_S`; see
  :mod:`~sngan_edu.course.exercises.runner`);
- computes its references before calling the student's function, on copies of the inputs,
  and verifies afterwards that every tensor it handed over came back unchanged (and that the
  models it handed over are unchanged where the task must not change them);
- turns a result holding NaN or inf into a failed check with a hint, and an error in its own
  hint code (on a result it did not foresee) into a failed check, never a crash;
- turns ``sys.exit()`` / ``exit()`` in the student's code into a failed check with a hint;
- starts from a fixed state (float32, grad on, seed 0) so a verdict never depends on what ran
  before, and leaves the caller's default dtype, grad mode and random streams as they were;
- accepts a number in any reasonable form: a Python int or float, a NumPy scalar of any float
  or int dtype, a one-element tensor or array.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import random
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from sngan_edu.course.exercises import runner
from sngan_edu.course.exercises.runner import (
    ExerciseFailed,
    _OutOfTime,
    changes,
    out_of_time,
    snapshot,
    tensor_arguments,
)

__all__ = ["TICK", "TIME_LIMIT_S", "ExerciseFailed", "exercise_check", "new_checker",
           "as_number", "as_float", "unpack", "close", "tensor_close", "snapshot", "changes",
           "require_unchanged", "seeded"]

TICK = "\u2714"  # check mark printed for each passed check

#: Seconds a whole check may take (the student's calls and the check's own work). A correct
#: solution needs well under a second for every check but the toy-GAN one (a few seconds).
TIME_LIMIT_S = 60.0


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
    if isinstance(value, (tuple, list)) and len(value) <= 8:
        inner = ", ".join(_fmt(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _raising_function(err: BaseException) -> str | None:
    """Name of the function in whose body ``err`` was raised (the innermost frame)."""
    frames = traceback.extract_tb(err.__traceback__)
    return frames[-1].name if frames else None


_NONFINITE_HINT = (
    "your result holds nan or inf. Look for a division by zero (normalizing a zero vector, "
    "dividing by a norm or a sigma that is 0), a log or square root of 0 or of a negative "
    "number, or numbers that grow at every iteration until they overflow."
)


def _has_nonfinite(value: Any, depth: int = 0) -> bool:
    """True if ``value`` (a number, a tensor, an array, or a tuple/list/dict of them) holds NaN
    or inf."""
    if depth > 3:
        return False
    if isinstance(value, torch.Tensor):
        return (value.is_floating_point() or value.is_complex()) and not bool(
            torch.isfinite(value.detach()).all())
    if isinstance(value, np.ndarray):
        return np.issubdtype(value.dtype, np.inexact) and not bool(np.isfinite(value).all())
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(float(value))
    if isinstance(value, (tuple, list)):
        return any(_has_nonfinite(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v, depth + 1) for v in value.values())
    return False


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
        self.notes: list[str] = []
        self._current = "calling it"
        #: False: a result holding NaN or inf fails at once with :data:`_NONFINITE_HINT`; a
        #: check that names the cause itself (power iteration's overflow) sets it to True.
        self.allow_nonfinite = False

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Call the student's function (see :meth:`run`)."""
        return self.run(self.fn, *args, **kwargs)

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` (the student's function or something it returned, e.g. a model).

        Errors become :class:`ExerciseFailed` with the check they happened in; the stub's
        ``NotImplementedError()`` stays a NotImplementedError with a message that says which
        function is left to write.
        """
        before = tensor_arguments(fn, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except NotImplementedError as err:
            if str(err):  # a real error of some library, not nbgrader's empty stub
                self._raise_error(err)
            where = _raising_function(err)
            own = {self.name, getattr(fn, "__name__", None), "<lambda>", "forward"}
            if where and where not in own:
                message = (f"{self.name} calls {where}, which is not written yet: write {where} "
                           "first (replace its `raise NotImplementedError()`), run its cell, then "
                           "run this check again.")
            else:
                message = (f"{self.name} is not written yet: replace `raise NotImplementedError()` "
                           "in its cell with your code, run that cell, then run this check again.")
            raise NotImplementedError(message) from err
        except ExerciseFailed:
            raise
        except SystemExit as err:
            raise ExerciseFailed(
                f"{self.name} called sys.exit() (or exit(), quit()) with {err.code!r}\n"
                f"  while: {self._current}\n"
                "  hint: a function hands back its result with `return`; exit() would stop the "
                "whole program (in a notebook: the kernel's cell). Remove it."
            ) from None
        except Exception as err:  # noqa: BLE001 - any error of the student's code is reported
            self._raise_error(err)
        finally:
            torch.set_default_dtype(torch.float32)  # the check's own tensors stay float32
        for name, (tensor, copied) in before.items():
            difference = changes(copied, tensor)
            if difference is not None:
                self.fail(f"{name} unchanged", f"{name}: {difference}",
                          f"the caller's {name} must stay as it was: compute new tensors "
                          f"(x = x / n, not x /= n, x.div_(n), x[...] = or x.copy_(...)).")
        if not self.allow_nonfinite and _has_nonfinite(result):
            self.fail("finite numbers", _fmt(result), _NONFINITE_HINT)
        return result

    def _raise_error(self, err: Exception) -> None:
        raise ExerciseFailed(
            f"{self.name} raised {type(err).__name__}: {err}\n"
            f"  while: {self._current}\n"
            f"  hint: {_error_hint(err)}"
        ) from err

    def start(self, description: str) -> None:
        self._current = description
        runner.report_progress(description)

    def ok(self) -> None:
        self.passed.append(self._current)

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        """One check: :meth:`start` it, and count it passed (:meth:`ok`) if nothing failed."""
        self.start(description)
        yield
        self.ok()

    def note(self, text: str) -> None:
        """A remark printed under the passed checks (a correct but unusual solution)."""
        if text not in self.notes:
            self.notes.append(text)

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
        lines += [f"  note: {text}" for text in self.notes]
        print("\n".join(lines))


#: (phrase in an error message, hint): errors whose cause is known get a hint that names it.
_ERROR_HINTS: tuple[tuple[str, str], ...] = (
    ("has no parameter or buffer with name 'weight'",
     "spectral_norm wraps ONE layer's weight, and a whole model has no weight of its own: apply "
     "it to each Linear/Conv layer (model.modules()), or call "
     "sngan_edu.sn.apply_spectral_norm(model)."),
    ("It looks like a whole model",
     "spectral_norm wraps ONE layer's weight: apply it to each layer, or call "
     "sngan_edu.sn.apply_spectral_norm(model)."),
    ("shapes cannot be multiplied",
     "a matrix product got operands of the wrong shapes: check which side W or W.T goes on, "
     "and reshape conv kernels to a matrix first."),
    ("does not require grad and does not have a grad_fn",
     "the tensor you differentiate is not connected to the input: make a copy of x with "
     "requires_grad_(True) BEFORE calling D on it, outside torch.no_grad()."),
)


def _error_hint(err: Exception) -> str:
    text = str(err)
    for phrase, hint in _ERROR_HINTS:
        if phrase in text:
            return hint
    return ("read the traceback above this message; it points at the line of your function "
            "that failed.")


_ACTIVE: list[_Checker] = []  # the checker of the running check, for the time-limit message

def exercise_check(check: Callable[..., None]) -> Callable[..., None]:
    """Decorator of every ``check_*``: a child process killed at the time limit, a fixed start
    state, and a failed check (never a crash) whatever the student's function returns.

    The check runs with float32 as default dtype, gradients on, and torch seeded with 0; the
    caller's default dtype, grad mode and the torch, NumPy and Python random streams are left
    as they were, so a check neither depends on nor disturbs the notebook around it.
    """

    @functools.wraps(check)
    def wrapper(fn: Any, *args: Any, **kwargs: Any) -> None:
        name = check.__name__.removeprefix("check_")
        if not callable(fn):  # before any setup: a clear ValueError, as _Checker gives
            _Checker(name, fn)
        task = functools.partial(_run_here, check, name, fn, args, kwargs)
        if runner.can_fork():
            runner.run_in_child(task, name, TIME_LIMIT_S)
        else:
            task()

    return wrapper


def _run_here(check: Callable[..., None], name: str, fn: Any, args: tuple, kwargs: dict) -> None:
    """Run ``check(fn, ...)`` in this process, under a time limit, from a fixed state."""
    dtype, grad_enabled = torch.get_default_dtype(), torch.is_grad_enabled()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    depth = len(_ACTIVE)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            torch.set_default_dtype(torch.float32)
            torch.set_grad_enabled(True)
            try:
                seconds = None if runner.in_child() else TIME_LIMIT_S  # the parent kills
                runner.call_with_time_limit(lambda: check(fn, *args, **kwargs), seconds)
            except _OutOfTime:
                current = _ACTIVE[-1] if len(_ACTIVE) > depth else None
                raise out_of_time(current.name if current else name, TIME_LIMIT_S,
                                   current._current if current else "the check") from None
            except (ExerciseFailed, NotImplementedError):
                raise
            except Exception as err:  # noqa: BLE001 - the check's own code met the unforeseen
                current = _ACTIVE[-1] if len(_ACTIVE) > depth else None
                raise ExerciseFailed(
                    f"{name}: the check could not make sense of what your function returned "
                    f"({type(err).__name__}: {err})\n"
                    f"  while: {current._current if current else 'the check'}\n"
                    "  hint: return what the task asks for (the check's first line says what "
                    "that is), made of finite numbers."
                ) from err
    finally:
        del _ACTIVE[depth:]
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad_enabled)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def new_checker(name: str, fn: Callable[..., Any]) -> _Checker:
    """A :class:`_Checker` registered as the running one (for the time-limit message)."""
    checker = _Checker(name, fn)
    _ACTIVE.append(checker)
    return checker


# --------------------------------------------------------------------------------------------
# numbers, tuples and comparisons
# --------------------------------------------------------------------------------------------


def as_number(value: Any) -> float | None:
    """``value`` as a float if it is one number in any usual form, else None.

    Accepted: int, float, NumPy scalars of any int or float dtype, one-element NumPy arrays
    and tensors (detached). Not accepted: bool, strings, None, several numbers.
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, torch.Tensor):
        return float(value.detach().item()) if value.numel() == 1 else None
    if isinstance(value, np.ndarray):
        if value.size == 1 and np.issubdtype(value.dtype, np.number):
            return float(value.reshape(()))
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def as_float(checker: _Checker, value: Any, what: str) -> float:
    """Turn a number in any usual form into a float, or fail with a hint."""
    number = as_number(value)
    if number is not None:
        return number
    if isinstance(value, (torch.Tensor, np.ndarray)):
        checker.fail(f"{what}: a single number", _fmt(value),
                     "reduce to one number (e.g. .mean() or a dot product), not one value per "
                     "entry.")
    if isinstance(value, (bool, np.bool_)):
        checker.fail(f"{what}: a number", repr(value), "return the number itself, not a "
                     "comparison (True/False).")
    checker.fail(f"{what}: a number (a float or a 0-d tensor)", _fmt(value),
                 f"return the number itself; you returned a {type(value).__name__}.")
    raise AssertionError  # unreachable: fail() raises


def unpack(checker: _Checker, out: Any, names: Sequence[str], hint: str) -> tuple:
    """``out`` as a tuple of ``len(names)`` items: a tuple or a list of that length is accepted."""
    if isinstance(out, (tuple, list)) and len(out) == len(names):
        return tuple(out)
    wanted = "(" + ", ".join(names) + ")"
    checker.fail(f"a tuple {wanted}", _fmt(out), hint)
    raise AssertionError  # unreachable


def close(a: float, b: float, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    return math.isfinite(a) and abs(a - b) <= atol + rtol * abs(b)


def tensor_close(a: Any, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.detach().double(), b.detach().double(), rtol=rtol, atol=atol))


def require_unchanged(checker: _Checker, before: Any, obj: Any, what: str, hint: str,
                      ignore_power_iteration: bool = False) -> None:
    """Fail naming ``what`` if ``obj`` no longer matches ``before`` (see :func:`snapshot`)."""
    difference = changes(before, obj, ignore_power_iteration)
    if difference is not None:
        checker.fail(f"{what} unchanged", f"{what}: {difference}", hint)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
