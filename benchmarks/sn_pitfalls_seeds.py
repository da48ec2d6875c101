"""The SN pitfalls appendix's short training runs over several seeds: what holds for every seed.

    .venv/bin/python benchmarks/sn_pitfalls_seeds.py                 # seeds 0-4, prints a table
    .venv/bin/python benchmarks/sn_pitfalls_seeds.py --update-stored  # also writes the results

A 200-step training run differs from one CPU type to another in its last bits and then in more
(a different float kernel is, in effect, another seed), so the appendix states of its runs only
what holds over all the seeds here, and its facts file asserts only that. The runs are the
notebook's own code cells, executed with the seeds replaced: the EMA run (section 2, model seed
and data seed), the refresh of the averaged copy, and the two sigma demos (section 3). Results:
benchmarks/results/sn_pitfalls_seeds.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "appendix_sn_pitfalls.ipynb"
STORED = Path(__file__).resolve().parent / "results" / "sn_pitfalls_seeds.json"


def _cell(cells: list, marker: str) -> str:
    found = [c.source for c in cells if c.cell_type == "code" and marker in c.source]
    if len(found) != 1:
        raise RuntimeError(f"expected one code cell with {marker!r} in {NOTEBOOK.name}")
    return found[0]


def notebook_runs(seed: int) -> dict:
    """The appendix's EMA run, refresh and sigma demos with model seed ``seed`` (data seed
    ``seed + 1``, as the notebook's 0 and 1); returns what its text reads off them."""
    cells = nbformat.read(NOTEBOOK, 4).cells
    imports = _cell(cells, "from sngan_edu.models.standard_cnn import")
    ema = _cell(cells, "disc_ema = AveragedModel")
    refresh = _cell(cells, "sn.refresh_power_iteration(averaged)")
    demos = _cell(cells, "two_calls = train_sigma_demo")
    data_seed = f"torch.Generator().manual_seed({seed + 1})"
    for old, new in (("torch.manual_seed(0)", f"torch.manual_seed({seed})"),
                     ("torch.Generator().manual_seed(1)", data_seed)):
        if old not in ema:
            raise RuntimeError(f"the EMA cell no longer contains {old!r}")
        ema = ema.replace(old, new)
    demos = demos.replace("steps=200)", f"steps=200, seed={seed})")
    demos = demos.replace("steps=200, joint=False)", f"steps=200, joint=False, seed={seed})")
    if demos.count(f"seed={seed}") != 2:
        raise RuntimeError("the sigma-demo cell no longer calls train_sigma_demo(..., steps=200)")
    ns: dict = {}
    imports = imports.replace("from sngan_edu.course.notebook import setup_notebook", "")
    imports = imports.replace("setup_notebook(seed=0)", "")
    for source in (imports, ema, refresh, demos):
        exec(compile(source, str(NOTEBOOK), "exec"), ns)  # the page's own code
    lag = ns["max_normalized_sigma"]
    return {
        "seed": seed,
        "trained_max_deviation": max(abs(s - 1) for s in ns["trained_sigmas"].values()),
        "trained_product": math.prod(ns["trained_sigmas"].values()),
        "averaged_max_sigma": max(ns["averaged_sigmas"].values()),
        "averaged_min_sigma": min(ns["averaged_sigmas"].values()),
        "averaged_product": math.prod(ns["averaged_sigmas"].values()),
        "averaged_min_u_length": min(u for u, _ in ns["lengths"].values()),
        "refreshed_max_deviation": max(abs(s - 1) for s in ns["refreshed"].values()),
        "refreshed_more_max_deviation": max(abs(s - 1) for s in ns["refreshed_more"].values()),
        "one_batch_max_lag": lag(ns["one_batch"]),
        "one_batch_max_lag_after_100": lag(ns["one_batch"], after_step=100),
        "two_calls_max_lag": lag(ns["two_calls"]),
        "two_calls_max_lag_after_100": lag(ns["two_calls"], after_step=100),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--update-stored", action="store_true",
                        help=f"write the results to {STORED.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = []
    for seed in args.seeds:
        rows.append(notebook_runs(seed))
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in rows[-1].items()), flush=True)
    keys = [k for k in rows[0] if k != "seed"]
    print(f"\nover seeds {args.seeds} ({time.perf_counter() - start:.0f} s):")
    for k in keys:
        values = [r[k] for r in rows]
        print(f"  {k:32s} min {min(values):.4g}  max {max(values):.4g}")
    if args.update_stored:
        STORED.parent.mkdir(parents=True, exist_ok=True)
        STORED.write_text(json.dumps({"command": "python benchmarks/sn_pitfalls_seeds.py "
                                                 "--update-stored",
                                      "notebook": NOTEBOOK.name, "runs": rows}, indent=1) + "\n")
        print(f"wrote {STORED.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
