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

The folder holds one run (a lock file ``.lock`` keeps a second run out while one trains, see
:mod:`sngan_edu.train.lock`). ``resume=False`` refuses a folder that already holds a run unless
``overwrite=True``, which deletes the old run's files first; ``resume=True`` refuses a folder
with nothing to resume, a checkpoint written with other parameters (naming them) and ``steps``
below the checkpoint's step. Checkpoints are written at every evaluation, every 5 minutes of
training and at the end; ``metrics.json`` and ``sigma_history.json`` atomically.

Notebook 05 calls :func:`prepare_run` first, to show the data, the models and the scorer, then
:func:`run_sngan` with its live plots as callbacks; the sweep of notebook 06
(:mod:`sngan_edu.experiments.sweep`) calls :func:`run_sngan` for each setting and seed, and
:mod:`sngan_edu.course.rescore` rebuilds a run's generator from its ``metrics.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import Tensor, nn

from sngan_edu.checks import check_bool, check_choice, check_int, check_number, check_positive
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
from sngan_edu.train import checkpoint as ckpt
from sngan_edu.train.callbacks import Callback, MetricEval, SigmaLogger
from sngan_edu.train.config import TrainConfig
from sngan_edu.train.distributed import is_main_process, world_size
from sngan_edu.train.lock import FolderLock
from sngan_edu.train.presets import PRESET_NAMES
from sngan_edu.train.trainer import Trainer

ARCHITECTURES = tuple(FAMILIES)  # standard, resnet
# The split each dataset trains on (the digits: all 1,797; STL-10: its unlabeled images too).
TRAIN_SPLITS = {"digits": "all", "stl10": "train+unlabeled"}
FIDELITY_DATASETS = ("cifar10", "stl10")  # scored with Inception Score and FID
METRICS_FILE, SIGMA_FILE = "metrics.json", "sigma_history.json"
N_EVAL, N_PRECISION = 1000, 10_000  # samples scored at each evaluation / once at the end
EVAL_SEED, PRECISION_SEED, FINAL_GRID_SEED = 0, 1, 1234  # their noise seeds
CHECKPOINT_SECONDS = 300.0  # a checkpoint at least every 5 minutes of training
# What a run writes into out_dir (overwrite=True deletes these and nothing else).
RUN_FILES = (ckpt.CHECKPOINT_NAME, METRICS_FILE, SIGMA_FILE, "samples", "samples_final.png",
             "real.png")
