"""Write student copies of the exercise notebooks with nbgrader's own preprocessors.

    python -m sngan_edu.course.student                    # notebooks/exercises -> student/
    python -m sngan_edu.course.student SRC_DIR OUT_DIR

The exercise notebooks are nbgrader *source* notebooks: solutions sit between
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

DEFAULT_SOURCE = Path("notebooks/exercises")
DEFAULT_OUTPUT = Path("student")

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
        tags = [t for t in cell.metadata.get("tags", []) if not t.startswith("nbval-")]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    return nb


def make_student_copies(
    source: str | Path = DEFAULT_SOURCE, output: str | Path = DEFAULT_OUTPUT
) -> list[Path]:
    """Write the student copy of every ``*.ipynb`` in ``source`` to ``output``; return the paths."""
    source, output = Path(source), Path(output)
    notebooks = sorted(source.glob("*.ipynb"))
    if not notebooks:
        raise ValueError(f"source must be a folder holding exercise notebooks; none in {source}")
    if output.resolve() == source.resolve():
        raise ValueError("output must differ from source: student copies would overwrite solutions")
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = student_notebook(nbformat.read(path, as_version=4))
        target = output / path.name
        nbformat.write(nb, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", default=str(DEFAULT_SOURCE))
    parser.add_argument("output", nargs="?", default=str(DEFAULT_OUTPUT))
    args = parser.parse_args(argv)
    written = make_student_copies(args.source, args.output)
    for path in written:
        print(f"  {path}")
    print(f"wrote {len(written)} student notebooks to {Path(args.output).resolve()}/")


if __name__ == "__main__":
    main()
