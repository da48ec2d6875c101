"""The SNGAN run behind notebook 05: its parameters, one function that trains and writes the
run folder, and the one definition of that folder's ``metrics.json``.

    from sngan_edu.experiments.sngan_run import RunConfig, run_sngan

    result = run_sngan(RunConfig(steps=300, out_dir="runs/try"))
    result.final        # {"step": 300, "classes": ..., "confidence": ..., "fd": ..., ...}

:class:`RunConfig` holds exactly the parameters of notebook 05's cell tagged ``parameters``
(with the same defaults), so ``papermill -p NAME VALUE`` and ``RunConfig(NAME=VALUE)`` are the
same run. :func:`run_sngan` validates it (a ValueError naming the parameter, before any work),
loads the data, builds the models, trains with the course's :class:`~sngan_edu.train.trainer.
Trainer` (scoring samples with the digit classifier every ``eval_every`` steps) and writes to
``out_dir``:

- ``real.png``: the first 64 training images;
- ``samples/step_XXXXXX.png``: 64 samples from fixed noise (seed 0) at each evaluation;
- ``samples_final.png``: 64 samples from noise seed 1234 at the end;
- ``checkpoint.pt``: both models, both optimizers and every random state (``resume=True``
  continues bit for bit);
- ``metrics.json``: the :class:`MetricsRecord` (:func:`metrics_record`, :func:`read_metrics`);
- ``sigma_history.json``: the discriminator's per-layer sigmas during training.

Notebook 05 calls :func:`prepare_run` first, to show the data, the models and the scorer, then
:func:`run_sngan` with its live plots as callbacks; the sweep of notebook 06
(:mod:`sngan_edu.experiments.sweep`) calls :func:`run_sngan` for each setting and seed, and
:mod:`sngan_edu.course.rescore` rebuilds a run's generator from its ``metrics.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import Tensor, nn

from sngan_edu.checks import check_bool, check_choice, check_int, check_positive
from sngan_edu.data.augment import check_max_shift
from sngan_edu.data.grids import save_grid
from sngan_edu.data.images import DATASETS, ImageData, load_image_data
from sngan_edu.device import resolve_device
from sngan_edu.losses import LOSS_NAMES
from sngan_edu.metrics import images as image_metrics
from sngan_edu.metrics.classifier import (
    DIGITS_CLASSIFIER,
    DIGITS_PLAIN_CLASSIFIER,
    load_classifier,
)
from sngan_edu.models import FAMILIES
from sngan_edu.models.latent import check_categories
from sngan_edu.regularizers import REGULARIZER_NAMES
from sngan_edu.train.callbacks import Callback, MetricEval, SigmaLogger
from sngan_edu.train.config import TrainConfig
from sngan_edu.train.distributed import is_main_process
from sngan_edu.train.presets import PRESET_NAMES
from sngan_edu.train.trainer import Trainer

ARCHITECTURES = tuple(FAMILIES)  # standard, resnet
# The split each dataset trains on (the digits: all 1,797; STL-10: its unlabeled images too).
TRAIN_SPLITS = {"digits": "all", "stl10": "train+unlabeled"}
FIDELITY_DATASETS = ("cifar10", "stl10")  # scored with Inception Score and FID
METRICS_FILE, SIGMA_FILE = "metrics.json", "sigma_history.json"
N_EVAL, N_PRECISION = 1000, 10_000  # samples scored at each evaluation / once at the end
EVAL_SEED, PRECISION_SEED, FINAL_GRID_SEED = 0, 1, 1234  # their noise seeds


@dataclass
class RunConfig:
    """Notebook 05's parameters, with its defaults (tuned for a 2-core CPU and the digits)."""

    dataset: str = "digits"  # digits (embedded, offline) | mnist | fashion_mnist | cifar10 | ...
    data_root: str | None = None  # torchvision files or your images (None: ~/.cache/sngan-edu)
    image_size: int = 16
    width: float = 0.5  # G's channel multiplier: 1.0 is the paper's model
    d_width: float | None = 0.125  # D's channel multiplier (None: same as width)
    architecture: str = "standard"  # standard (Table 3) | resnet
    loss: str = "hinge"  # hinge | vanilla | wasserstein
    regularizer: str = "sn"  # sn | none | gp | clip
    setting: str = "D"  # A-F (paper Table 1) | resnet
    steps: int = 3000  # generator updates
    batch_size: int = 32  # the paper: 64
    z_dim: int = 128  # size of the latent vector z (the paper: 128)
    z_categories: int = 0  # > 0: z's last entries become a one-hot code (0: the paper's Gaussian)
    n_dis: int | None = 3  # D updates per G update (None: the setting's own, 5 for D)
    seed: int = 0
    device: str = "auto"
    out_dir: str = "../runs/05_sngan_training"
    eval_every: int = 500
    resume: bool = False
    lr_decay: str = "none"  # none | linear: Adam's lr falls linearly to 0 at `steps`
    g_ema: float | None = 0.99  # average of G's weights used for sampling (None: sample from G)
    translate: int = 0  # D sees real and fake shifted by up to this many pixels (0: off)
    cpu_threads: int | None = 2  # torch CPU threads (None: torch's default)
    max_minutes: float | None = None  # stop training after this much wall time (None: all steps)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameter names, in the order of notebook 05's parameters cell."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> RunConfig:
        """The config of a ``metrics.json``'s ``parameters`` (a run written before a parameter
        existed gets its default); ValueError for a name that is not a parameter."""
        unknown = sorted(set(parameters) - set(cls.names()))
        if unknown:
            raise ValueError(f"unknown run parameter(s) {unknown}; the parameters are "
                             f"{cls.names()}")
        return cls(**parameters)

    @property
    def disc_width(self) -> float:
        """D's channel multiplier: ``d_width``, or ``width`` when ``d_width`` is None."""
        return self.width if self.d_width is None else self.d_width

    def validate(self) -> None:
        """Raise a ValueError naming the first bad parameter (before any data or training)."""
        check_choice("dataset", self.dataset, DATASETS)
        if self.data_root is not None and (not isinstance(self.data_root, str)
                                           or not self.data_root):
            raise ValueError(f"data_root must be a folder path or None (the per-user data "
                             f"folder); got {self.data_root!r}")
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("loss", self.loss, LOSS_NAMES)
        check_choice("setting", self.setting, PRESET_NAMES)
        check_choice("regularizer", self.regularizer, REGULARIZER_NAMES)
        for name in ("steps", "batch_size", "eval_every"):
            check_int(name, getattr(self, name))
        check_int("seed", self.seed, minimum=0)
        check_int("image_size", self.image_size, minimum=8)
        if self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 (16, 32, 48, ...); "
                             f"got {self.image_size!r}")
        for name, value in (("width", self.width), ("d_width", self.disc_width)):
            check_positive(name, value, "a positive number (1.0 = the paper)")
        if self.n_dis is not None:
            check_int("n_dis", self.n_dis)
        check_max_shift(self.translate, self.image_size, name="translate")
        check_bool("resume", self.resume)
        if self.max_minutes is not None:
            check_positive("max_minutes", self.max_minutes,
                           "a positive number of minutes or None")
        if self.cpu_threads is not None:
            check_int("cpu_threads", self.cpu_threads)
        self.to_train_config().validate()  # z_dim, lr_decay, g_ema, device
        check_categories(self.z_categories, self.z_dim)

    def to_train_config(self, progress: bool | None = None) -> TrainConfig:
        """The training engine's configuration of this run (``progress``: the progress bar,
        None for the trainer's default)."""
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, z_dim=self.z_dim, preset=self.setting,
            n_dis=self.n_dis, loss=self.loss, regularizer=self.regularizer, seed=self.seed,
            device=self.device, log_every=50, checkpoint_dir=str(Path(self.out_dir)),
            checkpoint_every=max(500, self.steps // 4), resume=self.resume, progress=progress,
            g_ema=self.g_ema, lr_decay=self.lr_decay, translate=self.translate,
            channels_last=True,
            max_seconds=None if self.max_minutes is None else 60.0 * self.max_minutes,
        )


