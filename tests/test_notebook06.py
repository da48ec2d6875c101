"""Notebook 06's pieces: the sample panels it draws, the unnormalized baseline started at SN's
scale, and its watch of D's scale over seeds (benchmarks/results/watch_seeds.json, written by
benchmarks/watch_seeds.py): the text quotes those seeds, and the facts file asserts of the
notebook's own run only what holds for every one of them."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from sngan_edu.experiments import lipschitz_runs
from sngan_edu.experiments.lipschitz_runs import DiscriminatorWatch
from sngan_edu.models.standard_cnn import Discriminator

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "06_hyperparameter_robustness.ipynb"
FACTS = ROOT / "tests" / "notebook_facts" / "06_hyperparameter_robustness.py"
WATCH_SEEDS = ROOT / "benchmarks" / "results" / "watch_seeds.json"


def markdown() -> str:
    cells = nbformat.read(NOTEBOOK, 4).cells
    return " ".join(" ".join(c.source.split()) for c in cells if c.cell_type == "markdown")


def test_the_sample_panels_show_the_first_samples_of_the_first_rows(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sngan_edu.experiments.sweep import read_png
    from sngan_edu.plots.images import draw_sweep_samples, save_grid

    images = torch.rand(64, 1, 5, 5) * 2 - 1
    grid = read_png(save_grid(images, tmp_path / "g.png"))
    first = read_png(save_grid(images[:3], tmp_path / "first.png", nrow=3))  # one row of 3
    rows = [{"setting": "A", "regularizer": "sn", "classes": 10.0, "fd": 40.0}]
    fig = plt.figure()
    draw_sweep_samples(fig, rows, {"A_sn_seed0": grid}, grid_rows=1, grid_cols=3)
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert np.array_equal(shown, first.permute(1, 2, 0).squeeze(2).numpy())
    plt.close(fig)


def test_unit_init_puts_every_layer_at_sigma_one_against_svd():
    torch.manual_seed(0)
    D = Discriminator(image_size=16, channels=1, width=0.125)
    before = {n: m.weight.detach().clone() for n, m in D.named_modules()
              if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
    lipschitz_runs.rescale_to_unit_sigma(D)
    for name, module in D.named_modules():
        if name in before:
            W = module.weight.detach().flatten(1)
            assert torch.linalg.svdvals(W.double())[0].item() == pytest.approx(1.0, rel=1e-5)
            # only the scale changes: the same direction as the N(0, 0.02) weights
            ratio = before[name] / module.weight.detach()
            assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), rtol=1e-4)


def test_a_watch_started_at_unit_sigma_starts_with_a_bound_of_one():
    w = lipschitz_runs.watch_discriminator("D", "none", steps=2, every=2, init="unit")
    assert w.init == "unit" and w.steps == [0, 2]
    assert w.product[0] == pytest.approx(1.0, rel=1e-4)
    assert all(v[0] == pytest.approx(1.0, rel=1e-4) for v in w.layers.values())
    with pytest.raises(ValueError, match="init must be one of"):
        lipschitz_runs.watch_discriminator("D", "none", init="kaiming")


def test_the_watch_legend_names_the_run_started_at_sigma_one():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sngan_edu.plots.images import draw_sweep_lipschitz

    layers = {"a": [1.0, 2.0]}
    watches = [DiscriminatorWatch("D", r, [0, 10], layers, [1.0, 2.0], [0.5, 1.0], init=i)
               for r, i in (("sn", "paper"), ("none", "paper"), ("none", "unit"))]
    fig = plt.figure(figsize=(9, 3))
    draw_sweep_lipschitz(fig, watches)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "D, SN", "D, unnormalized", "D, unnormalized, init at sigma 1"]
    colours = [line.get_color() for line in fig.axes[0].lines]
    assert len(set(colours)) == 3
    plt.close(fig)


def stored_seeds() -> dict:
    return json.loads(WATCH_SEEDS.read_text())


def seed_watches(runs: dict) -> list[DiscriminatorWatch]:
    """One stored seed's runs as the notebook's ``watches``."""
    out = []
    for setting, reg, init in lipschitz_runs.WATCH_RUNS:
        r = runs[f"{setting}_{reg}_{init}"]
        out.append(DiscriminatorWatch(setting, reg, r["steps"], r["layers"], r["grad_real"],
                                      r["grad_fake"], init=init))
    return out


def test_the_stored_seeds_are_the_notebooks_runs_and_summary():
    stored = stored_seeds()
    assert sorted(stored["seeds"], key=int) == ["0", "1", "2", "3", "4"]  # at least five
    assert stored["steps"] == lipschitz_runs.WATCH_STEPS
    assert stored["every"] == lipschitz_runs.WATCH_EVERY
    for runs in stored["seeds"].values():
        for w in seed_watches(runs):
            r = runs[f"{w.setting}_{w.regularizer}_{w.init}"]
            assert w.product == pytest.approx(r["product"])
            assert w.largest_layer == pytest.approx(r["largest_layer"])
    for key, row in stored["summary"].items():
        medians = [statistics.median(g for s, g in zip(r[key]["steps"], r[key]["grad_fake"],
                                                       strict=True) if s >= 30)
                   for r in stored["seeds"].values()]
        assert row["seed_medians_range"] == pytest.approx([min(medians), max(medians)])


@pytest.mark.parametrize("seed", ["0", "1", "2", "3", "4"])
def test_the_facts_about_the_live_watch_hold_for_every_stored_seed(seed):
    """The facts file asserts of the notebook's own run only what holds for every seed."""
    names = {"watches": seed_watches(stored_seeds()["seeds"][seed]),
             "WATCH_STEPS": lipschitz_runs.WATCH_STEPS}
    exec(compile(FACTS.read_text(), str(FACTS), "exec"), names)  # noqa: S102
    watch_facts = [name for name in names if name.startswith("fact_") and (
        "watch" in name or "short_runs" in name or "sn" in name and "stays" in name
        or "start" in name or "bound" in name)]
    assert len(watch_facts) == 5
    for name in watch_facts:
        names[name]()


