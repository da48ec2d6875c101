"""One training run's configuration: notebook 05's parameters and the trainer's settings.

:class:`RunConfig` is checked when it is made (a ValueError naming the parameter and its allowed
values, before any data or training), resolves its device once (``config.torch_device``) and its
Adam settings once (``config.optimizer``: the paper's setting A-F of Table 1 or its ResNet
setting, :mod:`sngan_edu.train.presets`, with ``lr``/``beta1``/``beta2``/``n_dis`` overriding
it). Each field's help text is its ``help`` metadata; the fields marked ``notebook``
(:meth:`RunConfig.names`) are the names papermill may inject into notebook 05, whose parameters
cell lists the ones a student changes. ``steps`` counts generator updates, each
after ``n_dis`` discriminator updates; ``batch_size`` is the global batch when several processes
train together (``torchrun``). ``conditional=True`` makes it notebook 07's class-conditional run
(``d_conditioning``: the projection discriminator, or the label concatenated to D's input).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sngan_edu.checks import check_bool, check_choice, check_int, check_number, check_positive
from sngan_edu.data.augment import check_max_shift
from sngan_edu.data.images import DATASETS
from sngan_edu.device import resolve_device
from sngan_edu.losses import LOSS_NAMES
from sngan_edu.models import FAMILIES
from sngan_edu.models.latent import check_categories
from sngan_edu.regularizers import REGULARIZER_NAMES
from sngan_edu.train.distributed import check_batch_size, world_size
from sngan_edu.train.presets import PRESET_NAMES, get_preset

ARCHITECTURES = tuple(FAMILIES)  # standard, resnet
LR_DECAYS = ("none", "linear")
AMP_CHOICES = ("none", "bf16", "fp16")
#: ``compile_mode``: torch.compile's modes.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: ``d_conditioning``: how a conditional D sees the label.
D_CONDITIONINGS = ("projection", "concat")
#: Datasets whose training images have class labels (``conditional=True``).
LABELLED_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "folder")


def _param(default: Any, help: str, notebook: bool = True) -> Any:
    return field(default=default, metadata={"help": help, "notebook": notebook})


@dataclass(frozen=True)
class RunConfig:
    """A training run; notebook 05's defaults (tuned for a 2-core CPU and the digits)."""

    dataset: str = _param("digits", "digits (embedded, offline) | mnist | fashion_mnist | "
                          "cifar10 | stl10 | folder")
    data_root: str | None = _param(None, "torchvision files or your images (None: "
                                   "$SNGAN_EDU_DATA or ~/.cache/sngan-edu)")
    image_size: int = _param(16, "image side in pixels, a multiple of 8")
    width: float = _param(0.5, "G's channel multiplier: 1.0 is the paper's model")
    d_width: float | None = _param(0.125, "D's channel multiplier (None: same as width)")
    architecture: str = _param("standard", "standard (Table 3) | resnet")
    loss: str = _param("hinge", "hinge | vanilla | wasserstein")
    regularizer: str = _param("sn", "sn | none | gp | clip")
    setting: str = _param("D", "Adam setting: A-F (paper Table 1) | resnet")
    steps: int = _param(3000, "generator updates")
    batch_size: int = _param(32, "images per batch (the paper: 64); the global batch under "
                             "torchrun")
    z_dim: int = _param(128, "size of the latent vector z (the paper: 128)")
    z_categories: int = _param(0, "> 0: z's last entries become a one-hot code (0: the "
                               "paper's Gaussian)")
    n_dis: int | None = _param(3, "D updates per G update (None: the setting's own, 5 for D)")
    seed: int = _param(0, "seeds the weights, the noise, the data order and the shifts")
    device: str = _param("auto", "auto | cpu | cuda | cuda:N | mps")
    amp: str = _param("none", "mixed precision: none | bf16 | fp16 (autocast; SN's sigma stays "
                      "float32)")
    torch_compile: bool = _param(False, "torch.compile G and D (worth it on a GPU)")
    out_dir: str | None = _param("../runs/05_sngan_training", "the run folder: checkpoint, "
                                 "metrics, samples (None: write nothing)")
    eval_every: int = _param(500, "score samples and write a checkpoint every this many steps")
    resume: bool = _param(False, "continue the run in out_dir from its checkpoint")
    overwrite: bool = _param(False, "resume=False into a folder holding a run: delete it "
                             "(else refuse)")
    lr_decay: str = _param("none", "none | linear: Adam's lr falls linearly to 0 at `steps`")
    g_ema: float | None = _param(0.99, "decay of the average of G's weights used for sampling "
                                 "(None: sample from G)")
    translate: int = _param(0, "D sees real and fake shifted by up to this many pixels (0: off)")
    cpu_threads: int | None = _param(2, "torch CPU threads, at most OMP_NUM_THREADS where "
                                      "that is set (None: torch's default)")
    max_minutes: float | None = _param(None, "stop training after this much wall time "
                                       "(None: all steps)")
    # The trainer's own settings (not injectable into notebook 05).
    lr: float | None = _param(None, "Adam's learning rate for G and D (None: the setting's)",
                              False)
    lr_d: float | None = _param(None, "D's learning rate (None: lr)", False)
    lr_g: float | None = _param(None, "G's learning rate (None: lr)", False)
    beta1: float | None = _param(None, "Adam's beta1 (None: the setting's)", False)
    beta2: float | None = _param(None, "Adam's beta2 (None: the setting's)", False)
    gp_lambda: float = _param(10.0, "weight of the gradient penalty (regularizer gp)", False)
    clip_c: float = _param(0.01, "D's weights are clipped to [-c, c] (regularizer clip)", False)
    sn_power_iterations: int = _param(1, "power iterations per forward when the trainer "
                                      "applies SN to D", False)
    joint_d_forward: bool | None = _param(None, "score real and fake in one forward of D "
                                          "(None: unless D has BatchNorm)", False)
    channels_last: bool = _param(True, "NHWC conv weights: faster CPU kernels, same math",
                                 False)
    compile_mode: str = _param("default", "torch.compile's mode with torch_compile: default | "
                               "reduce-overhead | max-autotune | max-autotune-no-cudagraphs",
                               False)
    fused_adam: bool | None = _param(None, "torch's one-kernel Adam (None: on CUDA only)", False)
    checkpoint_every: int | None = _param(None, "write a checkpoint every this many steps "
                                          "(None: every eval_every; 0: only at the end)", False)
    checkpoint_seconds: float | None = _param(300.0, "also write one after this many seconds "
                                              "of training since the last (None: off)", False)
    log_every: int = _param(50, "read the losses, check them for NaN/Inf and update the "
                            "progress bar every this many steps", False)
    max_abs_loss: float | None = _param(1e6, "stop when a loss leaves [-this, this]: D's "
                                        "output has blown up (None: NaN/Inf only)", False)
    progress: bool | None = _param(None, "progress bar (None: in a notebook or a terminal)",
                                   False)
    # Notebook 07's class-conditional run (not injectable into notebook 05).
    conditional: bool = _param(False, "class-conditional: G draws the class it is given "
                               "(conditional BN), D scores an image with its label (notebook 07; "
                               "labelled datasets, standard architecture)", False)
    d_conditioning: str = _param("projection", "how a conditional D sees the label: projection "
                                 "(Miyato and Koyama 2018) | concat (one-hot input planes)", False)

    def __post_init__(self) -> None:
        _validate(self)
        # Resolved once here (ValueError for an unknown or missing device); frozen from now on.
        object.__setattr__(self, "torch_device", resolve_device(self.device))
        object.__setattr__(self, "optimizer", _optimizer(self))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The names notebook 05 accepts from papermill (its parameters cell lists a subset)."""
        return tuple(f.name for f in fields(cls) if f.metadata["notebook"])

    @classmethod
    def help(cls) -> dict[str, str]:
        """``{field: its help text}``."""
        return {f.name: f.metadata["help"] for f in fields(cls)}

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any], **changes: Any) -> RunConfig:
        """The config of a ``metrics.json``'s ``parameters`` with ``changes``; ValueError for a
        name that is not a field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(parameters) - known)
        if unknown:
            raise ValueError(f"unknown run parameter(s) {unknown}; the parameters are "
                             f"{cls.names()} and {tuple(sorted(known - set(cls.names())))}")
        return cls(**{**parameters, **changes})

    def parameters(self) -> dict[str, Any]:
        """What a run records and compares when resumed: notebook 05's parameters and every
        other field that differs from its default (``progress`` aside)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "progress"
                and (f.metadata["notebook"] or getattr(self, f.name) != f.default)}

    def settings(self) -> dict[str, Any]:
        """Every field but ``progress``: what a checkpoint holds and a resumed run compares."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "progress"}

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    @property
    def disc_width(self) -> float:
        """D's channel multiplier: ``d_width``, or ``width`` when ``d_width`` is None."""
        return self.width if self.d_width is None else self.d_width

    @property
    def checkpoint_period(self) -> int:
        """Steps between checkpoints (0: only at the end)."""
        return self.eval_every if self.checkpoint_every is None else self.checkpoint_every

    @property
    def compile(self) -> bool | str:
        """What the trainer compiles with: False, or torch.compile's mode."""
        return self.compile_mode if self.torch_compile else False

    @property
    def max_seconds(self) -> float | None:
        """``max_minutes`` in seconds (None: no limit)."""
        return None if self.max_minutes is None else 60.0 * self.max_minutes

    def optimizer_settings(self) -> dict[str, float | int]:
        """The resolved ``lr_d``, ``lr_g``, ``beta1``, ``beta2`` and ``n_dis``."""
        return dict(self.optimizer)


