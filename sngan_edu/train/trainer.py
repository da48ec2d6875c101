"""The one GAN training loop of the course: n_dis discriminator updates, then one generator update.

Algorithm 1 of the paper, with any loss and regularizer: for each generator step, ``n_dis``
times draw a real batch and a fake batch G(z) (no graph through G) and update D with
:func:`sngan_edu.gan_step.discriminator_step`; then update G with
:func:`sngan_edu.gan_step.generator_step` through a frozen D. The engine knows nothing about
images or toy data: it takes ``G``, ``D``, a real-batch sampler and a
:class:`~sngan_edu.train.config.TrainConfig`.

    from sngan_edu.data.toy import make_sampler
    from sngan_edu.models.toy_mlp import ToyDiscriminator, ToyGenerator
    from sngan_edu.train.config import TrainConfig
    from sngan_edu.train.trainer import Trainer

    config = TrainConfig(steps=2000, batch_size=256, z_dim=2, preset="C", lr=1e-3,
                         loss="hinge", regularizer="sn", checkpoint_dir="runs/toy", resume=True)
    trainer = Trainer(ToyGenerator(z_dim=2), ToyDiscriminator(), make_sampler("grid"), config)
    history = trainer.fit()        # {"loss_d": [...], "loss_g": [...], "sigma": {...}, ...}
    samples = trainer.sample(2500, seed=0)

- The sampler is any callable ``sample_real(batch_size, generator) -> Tensor``; ``generator`` is
  a CPU ``torch.Generator`` owned by the trainer (saved in checkpoints), so the data order is
  reproducible and resumable. A sampler with ``state_dict()``/``load_state_dict()`` is
  checkpointed too.
- Regularizer ``"sn"`` applies the registry's SN (:mod:`sngan_edu.regularizers`) to D unless D
  already has it (as the course's image discriminators do); the other regularizers refuse a D
  that has it, so that a comparison is never mislabelled.
- No host-device synchronisation per step: losses stay tensors and are read every
  ``log_every`` steps (:meth:`Trainer.sync`), where the NaN/Inf check happens too.
- The trainer seeds torch's global RNG with ``config.seed`` and owns the generators for z, the
  data and the augmentation, so the same seed gives the same weights on CPU; ``checkpoint.pt``
  (written atomically) holds all of it, and ``resume=True`` continues bit for bit.
- A NaN/Inf loss or weight, or a loss beyond ``max_abs_loss`` (1e6 by default), raises
  :class:`DivergenceError` naming the first bad step; checkpoints are written only after that
  check, so the last one is good.
- With ``checkpoint_dir``, a checkpoint is written every ``checkpoint_every`` steps, whenever
  ``checkpoint_seconds`` of training passed since the last one (rank 0 alone decides that: it
  alone writes, with no collective), and at the end; temporary files a killed writer left there
  are removed when the trainer starts. ``resume=True`` refuses a checkpoint written with another
  config or already past ``steps``; ``metadata`` (e.g. a run's own parameters) is saved in every
  checkpoint as it is, for the caller to compare before resuming.
- ``g_ema`` keeps an exponential moving average of G (torch's ``AveragedModel``, BatchNorm
  statistics included) that :meth:`Trainer.sample` uses. Deviation from the paper: the paper
  samples from G itself; the average sharpens samples of a small model on a CPU.
- ``translate=k`` shifts what D sees, real and fake, by up to ``k`` pixels (DiffAugment,
  :func:`sngan_edu.data.augment.random_translate`). Not in the paper.
- ``channels_last`` (NHWC conv weights) and ``fused_adam`` are speed options with the same math
  up to rounding; ``num_threads`` sets torch's threads during ``fit`` only.
- The progress bar (tqdm.auto) shows in an IPython kernel or a terminal, unless
  ``progress=False`` or the environment variable ``SNGAN_EDU_PROGRESS=0``.

Beyond one device (all off by default; a single float32 process trains bit for bit as before):

- **Data parallel.** Started by ``torchrun --nproc_per_node N`` (``WORLD_SIZE`` > 1), the
  trainer joins the process group (:func:`sngan_edu.train.distributed.init`: ``gloo`` on the
  CPU, ``nccl`` on CUDA, one GPU per process) and trains G and D wrapped in PyTorch's
  ``DistributedDataParallel``, which averages the gradients of every update over the ranks.
  ``batch_size`` is the global batch: every rank draws the whole global batch of noise, real
  images and shifts from the same generators and trains on its own slice, so N processes equal
  one process up to rounding, and checkpoints are the same whatever the number of ranks (a run
  written by N ranks resumes on M); see :mod:`sngan_edu.train.distributed` for why. The losses
  in ``history`` are averaged over the ranks every step (one small all-reduce), so every rank
  sees the same numbers and stops (NaN, ``max_seconds``) at the same step. Rank 0 alone runs
  the callbacks, shows the progress bar and writes checkpoints. With the gradient penalty the
  interpolation weights come from the shared noise stream with the per-rank size, so a GP run
  depends on the number of ranks (the rest of the run does not).
- **Spectral norm under DDP.** SN's power-iteration vectors ``u``, ``v`` are buffers, and DDP
  by default broadcasts rank 0's buffers before every forward. Here G and D are wrapped without
  that broadcast (StudioGAN's ``broadcast_buffers=False``; torch's newer spelling
  ``forward_sync_buffers=False`` still sends rank 0's buffers once, at the start). Every rank
  holds bit-identical weights (sent from rank 0 at the start; then every rank applies the same
  all-reduced gradient with the same optimizer state), so every rank's own power iteration
  computes bit-identical ``u``, ``v``: a broadcast would send what every rank already has, one
  collective per forward (``n_dis`` + 1 per step, more with ``joint_d_forward=False``), and
  write into buffers that an earlier forward of the same step may have saved for its backward
  (torch's older hook-based SN saved them uncloned: the in-place error reproductions hit).
  The power iteration count stays the one-process one: one per training-mode forward, whether
  D scores real and fake in one forward or two, and in the generator step, where D runs
  unwrapped (frozen: no gradient to share, so DDP needs no ``find_unused_parameters``). The
  test checks ``u``, ``v`` equal on all ranks after training. BatchNorm layers (G's) normalize
  with their rank's slice of the batch and keep their own running statistics; rank 0's are
  the ones saved. For statistics over the global batch on GPUs, convert G with
  ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` before training.
- **Mixed precision** (``amp="bf16"`` or ``"fp16"``): the forwards of G and D run under
  ``torch.autocast`` (their outputs come back in float32, so losses are float32); backward and
  the optimizer step run outside it, as torch recommends. SN's power iteration and its
  division W / sigma stay in float32 (see :meth:`sngan_edu.sn.SpectralNorm.forward`). ``fp16``
  scales the losses with ``torch.amp.GradScaler`` (one per network, saved in checkpoints).
- **compile** (True or a ``torch.compile`` mode): G and D are compiled (``dynamic=False``) by
  :func:`compile_module`; the SN parametrization compiles, its in-place buffer updates
  included, and the compiled run equals the eager one up to rounding, once a torch bug that
  silently corrupted SN's weight gradients is worked around (see :func:`compile_module`).
  Not with the gradient penalty (no double backward in torch.compile). ``"reduce-overhead"``
  (CUDA graphs) marks a new step before each update.
- ``fused_adam=None`` (the default) uses the fused Adam on CUDA only.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sngan_edu.checks import check_int
from sngan_edu.data.augment import random_translate
from sngan_edu.device import resolve_device
from sngan_edu.gan_step import discriminator_step, generator_step, has_batchnorm
from sngan_edu.losses import get_loss
from sngan_edu.sn import apply_spectral_norm, has_spectral_norm
from sngan_edu.train import checkpoint as ckpt
from sngan_edu.train import distributed
from sngan_edu.train.callbacks import Callback
from sngan_edu.train.config import RESUME_FREE_FIELDS, TrainConfig

Sampler = Callable[[int, torch.Generator], Tensor]

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Autocast(nn.Module):
    """``module``'s forward under ``torch.autocast(device_type, dtype)``, output in float32.

    Only the forward is autocast: the backward of a loss computed from the output runs outside
    the context, as torch recommends. The float32 output keeps losses in float32.
    """

    def __init__(self, module: nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.module = module
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.module(*args, **kwargs)
        return out.float() if torch.is_tensor(out) and out.is_floating_point() else out


class SaveDontRecompute:
    """An inductor partitioner that saves what the backward needs and recomputes nothing.

    torch's ``default_partition`` (what the ``aot_eager`` backend uses) behind inductor's
    ``custom_partitioner_fn`` option; see :func:`compile_module` for why. Registered as a
    ``torch._inductor.custom_graph_pass.CustomPartitionerFn`` when first used (importing
    inductor takes a second or two, too long for every import of the trainer); defined at
    module level so that inductor can pickle it into its cache key and reuse compiled graphs
    across processes.
    """

    def __call__(self, gm, joint_inputs, **kwargs):
        from torch._functorch.partitioners import default_partition

        kwargs.pop("compiler", None)
        return default_partition(gm, joint_inputs, **kwargs)

    def uuid(self) -> str:
        return "sngan_edu.default_partition.v1"


def compile_module(module: nn.Module, mode: str = "default") -> nn.Module:
    """``torch.compile(module)`` (inductor, ``dynamic=False``) that gets SN's gradients right.

    Inductor's default partitioner (min-cut rematerialization) may recompute in the backward a
    value the forward read from a buffer that the same forward then updated in place; the
    recomputation reads the updated buffer. SN's power iteration is exactly that: ``u`` is
    computed from ``v``, then ``v`` is overwritten, and the backward of W / sigma needs ``u``.
    With torch 2.14 on the CPU the weight gradient of a spectrally normalized Linear(2, 32)
    came out wrong by 7e-3 (in float64; forward and buffers were right), silently, with this
    library's SN and with torch's own ``spectral_norm`` alike. Upstream fix: pytorch/pytorch
    PR #197039 ("Don't recompute reads of mutated inputs or mutable buffers"). Until then the
    joint graph is split by :class:`SaveDontRecompute`. ``mode`` is a torch.compile mode.
    """
    from torch._inductor import list_mode_options
    from torch._inductor.custom_graph_pass import CustomPartitionerFn

    CustomPartitionerFn.register(SaveDontRecompute)
    options = {**list_mode_options(mode), "custom_partitioner_fn": SaveDontRecompute()}
    return torch.compile(module, dynamic=False, options=options)


class ScaledOptimizer:
    """What the GAN step sees as its optimizer under fp16: ``step`` goes through a GradScaler.

    ``scaler.step`` unscales the gradients and skips the update if any is Inf/NaN; ``update``
    then adapts the scale. The loss is scaled by the loss function the trainer passes.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler):
        self.optimizer = optimizer
        self.scaler = scaler

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()


