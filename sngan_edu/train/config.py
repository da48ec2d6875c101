"""Everything that defines a training run, in one validated dataclass.

``steps`` counts generator updates; each follows ``n_dis`` discriminator updates. The Adam
settings come from a preset: the paper's settings A-F (Table 1) or its ResNet setting
(:mod:`sngan_edu.train.presets`); any field left as None takes the preset's value.

Speed options that keep the math (up to rounding): ``fused_adam`` (None: on for CUDA only),
``channels_last``, ``compile`` (``torch.compile`` of G and D). ``amp`` changes the arithmetic:
``"bf16"`` or ``"fp16"`` run the networks' convolutions and matrix products under
``torch.autocast`` in that type (``fp16`` with a gradient scaler); the defaults (``"none"``,
compile off) train in float32 exactly as before. ``batch_size`` is the global batch when
several processes train together (``torchrun``, :mod:`sngan_edu.train.distributed`), so it must
divide by their number.
"""

from __future__ import annotations

from dataclasses import dataclass

from sngan_edu.checks import check_bool, check_choice, check_int, check_positive
from sngan_edu.device import resolve_device
from sngan_edu.losses import LOSS_NAMES
from sngan_edu.regularizers import REGULARIZER_NAMES
from sngan_edu.train.distributed import check_batch_size
from sngan_edu.train.presets import PRESET_NAMES, get_preset

LR_DECAYS = ("none", "linear")
#: Mixed precision: none (float32), bf16 (bfloat16 autocast), fp16 (float16 autocast + scaler).
AMP_CHOICES = ("none", "bf16", "fp16")
#: ``compile`` values: False (eager), True (torch.compile's default mode) or a torch.compile mode.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


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
    fused_adam: bool | None = None  # torch's one-kernel Adam (same update, faster); None: CUDA
    amp: str = "none"  # mixed precision: "none" | "bf16" | "fp16" (autocast; fp16 with a scaler)
    compile: bool | str = False  # torch.compile G and D: False | True | a mode, "reduce-overhead"
    # Also checkpoint when this many seconds of training passed since the last checkpoint, so a
    # long or slow run never loses more than a few minutes (None: off; needs checkpoint_dir).
    checkpoint_seconds: float | None = 300.0
    # Stop with DivergenceError when |loss_d| or |loss_g| exceeds this (None: NaN/Inf only). The
    # course's losses stay within a few hundred (hinge and vanilla near 1, Wasserstein with a
    # Lipschitz bound small too); 1e6 means D's output has blown up, and such a run goes on
    # "successfully" while learning nothing, or turns NaN later.
    max_abs_loss: float | None = 1e6

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

        for name in ("steps", "batch_size", "z_dim", "log_every", "sn_power_iterations"):
            check_int(name, getattr(self, name))
        check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        check_choice("preset", self.preset, PRESET_NAMES)
        check_choice("lr_decay", self.lr_decay, LR_DECAYS)
        check_choice("loss", self.loss, LOSS_NAMES)
        check_choice("regularizer", self.regularizer, REGULARIZER_NAMES)
        for name in ("lr", "lr_d", "lr_g"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number (or None); got {value!r}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ValueError(f"{name} must be in [0, 1) (or None); got {value!r}")
        if self.n_dis is not None:
            check_int("n_dis", self.n_dis)
        if not self.gp_lambda > 0:
            raise ValueError(f"gp_lambda must be positive; got {self.gp_lambda!r}")
        if not self.clip_c > 0:
            raise ValueError(f"clip_c must be positive; got {self.clip_c!r}")
        if self.resume and not self.checkpoint_dir:
            raise ValueError("resume=True needs checkpoint_dir (the folder holding checkpoint.pt)")
        if self.checkpoint_every and not self.checkpoint_dir:
            raise ValueError("checkpoint_every > 0 needs checkpoint_dir")
        for name in ("max_seconds", "checkpoint_seconds", "max_abs_loss"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name), "a positive number or None")
        if self.num_threads is not None:
            check_int("num_threads", self.num_threads)
        check_int("translate", self.translate, minimum=0)
        check_bool("channels_last", self.channels_last)
        if self.fused_adam is not None:
            check_bool("fused_adam", self.fused_adam)
        check_choice("amp", self.amp, AMP_CHOICES)
        if not isinstance(self.compile, bool):
            check_choice("compile", self.compile, (False, True, *COMPILE_MODES))
        if self.amp == "fp16" and self.regularizer == "gp":
            raise ValueError("amp='fp16' does not support regularizer='gp' (the penalty's inner "
                             "gradient would need its own loss scaling); use amp='bf16'")
        if self.compile is not False and self.regularizer == "gp":
            raise ValueError("compile does not support regularizer='gp': torch.compile has no "
                             "double backward, which the gradient penalty needs")
        if self.g_ema is not None and not (
            isinstance(self.g_ema, (int, float)) and not isinstance(self.g_ema, bool)
            and 0 < self.g_ema < 1
        ):
            raise ValueError(f"g_ema must be a decay in (0, 1), e.g. 0.99, or None; "
                             f"got {self.g_ema!r}")
        resolve_device(self.device)  # raises ValueError for unknown/unavailable devices
        check_batch_size(self.batch_size)  # the global batch splits evenly across the ranks


# Fields that may differ between a run and its resumption (they do not change the math).
RESUME_FREE_FIELDS = {
    "steps", "device", "log_every", "checkpoint_dir", "checkpoint_every", "resume", "progress",
    "max_seconds", "num_threads", "channels_last", "fused_adam", "compile", "checkpoint_seconds",
    "max_abs_loss",
}