def _optimizer(config: RunConfig) -> dict[str, float | int]:
    preset = get_preset(config.setting)
    lr = preset.lr if config.lr is None else config.lr
    return {"lr_d": lr if config.lr_d is None else config.lr_d,
            "lr_g": lr if config.lr_g is None else config.lr_g,
            "beta1": preset.beta1 if config.beta1 is None else config.beta1,
            "beta2": preset.beta2 if config.beta2 is None else config.beta2,
            "n_dis": preset.n_dis if config.n_dis is None else config.n_dis}


def _validate(c: RunConfig) -> None:
    """Raise a ValueError naming the first bad field and its allowed values."""
    check_choice("dataset", c.dataset, DATASETS)
    if c.data_root is not None and (not isinstance(c.data_root, str) or not c.data_root):
        raise ValueError(f"data_root must be a folder path or None (the per-user data folder); "
                         f"got {c.data_root!r}")
    check_choice("architecture", c.architecture, ARCHITECTURES)
    check_choice("loss", c.loss, LOSS_NAMES)
    check_choice("setting", c.setting, PRESET_NAMES)
    check_choice("regularizer", c.regularizer, REGULARIZER_NAMES)
    for name in ("steps", "eval_every", "z_dim", "log_every", "sn_power_iterations"):
        check_int(name, getattr(c, name))
    ranks = world_size()
    check_int("batch_size", c.batch_size, minimum=2 * ranks,
              note=" (G's BatchNorm needs at least 2 images per batch"
                   + (f" on each of the {ranks} processes)" if ranks > 1 else ")"))
    check_batch_size(c.batch_size)  # the global batch splits evenly across the ranks
    check_int("seed", c.seed, minimum=0)
    check_int("image_size", c.image_size, minimum=8)
    if c.image_size % 8:
        raise ValueError(f"image_size must be a multiple of 8 (16, 32, 48, ...); "
                         f"got {c.image_size!r}")
    _check_widths(c)
    check_max_shift(c.translate, c.image_size, name="translate")
    _check_switches(c)
    _check_optimizer(c)
    _check_numbers(c)
    check_categories(c.z_categories, c.z_dim)
    _check_conditional(c)