def build_generator(config: RunConfig, channels: int) -> nn.Module:
    """The run's generator (``config.architecture`` at ``config.width``), freshly initialised
    from torch's global random state."""
    family = FAMILIES[config.architecture]
    return family.Generator(z_dim=config.z_dim, image_size=config.image_size, channels=channels,
                            width=config.width, z_categories=config.z_categories)


def build_discriminator(config: RunConfig, channels: int) -> nn.Module:
    """The run's discriminator (``config.architecture`` at ``config.disc_width``)."""
    family = FAMILIES[config.architecture]
    return family.Discriminator(image_size=config.image_size, channels=channels,
                                width=config.disc_width)


def classifier_path(dataset: str) -> Path:
    """Where the classifier that scores ``dataset``'s samples lives (beside the digits' one in
    the package's assets; only the digits' ships with the course)."""
    if dataset == "digits":
        return DIGITS_CLASSIFIER
    return DIGITS_CLASSIFIER.parent / f"{dataset}_classifier.pt"


# ---------------------------------------------------------------- metrics.json
class _MetricsRecordFields(TypedDict):
    parameters: dict[str, Any]
    optimizer: dict[str, float | int]
    step: int
    final: dict[str, float]
    metrics: list[dict[str, float]]
    train_seconds: float
    n_params: dict[str, int]
    precision: dict[str, float] | None


