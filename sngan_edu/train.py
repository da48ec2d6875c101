"""One GAN training loop for every notebook: presets, losses, regularizers, callbacks, checkpoints.

The engine is generic: it takes a generator ``G``, a discriminator ``D``, a real-batch sampler
and a :class:`TrainConfig`. It knows nothing about images or toy data.

    import torch
    from sngan_edu.train import TrainConfig, Trainer
    from sngan_edu.callbacks import SigmaLogger, SampleSnapshot
    from sngan_edu.toy import make_sampler
    from sngan_edu.models.toy_mlp import ToyGenerator, ToyDiscriminator

    torch.manual_seed(0)
    G, D = ToyGenerator(z_dim=2), ToyDiscriminator()
    config = TrainConfig(steps=2000, batch_size=256, z_dim=2, preset="C", lr=1e-3,
                         loss="hinge", regularizer="sn", seed=0,
                         checkpoint_dir="runs/toy", checkpoint_every=500, resume=True)
    trainer = Trainer(G, D, make_sampler("grid"), config,
                      callbacks=[SigmaLogger(every=100), SampleSnapshot(every=500)])
    history = trainer.fit()        # {"loss_d": [...], "loss_g": [...], "sigma": {...}, ...}
    samples = trainer.sample(2500, seed=0)

What one step does (``step`` counts generator updates, 1-based):

- ``n_dis`` discriminator updates. Each draws a real batch ``sample_real(batch_size, gen)`` and a
  fake batch ``G(z)`` (no graph through G), and when that is equivalent runs real and fake
  through D as ONE concatenated batch, so SN's power iteration runs once per D update. It is
  not equivalent when D has BatchNorm (batch statistics would mix real and fake), so then D is
  called twice; ``joint_d_forward`` overrides the automatic choice.
  Loss: ``vanilla`` (BCE on logits), ``hinge`` or ``wasserstein`` (:mod:`sngan_edu.losses`),
  plus the gradient penalty (``regularizer="gp"``) or followed by weight clipping (``"clip"``).
- one generator update with the matching generator loss (non-saturating for ``vanilla``). D's
  parameters are frozen meanwhile, so no gradient is computed for them.

The real-batch sampler is any callable ``sample_real(batch_size, generator) -> Tensor``;
``generator`` is a CPU ``torch.Generator`` owned by the trainer (saved in checkpoints), so the
data order is reproducible and resumable. Return the batch on CPU or on the device. A sampler
with its own state may expose ``state_dict()`` / ``load_state_dict()``; they are checkpointed.

Regularizer ``"sn"`` applies :func:`sngan_edu.sn.apply_spectral_norm` to D unless D already has
spectral normalization (as the course's image discriminators do). The other regularizers refuse a
D that has it, so that a comparison is never mislabelled.

Speed: no host-device synchronisation per step. Losses are kept as tensors and read in one go
every ``log_every`` steps (:meth:`Trainer.sync`), where the NaN/Inf check also happens; the
progress bar updates only then. Callbacks cost nothing when there are none.

Reproducibility: the trainer seeds torch's global RNG with ``config.seed`` (used by SN's initial
vectors, the gradient penalty's interpolation weights, dropout) and owns the generators for z
and for the data, so the same seed gives the same weights on CPU, bit for bit. With
``checkpoint_dir`` and ``checkpoint_every`` it writes ``checkpoint.pt`` atomically (models,
optimizers, SN buffers, all RNG states, history); ``resume=True`` continues from it, and the
result is bit-identical to an uninterrupted run on CPU.

Divergence: if a loss or a weight becomes NaN/Inf, :class:`DivergenceError` (a RuntimeError)
names the first bad step; checkpoints are only written after a check, so the last one is good.

Averaged generator: ``g_ema=0.99`` keeps an exponential moving average of G's weights and
BatchNorm statistics (torch's ``AveragedModel``), updated after every generator step and saved in
checkpoints; :meth:`Trainer.sample` and :meth:`Trainer.generate` then use it. The average
smooths out the generator's step-to-step oscillation, which sharpens samples.

Augmentation: ``translate=k`` shifts every image D sees, real and fake, in both D and G steps,
by a random up to ``k`` pixels (:func:`sngan_edu.augment.random_translate`, DiffAugment). The
shifts come from a third generator of the trainer, saved in checkpoints. It keeps a D on a
small dataset from memorising it; G still learns the unshifted images.

Memory layout: ``channels_last=True`` stores conv weights as NHWC, which lets oneDNN pick
faster convolution kernels on the CPU (7-20% per step on notebook 05's models, measured by
``benchmarks/train_throughput.py`` on different days); the math is the same up to rounding.

Optimizer: ``fused_adam=True`` uses torch's fused Adam kernel on CPU and CUDA, which does the
same update as torch's per-tensor loop (up to float rounding) about 4 times faster; a whole
step of notebook 05's models gains about 4% (``benchmarks/train_throughput.py``). It is off by
default because the stored results of notebooks 05 and 06 were measured without it.

Threads: on a small model or a busy CPU, torch's default of one thread per core can be many
times slower than one thread (the threads wait on each other); ``num_threads=1`` sets that for
the duration of ``fit`` only.

The progress bar (tqdm.auto: a widget in JupyterLab, text in a terminal) is shown when
``progress=True``; ``progress=None`` shows it in an IPython kernel or a terminal unless the
environment variable ``SNGAN_EDU_PROGRESS=0`` is set.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sngan_edu import checkpoint as ckpt
from sngan_edu.augment import random_translate
from sngan_edu.callbacks import Callback
from sngan_edu.device import resolve_device
from sngan_edu.losses import LOSS_NAMES, get_loss
from sngan_edu.presets import PRESET_NAMES, get_preset

REGULARIZERS = ("sn", "gp", "clip", "none")
LR_DECAYS = ("none", "linear")

Sampler = Callable[[int, torch.Generator], Tensor]


class DivergenceError(RuntimeError):
    """A loss or weight became NaN/Inf. ``step`` is the first generator step where it was seen."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclass
class TrainConfig:
    """Everything that defines a training run. Optimizer values left as None come from ``preset``.

    ``steps`` counts generator updates; each has ``n_dis`` discriminator updates before it.
    """

    steps: int = 1000
    batch_size: int = 64
    z_dim: int = 128
    preset: str = "C"  # Adam setting: "A".."F" (paper Table 1) or "resnet"
    lr: float | None = None  # overrides the preset's lr for both networks
    lr_d: float | None = None  # overrides lr for D only
    lr_g: float | None = None  # overrides lr for G only
    beta1: float | None = None
    beta2: float | None = None
    n_dis: int | None = None
    lr_decay: str = "none"  # "none" | "linear": lr falls linearly to 0 at step ``steps``
    loss: str = "hinge"  # "vanilla" | "hinge" | "wasserstein"
    regularizer: str = "sn"  # "sn" | "gp" | "clip" | "none"
    sn_power_iterations: int = 1  # used when the trainer applies SN itself
    gp_lambda: float = 10.0
    clip_c: float = 0.01
    joint_d_forward: bool | None = None  # None: yes unless D has BatchNorm
    seed: int = 0
    device: str = "auto"
    log_every: int = 50  # read losses / check NaN / update the bar every this many steps
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0  # 0: only at the end of fit (if checkpoint_dir is set)
    resume: bool = False
    progress: bool | None = None
    max_seconds: float | None = None  # optional wall-time budget (makes the run time-dependent)
    num_threads: int | None = None  # torch intra-op threads during fit (restored afterwards)
    g_ema: float | None = None  # decay of an exponential moving average of G's weights (or None)
    channels_last: bool = False  # NHWC conv weights: faster oneDNN kernels on CPU (same math)
    translate: int = 0  # D sees real and fake shifted by up to this many pixels (DiffAugment)
    fused_adam: bool = False  # torch's one-kernel Adam on CPU/CUDA (same update, faster)

    def optimizer_settings(self) -> dict[str, float | int]:
        """The resolved ``lr_d``, ``lr_g``, ``beta1``, ``beta2`` and ``n_dis``."""
        preset = get_preset(self.preset)
        lr = preset.lr if self.lr is None else self.lr
        return {
            "lr_d": lr if self.lr_d is None else self.lr_d,
            "lr_g": lr if self.lr_g is None else self.lr_g,
            "beta1": preset.beta1 if self.beta1 is None else self.beta1,
            "beta2": preset.beta2 if self.beta2 is None else self.beta2,
            "n_dis": preset.n_dis if self.n_dis is None else self.n_dis,
        }

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and its allowed values."""

        def positive_int(name: str, value: Any, allow_zero: bool = False) -> None:
            low = 0 if allow_zero else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                kind = "a non-negative" if allow_zero else "a positive"
                raise ValueError(f"{name} must be {kind} integer; got {value!r}")

        positive_int("steps", self.steps)
        positive_int("batch_size", self.batch_size)
        positive_int("z_dim", self.z_dim)
        positive_int("log_every", self.log_every)
        positive_int("checkpoint_every", self.checkpoint_every, allow_zero=True)
        positive_int("sn_power_iterations", self.sn_power_iterations)
        if self.preset not in PRESET_NAMES:
            raise ValueError(f"preset must be one of {PRESET_NAMES}; got {self.preset!r}")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"lr_decay must be one of {LR_DECAYS}; got {self.lr_decay!r}")
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"loss must be one of {LOSS_NAMES}; got {self.loss!r}")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}; got {self.regularizer!r}")
        for name in ("lr", "lr_d", "lr_g"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number (or None); got {value!r}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ValueError(f"{name} must be in [0, 1) (or None); got {value!r}")
        if self.n_dis is not None:
            positive_int("n_dis", self.n_dis)
        if not self.gp_lambda > 0:
            raise ValueError(f"gp_lambda must be positive; got {self.gp_lambda!r}")
        if not self.clip_c > 0:
            raise ValueError(f"clip_c must be positive; got {self.clip_c!r}")
        if self.resume and not self.checkpoint_dir:
            raise ValueError("resume=True needs checkpoint_dir (the folder holding checkpoint.pt)")
        if self.checkpoint_every and not self.checkpoint_dir:
            raise ValueError("checkpoint_every > 0 needs checkpoint_dir")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be positive (or None); got {self.max_seconds!r}")
        if self.num_threads is not None:
            positive_int("num_threads", self.num_threads)
        positive_int("translate", self.translate, allow_zero=True)
        for name in ("channels_last", "fused_adam"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if self.g_ema is not None and not (
            isinstance(self.g_ema, (int, float)) and not isinstance(self.g_ema, bool)
            and 0 < self.g_ema < 1
        ):
            raise ValueError(f"g_ema must be a decay in (0, 1), e.g. 0.99, or None; "
                             f"got {self.g_ema!r}")
        resolve_device(self.device)  # raises ValueError for unknown/unavailable devices


# Fields that may differ between a run and its resumption (they do not change the math).
_RESUME_FREE_FIELDS = {
    "steps", "device", "log_every", "checkpoint_dir", "checkpoint_every", "resume", "progress",
    "max_seconds", "num_threads", "channels_last",
}


def has_batchnorm(model: nn.Module) -> bool:
    """True if ``model`` contains a BatchNorm layer (batch statistics couple the samples)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def score_real_and_fake(
    D: nn.Module, real: Tensor, fake: Tensor, joint: bool
) -> tuple[Tensor, Tensor]:
    """``(D(real), D(fake))``; with ``joint`` as ONE forward of the concatenated batch.

    Every forward of an SN layer in training mode runs a power iteration, so two calls would run
    two per update and score the halves with slightly different normalized weights. Two calls
    are right only when D has BatchNorm, whose batch statistics would mix real and fake.
    """
    if not joint:
        return D(real), D(fake)
    out = D(torch.cat((real, fake)))
    return out[: real.shape[0]], out[real.shape[0]:]


