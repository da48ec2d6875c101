"""Speed-ups wrapped around G, D, their optimizers and the loss, so the training loop stays plain.

- Mixed precision (``amp="bf16"`` or ``"fp16"``): :class:`Autocast` runs a module's forward under
  ``torch.autocast`` and returns float32; backward and the optimizer step run outside it, as
  torch recommends. SN's power iteration and W / sigma stay in float32
  (:meth:`sngan_edu.sn.SpectralNorm.forward`). ``fp16`` scales each network's loss with its own
  ``torch.amp.GradScaler`` (:class:`ScaledLoss`, :class:`ScaledOptimizer`).
- Several processes: the module the loop trains runs ``DistributedDataParallel`` while its
  weights learn and the plain module otherwise (:class:`TrainOrPlain`): G's fake batch for D
  (under ``no_grad``) and D inside G's update (frozen, no gradient to share) need no DDP.
  Buffers are not broadcast at each forward: every rank holds the same weights, so every rank's
  power iteration computes the same SN vectors ``u``, ``v`` (a broadcast would send what every
  rank has, one collective per forward).
- ``compile``: :func:`compile_module` (``torch.compile``, inductor, ``dynamic=False``), with a
  partitioner that keeps SN's weight gradients right. ``"reduce-overhead"`` (CUDA graphs) marks
  a new step before each forward of G, which starts every update.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from torch import Tensor, nn

from sngan_edu.losses import GANLoss

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Autocast(nn.Module):
    """``module``'s forward under ``torch.autocast(device_type, dtype)``, output in float32."""

    def __init__(self, module: nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.module = module
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.module(*args, **kwargs)
        return out.float() if torch.is_tensor(out) and out.is_floating_point() else out


class TrainOrPlain(nn.Module):
    """``train(x)`` while gradients flow into ``plain``'s weights, else ``plain(x)``.

    ``plain`` is the only registered child, so parameters, buffers and state dict are its own.
    ``mark_step`` calls ``torch.compiler.cudagraph_mark_step_begin()`` before each forward.
    """

    def __init__(self, plain: nn.Module, train: nn.Module, mark_step: bool = False):
        super().__init__()
        self.plain = plain
        object.__setattr__(self, "train_module", train)  # not a child: no second copy of weights
        self.mark_step = mark_step

    def forward(self, x: Tensor) -> Tensor:
        if self.mark_step:
            torch.compiler.cudagraph_mark_step_begin()
        learning = torch.is_grad_enabled() and any(p.requires_grad for p in self.plain.parameters())
        return self.train_module(x) if learning else self.plain(x)


class SaveDontRecompute:
    """An inductor partitioner that saves what the backward needs and recomputes nothing.

    torch's ``default_partition`` behind inductor's ``custom_partitioner_fn`` option (see
    :func:`compile_module`); a module-level class so that inductor can pickle it into its cache
    key and reuse compiled graphs across processes.
    """

    def __call__(self, gm, joint_inputs, **kwargs):
        from torch._functorch.partitioners import default_partition

        kwargs.pop("compiler", None)
        return default_partition(gm, joint_inputs, **kwargs)

    def uuid(self) -> str:
        return "sngan_edu.default_partition.v1"


def compile_module(module: nn.Module, mode: str = "default") -> nn.Module:
    """``torch.compile(module)`` (inductor, ``dynamic=False``) that gets SN's gradients right.

    Inductor's default partitioner may recompute in the backward a value the forward read from
    a buffer that the same forward then updated in place, and the recomputation reads the
    updated buffer. SN's power iteration is exactly that (``u`` from ``v``, then ``v``
    overwritten; the backward of W / sigma needs ``u``): with torch 2.14 on the CPU the weight
    gradient of a spectrally normalized Linear(2, 32) came out wrong by 7e-3, silently (upstream
    fix: pytorch/pytorch PR #197039). :class:`SaveDontRecompute` splits the joint graph instead.
    ``mode`` is a torch.compile mode.
    """
    from torch._inductor import list_mode_options
    from torch._inductor.custom_graph_pass import CustomPartitionerFn

    CustomPartitionerFn.register(SaveDontRecompute)
    options = {**list_mode_options(mode), "custom_partitioner_fn": SaveDontRecompute()}
    return torch.compile(module, dynamic=False, options=options)


class ScaledOptimizer:
    """An optimizer whose ``step`` goes through a GradScaler (fp16): it unscales the gradients,
    skips the update if any is Inf/NaN, then adapts the scale."""

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler):
        self.optimizer = optimizer
        self.scaler = scaler

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()


class ScaledLoss:
    """``loss``'s D and G losses times their scalers' scales (fp16); ``last_d``/``last_g`` keep
    the unscaled values for the history."""

    def __init__(self, loss: GANLoss, scaler_d: torch.amp.GradScaler,
                 scaler_g: torch.amp.GradScaler):
        self.loss, self.scaler_d, self.scaler_g = loss, scaler_d, scaler_g
        self.last_d: Tensor | None = None
        self.last_g: Tensor | None = None

    def d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        loss = self.loss.d_loss(d_real, d_fake)
        self.last_d = loss.detach()
        return self.scaler_d.scale(loss)

    def g_loss(self, d_fake: Tensor) -> Tensor:
        loss = self.loss.g_loss(d_fake)
        self.last_g = loss.detach()
        return self.scaler_g.scale(loss)


def check_amp(amp: str, device: torch.device) -> None:
    """ValueError if mixed precision ``amp`` cannot run on ``device``."""
    if AMP_DTYPES[amp] is None:
        return
    if not torch.amp.is_autocast_available(device.type):
        raise ValueError(f"amp={amp!r}: torch.autocast is not available on {device.type}; "
                         "use amp='none'")
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("amp='bf16' needs a GPU with bfloat16 support; use amp='fp16'")


def _ddp(module: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # torch >= 2.12 spells "no buffer broadcast at each forward" forward_sync_buffers=False.
    names = inspect.signature(DistributedDataParallel).parameters
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in names
               else {"broadcast_buffers": False})
    return DistributedDataParallel(module, device_ids=ids, **no_sync)


def wrap_for_training(model: nn.Module, device: torch.device, amp: str = "none",
                      distributed: bool = False, compile: bool | str = False,
                      mark_step: bool = False) -> nn.Module:
    """``model`` as the loop should call it: under autocast, DDP and compile as asked.

    Returns ``model`` itself when nothing is asked; its parameters are always ``model``'s.
    ``mark_step`` (for G under ``compile="reduce-overhead"``) marks a new CUDA-graph step
    before each forward.
    """
    plain = model
    if AMP_DTYPES[amp] is not None:
        plain = Autocast(plain, device.type, AMP_DTYPES[amp])
    train = _ddp(plain, device) if distributed else plain
    if compile is not False:
        compiled = functools.partial(compile_module, mode="default" if compile is True else compile)
        plain, train = (compiled(plain), compiled(train)) if distributed else (compiled(plain),) * 2
    if train is plain and not mark_step:
        return plain
    return TrainOrPlain(plain, train, mark_step=mark_step)


__all__ = ["AMP_DTYPES", "Autocast", "SaveDontRecompute", "ScaledLoss", "ScaledOptimizer",
           "TrainOrPlain", "check_amp", "compile_module", "wrap_for_training"]