class MetricsRecord(_MetricsRecordFields, total=False):
    """A run's ``metrics.json``, written by :func:`run_sngan` and read by the sweep and rescore.

    - ``parameters``: the :class:`RunConfig` (``asdict``; :meth:`RunConfig.from_parameters`
      reads it back);
    - ``optimizer``: the resolved Adam settings and ``n_dis``
      (:meth:`~sngan_edu.train.config.TrainConfig.optimizer_settings`);
    - ``step``: the generator steps trained (fewer than ``steps`` if ``max_minutes`` stopped it);
    - ``final``: the last evaluation, ``{"step", "classes", "class_kl", "confidence", "fd",
      "confidence_plain"}`` (only ``step`` without a classifier; ``confidence_plain`` for the
      digits);
    - ``metrics``: every evaluation, rows like ``final``;
    - ``train_seconds``: wall time of training, resumed sessions included;
    - ``n_params``: ``{"G": ..., "D": ...}``;
    - ``precision``: the mean confidence of 10,000 fresh samples (noise seed 1) with its
      standard error, ``{"n_samples", "seed", "confidence", "confidence_se",
      "confidence_se_1000"}`` (the last: the standard error of ``final``'s 1,000-sample mean);
      None without a classifier;
    - ``fidelity`` (CIFAR-10 and STL-10 only, when the Inception weights are available):
      ``{"inception_score", "inception_score_std", "fid"}``.
    """

    fidelity: dict[str, float]


def metrics_record(
    config: RunConfig, trainer: Trainer, n_params: Mapping[str, int],
    precision: Mapping[str, float] | None,
) -> MetricsRecord:
    """The ``metrics.json`` of a run trained by ``trainer`` (see :class:`MetricsRecord`)."""
    return {
        "parameters": asdict(config),
        "optimizer": trainer.config.optimizer_settings(),
        "step": trainer.step,
        "final": trainer.history["metrics"][-1],
        "metrics": trainer.history["metrics"],
        "train_seconds": round(trainer.elapsed, 1),
        "n_params": dict(n_params),
        "precision": None if precision is None else dict(precision),
    }


def write_metrics(out_dir: str | Path, record: MetricsRecord) -> Path:
    """Write ``record`` to ``out_dir/metrics.json``; return the path."""
    path = Path(out_dir) / METRICS_FILE
    path.write_text(json.dumps(record, indent=1))
    return path


