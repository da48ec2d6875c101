"""The command line of the course: ``python -m sngan_edu <command> ...``.

Commands (argparse subparsers; each is one function ``add_<name>(subparsers)`` that registers
its parser and sets ``func``, so a new command is one more function in :data:`COMMANDS`):

- ``train``: notebook 05's run (:func:`sngan_edu.experiments.sngan_run.run_sngan`) with one
  flag per :class:`~sngan_edu.experiments.sngan_run.RunConfig` field, generated from the
  dataclass (``--batch-size 64``, ``--resume``/``--no-resume``, ``--n-dis none``), so
  ``--help`` lists every parameter with its default and notebook 05 and the command line are
  the same run. Under ``torchrun`` it trains data-parallel, and rank 0 alone writes the run
  folder:

      python -m sngan_edu train --steps 20 --out-dir runs/try
      torchrun --nproc_per_node 2 -m sngan_edu train --device cpu --steps 4 --out-dir runs/ddp
"""

from __future__ import annotations

import argparse
import inspect
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields
from typing import Any

NONE_WORDS = ("none", "None", "null")


def _field_comments(cls: type) -> dict[str, str]:
    """``{field: its trailing # comment}`` read from the class source (empty if unavailable)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    comments = {}
    for line in lines:
        code, sep, comment = line.partition("#")
        name = code.strip().split(":", 1)[0].strip()
        if sep and name.isidentifier() and ":" in code:
            comments[name] = comment.strip()
    return comments


def _base_type(hint: Any) -> tuple[type, bool]:
    """``(the non-None type, whether None is allowed)`` of a field's type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) == 1:
            return args[0], optional
        raise TypeError(f"unsupported field type {hint!r}")
    return hint, False


def _parse_value(kind: type, optional: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and text in NONE_WORDS:
            return None
        try:
            return kind(text)
        except ValueError:
            wanted = f"{kind.__name__}{' or none' if optional else ''}"
            raise argparse.ArgumentTypeError(f"expected {wanted}; got {text!r}") from None

    parse.__name__ = f"{kind.__name__}{' or none' if optional else ''}"
    return parse


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> list[str]:
    """One ``--flag`` per field of the dataclass ``cls`` (its default, its type, its comment).

    Booleans become ``--name``/``--no-name``; an optional field also takes ``none``. Returns
    the field names, in order.
    """
    hints = typing.get_type_hints(cls)
    comments = _field_comments(cls)
    names = []
    for f in fields(cls):
        kind, optional = _base_type(hints[f.name])
        default = f.default if f.default is not MISSING else None
        flag = "--" + f.name.replace("_", "-")
        help_text = comments.get(f.name) or f.name.replace("_", " ")
        if kind is bool and not optional:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=default, help=help_text)
        else:
            metavar = kind.__name__.upper() + ("|none" if optional else "")
            parser.add_argument(flag, dest=f.name, type=_parse_value(kind, optional),
                                default=default, metavar=metavar, help=help_text)
        names.append(f.name)
    return names


# ------------------------------------------------------------------------------------- train
def add_train(subparsers: argparse._SubParsersAction) -> None:
    from sngan_edu.experiments.sngan_run import RunConfig

    parser = subparsers.add_parser(
        "train", help="train notebook 05's SNGAN run (data-parallel under torchrun)",
        description="Notebook 05's run with its parameters as flags (same names and defaults "
                    "as its parameters cell). Under torchrun --nproc_per_node N, batch-size is "
                    "the global batch and rank 0 alone writes out-dir.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.set_defaults(func=run_train, fields=add_dataclass_arguments(parser, RunConfig))
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (None: when the output is a terminal)")


def run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from sngan_edu.device import resolve_device
    from sngan_edu.experiments.sngan_run import RunConfig, run_sngan
    from sngan_edu.train import distributed

    config = RunConfig(**{name: getattr(args, name) for name in args.fields})
    try:
        config.validate()
    except ValueError as err:
        parser.error(str(err))
    distributed.init(resolve_device(config.device))
    try:
        result = run_sngan(config, progress=args.progress)
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


#: The commands, in --help order. A later command (lab, notebooks, student, sweep, rescore)
#: is one more ``add_<name>`` function here.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (add_train,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sngan_edu",
        description="Spectral normalization for GANs: the course's command line.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = parser._subparsers._group_actions[0].choices[args.command]  # for usage errors
    return int(args.func(args, sub) or 0)


__all__ = ["COMMANDS", "add_dataclass_arguments", "build_parser", "main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
