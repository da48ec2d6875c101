"""How long each notebook takes to run, against the run time its opening cell promises.

    .venv/bin/python benchmarks/notebook_times.py            # every notebook, one run each
    .venv/bin/python benchmarks/notebook_times.py 01 05      # notebooks whose name starts so

Each notebook is executed from its own folder (as a student runs it), without writing it back.
Notebook 05 refuses a folder that holds a finished run, so its scratch folder is cleared first,
as `make notebooks` does. Prints the wall time and the first sentence of the opening cell that
names a time, so the two can be compared side by side. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "instructor" / "exercises").glob("*.ipynb")
)
SCRATCH = ROOT / "runs" / "05_sngan_training"


def promised(nb: nbformat.NotebookNode) -> str:
    """The opening cell's sentence about run time ("... runs in about 5 seconds ...")."""
    opening = next(c.source for c in nb.cells if c.cell_type == "markdown")
    text = " ".join(opening.split())
    for sentence in re.split(r"(?<=[.;)])\s+", text):
        if re.search(r"\b(seconds?|minutes?)\b", sentence) and re.search(
            r"run|execut|cell", sentence, re.IGNORECASE
        ):
            return sentence
    return "-"


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    if path.stem == "05_sngan_training":
        shutil.rmtree(SCRATCH, ignore_errors=True)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(prefixes: list[str]) -> None:
    chosen = [p for p in NOTEBOOKS if not prefixes or p.stem.startswith(tuple(prefixes))]
    for path in chosen:
        seconds = run(path)
        label = f"{path.parent.name}/{path.stem}" if path.parent.name == "exercises" else path.stem
        print(f"{label:45s} {seconds:7.1f} s   promised: {promised(nbformat.read(path, 4))}",
              flush=True)
    shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