class DivergenceError(RuntimeError):
    """A loss or weight became NaN/Inf, or a loss left ``max_abs_loss``. ``step`` is the first
    generator step where it was seen."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def _want_progress(flag: bool | None) -> bool:
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


class Trainer:
    """Train ``G`` against ``D`` on batches from ``sample_real`` as ``config`` says.

    Construction validates the config (ValueError before any work), moves the models to the
    device, applies SN if asked, builds the optimizers and, with ``resume=True``, loads the last
    checkpoint. :meth:`fit` then trains up to ``config.steps`` generator steps. ``metadata``
    (plain values, e.g. a run's parameters) is stored in every checkpoint as it is.
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        sample_real: Sampler,
        config: TrainConfig,
        callbacks: Sequence[Callback] = (),
        *,
        metadata: Mapping[str, Any] | None = None,
    ):
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig; got {type(config).__name__}")
        config.validate()
        if not callable(sample_real):
            raise ValueError("sample_real must be callable as sample_real(batch_size, generator)")
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise ValueError(f"callbacks must be Callback instances; got {cb!r}")
        self.config = config
        self.metadata = dict(metadata or {})
        device = resolve_device(config.device)
        distributed.init(device)  # joins torchrun's process group; nothing in a single process
        self.device = distributed.local_device(device)
        self.world_size = distributed.world_size()
        self.rank = distributed.rank()
        self.is_main = self.rank == 0
        # This rank's rows of every global batch (None in a single process: all of it).
        self._rows = distributed.batch_slice(config.batch_size) if self.world_size > 1 else None
        self.amp_dtype = AMP_DTYPES[config.amp]
        if self.amp_dtype is not None:
            self._check_amp()
        # channels_last changes only the memory layout of 4-d weights (conv kernels run NHWC).
        layout = torch.channels_last if config.channels_last else torch.preserve_format
        self.G = G.to(self.device, memory_format=layout)
        self.D = D.to(self.device, memory_format=layout)
        self.sample_real = sample_real
        self.callbacks = list(callbacks)
        self.loss = get_loss(config.loss)
        opt = config.optimizer_settings()
        self.n_dis = int(opt["n_dis"])

        torch.manual_seed(config.seed)
        d_has_sn = has_spectral_norm(self.D)
        if config.regularizer == "sn" and not d_has_sn:
            apply_spectral_norm(self.D, n_power_iterations=config.sn_power_iterations)
            self.D.to(self.device)
        elif config.regularizer != "sn" and d_has_sn:
            raise ValueError(
                f"regularizer={config.regularizer!r} but D already has spectral normalization; "
                "use regularizer='sn' or build D without it"
            )
        self.joint_d_forward = (
            not has_batchnorm(self.D) if config.joint_d_forward is None else config.joint_d_forward
        )

        betas = (float(opt["beta1"]), float(opt["beta2"]))
        # The fused kernel updates all of a model's weights in one pass instead of a Python loop
        # of small ops per tensor (about 4x faster on notebook 05's CPU models).
        fused = config.fused_adam if config.fused_adam is not None else self.device.type == "cuda"
        fused = fused and self.device.type in ("cpu", "cuda")
        adam = functools.partial(torch.optim.Adam, betas=betas, fused=fused or None)
        self.opt_g = adam(self.G.parameters(), lr=opt["lr_g"])
        self.opt_d = adam(self.D.parameters(), lr=opt["lr_d"])
        # fp16: one gradient scaler per network (their gradients differ by orders of magnitude).
        self.scaler_d: torch.amp.GradScaler | None = None
        self.scaler_g: torch.amp.GradScaler | None = None
        if config.amp == "fp16":
            self.scaler_d = torch.amp.GradScaler(self.device.type)
            self.scaler_g = torch.amp.GradScaler(self.device.type)
        self._unscaled_loss: Tensor | None = None
        # The averaged generator (torch's AveragedModel, buffers included so BatchNorm's running
        # statistics are averaged too). D is never averaged: an average of SN's u/v vectors
        # would shrink them and underestimate sigma.
        self.G_ema: nn.Module | None = None
        if config.g_ema is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.G_ema = AveragedModel(
                self.G, multi_avg_fn=get_ema_multi_avg_fn(config.g_ema), use_buffers=True
            )

        self.z_generator = torch.Generator(device=self.device).manual_seed(config.seed)
        # A different stream for the data (same seed in two generators would give twin streams).
        self.data_generator = torch.Generator().manual_seed(config.seed + 0x5EED)
        self.augment_generator = torch.Generator().manual_seed(config.seed + 0xA06)

        self.step = 0
        self.elapsed = 0.0  # seconds spent in fit (not part of the reproducible state)
        self.history: dict[str, Any] = {
            "loss_d": [],  # loss_d[i]: last D loss of generator step i + 1
            "loss_g": [],
            "sigma": {},  # {layer: [(step, estimate, exact_raw, normalized)]}, see SigmaLogger
            "metrics": [],
        }
        self._pending: list[tuple[Tensor, Tensor]] = []
        self._bar = None
        self.checkpoint_path = (
            Path(config.checkpoint_dir) / ckpt.CHECKPOINT_NAME if config.checkpoint_dir else None
        )
        self.last_checkpoint_step: int | None = None
        if self.checkpoint_path is not None and self.is_main:
            ckpt.remove_orphans(self.checkpoint_path)  # a killed writer's half-written file
        if config.resume and self.checkpoint_path is not None and self.checkpoint_path.is_file():
            self.load_state_dict(ckpt.load(self.checkpoint_path, map_location=self.device))
            self.last_checkpoint_step = self.step
            ckpt.check_not_past(config.steps, self.step, self.checkpoint_path)
        self._build_step_modules()

    def _check_amp(self) -> None:
        kind = self.device.type
        if not torch.amp.is_autocast_available(kind):
            raise ValueError(f"amp={self.config.amp!r}: torch.autocast is not available on "
                             f"{kind}; use amp='none'")
        if (self.amp_dtype is torch.bfloat16 and kind == "cuda"
                and not torch.cuda.is_bf16_supported()):
            raise ValueError("amp='bf16' needs a GPU with bfloat16 support; use amp='fp16'")

    def _build_step_modules(self) -> None:
        """The modules the steps call: G and D, wrapped for autocast, DDP and compile as asked.

        ``self.G``/``self.D`` stay the plain models (state dicts, sampling, callbacks). D runs
        DDP-wrapped in its own update and plain (frozen, nothing to all-reduce) inside G's;
        G's fake batch for D is drawn plain under no_grad. Without amp, DDP and compile these
        are ``self.G`` and ``self.D`` themselves.
        """
        cfg = self.config
        g, d = self.G, self.D
        if self.amp_dtype is not None:
            g = Autocast(g, self.device.type, self.amp_dtype)
            d = Autocast(d, self.device.type, self.amp_dtype)
        g_train, d_train = g, d
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            # No buffer broadcast at each forward: every rank's power iteration gives the same
            # u, v (see the module docstring). Buffers are still sent from rank 0 once, at the
            # start (torch >= 2.12 names this forward_sync_buffers=False; before, the older
            # broadcast_buffers=False, which also relies on equal seeds for the start).
            ddp_args = inspect.signature(DistributedDataParallel).parameters
            no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in ddp_args
                       else {"broadcast_buffers": False})
            g_train = DistributedDataParallel(g, device_ids=ids, **no_sync)
            d_train = DistributedDataParallel(d, device_ids=ids, **no_sync)
        self._cudagraphs = cfg.compile == "reduce-overhead"
        if cfg.compile is not False:
            mode = "default" if cfg.compile is True else cfg.compile
            compiled = functools.partial(compile_module, mode=mode)
            g_fake, d_frozen = compiled(g), compiled(d)
            g_train = g_fake if g_train is g else compiled(g_train)
            d_train = d_frozen if d_train is d else compiled(d_train)
            g, d = g_fake, d_frozen
        self._G_fake, self._G_train, self._D_train, self._D_frozen = g, g_train, d_train, d
        self._opt_d_step = self.opt_d if self.scaler_d is None else ScaledOptimizer(
            self.opt_d, self.scaler_d)
        self._opt_g_step = self.opt_g if self.scaler_g is None else ScaledOptimizer(
            self.opt_g, self.scaler_g)
        self._d_loss = self.loss.d_loss if self.scaler_d is None else self._scaled(
            self.loss.d_loss, self.scaler_d)
        self._g_loss = self.loss.g_loss if self.scaler_g is None else self._scaled(
            self.loss.g_loss, self.scaler_g)

    def _scaled(self, loss_fn: Callable[..., Tensor], scaler: torch.amp.GradScaler):
        """``loss_fn`` times the scaler's scale; the unscaled loss is kept for the history."""

        def scaled(*args: Tensor) -> Tensor:
            loss = loss_fn(*args)
            self._unscaled_loss = loss.detach()
            return scaler.scale(loss)

        return scaled

    # ------------------------------------------------------------------ training steps
    def _noise(self, n: int) -> Tensor:
        z = torch.randn(n, self.config.z_dim, generator=self.z_generator, device=self.device)
        return z if self._rows is None else z[self._rows]

    def _augment(self, images: Tensor) -> Tensor:
        """What D sees: ``images`` randomly shifted if ``config.translate`` > 0 (else as is).

        With several ranks, ``images`` is this rank's slice: the shifts are drawn for the whole
        global batch (placed around the slice as zeros) and the slice's own are applied, so the
        draws are the 1-process run's.
        """
        if not self.config.translate:
            return images
        rows = self._rows
        if rows is None:
            return random_translate(images, self.config.translate, self.augment_generator)
        n, rest = self.config.batch_size, images.shape[1:]
        full = torch.cat((images.new_zeros(rows.start, *rest), images,
                          images.new_zeros(n - rows.stop, *rest)))
        return random_translate(full, self.config.translate, self.augment_generator)[rows]

    def _d_step(self) -> Tensor:
        cfg = self.config
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        real = self.sample_real(cfg.batch_size, self.data_generator)
        if self._rows is not None:
            real = real[self._rows]
        real = real.to(self.device, non_blocking=True)
        with torch.no_grad():
            fake = self._G_fake(self._noise(cfg.batch_size))
        loss = discriminator_step(
            self._D_train, self._opt_d_step, self._augment(real), self._augment(fake),
            self._d_loss, cfg.regularizer, joint=self.joint_d_forward, gp_lambda=cfg.gp_lambda,
            clip_c=cfg.clip_c, generator=self.z_generator,
        ).loss
        return loss if self.scaler_d is None else self._unscaled_loss

    def _g_step(self) -> Tensor:
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        loss = generator_step(self._G_train, self._D_frozen, self._opt_g_step,
                              self._noise(self.config.batch_size), self._g_loss, self._augment)
        if self.scaler_g is not None:
            loss = self._unscaled_loss
        if self.G_ema is not None:
            self.G_ema.update_parameters(self.G)
        return loss

    # ------------------------------------------------------------------ the loop
    def fit(self, steps: int | None = None) -> dict[str, Any]:
        """Train until ``steps`` generator steps in total (default ``config.steps``).

        Returns ``self.history``. Raises :class:`DivergenceError` on NaN/Inf.
        """
        total = self.config.steps if steps is None else steps
        check_int("steps", total)
        cfg = self.config
        self.G.train()
        self.D.train()
        # Several ranks: rank 0 alone observes and writes (callbacks, progress bar, checkpoints).
        callbacks = self.callbacks if self.is_main else []
        for cb in callbacks:
            cb.on_train_begin(self)
        if self.is_main and _want_progress(cfg.progress) and self.step < total:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=self.step, desc="training", unit="step",
                             dynamic_ncols=True, leave=True)
        threads_before = torch.get_num_threads()
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        start = time.perf_counter()
        deadline = None if cfg.max_seconds is None else start + cfg.max_seconds
        d_step, g_step, n_dis = self._d_step, self._g_step, self.n_dis
        decay = cfg.lr_decay == "linear"
        opt = cfg.optimizer_settings()
        pairs = ((self.opt_d, opt["lr_d"]), (self.opt_g, opt["lr_g"]))
        base_lrs = [(group, lr) for optimizer, lr in pairs for group in optimizer.param_groups]
        log_every, ckpt_every = cfg.log_every, cfg.checkpoint_every
        timed = self.is_main and self.checkpoint_path is not None and cfg.checkpoint_seconds
        next_timed = start + cfg.checkpoint_seconds if timed else math.inf
        pending = self._pending
        world = self.world_size
        out_of_time = False
        try:
            while self.step < total:
                if decay:  # linear decay to 0 at config.steps, from the step count alone
                    factor = max(0.0, 1.0 - self.step / cfg.steps)
                    for group, lr in base_lrs:
                        group["lr"] = lr * factor
                for _ in range(n_dis):
                    loss_d = d_step()
                loss_g = g_step()
                self.step += 1
                step = self.step
                if world > 1:  # the global batch's losses, and one clock for all the ranks
                    parts = [loss_d, loss_g]
                    if deadline is not None:
                        late = float(time.perf_counter() > deadline)
                        parts.append(torch.full((), late, device=loss_d.device))
                    reduced = distributed.all_reduce_mean(torch.stack(parts))
                    loss_d, loss_g = reduced[0], reduced[1]
                    out_of_time = deadline is not None and bool(reduced[2] > 0)
                pending.append((loss_d, loss_g))
                if step % log_every == 0:
                    self.sync()
                for cb in callbacks:
                    if step % cb.every == 0:
                        cb.on_step(self)
                if (ckpt_every and step % ckpt_every == 0) or (
                        timed and time.perf_counter() > next_timed):
                    self.save_checkpoint()
                    if timed:
                        next_timed = time.perf_counter() + cfg.checkpoint_seconds
                if out_of_time or (world == 1 and deadline is not None
                                   and time.perf_counter() > deadline):
                    break
            self.sync()
            if self.checkpoint_path is not None and self.last_checkpoint_step != self.step:
                self.save_checkpoint()
        finally:
            self.elapsed += time.perf_counter() - start
            torch.set_num_threads(threads_before)
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        for cb in callbacks:
            cb.on_train_end(self)
        return self.history

    def sync(self) -> None:
        """Move pending losses into ``history``, check losses and weights for NaN/Inf and the
        losses against ``max_abs_loss``.

        Raises :class:`DivergenceError` naming the first bad step.
        """
        pending = self._pending
        if pending:
            values = torch.stack([t for pair in pending for t in pair]).tolist()
            first_step = self.step - len(pending) + 1
            pending.clear()
            loss_d, loss_g = values[0::2], values[1::2]
            for i, (ld, lg) in enumerate(zip(loss_d, loss_g, strict=True)):
                problem = self._loss_problem(ld, lg)
                if problem is not None:
                    self._diverged(first_step + i, problem)
            self.history["loss_d"].extend(loss_d)
            self.history["loss_g"].extend(loss_g)
            if self._bar is not None:
                self._bar.update(self.step - self._bar.n)
                self._bar.set_postfix(loss_d=f"{loss_d[-1]:.3f}", loss_g=f"{loss_g[-1]:.3f}",
                                      refresh=False)
        params = [p for m in (self.G, self.D) for p in m.parameters()]
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            self._diverged(self.step, "a weight of G or D became NaN/Inf")

    def _loss_problem(self, loss_d: float, loss_g: float) -> str | None:
        """What is wrong with one step's losses (non-finite, or beyond ``max_abs_loss``), or
        None."""
        bound = self.config.max_abs_loss
        for which, value in (("discriminator", loss_d), ("generator", loss_g)):
            if not math.isfinite(value):
                return f"the {which} loss became {value}"
            if bound is not None and abs(value) > bound:
                return (f"the {which} loss reached {value:.3g}, beyond max_abs_loss={bound:g} "
                        "(D's output has blown up)")
        return None

    def _diverged(self, step: int, what: str) -> None:
        self._pending.clear()
        if self.last_checkpoint_step is not None:
            where = (
                f"the last good checkpoint is {self.checkpoint_path} "
                f"(step {self.last_checkpoint_step})"
            )
        else:
            where = "no checkpoint was written"
        raise DivergenceError(
            f"training diverged at generator step {step}: {what}; {where}. "
            "Try a lower learning rate, a different loss or a regularizer.",
            step=step,
        )

    # ------------------------------------------------------------------ sampling
    @property
    def sampling_generator(self) -> nn.Module:
        """The generator that samples: the moving average if ``g_ema`` is set, else ``G``."""
        return self.G if self.G_ema is None else self.G_ema.module

    @torch.no_grad()
    def generate(self, z: Tensor) -> Tensor:
        """``G(z)`` in eval mode without gradients, returned on CPU (training state untouched).

        Uses the averaged generator when ``config.g_ema`` is set.
        """
        G = self.sampling_generator
        was_training = G.training
        G.eval()
        try:
            return G(z.to(self.device)).cpu()
        finally:
            G.train(was_training)

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """``n`` generator samples from noise drawn with its own ``seed`` (not the training RNG)."""
        gen = torch.Generator().manual_seed(seed)
        return self.generate(torch.randn(n, self.config.z_dim, generator=gen))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit: models (with SN buffers), optimizers,
        RNG states, step, history and config.

        The same on every rank of a data-parallel run (see the module docstring), so any
        number of ranks can resume it; ``world_size`` records how many wrote it.
        """
        state: dict[str, Any] = {
            "format": 1,
            "world_size": self.world_size,
            "step": self.step,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_z": self.z_generator.get_state(),
            "rng_data": self.data_generator.get_state(),
            "rng_augment": self.augment_generator.get_state(),
            "history": self.history,
            "config": asdict(self.config),
            "metadata": self.metadata,
        }
        if self.G_ema is not None:
            state["G_ema"] = self.G_ema.state_dict()
        if self.scaler_d is not None and self.scaler_g is not None:
            state["scaler_d"] = self.scaler_d.state_dict()
            state["scaler_g"] = self.scaler_g.state_dict()
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        if hasattr(self.sample_real, "state_dict"):
            state["sampler"] = self.sample_real.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; ValueError if it came from an incompatible config."""
        ckpt.check_same_config(state.get("config", {}), asdict(self.config), RESUME_FREE_FIELDS,
                               self.checkpoint_path or "checkpoint")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.scaler_d is not None and self.scaler_g is not None and "scaler_d" in state:
            self.scaler_d.load_state_dict(state["scaler_d"])
            self.scaler_g.load_state_dict(state["scaler_g"])
        torch.set_rng_state(state["rng_torch"])
        self.z_generator.set_state(state["rng_z"])
        self.data_generator.set_state(state["rng_data"])
        if "rng_augment" in state:  # absent in checkpoints written before augmentation existed
            self.augment_generator.set_state(state["rng_augment"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        if "sampler" in state and hasattr(self.sample_real, "load_state_dict"):
            self.sample_real.load_state_dict(state["sampler"])
        self.history = state["history"]
        self.step = int(state["step"])

    def save_checkpoint(self) -> Path:
        """Check for NaN/Inf, then write ``checkpoint_dir/checkpoint.pt`` atomically.

        Every rank checks; rank 0 alone writes (all ranks hold the same state).
        """
        if self.checkpoint_path is None:
            raise ValueError("save_checkpoint needs config.checkpoint_dir")
        self.sync()
        if self.is_main:
            ckpt.save_atomic(self.state_dict(), self.checkpoint_path)
        self.last_checkpoint_step = self.step
        return self.checkpoint_path


def train(
    G: nn.Module,
    D: nn.Module,
    sample_real: Sampler,
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
) -> Trainer:
    """Build a :class:`Trainer`, run :meth:`Trainer.fit` and return the trainer."""
    trainer = Trainer(G, D, sample_real, config, callbacks)
    trainer.fit()
    return trainer


__all__ = ["AMP_DTYPES", "Autocast", "DivergenceError", "Sampler", "SaveDontRecompute",
           "ScaledOptimizer", "Trainer", "compile_module", "train"]
