"""Pick a torch device from a user-facing name, and the CPU threads a run uses."""

from __future__ import annotations

import os

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return a torch.device for "auto" (CUDA, then MPS, then CPU), "cpu", "cuda[:N]" or "mps".

    Raises ValueError for unknown names or for an accelerator this machine does not have,
    before any work starts.
    """
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ValueError(f"device must be a string, one of {DEVICE_CHOICES}; got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but no CUDA GPU is available here; "
                "use device='auto' or 'cpu'"
            )
        return torch.device(name)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device='mps' was requested but MPS is not available; use 'auto'")
        return torch.device("mps")
    raise ValueError(f"device must be one of {DEVICE_CHOICES}; got {device!r}")


def cpu_thread_count(requested: int | None) -> int | None:
    """The torch CPU threads for a run asking for ``requested`` (None: keep torch's own).

    Capped by OMP_NUM_THREADS where that is set: a test runner or a batch system running several
    jobs side by side says so there, and more threads than that would fight over the cores.
    """
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if requested is None or not limit.isdigit() or int(limit) < 1:
        return requested
    return min(requested, int(limit))
