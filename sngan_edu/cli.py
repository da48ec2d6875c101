"""The command line of the course: ``sngan-edu <command> ...`` (or ``python -m sngan_edu``).

- ``lab [FOLDER]``: copy the course notebooks into FOLDER (default ./sngan-edu-course; files
  already there are kept unless ``--force``) and start JupyterLab there with the course's
  settings.
- ``notebooks DEST``: copy the notebooks out of the installed package.
- ``student SRC DEST``: student copies of exercise notebooks (:mod:`sngan_edu.course.student`).
- ``sweep ...``: the robustness sweep behind notebook 06 (:mod:`sngan_edu.experiments.sweep`).
- ``rescore RUN ...``: score finished runs again (:mod:`sngan_edu.course.rescore`).
- ``classifier ...``: train the classifier that scores a dataset's samples
  (:mod:`sngan_edu.metrics.classifier`).

Commands (argparse subparsers; each is one function ``add_<name>(subparsers)`` that registers
its parser and sets ``func``, so a new command is one more function in :data:`COMMANDS`):

- ``train``: notebook 05's run (:func:`sngan_edu.experiments.sngan_run.run_sngan`) with one
  flag per :class:`~sngan_edu.train.config.RunConfig` field, built from the dataclass by tyro
  (``--batch-size 64``, ``--resume``/``--no-resume``, ``--n-dis None``), so ``--help`` lists
  every parameter with its help text and default, and notebook 05 and the command line are the
  same run. A problem with the run folder (a run already there, the lock, a damaged checkpoint)
  is one error line. Under ``torchrun`` it trains data-parallel, and rank 0 alone writes the run
  folder:

      python -m sngan_edu train --steps 20 --out-dir runs/try
      torchrun --nproc_per_node 2 -m sngan_edu train --device cpu --steps 4 --out-dir runs/ddp
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import shutil
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

NONE_WORDS = ("none", "null")  # also accepted for None, as in notebook 05's parameters


# ------------------------------------------------------------------------------------- train
def add_train(subparsers: argparse._SubParsersAction) -> None:
    # The flags are RunConfig's fields, parsed by tyro in run_train (--help included).
    parser = subparsers.add_parser(
        "train", add_help=False,
        help="train notebook 05's SNGAN run (data-parallel under torchrun); train --help "
             "lists its flags")
    parser.set_defaults(func=run_train, free_words=True)


def _none_words(words: list[str], optional: set[str]) -> list[str]:
    """``words`` with ``none``/``null`` after a flag of an optional field spelt ``None``."""
    out = list(words)
    for i in range(1, len(out)):
        if out[i] in NONE_WORDS and out[i - 1] in optional:
            out[i] = "None"
    return out


def _bool_words(words: list[str], switches: set[str]) -> list[str]:
    """``--name True`` / ``--name False`` as tyro's ``--name`` / ``--no-name`` for the
    switches (the True/False fields without a None)."""
    out: list[str] = []
    for word in words:
        if out and out[-1] in switches and word in ("True", "False", "true", "false"):
            out[-1] = out[-1] if word.lower() == "true" else "--no-" + out[-1][2:]
        else:
            out.append(word)
    return out


def parse_train_config(words: Sequence[str]) -> Any:
    """The :class:`~sngan_edu.train.config.RunConfig` of ``sngan-edu train`` flags (tyro:
    ``--batch-size 64``, ``--resume``/``--no-resume`` or ``--resume True``, ``--n-dis None``).
    A bad value exits
    with a usage error naming the flag."""
    import tyro

    from sngan_edu.train.config import RunConfig

    hints = typing.get_type_hints(RunConfig)
    optional = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(RunConfig)
                if type(None) in typing.get_args(hints[f.name])}
    switches = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(RunConfig)
                if hints[f.name] is bool}
    words = _bool_words(_none_words(list(words), optional), switches)
    return tyro.cli(RunConfig, args=words, prog="sngan-edu train",
                    description="Notebook 05's run with every RunConfig field as a flag "
                                "(RunConfig's defaults). Under torchrun --nproc_per_node N, "
                                "batch-size is the global batch and rank 0 alone writes "
                                "out-dir.")


def run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from sngan_edu.experiments.sngan_run import run_sngan
    from sngan_edu.train import distributed
    from sngan_edu.train.trainer import DivergenceError

    config = parse_train_config(args.rest)
    distributed.init(config.torch_device)
    try:
        result = run_sngan(config)
    except (ValueError, OSError) as err:  # the run folder, the lock, a damaged checkpoint
        print(f"sngan-edu train: error: {err}", file=sys.stderr)
        return 2
    except DivergenceError as err:
        print(f"sngan-edu train: {err}", file=sys.stderr)
        return 1
    finally:
        distributed.teardown()
    if distributed.is_main_process():
        final = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.final.items()}
        print(f"trained {result.trainer.step} generator steps on "
              f"{result.trainer.world_size} process(es) in {result.fit_seconds:.1f} s; {final}")
        print(f"wrote {result.out}:")
        for path in sorted(p for p in result.out.rglob("*") if p.is_file()):
            print(f"  {path.relative_to(result.out)}")
    return 0


# ------------------------------------------------------------------------------- notebooks
DEFAULT_COURSE_FOLDER = "sngan-edu-course"


def add_notebooks(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "notebooks", help="copy the course notebooks out of the installed package",
        description="Copy the course notebooks (lessons, appendices, exercises/) into DEST.")
    parser.add_argument("dest", metavar="DEST", help="folder to copy them into (made if missing)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite notebooks already in DEST (your edits there are lost)")
    parser.set_defaults(func=run_notebooks)


def run_notebooks(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from sngan_edu.course.shipped import copy_notebooks

    try:
        written = copy_notebooks(args.dest, overwrite=args.force)
    except (FileExistsError, ValueError) as err:
        parser.error(str(err))
    print(f"copied {len(written)} notebooks to {os.path.abspath(args.dest)}/")
    return 0


# ------------------------------------------------------------------------------------- lab
def add_lab(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lab", help="JupyterLab on a copy of the course notebooks",
        description="Copy the course notebooks into FOLDER (if they are not there yet) and "
                    "start JupyterLab there with the course's settings.")
    parser.add_argument("folder", metavar="FOLDER", nargs="?", default=DEFAULT_COURSE_FOLDER,
                        help="the course folder (default: ./%(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="copy the notebooks again over those in FOLDER (edits are lost)")
    parser.add_argument("lab_args", nargs="*", metavar="LAB_OPTION",
                        help="options for jupyter lab, after FOLDER and -- "
                             "(sngan-edu lab course -- --no-browser)")
    parser.set_defaults(func=run_lab)


def lab_command(folder: str, extra: Sequence[str] = ()) -> list[str]:
    """The ``jupyter lab`` command line that serves ``folder`` with the course's settings."""
    from sngan_edu.assets import jupyter_settings_dir

    jupyter = shutil.which("jupyter", path=os.path.dirname(sys.executable)) or shutil.which(
        "jupyter")
    if jupyter is None:
        raise FileNotFoundError("jupyter is not installed here: pip install jupyterlab")
    return [jupyter, "lab", f"--LabApp.app_settings_dir={jupyter_settings_dir()}",
            f"--ServerApp.root_dir={os.path.abspath(folder)}", *extra]


