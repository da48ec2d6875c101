"""The prepared GPU check (benchmarks/gpu_check.py) runs on the CPU in its quick mode and writes
every row of its table to JSON (the GPU run itself is for a machine with a GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.py"

ROWS = {
    "engine, standard CNN, fp32", "plain loop, standard CNN, torch SN, fp32",
    "engine, standard CNN, bf16", "plain loop, standard CNN, torch SN, bf16",
    "engine, standard CNN, fp32, per-tensor Adam",
    "engine, standard CNN, fp32, indices drawn on the device",
    "engine, ResNet, fp32", "plain loop, ResNet, torch SN, fp32",
    "engine, standard CNN, n_dis 1, double batch",
    "D step eager, no SN", "D step eager, ours SN", "D step eager, torch SN",
    "engine, standard CNN, compile", "D step compiled, no SN", "D step compiled, ours SN",
    "D step compiled, torch SN", "sigma: eager vs compiled D step",
    "engine, standard CNN, CUDA graphs (reduce-overhead)", "notebook 05 via papermill",
    "plain loop, standard CNN, torch SN, compile + fused Adam", "engine, ResNet, compile",
    "engine, standard CNN, bf16 + compile",
}


def test_quick_cpu_run_writes_every_row(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "SNGAN_EDU_PROGRESS": "0"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick",
                           "--out", str(out)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["device"]["device"] == "cpu" and result["settings"]["quick"] is True
    assert result["total_s"] < 60
    rows = {row["name"]: row for row in result["rows"]}
    assert set(rows) == ROWS
    for row in rows.values():
        assert row["status"] == "ok" or row["status"].startswith("skipped"), row
    first = rows["engine, standard CNN, fp32"]  # the first row always runs
    assert first["status"] == "ok" and first["updates_per_s"] > 0
    assert abs(first["hours_per_100k"] - 100_000 / first["updates_per_s"] / 3600) < 1e-9
    for name in ("engine, standard CNN, compile", "sigma: eager vs compiled D step"):
        assert rows[name]["status"].startswith("skipped: --quick")
    assert rows["engine, standard CNN, CUDA graphs (reduce-overhead)"]["status"] == (
        "skipped: needs CUDA")
    assert rows["notebook 05 via papermill"]["status"] == "skipped: needs CUDA"
    ran = [r for r in rows.values() if r["kind"] == "sn_cost" and r["status"] == "ok"]
    if any(r["name"] == "D step eager, no SN" for r in ran):
        assert all(r["vs_ref"] > 0 for r in ran)
    # one table on stdout, with every row
    assert "G updates/s" in done.stdout and all(name in done.stdout for name in ROWS)
