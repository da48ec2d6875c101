"""Score finished runs of notebook 05 again, with many more samples than during training.

A mean confidence over 1,000 samples has a standard error of about 0.006, which is as large as
the differences between runs that one would like to compare. This reads each run folder
(``metrics.json`` for the run's :class:`~sngan_edu.train.config.RunConfig`,
``checkpoint.pt`` for its weights), draws
``--samples`` fresh samples from the generator that sampled (the averaged one when the run used
``g_ema``) and scores them with the course's classifier:

    python -m sngan_edu.course.rescore runs/seeds05d/D_sn_seed0 runs/seeds05d/D_sn_seed1 \\
        --samples 10000 --results sngan_edu/assets/studies/notebook05_seeds_rescored.json

Every run is checked first (a finished run folder whose generator rebuilds from its checkpoint
and makes images with the classifier's channels), so that a bad folder stops the command before
any scoring; the results file is rewritten (atomically) after each run, so an interruption keeps
the runs scored so far.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sngan_edu.experiments.sngan_run import build_generator
from sngan_edu.metrics import images as image_metrics
from sngan_edu.metrics.classifier import DIGITS_CLASSIFIER, load_classifier
from sngan_edu.train import checkpoint
from sngan_edu.train.config import RunConfig
from sngan_edu.train.run_folder import read_metrics

EMA_PREFIX = "module."  # torch's AveragedModel keeps the averaged weights under this prefix


def _output_channels(state: dict[str, torch.Tensor]) -> int:
    """Image channels of a generator, read from its last 4-d weight (the output convolution)."""
    kernels = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 4]
    if not kernels:
        raise ValueError("the checkpoint's generator has no convolution weights")
    return int(kernels[-1].shape[0])


def _run_config(record: dict[str, Any]) -> RunConfig:
    """The config of a run's ``metrics.json``, on the CPU (the run may have trained on a GPU)."""
    return RunConfig.from_parameters(record["parameters"], device="cpu")


def _sampling_generator(run_dir: Path, config: RunConfig) -> nn.Module:
    """The run's generator that samples (averaged if it used ``g_ema``), in eval mode."""
    state = checkpoint.load(run_dir / "checkpoint.pt")
    weights = state["G"]
    if state.get("G_ema") is not None:
        weights = {k[len(EMA_PREFIX):]: v for k, v in state["G_ema"].items()
                   if k.startswith(EMA_PREFIX)}
    G = build_generator(config, channels=_output_channels(weights))
    G.load_state_dict(weights)
    return G.eval()


def load_run_generator(run_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The generator a notebook 05 run samples from (averaged if it used ``g_ema``), in eval
    mode, and the run's parameters from ``metrics.json``."""
    run_dir = Path(run_dir)
    config = _run_config(read_metrics(run_dir))
    return _sampling_generator(run_dir, config), config.parameters()


def rescore_run(
    run_dir: str | Path, classifier: nn.Module, n_samples: int = 10_000, seed: int = 1
) -> dict[str, Any]:
    """Mean confidence (with its standard error) and class coverage of ``n_samples`` fresh
    samples of a run, next to the 1,000-sample confidence the run reported."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an int >= 2; got {n_samples!r}")
    run_dir = Path(run_dir)
    record = read_metrics(run_dir)
    config = _run_config(record)
    G = _sampling_generator(run_dir, config)
    fake = image_metrics.generate(G, n_samples, config.z_dim, seed=seed)
    probs, _ = image_metrics.classifier_outputs(classifier, fake)
    return {
        "run": run_dir.name,
        "n_samples": n_samples,
        "seed": seed,
        **image_metrics.confidence_estimate(probs),
        "classes": image_metrics.class_coverage(probs),
        "reported_confidence": record["final"].get("confidence"),
    }


def _input_channels(classifier: nn.Module) -> int | None:
    """The image channels ``classifier`` takes (its first convolution's), None if it has none."""
    conv = next((m for m in classifier.modules() if isinstance(m, nn.Conv2d)), None)
    return None if conv is None else conv.in_channels


def check_runs(runs: Sequence[str | Path], classifier: nn.Module) -> None:
    """ValueError naming every run that cannot be scored (not a finished run, a damaged
    checkpoint, a generator that does not rebuild, images the classifier cannot take)."""
    wanted = _input_channels(classifier)
    problems = []
    for run in runs:
        try:
            G, _ = load_run_generator(run)
            if wanted is not None and G.channels != wanted:
                raise ValueError(f"its generator makes {G.channels}-channel images but the "
                                 f"classifier takes {wanted}-channel ones (a run on another "
                                 "dataset: pass that dataset's --classifier)")
        except (ValueError, RuntimeError, KeyError) as err:
            problems.append(f"{run}: {err}")
    if problems:
        raise ValueError("nothing was scored; fix or leave out these runs:\n  "
                         + "\n  ".join(problems))


def _describe(row: dict[str, Any]) -> str:
    """One printed line of a rescored run."""
    reported = row["reported_confidence"]
    before = "n/a" if reported is None else f"{reported:.4f}"
    return (f"{row['run']}: confidence {row['confidence']:.4f} +- {row['confidence_se']:.4f} "
            f"over {row['n_samples']} samples ({row['classes']} classes); reported {before} "
            "over 1000")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options (``sngan-edu rescore`` and this module's ``main``)."""
    parser.add_argument("runs", nargs="+", help="run folders written by notebook 05")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1, help="seed of the fresh latent vectors")
    parser.add_argument("--classifier", default=str(DIGITS_CLASSIFIER))
    parser.add_argument("--results", help="write the scores to this JSON file")


def run_from_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser,
                       words: list[str], prog: str = "sngan-edu rescore") -> None:
    """Rescore the runs that parsed options ``args`` name; ``words``: the options as typed
    (recorded in the results file)."""
    if args.samples < 2:
        parser.error(f"--samples must be at least 2; got {args.samples}")
    classifier = load_classifier(args.classifier, device="cpu")
    try:  # every run checked before any is scored
        check_runs(args.runs, classifier)
    except ValueError as err:
        parser.error(str(err))
    command = " ".join([prog, *words])
    rows: list[dict[str, Any]] = []
    for run in args.runs:
        rows.append(rescore_run(run, classifier, args.samples, args.seed))
        print(_describe(rows[-1]))
        if args.results:  # the runs scored so far survive an interruption
            checkpoint.write_json_atomic({"command": command, "runs": rows}, args.results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    words = list(sys.argv[1:] if argv is None else argv)
    run_from_arguments(parser.parse_args(words), parser, words,
                       prog="python -m sngan_edu.course.rescore")


if __name__ == "__main__":
    main()