def read_metrics(run_dir: str | Path) -> MetricsRecord:
    """A finished run's ``metrics.json``; ValueError if the folder has none."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a finished notebook 05 run: no {METRICS_FILE} in it")
    return json.loads(path.read_text())


# ---------------------------------------------------------------- the run
@dataclass
class RunSetup:
    """Everything a run builds before training (:func:`prepare_run`)."""

    config: RunConfig
    train_config: TrainConfig
    device: torch.device
    out: Path  # the run folder
    data: ImageData  # the training images, on ``device``
    real_batch: Tensor  # the first 64 training images (real.png), on the CPU
    G: nn.Module
    D: nn.Module
    n_params: dict[str, int]
    classifier_path: Path
    classifier: nn.Module | None = None  # None when there is no classifier for the dataset
    plain_classifier: nn.Module | None = None  # the digits' plain classifier (for comparison)
    real_ref: Tensor | None = None  # 2,000 training images, the Fréchet distance's reference


@dataclass
class RunResult:
    """A finished run: what :func:`run_sngan` built, trained, scored and wrote."""

    setup: RunSetup
    trainer: Trainer
    start_step: int  # the step training started from (> 0 when resumed)
    fit_seconds: float  # wall time of this session's training, evaluations included
    record: MetricsRecord  # what metrics.json holds
    samples: Tensor | None  # the 1,000 fixed-noise samples the final scores came from
    sample_probs: Tensor | None  # their class probabilities from the classifier
    final_samples: Tensor  # the 64 samples of samples_final.png
    fidelity_message: str | None = None  # why IS/FID were not computed, if they were not

    @property
    def config(self) -> RunConfig:
        return self.setup.config

    @property
    def out(self) -> Path:
        return self.setup.out

    @property
    def data(self) -> ImageData:
        return self.setup.data

    @property
    def real_batch(self) -> Tensor:
        return self.setup.real_batch

    @property
    def final(self) -> dict[str, float]:
        """The last evaluation's scores (with its ``step``)."""
        return self.record["final"]

    @property
    def precision(self) -> dict[str, float] | None:
        return self.record["precision"]


def prepare_run(config: RunConfig, progress: bool | None = None) -> RunSetup:
    """Validate ``config``, then set torch's threads (``cpu_threads``), create ``out_dir``, load
    the data (writing ``real.png``), build G and D (seeded with ``seed``) and load the
    classifier."""
    config.validate()
    if config.cpu_threads is not None:
        torch.set_num_threads(config.cpu_threads)
    train_config = config.to_train_config(progress)
    device = resolve_device(config.device)
    out = Path(config.out_dir)
    if is_main_process():  # under torchrun, rank 0 alone writes the run folder
        out.mkdir(parents=True, exist_ok=True)
    split = TRAIN_SPLITS.get(config.dataset, "train")
    data = load_image_data(config.dataset, config.data_root, config.image_size,
                           split=split).to(device)
    real_batch = data.float_images(64).cpu()
    if is_main_process():
        save_grid(real_batch, out / "real.png")
    torch.manual_seed(config.seed)
    G = build_generator(config, data.channels)
    D = build_discriminator(config, data.channels)
    n_params = {name: sum(p.numel() for p in m.parameters()) for name, m in [("G", G), ("D", D)]}
    setup = RunSetup(config, train_config, device, out, data, real_batch, G, D, n_params,
                     classifier_path(config.dataset))
    if setup.classifier_path.is_file():
        setup.classifier = load_classifier(setup.classifier_path, device="cpu")
        setup.real_ref = data.float_images(2000).cpu()
        if config.dataset == "digits":
            setup.plain_classifier = load_classifier(DIGITS_PLAIN_CLASSIFIER, device="cpu")
    return setup


