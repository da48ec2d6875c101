"""The SNGAN run behind notebooks 05 and 07: one function that trains and writes the run folder.

    from sngan_edu.experiments.sngan_run import run_sngan
    from sngan_edu.train.config import RunConfig

    result = run_sngan(RunConfig(steps=300, out_dir="runs/try"))
    result.final        # {"step": 300, "classes": ..., "confidence": ..., "fd": ..., ...}

:class:`~sngan_edu.train.config.RunConfig` holds notebook 05's parameters (with the same
defaults), so ``papermill -p NAME VALUE`` and ``RunConfig(NAME=VALUE)`` are the same run.
:func:`prepare_run` claims ``out_dir`` (:mod:`sngan_edu.train.run_folder`: lock, resume or
overwrite), loads the data, builds the models and loads the classifier; :func:`run_sngan` trains
with :class:`~sngan_edu.train.trainer.Trainer` (logging D's sigmas, scoring samples with the
classifier every ``eval_every`` steps) and writes to ``out_dir``:

- ``real.png``: the first 64 training images;
- ``samples/step_XXXXXX.png``: 64 samples from fixed noise (seed 0) at each evaluation;
- ``samples_final.png``: 64 samples from noise seed 1234 at the end;
- ``checkpoint.pt``: at every evaluation, every 5 minutes of training and at the end;
- ``metrics.json``: the :class:`~sngan_edu.train.run_folder.MetricsRecord`;
- ``sigma_history.json``: the discriminator's per-layer sigmas during training.

With ``conditional=True`` (notebook 07) G and D are the class-conditional models of
:mod:`sngan_edu.models.conditional`, the data sampler returns each batch's labels, the grids show
each class in turn, and each evaluation adds the class agreement (``agreement``, its mean over
the classes, and ``agreement_min``) of its samples, 1,000 requested as each class in turn.

The sweep of notebook 06 (:mod:`sngan_edu.experiments.sweep`) calls :func:`run_sngan` for each
setting and seed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from sngan_edu.data.grids import save_grid
from sngan_edu.data.images import ImageData, load_image_data
from sngan_edu.device import cpu_thread_count
from sngan_edu.metrics import images as image_metrics
from sngan_edu.metrics.classifier import (
    DIGITS_CLASSIFIER,
    DIGITS_PLAIN_CLASSIFIER,
    load_classifier,
)
from sngan_edu.metrics.conditional import class_agreement
from sngan_edu.models import FAMILIES
from sngan_edu.models.conditional import (
    NUM_CLASSES,
    ConcatDiscriminator,
    ConditionalGenerator,
    ProjectionDiscriminator,
)
from sngan_edu.train import checkpoint as ckpt
from sngan_edu.train.callbacks import Callback, MetricEval, SigmaLogger
from sngan_edu.train.config import RunConfig
from sngan_edu.train.distributed import is_main_process
from sngan_edu.train.labels import cycle_labels
from sngan_edu.train.lock import FolderLock
from sngan_edu.train.run_folder import (
    SIGMA_FILE,
    MetricsRecord,
    claim_folder,
    metrics_record,
    write_metrics,
)
from sngan_edu.train.trainer import Trainer

CONDITIONAL_DS = {"projection": ProjectionDiscriminator, "concat": ConcatDiscriminator}
# The split each dataset trains on (the digits: all 1,797; STL-10: its unlabeled images too).
TRAIN_SPLITS = {"digits": "all", "stl10": "train+unlabeled"}
FIDELITY_DATASETS = ("cifar10", "stl10")  # scored with Inception Score and FID
N_EVAL, N_PRECISION = 1000, 10_000  # samples scored at each evaluation / once at the end
EVAL_SEED, PRECISION_SEED, FINAL_GRID_SEED = 0, 1, 1234  # their noise seeds


def build_generator(config: RunConfig, channels: int, num_classes: int = NUM_CLASSES
                    ) -> nn.Module:
    """The run's generator (``config.architecture`` at ``config.width``; conditional: the
    conditional-BN G of ``num_classes``), freshly initialised from torch's global random
    state."""
    if config.conditional:
        return ConditionalGenerator(num_classes, config.z_dim, config.image_size, channels,
                                    config.width)
    family = FAMILIES[config.architecture]
    return family.Generator(z_dim=config.z_dim, image_size=config.image_size, channels=channels,
                            width=config.width, z_categories=config.z_categories)


def build_discriminator(config: RunConfig, channels: int, num_classes: int = NUM_CLASSES
                        ) -> nn.Module:
    """The run's discriminator (``config.architecture`` at ``config.disc_width``; conditional:
    the ``d_conditioning`` D of ``num_classes``, without SN: the trainer applies it)."""
    if config.conditional:
        return CONDITIONAL_DS[config.d_conditioning](num_classes, config.image_size, channels,
                                                     config.disc_width)
    family = FAMILIES[config.architecture]
    return family.Discriminator(image_size=config.image_size, channels=channels,
                                width=config.disc_width)


GREY_DATASETS = ("digits", "mnist", "fashion_mnist")


def memory_estimate(config: RunConfig) -> tuple[int, int]:
    """Bytes a run's training needs: ``(weights, activations)``. Weights: G's and D's
    parameters with their gradients and Adam's two moments (and G's average); activations:
    every layer's output for one batch through G and a real-and-fake batch through D, kept for
    the backward with their gradients. Counted on the meta device: nothing is allocated."""
    channels = 1 if config.dataset in GREY_DATASETS else 3
    outputs = [0]

    def count(module: nn.Module, args: object, out: object) -> None:
        if torch.is_tensor(out):
            outputs[0] += out.numel()

    with torch.device("meta"):
        G, D = build_generator(config, channels), build_discriminator(config, channels)
        leaves = [m for net in (G, D) for m in net.modules() if not list(m.children())]
        hooks = [m.register_forward_hook(count) for m in leaves]
        y = [torch.zeros(config.batch_size, dtype=torch.long)] if config.conditional else []
        fake = G(torch.zeros(config.batch_size, config.z_dim), *y)
        D(torch.cat((fake, fake)), *[torch.cat(y * 2) for _ in y])
    for hook in hooks:
        hook.remove()
    copies = 4 + (config.g_ema is not None)  # weight, gradient, Adam's moments, G's average
    weights = 4 * copies * sum(p.numel() for net in (G, D) for p in net.parameters())
    return weights, 4 * 2 * outputs[0]


def available_memory(device: torch.device) -> int | None:
    """Bytes ``device`` has for a run: a GPU's total memory, the CPU's available memory (None
    if unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[1]
    meminfo = Path("/proc/meminfo")
    if device.type == "cpu" and meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def check_memory(config: RunConfig) -> None:
    """ValueError if the run cannot fit in its device's memory (:func:`memory_estimate`),
    naming what to lower: the widths when the weights dominate, else ``batch_size``."""
    have = available_memory(config.torch_device)
    weights, activations = memory_estimate(config)
    if have is None or weights + activations <= have:
        return
    lower = "width or d_width" if weights >= activations else "batch_size (or the widths)"
    raise ValueError(
        f"this run needs about {(weights + activations) / 2**30:.1f} GiB "
        f"({weights / 2**30:.1f} GiB of weights with their gradients and Adam's state at "
        f"width={config.width:g}, d_width={config.disc_width:g}; {activations / 2**30:.1f} GiB "
        f"of activations at batch_size={config.batch_size}) but {config.torch_device} has "
        f"{have / 2**30:.1f} GiB; lower {lower}")


def classifier_path(dataset: str) -> Path:
    """Where the classifier that scores ``dataset``'s samples lives (beside the digits' one in
    the package's assets; only the digits' ships with the course)."""
    if dataset == "digits":
        return DIGITS_CLASSIFIER
    return DIGITS_CLASSIFIER.parent / f"{dataset}_classifier.pt"


# ---------------------------------------------------------------- the run
@dataclass
class RunSetup:
    """Everything a run builds before training (:func:`prepare_run`)."""

    config: RunConfig
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
    real_ref: Tensor | None = None  # the FD's reference: up to 2,000 of the images G trains on
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
    """Check that the run fits in memory (:func:`check_memory`), claim ``out_dir``
    (:func:`~sngan_edu.train.run_folder.claim_folder`: lock it, refuse a folder the run may not
    train into, clear it if ``overwrite``), then set torch's threads (``cpu_threads``), load the
    data (writing ``real.png``), build G and D (seeded with ``seed``) and load the classifier.
    The folder stays locked until :func:`run_sngan` of the returned setup ends (or
    :meth:`RunSetup.release`)."""
    if config.out_dir is None:
        raise ValueError("out_dir must be a folder for a run (it writes its files there)")
    check_memory(config)
    out = Path(config.out_dir)
    lock = claim_folder(config, out)  # under torchrun, rank 0 alone writes the run folder
    try:
        return _prepare(config if progress is None else config.replace(progress=progress),
                        out, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _prepare(config: RunConfig, out: Path, lock: FolderLock | None) -> RunSetup:
    """:func:`prepare_run` once the folder is claimed."""
    if config.cpu_threads is not None:
        torch.set_num_threads(cpu_thread_count(config.cpu_threads))
    device = config.torch_device
    split = TRAIN_SPLITS.get(config.dataset, "train")
    data = load_image_data(config.dataset, config.data_root, config.image_size,
                           split=split).to(device)
    real_batch = data.float_images(64).cpu()
    if is_main_process():
        save_grid(real_batch, out / "real.png")
    torch.manual_seed(config.seed)
    G = build_generator(config, data.channels, data.num_classes)
    D = build_discriminator(config, data.channels, data.num_classes)
    n_params = {name: sum(p.numel() for p in m.parameters()) for name, m in [("G", G), ("D", D)]}
    setup = RunSetup(config, device, out, data, real_batch, G, D, n_params,
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
        scores = image_metrics.classifier_metrics(setup.classifier, samples, setup.real_ref,
                                                  plain=setup.plain_classifier)
        if trainer.labels is not None:  # samples of each class in turn: did G draw it?
            agreement = class_agreement(image_metrics.classifier_outputs(
                setup.classifier, samples)[0], cycle_labels(n, trainer.labels.num_classes))
            scores.update(agreement=float(agreement.mean()), agreement_min=float(agreement.min()))
        return scores

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
            setup.config = setup.config.replace(progress=progress)
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
    sampler = setup.data.sample_labelled if cfg.conditional else setup.data.sample
    trainer = Trainer(setup.G, setup.D, sampler, cfg, [*own, *callbacks])
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


__all__ = ["RunResult", "RunSetup", "build_discriminator", "build_generator", "classifier_path",
           "prepare_run", "run_sngan", "sample_evaluator"]
