"""The sweep: the parameters of each run, reuse of finished runs, failures recorded, runs in
parallel processes, the results table, and one real (tiny) sweep through run_sngan."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torchvision.utils import make_grid

from sngan_edu.experiments import sweep
from sngan_edu.train import run_folder
from sngan_edu.train.trainer import DivergenceError


def _fake_run(calls, fail_for=()):
    """Stands in for run_sngan: records the config and writes a metrics.json."""
    def run(config, callbacks=(), progress=None):
        calls.append(config)
        if config.regularizer in fail_for:
            raise DivergenceError("training diverged at generator step 3: the discriminator "
                                  "loss became nan", step=3)
        final = {"step": config.steps, "classes": 10.0, "confidence": 0.9, "fd": 50.0}
        record = {"parameters": config.parameters(), "step": config.steps, "final": final,
                  "optimizer": {"n_dis": 1}, "train_seconds": 1.0}
        sweep.Path(config.out_dir).mkdir(parents=True, exist_ok=True)
        run_folder.write_metrics(config.out_dir, record)
        return SimpleNamespace(record=record)
    return run


def test_parameters_reuse_and_failures(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sweep, "run_sngan", _fake_run(calls, fail_for=("none",)))
    res = sweep.run_sweep(["D", "F"], ["sn", "none"], seeds=(0,), steps=7, out_root=tmp_path,
                          extra={"width": 0.25}, results_path=tmp_path / "r.json", verbose=False)
    assert len(calls) == 4
    assert calls[0].setting == "D" and calls[0].regularizer == "sn"
    assert calls[0].n_dis is None and calls[0].steps == 7 and calls[0].width == 0.25
    assert calls[0].out_dir.endswith("D_sn_seed0") and calls[0].eval_every == 7
    assert calls[0].data_root is None  # the per-user data folder, whatever the current one
    # the sweep's own pinned model (notebook 05's CPU model, sampled from G itself)
    assert calls[0].d_width == 0.125 and calls[0].g_ema is None
    assert calls[0].cpu_threads == 1 and calls[0].translate == 0
    assert calls[0].z_dim == 128 and calls[0].batch_size == 32
    assert res["parameters"]["width"] == 0.25 and res["parameters"]["d_width"] == 0.125
    assert res["notebook"] == "05_sngan_training.ipynb"
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
    assert [c.regularizer for c in calls] == ["none", "none"]
    assert sum(r.get("reused", False) for r in res2["runs"]) == 2
    rows = sweep.sweep_table(res2)
    assert rows[0] == {"setting": "D", "regularizer": "none", "runs": 1, "failed": 1,
                       "classes": None, "confidence": None, "fd": None, "classes_range": None,
                       "confidence_range": None, "fd_range": None}
    assert rows[1]["fd"] == 50.0 and rows[1]["failed"] == 0


def test_a_results_file_of_another_study_is_refused_unless_replaced(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sweep, "run_sngan", _fake_run(calls))
    results = tmp_path / "study.json"
    sweep.run_sweep(["D"], ["sn"], steps=7, out_root=tmp_path, results_path=results,
                    verbose=False)
    stale = sweep.samples_folder(results) / "F_none_seed0.png"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"a grid of the old study")
    before, calls[:] = results.read_bytes(), []
    with pytest.raises(ValueError, match=r"study\.json holds a study with other steps \(steps: "
                                         r"7 there, 3 here\); pass replace=True"):
        sweep.run_sweep(["D"], ["sn"], steps=3, out_root=tmp_path / "new",
                        results_path=results, verbose=False)
    assert calls == [] and results.read_bytes() == before  # refused before any run
    with pytest.raises(ValueError, match="other parameters"):
        sweep.run_sweep(["D"], ["sn"], steps=7, out_root=tmp_path / "new", extra={"width": 1},
                        results_path=results, verbose=False)
    replaced = sweep.run_sweep(["D"], ["sn"], steps=3, out_root=tmp_path / "new",
                               results_path=results, verbose=False, replace=True)
    assert json.loads(results.read_text()) == replaced and replaced["steps"] == 3
    assert len(replaced["commands"]) == 1 and len(replaced["runs"]) == 1
    assert not stale.exists()  # the old study's sample grids went with it
    more = sweep.run_sweep(["D"], ["none"], steps=3, out_root=tmp_path / "new",
                           results_path=results, verbose=False)  # the same study grows
    assert len(more["runs"]) == 2 and len(more["commands"]) == 2


def test_table_averages_seeds():
    runs = [{"setting": "A", "regularizer": "sn", "seed": s, "status": "ok",
             "final": {"classes": c, "confidence": 0.5, "fd": f}}
            for s, c, f in [(0, 10, 10.0), (1, 8, 30.0)]]
    (row,) = sweep.sweep_table({"runs": runs})
    assert row["classes"] == 9 and row["fd"] == 20.0 and row["runs"] == 2
    assert row["classes_range"] == (8, 10) and row["fd_range"] == (10.0, 30.0)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="settings"):
        sweep.run_sweep(["G"], results_path=None)
    with pytest.raises(ValueError, match="regularizers"):
        sweep.run_sweep(["A"], ["bn"], results_path=None)
    with pytest.raises(ValueError, match="steps"):
        sweep.run_sweep(["A"], steps=0, results_path=None)
    with pytest.raises(ValueError, match="jobs"):
        sweep.run_sweep(["A"], jobs=0, results_path=None)
    with pytest.raises(ValueError, match="loss must be one of"):  # before any run starts
        sweep.run_sweep(["A"], extra={"loss": "hinj"}, out_root=tmp_path, results_path=None)
    assert list(tmp_path.iterdir()) == []
    assert sweep._parse_value("null") is None and sweep._parse_value("0.5") == 0.5
    assert sweep._parse_value("cifar10") == "cifar10"


@pytest.mark.slow
def test_real_tiny_sweep_in_two_processes(tmp_path):
    tiny = {"width": 0.0625, "d_width": 0.0625, "batch_size": 8, "z_dim": 16}
    res = sweep.run_sweep(["B"], ["sn", "none"], steps=2, out_root=tmp_path, extra=tiny,
                          results_path=tmp_path / "r.json", verbose=False, jobs=2)
    assert [(r["regularizer"], r["status"]) for r in res["runs"]] == [("sn", "ok"),
                                                                     ("none", "ok")]
    for reg in ("sn", "none"):
        saved = run_folder.read_metrics(tmp_path / f"B_{reg}_seed0")
        assert saved["parameters"]["regularizer"] == reg and saved["step"] == 2
        assert saved["optimizer"]["n_dis"] == 1 and saved["optimizer"]["lr_g"] == 1e-4
    assert [r["samples"] for r in res["runs"]] == ["B_sn_seed0.png", "B_none_seed0.png"]
    # a run in this process (the sweep with --jobs 1) gives the same scores
    here = sweep.run_one("B", "sn", 0, 2, tmp_path / "here", tiny)
    assert here["final"] == res["runs"][0]["final"] and not here.get("reused")


def test_final_sample_grids_are_kept_beside_the_results(tmp_path, monkeypatch):
    from sngan_edu.data.grids import save_grid

    calls = []
    fake = _fake_run(calls)
    grey = torch.rand(4, 1, 6, 6) * 2 - 1
    colour = torch.rand(4, 3, 6, 6) * 2 - 1

    def run(config, callbacks=(), progress=None):
        result = fake(config)
        if config.regularizer != "none":  # "none" writes no grid
            images = grey if config.regularizer == "sn" else colour
            save_grid(images, sweep.Path(config.out_dir) / "samples" / "step_000005.png")
        return result

    monkeypatch.setattr(sweep, "run_sngan", run)
    results_path = tmp_path / "study.json"
    res = sweep.run_sweep(["E"], ["sn", "none", "gp"], steps=5, out_root=tmp_path / "runs",
                          results_path=results_path, verbose=False)
    assert sweep.samples_folder(results_path) == tmp_path / "study_samples"
    assert [r.get("samples") for r in res["runs"]] == ["E_sn_seed0.png", None, "E_gp_seed0.png"]
    grids = sweep.load_sample_grids(json.loads(results_path.read_text()), results_path)
    assert sorted(grids) == ["E_gp_seed0", "E_sn_seed0"]
    for name, images in [("E_sn_seed0", grey), ("E_gp_seed0", colour)]:
        written = sweep.read_png(tmp_path / "runs" / name / "samples" / "step_000005.png")
        assert written.shape[0] == 3  # save_image writes RGB
        kept = grids[name]
        assert kept.dtype == torch.uint8 and kept.shape[0] == images.shape[1]  # grey: 1 channel
        assert torch.equal(kept.expand_as(written), written)  # same pixels as the run's
        expected = make_grid(images, nrow=8, padding=1, normalize=True, value_range=(-1, 1),
                             pad_value=1.0).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
        assert torch.equal(kept, expected[: images.shape[1]])


def test_draw_sweep_and_its_sample_panels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sngan_edu.plots.images import draw_sweep, draw_sweep_samples

    rows = [{"setting": "A", "regularizer": "sn", "classes": 10.0, "confidence": 0.8, "fd": 40.0,
             "fd_range": (30.0, 50.0)},
            {"setting": "A", "regularizer": "none", "classes": None, "confidence": None,
             "fd": None},
            {"setting": "B", "regularizer": "sn", "classes": 20 / 3, "confidence": 0.6,
             "fd": 300.0},
            {"setting": "B", "regularizer": "none", "classes": 2.0, "confidence": 0.5,
             "fd": 900.0}]
    fig = plt.figure()
    draw_sweep(fig, rows, metrics=("fd",))
    (ax,) = fig.axes
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [40.0, 300.0, 900.0] and ax.get_yscale() == "log"
    failed_marks = [line for line in ax.lines if line.get_marker() == "x"]
    assert len(failed_marks) == 1 and failed_marks[0].get_color() == "tab:red"
    # only the cell with several seeds gets a line, from its lowest to its highest seed
    (spread,) = [line for line in ax.lines if line.get_marker() != "x"]
    bar = next(p for p in ax.patches if p.get_height() == 40.0)
    assert list(spread.get_ydata()) == [30.0, 50.0]
    assert list(spread.get_xdata()) == [bar.get_x() + bar.get_width() / 2] * 2
    plt.close(fig)

    grid = torch.arange(2 * 3, dtype=torch.uint8).reshape(1, 2, 3) * 40
    fig = plt.figure()
    draw_sweep_samples(fig, rows, {"A_sn_seed0": grid, "B_none_seed0": grid}, grid_rows=None)
    titles = [a.get_title() for a in fig.axes]  # classes are a mean over seeds: 20/3 is 6.7
    assert titles == ["A · SN: 10 classes, FD 40", "A · unnormalized: failed",
                      "B · SN: 6.7 classes, FD 300", "B · unnormalized: 2 classes, FD 900"]
    shown = [len(a.images) for a in fig.axes]
    assert shown == [1, 0, 0, 1]
    assert np.array_equal(np.asarray(fig.axes[0].images[0].get_array()), grid[0].numpy())
    plt.close(fig)


def test_top_grid_rows_is_the_grid_of_the_first_samples(tmp_path):
    from sngan_edu.plots.images import save_grid, top_grid_rows

    images = torch.rand(64, 1, 5, 5) * 2 - 1
    save_grid(images, tmp_path / "g.png")
    grid = sweep.read_png(tmp_path / "g.png")
    first = save_grid(images[:24], tmp_path / "first.png")  # 3 rows of 8
    assert torch.equal(top_grid_rows(grid, 3), sweep.read_png(first))


def test_more_seeds_are_added_to_the_stored_study(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sweep, "run_sngan", _fake_run(calls))
    path = tmp_path / "r.json"

    def sweep_seeds(seeds, steps=7, out="runs", replace=False):
        return sweep.run_sweep(["D", "F"], ["sn", "none"], seeds=seeds, steps=steps,
                               out_root=tmp_path / out, results_path=path, verbose=False,
                               command=f"sweep {seeds}", replace=replace)

    sweep_seeds((0,))
    merged = sweep_seeds((1,), out="other")  # a new folder: seed 0's runs are not there
    assert len(calls) == 8
    assert json.loads(path.read_text()) == merged
    assert [(r["seed"], r["setting"], r["regularizer"]) for r in merged["runs"]] == [
        (s, x, r) for s in (0, 1) for x in "DF" for r in ("sn", "none")]
    assert merged["commands"] == ["sweep (0,)", "sweep (1,)"]
    assert all(r["machine"]["cores"] == os.cpu_count() for r in merged["runs"])
    assert [row["runs"] for row in sweep.sweep_table(merged)] == [2, 2, 2, 2]
    # re-running a seed replaces its runs instead of adding copies
    again = sweep_seeds((1,), out="third")
    assert len(again["runs"]) == 8 and again["commands"][-1] == "sweep (1,)"
    # runs reused from their folders keep the machine they ran on
    merged["runs"][0]["machine"] = {"cpu": "elsewhere"}
    path.write_text(json.dumps(merged))
    reused = sweep_seeds((0,))
    assert all(r["reused"] for r in reused["runs"] if r["seed"] == 0)
    assert reused["runs"][0]["machine"] == {"cpu": "elsewhere"}
    # another budget is another study: it replaces the file when asked to
    other = sweep_seeds((0,), steps=9, out="fourth", replace=True)
    assert len(other["runs"]) == 4 and other["commands"] == ["sweep (0,)"]
    with pytest.raises(ValueError, match="different steps"):
        sweep.merge_results(merged, other)


def test_results_with_one_command_and_machine_load_as_lists(tmp_path):
    old = {"command": "python -m sngan_edu.experiments.sweep",
           "notebook": "05_sngan_training.ipynb",
           "steps": 3, "parameters": {}, "machine": {"platform": "x"},
           "runs": [{"setting": "A", "regularizer": "sn", "seed": 0, "status": "ok"}]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = sweep.load_results(tmp_path / "old.json")
    assert loaded["commands"] == ["python -m sngan_edu.experiments.sweep"]
    assert "command" not in loaded
    assert loaded["runs"][0]["machine"] == {"platform": "x"} and "machine" not in loaded


def test_same_seed_losses_pairs_runs_of_one_setting_and_seed():
    def run(setting, reg, seed, fd, status="ok"):
        return {"setting": setting, "regularizer": reg, "seed": seed, "status": status,
                "final": {"fd": fd} if status == "ok" else {}}

    results = {"runs": [run("A", "sn", 0, 10.0), run("A", "none", 0, 50.0),
                        run("A", "sn", 1, 80.0), run("A", "none", 1, 60.0),
                        run("B", "sn", 0, 5.0), run("B", "none", 0, 5.0),  # a tie is no win
                        run("C", "sn", 0, 1.0), run("C", "none", 0, None, status="failed"),
                        run("D", "sn", 0, 1.0)]}  # no baseline run: no pair
    pairs, lost = sweep.same_seed_losses(results)
    assert pairs == [("A", 0), ("A", 1), ("B", 0)]
    assert lost == [("A", 1), ("B", 0)]
    results["runs"].append(run("D", "gp", 0, 0.5))
    assert sweep.same_seed_losses(results, baseline="gp") == ([("D", 0)], [("D", 0)])


def test_wins_count_only_where_a_run_works():
    def run(setting, reg, seed, fd, classes=10.0, status="ok"):
        return {"setting": setting, "regularizer": reg, "seed": seed, "status": status,
                "final": {"fd": fd, "classes": classes} if status == "ok" else {}}

    results = {"runs": [
        run("A", "sn", 0, 40.0), run("A", "none", 0, 300.0),  # SN works, baseline not: a win
        run("A", "sn", 1, 60.0), run("A", "none", 1, 50.0),  # both work, baseline lower
        run("B", "sn", 0, 700.0), run("B", "none", 0, 1400.0),  # lower FD, but neither works
        run("B", "sn", 1, 30.0, classes=7.0), run("B", "none", 1, 900.0),  # too few classes
        run("C", "sn", 0, 20.0), run("C", "none", 0, None, status="failed"),  # failed: no work
        run("C", "sn", 1, 200.0), run("C", "none", 1, 80.0),  # only the baseline works
        run("D", "sn", 0, 10.0)]}  # no baseline run: no pair, no row
    rows = {r["setting"]: r for r in sweep.wins_where_runs_work(results)}
    assert list(rows) == ["A", "B", "C"]
    assert rows["A"] == {"setting": "A", "pairs": 2, "sn_works": 2, "baseline_works": 1,
                         "sn_wins": 1, "baseline_wins": 1, "neither": 0}
    assert (rows["B"]["sn_wins"], rows["B"]["neither"], rows["B"]["sn_works"]) == (0, 2, 0)
    assert (rows["C"]["sn_wins"], rows["C"]["baseline_wins"]) == (1, 1)
    # the bar is a parameter: at FD < 1000 with 7 classes allowed, B's pairs have winners
    loose = {r["setting"]: r for r in sweep.wins_where_runs_work(results, max_fd=1000.0,
                                                                 min_classes=7)}
    assert (loose["B"]["sn_wins"], loose["B"]["neither"]) == (2, 0)
    assert sweep.run_works(run("A", "sn", 0, 99.9, classes=8.0))
    assert not sweep.run_works(run("A", "sn", 0, 100.0))
    assert not sweep.run_works(run("A", "sn", 0, None, status="failed"))


def test_on_the_stored_sweep_sn_wins_where_it_works_and_b_c_f_have_no_winner():
    rows = {r["setting"]: r for r in sweep.wins_where_runs_work(sweep.load_results())}
    for setting in "ADE":  # SN works on every seed, the unnormalized GAN on none
        assert rows[setting]["sn_wins"] == rows[setting]["pairs"] == rows[setting]["sn_works"]
        assert rows[setting]["baseline_works"] == 0
    for setting in "BCF":  # at this budget no run works, with or without SN
        assert rows[setting]["neither"] == rows[setting]["pairs"]
