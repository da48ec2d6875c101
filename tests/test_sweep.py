"""The sweep: parameters passed to notebook 05, reuse of finished runs, failures recorded,
the results table, and one real (tiny) papermill sweep."""

from __future__ import annotations

import json

import papermill
import pytest

from sngan_edu import sweep


def _fake_execute(calls, fail_for=()):
    def execute(notebook, output, parameters, **kwargs):
        calls.append(parameters)
        if parameters["regularizer"] in fail_for:
            raise papermill.PapermillExecutionError(
                cell_index=7, exec_count=7, source="trainer.fit()", ename="DivergenceError",
                evalue="training diverged at generator step 3: the discriminator loss became nan",
                traceback=[])
        out = sweep.Path(parameters["out_dir"])
        final = {"step": parameters["steps"], "classes": 10.0, "confidence": 0.9, "fd": 50.0}
        out.joinpath("metrics.json").write_text(json.dumps({
            "parameters": parameters, "step": parameters["steps"], "final": final,
            "optimizer": {"n_dis": 1}, "train_seconds": 1.0}))
    return execute


def test_parameters_reuse_and_failures(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", _fake_execute(calls, fail_for=("none",)))
    res = sweep.run_sweep(["D", "F"], ["sn", "none"], seeds=(0,), steps=7, out_root=tmp_path,
                          extra={"width": 0.25}, results_path=tmp_path / "r.json", verbose=False)
    assert len(calls) == 4
    assert calls[0]["setting"] == "D" and calls[0]["regularizer"] == "sn"
    assert calls[0]["n_dis"] is None and calls[0]["steps"] == 7 and calls[0]["width"] == 0.25
    assert calls[0]["out_dir"].endswith("D_sn_seed0")
    # the sweep's own model, not notebook 05's defaults: G and D at one width, no averaged G
    assert calls[0]["d_width"] is None and calls[0]["g_ema"] is None  # D takes G's width
    assert calls[0]["cpu_threads"] == 1 and calls[0]["translate"] == 0
    assert calls[0]["z_dim"] == 128  # the stored sweep's latent size, whatever 05's default
    assert calls[0]["batch_size"] == 64  # the paper's and the stored sweep's batch
    assert res["parameters"]["width"] == 0.25 and res["parameters"]["d_width"] is None
    status = {(r["setting"], r["regularizer"]): r["status"] for r in res["runs"]}
    assert status == {("D", "sn"): "ok", ("D", "none"): "failed", ("F", "sn"): "ok",
                      ("F", "none"): "failed"}
    failed = next(r for r in res["runs"] if r["status"] == "failed")
    assert failed["error"].startswith("DivergenceError: training diverged")
    assert json.loads((tmp_path / "r.json").read_text()) == res
    # a second sweep reuses the finished runs and only re-runs the failed ones
    calls.clear()
    res2 = sweep.run_sweep(["D", "F"], ["sn", "none"], steps=7, out_root=tmp_path,
                           extra={"width": 0.25}, results_path=None, verbose=False)
    assert [c["regularizer"] for c in calls] == ["none", "none"]
    assert sum(r.get("reused", False) for r in res2["runs"]) == 2
    rows = sweep.sweep_table(res2)
    assert rows[0] == {"setting": "D", "regularizer": "none", "runs": 1, "failed": 1,
                       "classes": None, "confidence": None, "fd": None}
    assert rows[1]["fd"] == 50.0 and rows[1]["failed"] == 0


def test_table_averages_seeds():
    runs = [{"setting": "A", "regularizer": "sn", "seed": s, "status": "ok",
             "final": {"classes": c, "confidence": 0.5, "fd": f}}
            for s, c, f in [(0, 10, 10.0), (1, 8, 30.0)]]
    (row,) = sweep.sweep_table({"runs": runs})
    assert row["classes"] == 9 and row["fd"] == 20.0 and row["runs"] == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="settings"):
        sweep.run_sweep(["G"], results_path=None)
    with pytest.raises(ValueError, match="regularizers"):
        sweep.run_sweep(["A"], ["bn"], results_path=None)
    with pytest.raises(ValueError, match="steps"):
        sweep.run_sweep(["A"], steps=0, results_path=None)
    assert sweep._parse_value("null") is None and sweep._parse_value("0.5") == 0.5
    assert sweep._parse_value("cifar10") == "cifar10"


@pytest.mark.slow
def test_real_tiny_sweep_through_papermill(tmp_path):
    res = sweep.run_sweep(["B"], ["sn", "none"], steps=2, out_root=tmp_path,
                          results_path=tmp_path / "r.json", verbose=False)
    assert [r["status"] for r in res["runs"]] == ["ok", "ok"]
    for reg in ("sn", "none"):
        folder = tmp_path / f"B_{reg}_seed0"
        assert (folder / "05_sngan_training.ipynb").is_file()
        saved = json.loads((folder / "metrics.json").read_text())
        assert saved["parameters"]["regularizer"] == reg and saved["step"] == 2
        assert saved["optimizer"]["n_dis"] == 1 and saved["optimizer"]["lr_g"] == 1e-4
