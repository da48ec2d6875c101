"""`make demo`: run the whole notebook series headless with papermill into runs/<date-time>/.

Each notebook runs from the notebooks/ folder on its CPU-friendly defaults. Notebooks that declare
an ``out_dir`` parameter write their artefacts (metrics, sample grids, checkpoints) under the run
folder. A short summary is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path

import papermill

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def series(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks in reading order (files named NN_*.ipynb)."""
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def run_series(out_root: Path, notebooks: list[Path] | None = None) -> list[dict]:
    """Execute each notebook into out_root; return one summary record per notebook."""
    out_root.mkdir(parents=True, exist_ok=True)
    records = []
    for notebook in notebooks or series():
        declared = papermill.inspect_notebook(str(notebook))
        parameters = {}
        artefacts = out_root / notebook.stem
        if "out_dir" in declared:
            parameters["out_dir"] = str(artefacts)
        start = time.perf_counter()
        papermill.execute_notebook(
            str(notebook),
            str(out_root / notebook.name),
            parameters=parameters,
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar=False,
        )
        record = {"notebook": notebook.name, "seconds": round(time.perf_counter() - start, 1)}
        metrics = artefacts / "metrics.json"
        if metrics.is_file():
            record["metrics"] = json.loads(metrics.read_text())
        records.append(record)
        print(f"  {notebook.name:45s} {record['seconds']:7.1f} s", flush=True)
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None, help="output folder (default runs/<date-time>)")
    args = parser.parse_args(argv)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_root = Path(args.out) if args.out else REPO_ROOT / "runs" / stamp
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


if __name__ == "__main__":
    main()