# Parameters a resumed run may change (they do not change what is trained).
RESUME_FREE_PARAMETERS = frozenset({"steps", "device", "out_dir", "data_root", "eval_every",
                                    "resume", "overwrite", "cpu_threads", "max_minutes"})


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
    amp: str = "none"  # mixed precision: none | bf16 | fp16 (autocast; SN's sigma stays float32)
    torch_compile: bool = False  # torch.compile G and D (worth it on a GPU)
    out_dir: str = "../runs/05_sngan_training"
    eval_every: int = 500
    resume: bool = False
    overwrite: bool = False  # resume=False into a folder holding a run: delete it (else refuse)
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
        for name in ("steps", "eval_every"):
            check_int(name, getattr(self, name))
        ranks = world_size()
        check_int("batch_size", self.batch_size, minimum=2 * ranks,
                  note=" (G's BatchNorm needs at least 2 images per batch"
                       + (f" on each of the {ranks} processes)" if ranks > 1 else ")"))
        check_int("seed", self.seed, minimum=0)
        check_int("image_size", self.image_size, minimum=8)
        if self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 (16, 32, 48, ...); "
                             f"got {self.image_size!r}")
        self._check_widths()
        if self.n_dis is not None:
            check_int("n_dis", self.n_dis)
        check_max_shift(self.translate, self.image_size, name="translate")
        check_bool("resume", self.resume)
        check_bool("overwrite", self.overwrite)
        check_bool("torch_compile", self.torch_compile)
        if self.resume and self.overwrite:
            raise ValueError("resume=True and overwrite=True contradict each other: use "
                             "resume=True to continue the run in out_dir, or resume=False with "
                             "overwrite=True to delete it and start afresh")
        if self.max_minutes is not None:
            check_positive("max_minutes", self.max_minutes,
                           "a positive number of minutes or None")
        if self.cpu_threads is not None:
            check_int("cpu_threads", self.cpu_threads)
        self.to_train_config().validate()  # z_dim, lr_decay, g_ema, device
        check_categories(self.z_categories, self.z_dim)

    def _check_widths(self) -> None:
        """ValueError unless ``width`` (G) and ``d_width`` (D) leave every layer of the
        architecture at least 1 channel."""
        smallest = FAMILIES[self.architecture].MIN_WIDTH
        for name, value, net in (("width", self.width, "G"), ("d_width", self.disc_width, "D")):
            check_positive(name, value, "a positive number (1.0 = the paper)")
            low = smallest[net]
            check_number(name, value, low, finite=False, what=(
                f">= {low:g} for architecture={self.architecture!r} (below it a layer of {net} "
                f"would have less than 1 channel: {round(1 / low)} at width 1.0)"))

    def to_train_config(self, progress: bool | None = None) -> TrainConfig:
        """The training engine's configuration of this run (``progress``: the progress bar,
        None for the trainer's default)."""
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, z_dim=self.z_dim, preset=self.setting,
            n_dis=self.n_dis, loss=self.loss, regularizer=self.regularizer, seed=self.seed,
            device=self.device, log_every=50, checkpoint_dir=str(Path(self.out_dir)),
            checkpoint_every=self.eval_every, checkpoint_seconds=CHECKPOINT_SECONDS,
            resume=self.resume, progress=progress,
            g_ema=self.g_ema, lr_decay=self.lr_decay, translate=self.translate,
            channels_last=True, amp=self.amp, compile=self.torch_compile,
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
    """Write ``record`` to ``out_dir/metrics.json`` atomically; return the path."""
    return ckpt.write_json_atomic(record, Path(out_dir) / METRICS_FILE)


def read_metrics(run_dir: str | Path) -> MetricsRecord:
    """A finished run's ``metrics.json``; ValueError if the folder has none."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a finished notebook 05 run: no {METRICS_FILE} in it")
    return json.loads(path.read_text())


# ---------------------------------------------------------------- the run folder
def run_files(out: Path) -> list[str]:
    """The files in ``out`` that show it holds a run: ``checkpoint.pt``, ``metrics.json``."""
    return [name for name in (ckpt.CHECKPOINT_NAME, METRICS_FILE) if (out / name).exists()]


def clear_run(out: Path) -> None:
    """Delete the files a run wrote into ``out`` (:data:`RUN_FILES`, and temporary files of a
    killed write); other files stay."""
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for name in (ckpt.CHECKPOINT_NAME, METRICS_FILE, SIGMA_FILE):
        ckpt.remove_orphans(out / name)


def saved_parameters(out: Path, state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run parameters of the checkpoint ``state`` (kept in it since they exist), else of
    ``out/metrics.json``, else None."""
    saved = (state.get("metadata") or {}).get("run_parameters")
    if saved is None and (out / METRICS_FILE).is_file():
        saved = read_metrics(out)["parameters"]
    return saved


def check_resumable(config: RunConfig, out: Path) -> None:
    """ValueError unless ``out`` holds a checkpoint that ``config`` continues: the same run
    parameters (those of :data:`RESUME_FREE_PARAMETERS` aside) and ``steps`` not below its step."""
    path = out / ckpt.CHECKPOINT_NAME
    if not path.is_file():
        raise ValueError(f"resume=True but there is nothing to resume at {out}: no "
                         f"{ckpt.CHECKPOINT_NAME} in it; use resume=False to start a new run")
    state = ckpt.load(path)
    saved = saved_parameters(out, state)
    if saved is not None:
        ckpt.check_same_config(
            saved, asdict(config), RESUME_FREE_PARAMETERS, path,
            fix="resume=True continues a run only with its own parameters: set them back, or "
                "use resume=False with overwrite=True (or another out_dir) to start afresh")
    ckpt.check_not_past(config.steps, int(state["step"]), path,
                        fix=", or resume=False with overwrite=True to start afresh")


