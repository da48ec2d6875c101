"""Write student copies of the exercise notebooks with nbgrader's own preprocessors.

    python -m sngan_edu.course.student --force     # instructor/exercises -> notebooks/exercises
    python -m sngan_edu.course.student SRC_DIR OUT_DIR  # refuses to overwrite without --force
    python -m sngan_edu.course.student --check     # fails if a student copy is stale

The solved exercise notebooks live in ``instructor/exercises/`` of the repository (they are not
part of the package); ``notebooks/exercises/`` holds the student copies generated from them,
which is what the badges, ``sngan-edu lab`` and the wheel hand out. The sources are nbgrader
*source* notebooks: solutions sit between
``### BEGIN SOLUTION`` and ``### END SOLUTION``, autograder cells carry nbgrader metadata and may
hold ``### BEGIN HIDDEN TESTS`` regions. A student copy is what ``nbgrader generate_assignment``
would release, minus the course database: solutions replaced by
``raise NotImplementedError()``, hidden tests removed, outputs cleared, read-only cells locked,
checksums recorded (so ``nbgrader autograde`` can tell if a locked cell was edited), and the
``nbval-*`` cell tags of the maintainers' regression test dropped. Teachers who
run a full nbgrader course can instead copy the exercise notebooks into ``source/<assignment>/``
and use ``nbgrader generate_assignment`` itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)

DEFAULT_SOURCE = Path("instructor/exercises")
DEFAULT_OUTPUT = Path("notebooks/exercises")
#: Markers that only a source notebook holds (and a student copy never may).
SOURCE_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS",
                  "### END HIDDEN TESTS")

# The order of nbgrader's GenerateAssignment converter, without the steps that need a course
# (IncludeHeaderFooter, InstantiateTests, SaveCells writes to the database). As there, the hidden
# tests are cleared after the first checksums and the checksums computed again.
PIPELINE = (
    LockCells,
    ClearSolutions,
    ClearOutput,
    CheckCellMetadata,
    ComputeChecksums,
    ClearHiddenTests,
    ClearMarkScheme,
    ComputeChecksums,
    CheckCellMetadata,
)


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the student version of a source notebook (the input is not modified)."""
    nb = nbformat.from_dict(nb)  # deep copy
    resources = ResourcesDict()
    for preprocessor in PIPELINE:
        nb, resources = preprocessor().preprocess(nb, resources)
    nb.metadata.pop("widgets", None)  # stored widget views belong to the executed solution
    for cell in nb.cells:  # nbval's tags are for the maintainers' regression test
        cell.metadata.pop("execution", None)  # timings of the solved run
        tags = [t for t in cell.metadata.get("tags", []) if not t.startswith("nbval-")]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    return nb


def _is_source(nb: nbformat.NotebookNode) -> bool:
    return any(SOURCE_MARKERS[0] in cell.source for cell in nb.cells)


def _sources(source: Path) -> list[Path]:
    notebooks = sorted(source.glob("*.ipynb"))
    if not notebooks:
        raise ValueError(f"source must be a folder holding exercise notebooks; none in {source}")
    return notebooks


def make_student_copies(
    source: str | Path = DEFAULT_SOURCE, output: str | Path = DEFAULT_OUTPUT,
    overwrite: bool = False,
) -> list[Path]:
    """Write the student copy of every ``*.ipynb`` in ``source`` to ``output``; return the paths.

    A notebook already in ``output`` with the same name may be a student's work:
    FileExistsError naming them, and nothing written, unless ``overwrite`` is True. A source
    without ``### BEGIN SOLUTION`` (a student copy itself) is refused with ValueError.
    """
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite must be True or False; got {overwrite!r}")
    source, output = Path(source), Path(output)
    notebooks = _sources(source)
    if output.resolve() == source.resolve():
        raise ValueError("output must differ from source: student copies would overwrite solutions")
    copies = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        if not _is_source(nb):
            raise ValueError(f"source must hold the solved exercise notebooks; {path} has no "
                             "'### BEGIN SOLUTION' (a student copy?). The solved sources are in "
                             "instructor/exercises/ of the course's repository.")
        copies[output / path.name] = student_notebook(nb)
    existing = [str(target) for target in copies if target.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{output} already holds {', '.join(existing)}; pick another "
                              "folder, or overwrite them (--force)")
    output.mkdir(parents=True, exist_ok=True)
    for target, nb in copies.items():
        nbformat.write(nb, target)
    return list(copies)


def stale_student_copies(
    source: str | Path = DEFAULT_SOURCE, output: str | Path = DEFAULT_OUTPUT
) -> list[Path]:
    """The student copies in ``output`` that are missing or differ from what ``source`` gives."""
    stale = []
    for path in _sources(Path(source)):
        target = Path(output) / path.name
        expected = student_notebook(nbformat.read(path, as_version=4))
        if not target.exists() or nbformat.read(target, as_version=4) != expected:
            stale.append(target)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", default=str(DEFAULT_SOURCE))
    parser.add_argument("output", nargs="?", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--force", action="store_true",
                        help="overwrite notebooks that already exist in OUT_DIR")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a student copy in OUT_DIR is stale")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_student_copies(args.source, args.output)
            for path in stale:
                print(f"  stale: {path}")
            print(f"{len(stale)} stale student copies in {args.output}; regenerate with "
                  f"python -m sngan_edu.course.student {args.source} {args.output} --force"
                  if stale else f"the student copies in {args.output} are up to date")
            return 1 if stale else 0
        written = make_student_copies(args.source, args.output, overwrite=args.force)
    except (ValueError, FileExistsError) as err:
        parser.error(str(err))
    for path in written:
        print(f"  {path}")
    print(f"wrote {len(written)} student notebooks to {Path(args.output).resolve()}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
