"""`make demo`: run the whole notebook series headless with papermill into runs/<date-time>/.

Each notebook runs from the installed notebooks' folder on its CPU-friendly defaults, with a
progress bar per notebook and per cell. Notebooks that declare an ``out_dir`` parameter write
their artefacts (metrics, sample grids, checkpoints) under the run folder. At the end the folder
holds ``index.html`` (:mod:`sngan_edu.course.report`: one section per notebook, its figures and
a link to it rendered as HTML) and ``summary.json``; the last line printed is the page's path.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

import papermill
from jupyter_client.manager import KernelManager
from tqdm.auto import tqdm

from sngan_edu.course.report import write_report
from sngan_edu.course.shipped import notebooks_dir


def series(notebook_dir: Path | None = None) -> list[Path]:
    """The course notebooks in reading order (files named NN_*.ipynb; by default the shipped
    ones, :func:`sngan_edu.course.shipped.notebooks_dir`)."""
    notebook_dir = notebooks_dir() if notebook_dir is None else Path(notebook_dir)
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def _execute(notebook: Path, target: Path, parameters: dict) -> None:
    """Run one notebook with papermill on a kernel that talks over IPC sockets (local files),
    not TCP: nothing to eavesdrop on, and no warning about it in the output."""
    with tempfile.TemporaryDirectory() as sockets:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "k"))
        try:
            papermill.execute_notebook(
                str(notebook), str(target), parameters=parameters, cwd=str(notebook.parent),
                kernel_name="python3", km=km, progress_bar={"leave": False, "desc": notebook.stem},
            )
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)


def run_series(out_root: Path, notebooks: list[Path] | None = None) -> list[dict]:
    """Execute each notebook into out_root; return one summary record per notebook."""
    out_root.mkdir(parents=True, exist_ok=True)
    records = []
    notebooks = notebooks or series()
    bar = tqdm(notebooks, desc="notebooks", unit="notebook")
    for notebook in bar:
        declared = papermill.inspect_notebook(str(notebook))
        parameters = {}
        artefacts = out_root / notebook.stem
        if "out_dir" in declared:
            parameters["out_dir"] = str(artefacts)
        start = time.perf_counter()
        _execute(notebook, out_root / notebook.name, parameters)
        record = {"notebook": notebook.name, "seconds": round(time.perf_counter() - start, 1)}
        metrics = artefacts / "metrics.json"
        if metrics.is_file():
            record["metrics"] = json.loads(metrics.read_text())
        records.append(record)
        bar.write(f"  {notebook.name:45s} {record['seconds']:7.1f} s")
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None, help="output folder (default runs/<date-time>)")
    args = parser.parse_args(argv)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_root = Path(args.out) if args.out else Path("runs") / stamp
    print(f"sngan-edu demo: executing the notebook series into {out_root}", flush=True)
    records = run_series(out_root)
    (out_root / "summary.json").write_text(json.dumps(records, indent=2))
    total = sum(r["seconds"] for r in records)
    print(f"done: {len(records)} notebooks in {total:.0f} s; results in {out_root}")
    for record in records:
        metrics = record.get("metrics") or {}
        final = metrics.get("final", metrics)  # notebook 05 keeps its last evaluation there
        numbers = {k: v for k, v in final.items() if isinstance(v, int | float)}
        if numbers:
            text = ", ".join(f"{key} {value:.4g}" for key, value in numbers.items())
            print(f"  {record['notebook']}: {text}")
    index = write_report(out_root, records)
    print(f"open this page in a browser: {index}")


if __name__ == "__main__":
    main()
