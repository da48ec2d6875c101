"""A training run of G against D: the state the loop needs and everything around it.

:class:`Trainer` builds what :func:`sngan_edu.train.loop.train_gan` runs on (models on the
device, Adam optimizers with the config's settings, seeded random generators for z, the data
and the augmentation, the average of G's weights) and runs it from :meth:`Trainer.fit` with,
after each generator step, what a long run needs: losses collected and checked for NaN/Inf
every ``log_every`` steps (:class:`DivergenceError`), callbacks, atomic checkpoints (every
``checkpoint_every`` steps, every ``checkpoint_seconds`` and at the end; ``resume=True``
continues bit for bit), a time budget, a linearly decaying learning rate and a progress bar.

    trainer = Trainer(G, D, sample_real, config)     # sample_real(batch_size, generator)
    history = trainer.fit()   # {"loss_d": [...], "loss_g": [...], "sigma": {...}, ...}
    samples = trainer.sample(64, seed=0)

Regularizer ``"sn"`` applies SN to D unless D has it already; the others refuse a D that has
it. Mixed precision, ``torch.compile`` and data parallelism (``torchrun``) wrap the models
(:mod:`sngan_edu.train.accel`, :mod:`sngan_edu.train.distributed`): under ``torchrun``
``batch_size`` is the global batch, every rank draws it whole from the same generators and
trains on its slice, the losses are averaged over the ranks, and rank 0 alone runs the
callbacks and writes checkpoints.

With ``conditional=True`` G is ``G(z, y)``, D is ``D(x, y)``, ``sample_real`` returns
``(images, labels)`` and G's labels are drawn uniformly after each noise batch: the loop runs
unchanged on G and D bound to the labels (:mod:`sngan_edu.train.labels`).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sngan_edu.checks import check_int
from sngan_edu.data.augment import random_translate
from sngan_edu.device import cpu_thread_count
from sngan_edu.gan_step import has_batchnorm
from sngan_edu.losses import get_loss
from sngan_edu.sn import apply_spectral_norm, has_spectral_norm
from sngan_edu.train import checkpoint as ckpt
from sngan_edu.train import distributed
from sngan_edu.train.accel import (
    ScaledLoss,
    ScaledOptimizer,
    check_amp,
    wrap_for_training,
)
from sngan_edu.train.after_step import AfterStep, want_progress
from sngan_edu.train.callbacks import Callback
from sngan_edu.train.config import RESUME_FREE_FIELDS, RunConfig
from sngan_edu.train.labels import LabelBinding, cycle_labels
from sngan_edu.train.loop import train_gan

Sampler = Callable[[int, torch.Generator], Tensor]


class DivergenceError(RuntimeError):
    """A loss or weight became NaN/Inf, or a loss left ``max_abs_loss``. ``step`` is the first
    generator step where it was seen."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class Trainer:
    """Train ``G`` against ``D`` on batches from ``sample_real`` as ``config`` says.

    Construction checks its arguments, moves the models to the device, applies SN if asked,
    builds the optimizers and, with ``resume=True``, loads the last checkpoint.
    """

    def __init__(self, G: nn.Module, D: nn.Module, sample_real: Sampler, config: RunConfig,
                 callbacks: Sequence[Callback] = ()):
        if not isinstance(config, RunConfig):
            raise ValueError(f"config must be a RunConfig; got {type(config).__name__}")
        if not callable(sample_real):
            raise ValueError("sample_real must be callable as sample_real(batch_size, generator)")
        if not all(isinstance(cb, Callback) for cb in callbacks):
            raise ValueError(f"callbacks must be Callback instances; got {list(callbacks)!r}")
        self.config, self.sample_real, self.callbacks = config, sample_real, list(callbacks)
        distributed.init(config.torch_device)  # joins torchrun's process group, if any
        self.device = distributed.local_device(config.torch_device)
        self.world_size, self.rank = distributed.world_size(), distributed.rank()
        self.is_main = self.rank == 0
        # This rank's rows of every global batch (None in a single process: all of it).
        self._rows = distributed.batch_slice(config.batch_size) if self.world_size > 1 else None
        check_amp(config.amp, self.device)
        self.loss = get_loss(config.loss)
        self.optimizer = config.optimizer
        self._place_models(G, D)
        self._build_optimizers()
        self.z_generator = torch.Generator(device=self.device).manual_seed(config.seed)
        # A different stream for the data (same seed in two generators would give twin streams).
        self.data_generator = torch.Generator().manual_seed(config.seed + 0x5EED)
        self.augment_generator = torch.Generator().manual_seed(config.seed + 0xA06)
        self.step, self.elapsed = 0, 0.0  # elapsed: seconds in fit (not reproducible state)
        self.history: dict[str, Any] = {"loss_d": [], "loss_g": [], "sigma": {}, "metrics": []}
        self._pending: list[tuple[Tensor, Tensor]] = []
        self._bar = None
        self._open_checkpoints()

    def _place_models(self, G: nn.Module, D: nn.Module) -> None:
        """G and D on the device (NHWC weights if ``channels_last``), SN on D if asked, and the
        modules the loop calls (:func:`~sngan_edu.train.accel.wrap_for_training`)."""
        cfg = self.config
        layout = torch.channels_last if cfg.channels_last else torch.preserve_format
        self.G = G.to(self.device, memory_format=layout)
        self.D = D.to(self.device, memory_format=layout)
        self.n_dis = int(self.optimizer["n_dis"])
        torch.manual_seed(cfg.seed)
        d_has_sn = has_spectral_norm(self.D)
        if cfg.regularizer == "sn" and not d_has_sn:
            apply_spectral_norm(self.D, n_power_iterations=cfg.sn_power_iterations)
            self.D.to(self.device)
        elif cfg.regularizer != "sn" and d_has_sn:
            raise ValueError(f"regularizer={cfg.regularizer!r} but D already has spectral "
                             "normalization; use regularizer='sn' or build D without it")
        self.joint_d_forward = (not has_batchnorm(self.D) if cfg.joint_d_forward is None
                                else cfg.joint_d_forward)
        wrap = functools.partial(wrap_for_training, device=self.device, amp=cfg.amp,
                                 distributed=self.world_size > 1, compile=cfg.compile)
        # conditional: G and D called with the labels of the batches drawn (None: unconditional)
        self.labels = (LabelBinding(self.G, self.D, self.G.num_classes, self.device)
                       if cfg.conditional else None)
        G_loop, D_loop = (self.G, self.D) if self.labels is None else (self.labels.G,
                                                                      self.labels.D)
        self.G_run = wrap(G_loop, mark_step=cfg.compile == "reduce-overhead")
        self.D_run = wrap(D_loop)

    def _build_optimizers(self) -> None:
        """Adam for G and D (fused on CUDA, or as ``fused_adam`` says), the fp16 gradient
        scalers, and the average of G's weights (``g_ema``)."""
        cfg, opt = self.config, self.optimizer
        fused = cfg.fused_adam if cfg.fused_adam is not None else self.device.type == "cuda"
        fused = fused and self.device.type in ("cpu", "cuda")
        adam = functools.partial(torch.optim.Adam, betas=(float(opt["beta1"]),
                                 float(opt["beta2"])), fused=fused or None)
        self.opt_g = adam(self.G.parameters(), lr=opt["lr_g"])
        self.opt_d = adam(self.D.parameters(), lr=opt["lr_d"])
        self.scaler_d = self.scaler_g = None
        self._opt_g_run, self._opt_d_run, self._loss_run = self.opt_g, self.opt_d, self.loss
        if cfg.amp == "fp16":  # one scaler per network: their gradients differ by far
            self.scaler_d = torch.amp.GradScaler(self.device.type)
            self.scaler_g = torch.amp.GradScaler(self.device.type)
            self._opt_g_run = ScaledOptimizer(self.opt_g, self.scaler_g)
            self._opt_d_run = ScaledOptimizer(self.opt_d, self.scaler_d)
            self._loss_run = ScaledLoss(self.loss, self.scaler_d, self.scaler_g)
        # BatchNorm statistics averaged too (use_buffers). D is never averaged: an average of
        # SN's u/v vectors would shrink them and underestimate sigma.
        self.G_ema: nn.Module | None = None
        if cfg.g_ema is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.G_ema = AveragedModel(self.G, multi_avg_fn=get_ema_multi_avg_fn(cfg.g_ema),
                                       use_buffers=True)

    def _open_checkpoints(self) -> None:
        """Remove a killed writer's temporary files and, with ``resume``, load the checkpoint."""
        cfg = self.config
        self.checkpoint_path = (Path(cfg.out_dir) / ckpt.CHECKPOINT_NAME
                                if cfg.out_dir is not None else None)
        self.last_checkpoint_step: int | None = None
        if self.checkpoint_path is not None and self.is_main:
            ckpt.remove_orphans(self.checkpoint_path)
        if cfg.resume and self.checkpoint_path is not None and self.checkpoint_path.is_file():
            self.load_state_dict(ckpt.load(self.checkpoint_path, map_location=self.device))
            self.last_checkpoint_step = self.step
            ckpt.check_not_past(cfg.steps, self.step, self.checkpoint_path)

    # ------------------------------------------------------------------ what the loop draws
    def _sample_real(self) -> Tensor:
        real = self.sample_real(self.config.batch_size, self.data_generator)
        if self.labels is not None:  # (images, labels): D's next labels start with these
            real = self.labels.real(*real, self._rows)
        elif self._rows is not None:
            real = real[self._rows]
        return real.to(self.device, non_blocking=True)

    def _sample_z(self) -> Tensor:
        z = torch.randn(self.config.batch_size, self.config.z_dim, generator=self.z_generator,
                        device=self.device)
        if self.labels is not None:  # G's labels for the whole global batch, drawn after z
            self.labels.fake(len(z), self.z_generator, self._rows)
        return z if self._rows is None else z[self._rows]

    def _augment(self, images: Tensor) -> Tensor:
        """``images`` randomly shifted by up to ``translate`` pixels (DiffAugment).

        With several ranks the shifts are drawn for the whole global batch (this rank's slice
        placed among zeros) and the slice's own applied: the 1-process run's draws.
        """
        rows, shift = self._rows, self.config.translate
        if rows is None:
            return random_translate(images, shift, self.augment_generator)
        n, rest = self.config.batch_size, images.shape[1:]
        full = torch.cat((images.new_zeros(rows.start, *rest), images,
                          images.new_zeros(n - rows.stop, *rest)))
        return random_translate(full, shift, self.augment_generator)[rows]

    # ------------------------------------------------------------------ training
    def fit(self, steps: int | None = None) -> dict[str, Any]:
        """Train until ``steps`` generator steps in total (default ``config.steps``) with
        :func:`~sngan_edu.train.loop.train_gan`. Returns ``self.history``; raises
        :class:`DivergenceError` on NaN/Inf."""
        total = check_int("steps", self.config.steps if steps is None else steps)
        cfg = self.config
        self.G.train()
        self.D.train()
        callbacks = self.callbacks if self.is_main else []  # rank 0 alone observes and writes
        for cb in callbacks:
            cb.on_train_begin(self)
        if self.is_main and want_progress(cfg.progress) and self.step < total:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=self.step, desc="training", unit="step",
                             dynamic_ncols=True, leave=True)
        threads_before = torch.get_num_threads()
        if cfg.cpu_threads is not None:
            torch.set_num_threads(cpu_thread_count(cfg.cpu_threads))
        after_step = AfterStep(self, callbacks, total)
        try:
            after_step.set_lr(self.step)
            train_gan(self.G_run, self.D_run, self._opt_g_run, self._opt_d_run, self._loss_run,
                      self._sample_real, self._sample_z, steps=total, n_dis=self.n_dis,
                      start=self.step, regularizer=cfg.regularizer,
                      d_options=dict(joint=self.joint_d_forward, gp_lambda=cfg.gp_lambda,
                                     clip_c=cfg.clip_c, generator=self.z_generator),
                      augment=self._augment if cfg.translate else None, G_avg=self.G_ema,
                      after_step=after_step)
            self.sync()
            if self.checkpoint_path is not None and self.last_checkpoint_step != self.step:
                self.save_checkpoint()
        finally:
            self.elapsed += time.perf_counter() - after_step.start
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
    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """``G(z)`` (conditional: ``G(z, labels)``, by default each class in turn) in eval mode
        without gradients, on CPU (training state untouched); the average of G if ``g_ema``."""
        G = self.sampling_generator
        was_training = G.training
        G.eval()
        try:
            if self.labels is None:
                return G(z.to(self.device)).cpu()
            if labels is None:
                labels = cycle_labels(len(z), self.labels.num_classes)
            return G(z.to(self.device), labels.to(self.device)).cpu()
        finally:
            G.train(was_training)

    def sample(self, n: int, seed: int = 0, labels: Tensor | None = None) -> Tensor:
        """``n`` generator samples from noise drawn with its own ``seed`` (not the training
        RNG); ``labels`` as in :meth:`generate`."""
        gen = torch.Generator().manual_seed(seed)
        return self.generate(torch.randn(n, self.config.z_dim, generator=gen), labels)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit: models (with SN buffers), optimizers,
        RNG states, step, history and config. The same on every rank of a data-parallel run,
        so any number of ranks can resume it; ``world_size`` records how many wrote it."""
        state: dict[str, Any] = {
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
            "config": self.config.settings(),
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
        ckpt.check_same_config(state["config"], self.config.settings(), RESUME_FREE_FIELDS,
                               self.checkpoint_path or "checkpoint")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.scaler_d is not None and self.scaler_g is not None:
            self.scaler_d.load_state_dict(state["scaler_d"])
            self.scaler_g.load_state_dict(state["scaler_g"])
        torch.set_rng_state(state["rng_torch"])
        self.z_generator.set_state(state["rng_z"])
        self.data_generator.set_state(state["rng_data"])
        self.augment_generator.set_state(state["rng_augment"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        if "sampler" in state and hasattr(self.sample_real, "load_state_dict"):
            self.sample_real.load_state_dict(state["sampler"])
        self.history = state["history"]
        self.step = int(state["step"])

    def save_checkpoint(self) -> Path:
        """Check for NaN/Inf, then write ``out_dir/checkpoint.pt`` atomically.

        Every rank checks; rank 0 alone writes (all ranks hold the same state).
        """
        if self.checkpoint_path is None:
            raise ValueError("save_checkpoint needs config.out_dir")
        self.sync()
        if self.is_main:
            ckpt.save_atomic(self.state_dict(), self.checkpoint_path)
        self.last_checkpoint_step = self.step
        return self.checkpoint_path


__all__ = ["DivergenceError", "Sampler", "Trainer"]