def _check_widths(c: RunConfig) -> None:
    """``width`` (G) and ``d_width`` (D) leave every layer at least 1 channel."""
    smallest = FAMILIES[c.architecture].MIN_WIDTH
    for name, value, net in (("width", c.width, "G"), ("d_width", c.disc_width, "D")):
        check_positive(name, value, "a positive number (1.0 = the paper)")
        low = smallest[net]
        check_number(name, value, low, finite=False, what=(
            f">= {low:g} for architecture={c.architecture!r} (below it a layer of {net} "
            f"would have less than 1 channel: {round(1 / low)} at width 1.0)"))


def _check_switches(c: RunConfig) -> None:
    for name in ("resume", "overwrite", "channels_last", "torch_compile"):
        check_bool(name, getattr(c, name))
    if c.resume and c.overwrite:
        raise ValueError("resume=True and overwrite=True contradict each other: use "
                         "resume=True to continue the run in out_dir, or resume=False with "
                         "overwrite=True to delete it and start afresh")
    if c.resume and c.out_dir is None:
        raise ValueError("resume=True needs out_dir (the folder holding checkpoint.pt)")
    if c.out_dir is not None and (not isinstance(c.out_dir, str) or not c.out_dir):
        raise ValueError(f"out_dir must be a folder path or None; got {c.out_dir!r}")
    for name in ("fused_adam", "joint_d_forward", "progress"):
        if getattr(c, name) is not None:
            check_bool(name, getattr(c, name))
    check_choice("amp", c.amp, AMP_CHOICES)
    check_choice("lr_decay", c.lr_decay, LR_DECAYS)
    check_choice("compile_mode", c.compile_mode, COMPILE_MODES)
    if c.amp == "fp16" and c.regularizer == "gp":
        raise ValueError("amp='fp16' does not support regularizer='gp' (the penalty's inner "
                         "gradient would need its own loss scaling); use amp='bf16'")
    if c.torch_compile and c.regularizer == "gp":
        raise ValueError("torch_compile does not support regularizer='gp': torch.compile has "
                         "no double backward, which the gradient penalty needs")


