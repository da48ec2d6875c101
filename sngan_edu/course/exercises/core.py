"""What every exercise check shares: the checker, its safety net and its number handling.

A check must give a fair verdict whatever the student's function does. So every check

- computes its references before calling the student's function, on copies of the inputs,
  and verifies afterwards that the inputs it handed over (models, tensors) are unchanged;
- runs under a time limit (:data:`TIME_LIMIT_S`): an endless loop becomes a failed check with a
  hint instead of a hang. On the main thread of a POSIX system (a Jupyter kernel, papermill,
  pytest) a ``SIGALRM`` timer interrupts the student's code; elsewhere the check runs in a
  helper thread and is abandoned, with the same message, when the time is up;
- turns ``sys.exit()`` / ``exit()`` in the student's code into a failed check with a hint;
- restores torch's default dtype, grad mode and the torch, NumPy and Python random streams
  afterwards, whatever the student's code changed, and starts from a fixed state (float32,
  grad on, seed 0) so a verdict never depends on what ran before;
- accepts a number in any reasonable form: a Python int or float, a NumPy scalar of any float
  or int dtype, a one-element tensor or array.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

TICK = "\u2714"  # check mark printed for each passed check

#: Seconds a whole check may take (the student's calls and the check's own work). A correct
#: solution needs well under a second for every check but the toy-GAN one (a few seconds).
TIME_LIMIT_S = 60.0


class ExerciseFailed(AssertionError):
    """A check failed. The message holds what was expected, what was returned and a hint.

    It subclasses AssertionError so autograders (nbgrader, pytest) count it as a failed test.
    """


class _OutOfTime(BaseException):
    """Raised inside the student's code when the check's time is up.

    A BaseException, like KeyboardInterrupt, so that an ``except Exception`` in the student's
    code cannot swallow it.
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
    if isinstance(value, (tuple, list)) and len(value) <= 8:
        inner = ", ".join(_fmt(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _raising_function(err: BaseException) -> str | None:
    """Name of the function in whose body ``err`` was raised (the innermost frame)."""
    frames = traceback.extract_tb(err.__traceback__)
    return frames[-1].name if frames else None


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

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Call the student's function (see :meth:`run`)."""
        return self.run(self.fn, *args, **kwargs)

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` (the student's function or something it returned, e.g. a model).

        Errors become :class:`ExerciseFailed` with the check they happened in; the stub's
        ``NotImplementedError()`` stays a NotImplementedError with a message that says which
        function is left to write.
        """
        try:
            return fn(*args, **kwargs)
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

    def _raise_error(self, err: Exception) -> None:
        raise ExerciseFailed(
            f"{self.name} raised {type(err).__name__}: {err}\n"
            f"  while: {self._current}\n"
            f"  hint: {_error_hint(err)}"
        ) from err

    def start(self, description: str) -> None:
        self._current = description

    def ok(self) -> None:
        self.passed.append(self._current)

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


_TIME_HINT = (
    "a correct solution takes well under a second here. Look for a loop that never ends (a "
    "`while` whose condition never changes, a counter that is never increased) or a loop over "
    "far more steps than asked. If the notebook still seems busy, interrupt or restart the "
    "kernel."
)


def _out_of_time(name: str, seconds: float, current: str) -> ExerciseFailed:
    return ExerciseFailed(
        f"{name} did not finish within the check's time limit of {seconds:g} s\n"
        f"  while: {current}\n"
        f"  hint: {_TIME_HINT}"
    )


def _call_with_time_limit(fn: Callable[[], Any], seconds: float | None) -> Any:
    """``fn()``, raising :class:`_OutOfTime` if it takes longer than ``seconds``."""
    if seconds is None or seconds <= 0:
        return fn()
    main = threading.current_thread() is threading.main_thread()
    if main and hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM"):
        return _with_alarm(fn, seconds)
    return _with_thread(fn, seconds)


def _with_alarm(fn: Callable[[], Any], seconds: float) -> Any:
    state = {"running": True}

    def on_alarm(signum, frame):
        if state["running"]:
            raise _OutOfTime()

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        result = fn()
        state["running"] = False
        return result
    finally:
        state["running"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:  # someone else's timer (e.g. pytest-timeout): give it back
            left = max(previous_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, previous_interval)


def _with_thread(fn: Callable[[], Any], seconds: float) -> Any:
    """Portable fallback: run ``fn`` in a daemon thread and stop waiting after ``seconds``.

    A thread cannot be killed; when the time is up it is left running in the background (the
    message says so) and its result, if any ever comes, is dropped.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = err

    worker = threading.Thread(target=target, name="exercise-check", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _OutOfTime()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


_ACTIVE: list[_Checker] = []  # the checker of the running check, for the time-limit message


def exercise_check(check: Callable[..., None]) -> Callable[..., None]:
    """Decorator of every ``check_*``: fixed start state, restored state after, time limit.

    The check runs with float32 as default dtype, gradients on, and torch seeded with 0; the
    caller's default dtype, grad mode and the torch, NumPy and Python random streams are
    restored afterwards, so a check neither depends on nor disturbs the notebook around it.
    """

    @functools.wraps(check)
    def wrapper(fn: Any, *args: Any, **kwargs: Any) -> None:
        if not callable(fn):  # before any setup: a clear ValueError, as _Checker gives
            _Checker(check.__name__.removeprefix("check_"), fn)
        dtype, grad_enabled = torch.get_default_dtype(), torch.is_grad_enabled()
        python_state, numpy_state = random.getstate(), np.random.get_state()
        depth = len(_ACTIVE)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                torch.set_default_dtype(torch.float32)
                torch.set_grad_enabled(True)
                try:
                    return _call_with_time_limit(lambda: check(fn, *args, **kwargs),
                                                 TIME_LIMIT_S)
                except _OutOfTime:
                    current = _ACTIVE[-1] if len(_ACTIVE) > depth else None
                    name = current.name if current else check.__name__.removeprefix("check_")
                    raise _out_of_time(name, TIME_LIMIT_S,
                                       current._current if current else "the check") from None
        finally:
            del _ACTIVE[depth:]
            torch.set_default_dtype(dtype)
            torch.set_grad_enabled(grad_enabled)
            random.setstate(python_state)
            np.random.set_state(numpy_state)

    return wrapper


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


# --------------------------------------------------------------------------------------------
# inputs handed to the student must come back unchanged
# --------------------------------------------------------------------------------------------


def snapshot(obj: Any) -> Any:
    """A copy of what ``obj`` holds: a tensor's values, or a module's state and modes."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, nn.Module):
        state = {k: v.detach().clone() for k, v in obj.state_dict().items()}
        modes = {name: m.training for name, m in obj.named_modules()}
        return state, modes
    return copy.deepcopy(obj)


def changes(before: Any, obj: Any, ignore_power_iteration: bool = False) -> str | None:
    """What differs between ``snapshot(obj)`` taken earlier and ``obj`` now, in words, or None.

    ``ignore_power_iteration``: a spectral-norm layer's ``_u``/``_v`` buffers may have moved
    (merely reading ``layer.weight`` in training mode runs a power iteration).
    """
    if isinstance(obj, torch.Tensor):
        if obj.shape != before.shape:
            return f"its shape changed from {tuple(before.shape)} to {tuple(obj.shape)}"
        return None if torch.equal(obj.detach(), before) else "its values were changed in place"
    if isinstance(obj, nn.Module):
        state, modes = before
        now = obj.state_dict()
        for key, value in state.items():
            if ignore_power_iteration and key.endswith(("._u", "._v")) and key in now:
                continue
            if key not in now:
                return f"{key} was removed"
            if now[key].shape != value.shape or not torch.equal(now[key].detach(), value):
                return f"{key} was changed"
        added = sorted(set(now) - set(state))
        if added:
            return f"{added[0]} was added (e.g. a parametrization)"
        for name, training in modes.items():
            module = obj.get_submodule(name) if name else obj
            if module.training != training:
                mode = "training" if module.training else "eval"
                return f"it was left in {mode} mode"
        return None
    return None if before == obj else "it was changed"


def require_unchanged(checker: _Checker, before: Any, obj: Any, what: str, hint: str,
                      ignore_power_iteration: bool = False) -> None:
    """Fail naming ``what`` if ``obj`` no longer matches ``before`` (see :func:`snapshot`)."""
    difference = changes(before, obj, ignore_power_iteration)
    if difference is not None:
        checker.fail(f"{what} unchanged", f"{what}: {difference}", hint)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
