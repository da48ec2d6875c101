"""Where a check runs: a child process killed at the time limit, and the proof that the
student's function left its arguments unchanged.

- Every check runs in a child process (``os.fork``, where the system has it) that is killed
  when the time limit is up, as nbgrader's executor kills a kernel: an endless loop becomes a
  failed check with a hint, whatever the student's code catches (``except BaseException``
  included). What the student's function prints is printed after the verdict.
- Where there is no fork (Windows), or with the environment variable
  ``SNGAN_EDU_CHECKS_IN_PROCESS=1``, the check runs in the caller's process under a ``SIGALRM``
  timer, or in a helper thread that is abandoned when the time is up.
- :func:`snapshot` and :func:`changes` tell whether a tensor or a model handed to the student
  came back as it was.
"""

from __future__ import annotations

import copy
import inspect
import io
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class ExerciseFailed(AssertionError):
    """A check failed. The message holds what was expected, what was returned and a hint.

    It subclasses AssertionError so autograders (nbgrader, pytest) count it as a failed test.
    """


class _OutOfTime(BaseException):
    """Raised inside the student's code when the check's time is up.

    A BaseException, like KeyboardInterrupt, so that an ``except Exception`` in the student's
    code cannot swallow it.
    """


_TIME_HINT = (
    "a correct solution takes well under a second here. Look for a loop that never ends (a "
    "`while` whose condition never changes, a counter that is never increased) or a loop over "
    "far more steps than asked. The check stopped it."
)


def out_of_time(name: str, seconds: float, current: str) -> ExerciseFailed:
    return ExerciseFailed(
        f"{name} did not finish within the check's time limit of {seconds:g} s\n"
        f"  while: {current}\n"
        f"  hint: {_TIME_HINT}"
    )


def call_with_time_limit(fn: Callable[[], Any], seconds: float | None) -> Any:
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


# ------------------------------------------------------------------- the check's child process
_CHANNEL: int | None = None  # in the child: the pipe to the parent


def _send(fd: int, message: Any) -> None:
    data = pickle.dumps(message)
    data = struct.pack("<Q", len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def report_progress(description: str) -> None:
    """Tell the parent which check is running (for its time-limit message)."""
    if _CHANNEL is not None:
        _send(_CHANNEL, ("current", description))


def in_child() -> bool:
    """True in the check's child process (the parent enforces the time limit)."""
    return _CHANNEL is not None


def can_fork() -> bool:
    return hasattr(os, "fork") and _CHANNEL is None and os.environ.get(
        "SNGAN_EDU_CHECKS_IN_PROCESS") != "1"


class StudentTraceback(Exception):
    """The traceback of an error raised by the student's code in the check's child process."""


def _child(task: Callable[[], None], fd: int) -> None:
    """Run ``task`` in the forked child and send the verdict and the printed text to ``fd``."""
    global _CHANNEL
    _CHANNEL = fd
    printed = io.StringIO()
    sys.stdout = sys.stderr = printed
    try:
        torch.set_num_threads(1)  # a forked OpenMP pool is not usable; the checks are small
        task()
        verdict: tuple = ("ok", "", "")
    except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
        if isinstance(err, (ExerciseFailed, NotImplementedError)):  # the student's traceback
            cause = err.__cause__
            text = "".join(traceback.format_exception(cause)) if cause is not None else ""
        elif isinstance(err, ValueError):
            text = ""
        else:
            text = "".join(traceback.format_exception(err))
        verdict = (type(err).__name__, str(err), text)
    _send(fd, ("verdict", verdict, printed.getvalue()))


def run_in_child(task: Callable[[], None], name: str, seconds: float) -> None:
    """Run ``task`` (a whole check) in a forked child; kill it after ``seconds``."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(read_fd)
            _child(task, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    finished = False
    try:
        finished, messages = _read_messages(read_fd, seconds)
    finally:
        os.close(read_fd)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    current = ([m[1] for m in messages if m[0] == "current"] or ["calling it"])[-1]
    verdicts = [m for m in messages if m[0] == "verdict"]
    if not finished and not verdicts:
        raise out_of_time(name, seconds, current)
    if not verdicts:
        raise ExerciseFailed(
            f"{name} stopped the check's process before a verdict (exit code "
            f"{os.waitstatus_to_exitcode(status)})\n"
            f"  while: {current}\n"
            "  hint: your code ended the program (os._exit, os.kill, a crash of a library): a "
            "function hands back its result with `return`.")
    _, verdict, printed = verdicts[-1]
    if printed:
        print(printed, end="" if printed.endswith("\n") else "\n")
    _raise_verdict(name, *verdict)


def _read_messages(fd: int, seconds: float) -> tuple[bool, list]:
    """(whether the child closed the pipe, the messages it sent) within ``seconds``."""
    buffer, messages = b"", []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return True, messages
        buffer += chunk
        while len(buffer) >= 8:
            (size,) = struct.unpack("<Q", buffer[:8])
            if len(buffer) < 8 + size:
                break
            messages.append(pickle.loads(buffer[8:8 + size]))
            buffer = buffer[8 + size:]
    return False, messages


def _raise_verdict(name: str, kind: str, message: str, text: str) -> None:
    """Raise again, in the parent, the error the child's check ended with (none for "ok")."""
    if kind == "ok":
        return
    errors: dict[str, type[BaseException]] = {
        "ExerciseFailed": ExerciseFailed, "NotImplementedError": NotImplementedError,
        "ValueError": ValueError}
    error = (errors[kind](message) if kind in errors
             else RuntimeError(f"the check {name} itself failed ({kind}: {message})"))
    raise error from (StudentTraceback(text) if text else None)


# ---------------------------------------------------- inputs handed over must come back unchanged


def tensor_arguments(fn: Callable[..., Any], args: tuple, kwargs: dict
                     ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every tensor handed to ``fn`` (also inside a list or tuple), named as in its signature,
    with a copy of its values: they must come back unchanged."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {f"argument {i + 1}": a for i, a in enumerate(args)} | kwargs
    found = {}
    for name, value in bound.items():
        if isinstance(value, torch.Tensor):
            found[name] = (value, snapshot(value))
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, torch.Tensor):
                    found[f"{name}[{i}]"] = (item, snapshot(item))
    return found


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