def test_the_text_quotes_the_stored_seeds():
    summary = stored_seeds()["summary"]
    text = markdown()

    def rng(key, field, fmt=".2f", sep=" to "):
        low, high = summary[key][field]
        return f"{low:{fmt}}{sep}{high:{fmt}}"

    c_flat = summary["C_none_paper"]["seed_medians_range"]
    assert f"median is {c_flat[0]:.2f} to {c_flat[1]:.2f} (per seed), against SN's " \
           f"{rng('C_sn_paper', 'seed_medians_range')}" in text
    assert f"sigma 1, the same unnormalized $D$ gives {rng('C_none_unit', 'seed_medians_range')}" \
        in text
    assert f"bound reaches {rng('D_none_unit', 'final_product_range', '.0f')} by step 120 " \
           f"({rng('C_none_unit', 'final_product_range', '.1f')} under C)" in text
    low_sn = min(summary[k]["final_product_range"][0] for k in ("C_sn_paper", "D_sn_paper"))
    high_sn = max(summary[k]["final_product_range"][1] for k in ("C_sn_paper", "D_sn_paper"))
    assert f"SN's stays between {low_sn:.1f} and {high_sn:.1f}" in text
    assert f"(per-seed medians {rng('D_none_unit', 'seed_medians_range')}, SN's " \
           f"{rng('D_sn_paper', 'seed_medians_range')})" in text
    sn = [summary[k] for k in ("C_sn_paper", "D_sn_paper")]
    top = max(s["layer_factor_range"][1] for s in sn)
    assert f"sits between {min(s['layer_factor_range'][0] for s in sn):.1f} and {top:.2f}" in text
    assert f"the largest reaches {rng('D_sn_paper', 'top_layer_range')} under D" in text
    assert f"ends between {low_sn:.1f} and {high_sn:.1f}" in text
    assert f"median of {summary['C_sn_paper']['late_grad_fake_median']:.2f} under C and " \
           f"{summary['D_sn_paper']['late_grad_fake_median']:.2f} under D over the five seeds " \
           f"(each seed's median between {min(s['seed_medians_range'][0] for s in sn):.2f} and " \
           f"{max(s['seed_medians_range'][1] for s in sn):.2f})" in text
    assert f"range from {min(s['late_grad_fake_range'][0] for s in sn):.2f} to " \
           f"{max(s['late_grad_fake_range'][1] for s in sn):.1f}" in text
    ratio = [summary["D_none_unit"]["final_product_range"][i] for i in (0, 1)]
    assert f"({ratio[0]:.0f}- to {ratio[1]:.0f}-fold in 120" in text
    # the old single-run claim is gone
    assert "between about 0.5 and 2" not in text
