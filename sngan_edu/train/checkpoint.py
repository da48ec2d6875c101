"""Checkpoints and run files that survive a crash and refuse to load when damaged.

- Atomic: every file is written to a temporary file in the same folder, flushed to disk and then
  renamed over the target (``os.replace`` is atomic), so the target is either the old file or
  the new one. Temporary files left by a killed process are removed at the next write (and by
  the trainer when it starts).
- Checked: a checkpoint stores the SHA-256 of its payload beside it in the same file; ``load``
  recomputes it and refuses a file whose bytes changed, and says plainly that a file which is
  not a checkpoint at all (empty, truncated, random bytes) is not one.
- Safe: loaded with ``torch.load(weights_only=True)``, which unpickles tensors and plain
  containers only, never arbitrary code.
- Resumable only as the same run: :func:`check_same_config` names every saved setting that
  differs from the current one, :func:`check_not_past` refuses a step budget the run has already
  passed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import IO, Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "sngan-edu checkpoint v2"  # a payload and its SHA-256 in one file


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be trusted: not a checkpoint, or damaged."""


def _orphans(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.*.tmp"))


def remove_orphans(path: str | Path) -> list[Path]:
    """Delete temporary files a killed writer left beside ``path``; return what was removed."""
    removed = []
    for orphan in _orphans(Path(path)):
        orphan.unlink(missing_ok=True)
        removed.append(orphan)
    return removed


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(handle)`` on a temporary file, then rename it over ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json_atomic(obj: Any, path: str | Path, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (``metrics.json``, ``sigma_history.json``)."""
    text = json.dumps(obj, indent=indent)
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    """Save ``state`` (torch.save) with the SHA-256 of its bytes, atomically, at ``path``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    wrapped = {
        "format": FORMAT,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8),
    }
    return write_atomic(path, lambda handle: torch.save(wrapped, handle))


def load(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_atomic` (``weights_only=True``), checked.

    ValueError if there is no file; :class:`CheckpointError` (a ValueError) if the file is not a
    checkpoint or its content no longer matches its SHA-256.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # EOFError, zip errors, unpickling errors: all mean "not valid"
        raise CheckpointError(
            f"checkpoint at {path} is not a valid checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}); delete it or move it "
            "away to start afresh"
        ) from None
    if not isinstance(outer, dict):
        raise CheckpointError(f"checkpoint at {path} is not a valid checkpoint (not a dict)")
    if outer.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint at {path} is not a sngan-edu checkpoint (no "
                              f"{FORMAT!r} format mark); delete it or move it away")
    payload = outer.get("payload")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8:
        raise CheckpointError(f"checkpoint at {path} is not a valid checkpoint (no payload)")
    data = payload.numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != outer.get("sha256"):
        raise CheckpointError(
            f"checkpoint at {path} is damaged: its content does not match the SHA-256 stored "
            "with it (a partial copy or a disk error); use an earlier copy or start afresh"
        )
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)


def config_differences(
    saved: Mapping[str, Any], now: Mapping[str, Any], free: Collection[str] = ()
) -> list[str]:
    """The names in both ``saved`` and ``now`` (and not in ``free``) whose values differ,
    sorted."""
    return sorted(k for k in now if k not in free and k in saved and saved[k] != now[k])


def check_same_config(
    saved: Mapping[str, Any], now: Mapping[str, Any], free: Collection[str], path: str | Path,
    fix: str = "resume with the saved values, or start a new run in another folder",
) -> None:
    """ValueError naming each setting of ``now`` that differs from the ``saved`` one of the
    checkpoint at ``path`` (settings in ``free`` may differ); ``fix`` says what to do."""
    differ = config_differences(saved, now, free)
    if differ:
        detail = ", ".join(f"{k}: saved {saved[k]!r} vs now {now[k]!r}" for k in differ)
        raise ValueError(f"the checkpoint at {path} was written with a different config "
                         f"({detail}); {fix}")


def check_not_past(steps: int, saved_step: int, path: str | Path, fix: str = "") -> None:
    """ValueError if ``steps`` is below ``saved_step``, the step of the checkpoint at ``path``:
    resuming would train nothing and report the later step's model as this one."""
    if steps < saved_step:
        raise ValueError(
            f"steps={steps} is below step {saved_step} of the checkpoint at {path}: that run is "
            f"already past it; use steps >= {saved_step} to continue it{fix}")


__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "check_not_past",
    "check_same_config",
    "config_differences",
    "load",
    "remove_orphans",
    "save_atomic",
    "write_atomic",
    "write_json_atomic",
]