def run_lab(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from sngan_edu.course.shipped import copy_notebooks

    try:  # the student's own copies stay as they are unless --force
        written = copy_notebooks(args.folder, overwrite=args.force, keep_existing=not args.force)
    except ValueError as err:
        parser.error(str(err))
    if written:
        print(f"copied {len(written)} notebooks to {os.path.abspath(args.folder)}/")
    extra = [a for a in args.lab_args if a != "--"]
    try:
        command = lab_command(args.folder, extra)
    except FileNotFoundError as err:
        parser.error(str(err))
    print(f"starting JupyterLab in {os.path.abspath(args.folder)}; open 01 and read in order",
          flush=True)
    os.execv(command[0], command)  # replaces this process (tests mock it)
    return 0  # pragma: no cover


# --------------------------------------------------------------------------------- student
def add_student(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "student", help="student copies of exercise notebooks (solutions stubbed out)",
        description="Write the student copy of every solved exercise notebook in SRC to DEST "
                    "(nbgrader's preprocessors: solutions stubbed, hidden tests removed). The "
                    "solved sources are in instructor/exercises of the course's repository.")
    parser.add_argument("source", metavar="SRC", help="folder of solved exercise notebooks, "
                        "e.g. instructor/exercises")
    parser.add_argument("output", metavar="DEST", help="folder for the student copies")
    parser.add_argument("--force", action="store_true",
                        help="overwrite notebooks already in DEST (edits there are lost)")
    parser.set_defaults(func=run_student)


def run_student(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from sngan_edu.course.student import make_student_copies

    try:
        written = make_student_copies(args.source, args.output, overwrite=args.force)
    except (ValueError, FileExistsError) as err:
        parser.error(str(err))
    for path in written:
        print(f"  {path}")
    print(f"wrote {len(written)} student notebooks to {os.path.abspath(args.output)}/")
    return 0


# ------------------------------------------------------------------------- sweep, rescore
def _module_command(name: str, module: str, help_text: str) -> Callable[
        [argparse._SubParsersAction], None]:
    """The ``add_<name>`` of a command whose module has ``add_arguments(parser)`` and
    ``run_from_arguments(args, parser, words)`` (its own ``python -m`` entry point shares them)."""

    def add(subparsers: argparse._SubParsersAction) -> None:
        target = importlib.import_module(module)
        parser = subparsers.add_parser(
            name, help=help_text, description=target.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        target.add_arguments(parser)
        parser.set_defaults(func=run)

    def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        importlib.import_module(module).run_from_arguments(args, parser, args.words)
        return 0

    add.__name__ = f"add_{name}"
    return add


add_sweep = _module_command(
    "sweep", "sngan_edu.experiments.sweep",
    "the robustness sweep behind notebook 06 (settings A-F, SN or not)")
add_rescore = _module_command(
    "rescore", "sngan_edu.course.rescore",
    "score finished notebook 05 runs again with more samples")
add_classifier = _module_command(
    "classifier", "sngan_edu.metrics.classifier",
    "train the classifier that scores a dataset's samples (the digits' one ships)")


#: The commands, in --help order: one ``add_<name>`` function each.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_lab, add_notebooks, add_train, add_student, add_sweep, add_rescore, add_classifier)


def build_parser() -> argparse.ArgumentParser:
    """The ``sngan-edu`` parser, one subcommand per function in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="sngan-edu",
        description="Spectral normalization for GANs: the course's command line.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sngan-edu`` with ``argv`` (default: the process's arguments); return its exit
    status."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(words)
    sub = parser._subparsers._group_actions[0].choices[args.command]  # for usage errors
    if rest and not getattr(args, "free_words", False):
        sub.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest  # train's flags, parsed by tyro
    args.words = words[words.index(args.command) + 1:]  # the command's own options, as typed
    return int(args.func(args, sub) or 0)


__all__ = ["COMMANDS", "DEFAULT_COURSE_FOLDER", "build_parser", "lab_command", "main",
           "parse_train_config"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