def sample_evaluator(setup: RunSetup, n: int | None = None):
    """The evaluation a run does every ``eval_every`` steps: ``n`` samples (default
    ``N_EVAL``) from fixed noise, the first 64 saved as ``samples/step_XXXXXX.png``, scored
    with the classifier (no scores without one)."""
    n = N_EVAL if n is None else n

    def evaluate(trainer: Trainer) -> dict[str, float]:
        samples = trainer.sample(n, seed=EVAL_SEED)
        save_grid(samples[:64], setup.out / "samples" / f"step_{trainer.step:06d}.png")
        if setup.classifier is None:
            return {}
        return image_metrics.classifier_metrics(setup.classifier, samples, setup.real_ref,
                                                plain=setup.plain_classifier)

    return evaluate


def run_sngan(
    config: RunConfig | RunSetup, callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
) -> RunResult:
    """Train notebook 05's run and write its folder (see the module's docstring).

    ``config``: a :class:`RunConfig`, or the :class:`RunSetup` that :func:`prepare_run` made of
    one. ``callbacks`` run after the run's own (the sigma log and the evaluation), e.g. live
    plots. ``progress``: the progress bar (None: in a notebook or a terminal). With
    ``resume=True`` training continues from ``out_dir/checkpoint.pt`` if there is one.
    Raises ValueError for a bad parameter and
    :class:`~sngan_edu.train.trainer.DivergenceError` if training diverges.
    """
    if isinstance(config, RunSetup):
        setup = config
        if progress is not None:
            setup.train_config = replace(setup.train_config, progress=progress)
    else:
        setup = prepare_run(config, progress)
    cfg, out = setup.config, setup.out
    own = [SigmaLogger(every=max(1, cfg.steps // 40), exact=True),
           MetricEval(cfg.eval_every, sample_evaluator(setup))]
    trainer = Trainer(setup.G, setup.D, setup.data.sample, setup.train_config,
                      [*own, *callbacks])
    start_step, start = trainer.step, time.perf_counter()
    trainer.fit()
    fit_seconds = time.perf_counter() - start
    if not trainer.is_main:  # under torchrun, rank 0 alone scores the run and writes its files
        return RunResult(setup, trainer, start_step, fit_seconds, {}, None, None, torch.empty(0))

    samples = sample_probs = precision = None
    if setup.classifier is not None:
        samples = trainer.sample(N_EVAL, seed=EVAL_SEED)  # the samples of the final scores
        sample_probs, _ = image_metrics.classifier_outputs(setup.classifier, samples)
        fresh_probs, _ = image_metrics.classifier_outputs(
            setup.classifier, trainer.sample(N_PRECISION, seed=PRECISION_SEED))
        precision = {"n_samples": N_PRECISION, "seed": PRECISION_SEED,
                     **image_metrics.confidence_estimate(fresh_probs),
                     "confidence_se_1000": image_metrics.mean_confidence_error(sample_probs)}
    final_samples = trainer.sample(64, seed=FINAL_GRID_SEED)
    save_grid(final_samples, out / "samples_final.png")
    record = metrics_record(cfg, trainer, setup.n_params, precision)
    write_metrics(out, record)
    (out / SIGMA_FILE).write_text(json.dumps(trainer.history["sigma"]))
    result = RunResult(setup, trainer, start_step, fit_seconds, record, samples, sample_probs,
                       final_samples)
    if cfg.dataset in FIDELITY_DATASETS:
        try:
            record["fidelity"] = image_metrics.fidelity_metrics(
                trainer.sampling_generator, cfg.z_dim, reference=f"{cfg.dataset}-train",
                n_samples=50000 if setup.device.type == "cuda" else 5000, device=setup.device)
            write_metrics(out, record)
        except image_metrics.InceptionWeightsMissing as err:
            result.fidelity_message = str(err)
    return result


__all__ = [
    "ARCHITECTURES",
    "METRICS_FILE",
    "MetricsRecord",
    "RunConfig",
    "RunResult",
    "RunSetup",
    "build_discriminator",
    "build_generator",
    "classifier_path",
    "metrics_record",
    "prepare_run",
    "read_metrics",
    "run_sngan",
    "sample_evaluator",
    "write_metrics",
]