def has_spectral_norm(model: nn.Module) -> bool:
    """True if any layer of ``model`` is spectrally normalized (per ``sngan_edu.sn``)."""
    from sngan_edu.sn import spectral_norm_layers

    return len(spectral_norm_layers(model)) > 0


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
            from sngan_edu.sn import apply_spectral_norm

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
        self._d_params = [p for p in self.D.parameters() if p.requires_grad]
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
        bs = self.config.batch_size
        real = self.sample_real(bs, self.data_generator).to(self.device, non_blocking=True)
        with torch.no_grad():
            fake = self.G(self._noise(bs))
        real, fake = self._augment(real), self._augment(fake)
        d_real, d_fake = score_real_and_fake(self.D, real, fake, self.joint_d_forward)
        loss = self.loss.d_loss(d_real, d_fake)
        if self.config.regularizer == "gp":
            from sngan_edu.lipschitz import gradient_penalty

            loss = loss + gradient_penalty(
                self.D, real, fake, lam=self.config.gp_lambda, generator=self.z_generator
            )
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        if self.config.regularizer == "clip":
            from sngan_edu.lipschitz import clip_weights

            clip_weights(self.D, c=self.config.clip_c)
        return loss.detach()

    def _g_step(self) -> Tensor:
        for p in self._d_params:  # no gradient needed for D's weights in the G update
            p.requires_grad_(False)
        try:
            fake = self._augment(self.G(self._noise(self.config.batch_size)))
            loss = self.loss.g_loss(self.D(fake))
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_g.step()
        finally:
            for p in self._d_params:
                p.requires_grad_(True)
        if self.G_ema is not None:
            self.G_ema.update_parameters(self.G)
        return loss.detach()

    # ------------------------------------------------------------------ the loop
    def fit(self, steps: int | None = None) -> dict[str, Any]:
        """Train until ``steps`` generator steps in total (default ``config.steps``).

        Returns ``self.history``. Raises :class:`DivergenceError` on NaN/Inf.
        """
        total = self.config.steps if steps is None else steps
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ValueError(f"steps must be a positive integer; got {total!r}")
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
            if f.name not in _RESUME_FREE_FIELDS
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


__all__ = [
    "REGULARIZERS",
    "DivergenceError",
    "TrainConfig",
    "Trainer",
    "has_batchnorm",
    "has_spectral_norm",
    "score_real_and_fake",
    "train",
]
