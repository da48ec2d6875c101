"""Data-parallel training with PyTorch's own ``torch.distributed``: who am I, how many are we.

``torchrun --nproc_per_node N -m sngan_edu train ...`` starts N copies of the program, each with
the environment variables ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``. :func:`init` joins them into a process group (``nccl`` on CUDA, ``gloo`` on the
CPU) and, on CUDA, gives each process the GPU of its local rank; the trainer
(:class:`sngan_edu.train.trainer.Trainer`) calls it and wraps G and D in
``DistributedDataParallel``. Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every helper here
answers for a single process and nothing is initialised.

Code that writes files asks :func:`is_main_process` first: rank 0 alone writes checkpoints,
metrics, sample grids and the sigma history.

How a batch is shared (:func:`batch_slice`): ``batch_size`` is the GLOBAL batch. Every rank
draws the whole global batch of noise and real indices from the same seeded generators and
keeps its own slice ``[rank * b, (rank + 1) * b)`` with ``b = batch_size / world_size``. So each
rank trains on different samples, the union over ranks is exactly what one process draws, and
the random generators advance identically on every rank. That choice (rather than a
rank-offset seed per rank) buys three things: a run with N processes equals the 1-process run
on the same global batch up to the rounding of the gradient all-reduce (the test
``tests/test_distributed.py`` checks it); the random state in a checkpoint is the same on every
rank, so a checkpoint written by N ranks resumes on M ranks and continues the same run; and the
definition of a run is (seed, global batch), whatever the number of ranks. Its price is that
every rank draws the global batch: ``N`` times the noise (a few kilobytes) and a gather of
``N`` times the real images from the in-memory data set, small next to a training step.
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta

import torch
import torch.distributed as dist

#: Environment variables torchrun sets for every process.
ENV_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer; got {value!r}") from None


def is_initialized() -> bool:
    """True once a ``torch.distributed`` process group exists in this process."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """The number of processes: the process group's size, else ``WORLD_SIZE`` (default 1)."""
    if is_initialized():
        return dist.get_world_size()
    return max(1, _env_int("WORLD_SIZE", 1))


def rank() -> int:
    """This process's global rank: the process group's, else ``RANK`` (default 0)."""
    if is_initialized():
        return dist.get_rank()
    return _env_int("RANK", 0)


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``, default 0): the index of its GPU."""
    return _env_int("LOCAL_RANK", 0)


def is_distributed() -> bool:
    """True when more than one process trains together."""
    return world_size() > 1


def is_main_process() -> bool:
    """True on rank 0 (and in a plain single process): the one process that writes files."""
    return rank() == 0


def backend_for(device: torch.device | str) -> str:
    """``"nccl"`` for CUDA devices, ``"gloo"`` otherwise (the CPU)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def local_device(device: torch.device) -> torch.device:
    """``device`` with the index of this process's GPU when it is CUDA without an index."""
    if device.type == "cuda" and device.index is None and is_distributed():
        return torch.device("cuda", local_rank())
    return device


def init(device: torch.device | str = "cpu", timeout_minutes: float = 30.0) -> bool:
    """Join the process group torchrun prepared, if there is one and it is not joined yet.

    Does nothing (returns False) in a single process or when a group already exists. On CUDA,
    first makes the GPU of ``LOCAL_RANK`` the current device, so ``"cuda"`` means this
    process's own GPU everywhere (data, models, random generators). Registers
    :func:`teardown` to run at exit. Returns True when it created the group.
    """
    if is_initialized() or _env_int("WORLD_SIZE", 1) <= 1:
        return False
    device = torch.device(device)
    missing = [name for name in ENV_VARIABLES if name not in os.environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} asks for data-parallel training but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; start the "
            "program with torchrun, e.g. torchrun --nproc_per_node 2 -m sngan_edu train ..."
        )
    if device.type == "cuda":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend_for(device),
                            timeout=timedelta(minutes=timeout_minutes))
    atexit.register(teardown)
    return True


def teardown() -> None:
    """Leave the process group (if one exists); safe to call twice."""
    if is_initialized():
        dist.destroy_process_group()


def check_batch_size(batch_size: int, n_ranks: int | None = None) -> int:
    """The per-rank batch ``batch_size // n_ranks``; ValueError unless it divides evenly.

    ``n_ranks`` defaults to :func:`world_size` (read from ``WORLD_SIZE`` before the group
    exists, so the check runs before any work).
    """
    n = world_size() if n_ranks is None else n_ranks
    if batch_size % n:
        raise ValueError(
            f"batch_size={batch_size} must be divisible by the number of ranks ({n}): it is the "
            f"global batch, split evenly across the {n} processes; use e.g. batch_size="
            f"{max(n, batch_size - batch_size % n)}"
        )
    return batch_size // n


def batch_slice(batch_size: int) -> slice:
    """This rank's rows of a global batch of ``batch_size`` (see the module docstring)."""
    n = world_size()
    per_rank = check_batch_size(batch_size, n)
    start = rank() * per_rank
    return slice(start, start + per_rank)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all ranks (in place; returned). Identity in one process."""
    n = world_size()
    if n > 1:
        dist.all_reduce(tensor)  # SUM: the one reduction every backend has (gloo has no AVG)
        tensor.div_(n)
    return tensor


__all__ = [
    "ENV_VARIABLES",
    "all_reduce_mean",
    "backend_for",
    "batch_slice",
    "check_batch_size",
    "init",
    "is_distributed",
    "is_initialized",
    "is_main_process",
    "local_device",
    "local_rank",
    "rank",
    "teardown",
    "world_size",
]
