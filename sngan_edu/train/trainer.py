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
- A NaN/Inf loss or weight raises :class:`DivergenceError` naming the first bad step;
  checkpoints are written only after that check, so the last one is good.
- ``g_ema`` keeps an exponential moving average of G (torch's ``AveragedModel``, BatchNorm
  statistics included) that :meth:`Trainer.sample` uses. Deviation from the paper: the paper
  samples from G itself; the average sharpens samples of a small model on a CPU.
- ``translate=k`` shifts what D sees, real and fake, by up to ``k`` pixels (DiffAugment,
  :func:`sngan_edu.data.augment.random_translate`). Not in the paper.
- ``channels_last`` (NHWC conv weights) and ``fused_adam`` are speed options with the same math
  up to rounding; ``num_threads`` sets torch's threads during ``fit`` only.
- The progress bar (tqdm.auto) shows in an IPython kernel or a terminal, unless
  ``progress=False`` or the environment variable ``SNGAN_EDU_PROGRESS=0``.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
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
from sngan_edu.train.callbacks import Callback
from sngan_edu.train.config import RESUME_FREE_FIELDS, TrainConfig

Sampler = Callable[[int, torch.Generator], Tensor]


class DivergenceError(RuntimeError):
    """A loss or weight became NaN/Inf. ``step`` is the first generator step where it was seen."""

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
    checkpoint. :meth:`fit` then trains up to ``config.steps`` generator steps.
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        sample_real: Sampler,
        config: TrainConfig,
        callbacks: Sequence[Callback] = (),
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
        self.device = resolve_device(config.device)
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
        fused = config.fused_adam and self.device.type in ("cpu", "cuda")
        adam = functools.partial(torch.optim.Adam, betas=betas, fused=fused or None)
        self.opt_g = adam(self.G.parameters(), lr=opt["lr_g"])
        self.opt_d = adam(self.D.parameters(), lr=opt["lr_d"])
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
        if config.resume and self.checkpoint_path is not None and self.checkpoint_path.is_file():
            self.load_state_dict(ckpt.load(self.checkpoint_path, map_location=self.device))
            self.last_checkpoint_step = self.step

    # ------------------------------------------------------------------ training steps
    def _noise(self, n: int) -> Tensor:
        return torch.randn(n, self.config.z_dim, generator=self.z_generator, device=self.device)

    def _augment(self, images: Tensor) -> Tensor:
        """What D sees: ``images`` randomly shifted if ``config.translate`` > 0 (else as is)."""
        if not self.config.translate:
            return images
        return random_translate(images, self.config.translate, self.augment_generator)

    def _d_step(self) -> Tensor:
        cfg = self.config
        real = self.sample_real(cfg.batch_size, self.data_generator).to(self.device,
                                                                        non_blocking=True)
        with torch.no_grad():
            fake = self.G(self._noise(cfg.batch_size))
        return discriminator_step(
            self.D, self.opt_d, self._augment(real), self._augment(fake), self.loss.d_loss,
            cfg.regularizer, joint=self.joint_d_forward, gp_lambda=cfg.gp_lambda,
            clip_c=cfg.clip_c, generator=self.z_generator,
        ).loss

    def _g_step(self) -> Tensor:
        loss = generator_step(self.G, self.D, self.opt_g, self._noise(self.config.batch_size),
                              self.loss.g_loss, self._augment)
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
        callbacks = self.callbacks
        for cb in callbacks:
            cb.on_train_begin(self)
        if _want_progress(cfg.progress) and self.step < total:
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
        pending = self._pending
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
                pending.append((loss_d, loss_g))
                if step % log_every == 0:
                    self.sync()
                for cb in callbacks:
                    if step % cb.every == 0:
                        cb.on_step(self)
                if ckpt_every and step % ckpt_every == 0:
                    self.save_checkpoint()
                if deadline is not None and time.perf_counter() > deadline:
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
        """Move pending losses into ``history``, check losses and weights for NaN/Inf.

        Raises :class:`DivergenceError` naming the first non-finite step.
        """
        pending = self._pending
        if pending:
            values = torch.stack([t for pair in pending for t in pair]).tolist()
            first_step = self.step - len(pending) + 1
            pending.clear()
            loss_d, loss_g = values[0::2], values[1::2]
            for i, (ld, lg) in enumerate(zip(loss_d, loss_g, strict=True)):
                if not (math.isfinite(ld) and math.isfinite(lg)):
                    which = "discriminator" if not math.isfinite(ld) else "generator"
                    bad = ld if which == "discriminator" else lg
                    self._diverged(first_step + i, f"the {which} loss became {bad}")
            self.history["loss_d"].extend(loss_d)
            self.history["loss_g"].extend(loss_g)
            if self._bar is not None:
                self._bar.update(self.step - self._bar.n)
                self._bar.set_postfix(loss_d=f"{loss_d[-1]:.3f}", loss_g=f"{loss_g[-1]:.3f}",
                                      refresh=False)
        params = [p for m in (self.G, self.D) for p in m.parameters()]
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            self._diverged(self.step, "a weight of G or D became NaN/Inf")

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
        RNG states, step, history and config."""
        state: dict[str, Any] = {
            "format": 1,
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
        }
        if self.G_ema is not None:
            state["G_ema"] = self.G_ema.state_dict()
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        if hasattr(self.sample_real, "state_dict"):
            state["sampler"] = self.sample_real.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; ValueError if it came from an incompatible config."""
        saved = state.get("config", {})
        mine = asdict(self.config)
        differ = sorted(
            f.name
            for f in fields(TrainConfig)
            if f.name not in RESUME_FREE_FIELDS
            and f.name in saved
            and saved[f.name] != mine[f.name]
        )
        if differ:
            detail = ", ".join(f"{k}: saved {saved[k]!r} vs now {mine[k]!r}" for k in differ)
            raise ValueError(f"checkpoint was written with a different config ({detail})")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
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
        """Check for NaN/Inf, then write ``checkpoint_dir/checkpoint.pt`` atomically."""
        if self.checkpoint_path is None:
            raise ValueError("save_checkpoint needs config.checkpoint_dir")
        self.sync()
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


__all__ = ["DivergenceError", "Sampler", "Trainer", "train"]
