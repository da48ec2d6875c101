"""Re-execute notebooks in place so their stored outputs match the code (`make notebooks`).

    python tools/execute_notebooks.py notebooks/01_svd_vs_power_iteration.ipynb [...]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KERNEL_NAME = "python3"


def execute_in_place(path: str | Path, timeout: int = 1800) -> float:
    """Execute one notebook from its own folder and overwrite it with outputs; return seconds."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"notebook not found: {path}")
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3",
        "language": "python",
    }
    os.environ.setdefault("PYTHONHASHSEED", "0")
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        store_widget_state=True,
    )
    client.execute()
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+", help="the .ipynb files to re-execute")
    args = parser.parse_args(argv)
    for notebook in args.notebooks:
        seconds = execute_in_place(notebook)
        print(f"executed {notebook} in {seconds:.0f} s")


if __name__ == "__main__":
    main()
