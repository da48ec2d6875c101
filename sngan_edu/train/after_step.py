"""What :class:`~sngan_edu.train.trainer.Trainer` does around the loop: after each generator
step (:class:`AfterStep`) and the progress bar's default (:func:`want_progress`)."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sngan_edu.train import distributed
from sngan_edu.train.accel import ScaledLoss
from sngan_edu.train.callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from sngan_edu.train.trainer import Trainer


def want_progress(flag: bool | None) -> bool:
    """Show a progress bar? ``flag``, else ``$SNGAN_EDU_PROGRESS``, else in a notebook kernel
    or a terminal."""
    if flag is not None:
        return bool(flag)
    env = os.environ.get("SNGAN_EDU_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and "IPKernelApp" in shell.config:
            return True
    except ImportError:  # pragma: no cover - IPython is a dependency
        pass
    return sys.stderr.isatty()


class AfterStep:
    """What :meth:`Trainer.fit` does after each generator step of the loop: the step counted,
    losses kept (averaged over the ranks), callbacks, checkpoints, the time budget and the
    learning rate of the next step. Returns True to stop the loop."""

    def __init__(self, trainer: Trainer, callbacks: Sequence[Callback], total: int):
        cfg = trainer.config
        self.trainer, self.callbacks, self.total = trainer, callbacks, total
        self.start = time.perf_counter()
        self.deadline = None if cfg.max_seconds is None else self.start + cfg.max_seconds
        self.timed = bool(trainer.is_main and trainer.checkpoint_path is not None
                          and cfg.checkpoint_seconds)
        self.next_timed = self.start + cfg.checkpoint_seconds if self.timed else math.inf
        opt = trainer.optimizer
        pairs = ((trainer.opt_d, opt["lr_d"]), (trainer.opt_g, opt["lr_g"]))
        self.base_lrs = [(group, lr) for optimizer, lr in pairs for group in optimizer.param_groups]

    def set_lr(self, done: int) -> None:
        """With ``lr_decay="linear"``, the learning rates of step ``done + 1``: falling
        linearly to 0 at ``config.steps``."""
        cfg = self.trainer.config
        if cfg.lr_decay == "linear":
            factor = max(0.0, 1.0 - done / cfg.steps)
            for group, lr in self.base_lrs:
                group["lr"] = lr * factor

    def __call__(self, step: int, loss_d: Tensor, loss_g: Tensor) -> bool:
        t, cfg = self.trainer, self.trainer.config
        t.step = step
        if isinstance(t._loss_run, ScaledLoss):
            loss_d, loss_g = t._loss_run.last_d, t._loss_run.last_g
        out_of_time = False
        if t.world_size > 1:  # the global batch's losses, and one clock for all the ranks
            parts = [loss_d, loss_g]
            if self.deadline is not None:
                late = float(time.perf_counter() > self.deadline)
                parts.append(torch.full((), late, device=loss_d.device))
            reduced = distributed.all_reduce_mean(torch.stack(parts))
            loss_d, loss_g = reduced[0], reduced[1]
            out_of_time = self.deadline is not None and bool(reduced[2] > 0)
        t._pending.append((loss_d, loss_g))
        if step % cfg.log_every == 0:
            t.sync()
        for cb in self.callbacks:
            if step % cb.every == 0:
                cb.on_step(t)
        every = cfg.checkpoint_period if t.checkpoint_path is not None else 0
        if (every and step % every == 0) or (self.timed and time.perf_counter() > self.next_timed):
            t.save_checkpoint()
            if self.timed:
                self.next_timed = time.perf_counter() + cfg.checkpoint_seconds
        stop = out_of_time or (t.world_size == 1 and self.deadline is not None
                               and time.perf_counter() > self.deadline)
        if not stop and step < self.total:
            self.set_lr(step)
        return stop


__all__ = ["AfterStep", "want_progress"]