def check_run_folder(config: RunConfig, out: Path) -> None:
    """ValueError if ``config`` may not train into ``out``: a run is there and neither
    ``resume`` nor ``overwrite`` is set, or ``resume`` cannot continue it."""
    if config.resume:
        check_resumable(config, out)
        return
    found = run_files(out)
    if found and not config.overwrite:
        raise ValueError(
            f"out_dir {out} already holds a run ({', '.join(found)}) and resume=False; use "
            "resume=True to continue it, overwrite=True to delete it and start afresh, or "
            "another out_dir")


def claim_folder(config: RunConfig, out: Path) -> FolderLock | None:
    """Take ``out`` for the run of ``config``: its lock (rank 0 alone, returned; None on the
    other ranks), the checks of :func:`check_run_folder`, then (rank 0) the old run's files
    deleted if ``overwrite`` and orphan temporary files removed."""
    lock = FolderLock(out).acquire() if is_main_process() else None
    try:
        check_run_folder(config, out)
        if lock is not None:
            if config.overwrite:
                clear_run(out)
            for name in (ckpt.CHECKPOINT_NAME, METRICS_FILE, SIGMA_FILE):
                ckpt.remove_orphans(out / name)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


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
    lock: FolderLock | None = None  # the run folder's lock (rank 0), held until the run ends
    claimed: bool = False  # the folder is checked and locked for this setup's run

    def release(self) -> None:
        """Give the run folder back (its lock removed); a later :func:`run_sngan` of this setup
        claims it again."""
        if self.lock is not None:
            self.lock.release()
        self.claimed = False


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
    """Validate ``config``, claim ``out_dir`` (:func:`claim_folder`: lock it, refuse a folder the
    run may not train into, clear it if ``overwrite``), then set torch's threads
    (``cpu_threads``), load the data (writing ``real.png``), build G and D (seeded with
    ``seed``) and load the classifier. The folder stays locked until :func:`run_sngan` of the
    returned setup ends (or :meth:`RunSetup.release`)."""
    config.validate()
    out = Path(config.out_dir)
    lock = claim_folder(config, out)  # under torchrun, rank 0 alone writes the run folder
    try:
        return _prepare(config, out, progress, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _prepare(config: RunConfig, out: Path, progress: bool | None,
             lock: FolderLock | None) -> RunSetup:
    """:func:`prepare_run` once the folder is claimed."""
    if config.cpu_threads is not None:
        torch.set_num_threads(config.cpu_threads)
    train_config = config.to_train_config(progress)
    device = resolve_device(config.device)
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
                     classifier_path(config.dataset), lock=lock, claimed=True)
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
    ``resume=True`` training continues from ``out_dir/checkpoint.pt``. The run folder is
    locked until the function returns or raises. Raises ValueError for a bad parameter or a
    folder the run may not train into (see the module's docstring) and
    :class:`~sngan_edu.train.trainer.DivergenceError` if training diverges.
    """
    if isinstance(config, RunSetup):
        setup = config
        if progress is not None:
            setup.train_config = replace(setup.train_config, progress=progress)
        if not setup.claimed:  # a setup whose run already ran: check and lock the folder again
            setup.lock = claim_folder(setup.config, setup.out)
            setup.claimed = True
            if is_main_process():
                save_grid(setup.real_batch, setup.out / "real.png")
    else:
        setup = prepare_run(config, progress)
    try:
        return _train_and_write(setup, callbacks)
    finally:
        setup.release()


def _train_and_write(setup: RunSetup, callbacks: Sequence[Callback]) -> RunResult:
    """The part of :func:`run_sngan` after the folder is claimed."""
    cfg, out = setup.config, setup.out
    own = [SigmaLogger(every=max(1, cfg.steps // 40), exact=True),
           MetricEval(cfg.eval_every, sample_evaluator(setup))]
    trainer = Trainer(setup.G, setup.D, setup.data.sample, setup.train_config,
                      [*own, *callbacks], metadata={"run_parameters": asdict(cfg)})
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
    ckpt.write_json_atomic(trainer.history["sigma"], out / SIGMA_FILE, indent=None)
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
    "check_resumable",
    "check_run_folder",
    "claim_folder",
    "clear_run",
    "build_generator",
    "classifier_path",
    "metrics_record",
    "prepare_run",
    "read_metrics",
    "run_files",
    "run_sngan",
    "sample_evaluator",
    "write_metrics",
]