def _check_conditional(c: RunConfig) -> None:
    """A conditional run needs labels, the standard CNN and one forward of D per D step."""
    check_bool("conditional", c.conditional)
    check_choice("d_conditioning", c.d_conditioning, D_CONDITIONINGS)
    if not c.conditional:
        return
    problem = None
    if c.dataset not in LABELLED_DATASETS:
        problem = (f"a labelled dataset {LABELLED_DATASETS}; dataset={c.dataset!r} trains on "
                   "unlabelled images")
    elif c.architecture != "standard":
        problem = f"architecture='standard'; there is no conditional {c.architecture!r} model"
    elif c.regularizer == "gp":
        problem = "a regularizer other than 'gp' (the penalty's interpolates have no labels)"
    elif c.joint_d_forward is False:
        problem = "joint_d_forward None or True (real and fake scored in one forward of D)"
    elif c.z_categories:
        problem = "z_categories=0 (the label is the class code)"
    if problem is not None:
        raise ValueError(f"conditional=True needs {problem}")


def _check_optimizer(c: RunConfig) -> None:
    for name in ("lr", "lr_d", "lr_g"):
        value = getattr(c, name)
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"{name} must be a positive number (or None); got {value!r}")
    for name in ("beta1", "beta2"):
        value = getattr(c, name)
        if value is not None and not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ValueError(f"{name} must be in [0, 1) (or None); got {value!r}")
    if c.n_dis is not None:
        check_int("n_dis", c.n_dis)
    if c.g_ema is not None and not (isinstance(c.g_ema, (int, float))
                                    and not isinstance(c.g_ema, bool) and 0 < c.g_ema < 1):
        raise ValueError(f"g_ema must be a decay in (0, 1), e.g. 0.99, or None; got {c.g_ema!r}")


def _check_numbers(c: RunConfig) -> None:
    for name in ("gp_lambda", "clip_c"):
        check_positive(name, getattr(c, name), "a positive number")
    if c.max_minutes is not None:
        check_positive("max_minutes", c.max_minutes, "a positive number of minutes or None")
    for name in ("checkpoint_seconds", "max_abs_loss"):
        if getattr(c, name) is not None:
            check_positive(name, getattr(c, name), "a positive number or None")
    if c.cpu_threads is not None:
        check_int("cpu_threads", c.cpu_threads)
    if c.checkpoint_every is not None:
        check_int("checkpoint_every", c.checkpoint_every, minimum=0)


# Fields a resumed run may change: they do not change what is trained.
RESUME_FREE_FIELDS = frozenset({
    "steps", "device", "out_dir", "data_root", "eval_every", "resume", "overwrite",
    "cpu_threads", "max_minutes", "log_every", "checkpoint_every", "checkpoint_seconds",
    "progress", "channels_last", "fused_adam", "torch_compile", "compile_mode", "max_abs_loss"})

__all__ = ["AMP_CHOICES", "ARCHITECTURES", "COMPILE_MODES", "D_CONDITIONINGS", "LABELLED_DATASETS",
           "LR_DECAYS", "RESUME_FREE_FIELDS", "RunConfig"]
