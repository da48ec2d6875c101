"""Notebook 06's short runs that watch D's scale: what they record, and that watching leaves
the run unchanged."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from sngan_edu.experiments import lipschitz_runs
from sngan_edu.experiments.lipschitz_runs import DiscriminatorWatch, watch_discriminator


@pytest.mark.slow  # two short training runs
def test_a_watch_records_every_layer_and_both_gradient_norms():
    sn = watch_discriminator("D", "sn", steps=4, every=2)
    none = watch_discriminator("D", "none", steps=4, every=2)
    for w in (sn, none):
        assert w.steps == [0, 2, 4]
        assert len(w.layers) == 8  # the standard CNN's seven convolutions and its dense layer
        assert all(len(v) == 3 for v in w.layers.values())
        assert len(w.grad_real) == len(w.grad_fake) == 3
        assert all(g > 0 for g in w.grad_real + w.grad_fake)
    # SN divides by its running estimate: every layer's factor stays near 1
    assert all(0.9 < v < 1.3 for values in sn.layers.values() for v in values)
    # the unnormalized D starts with small weights: its bound starts far below 1
    assert none.product[0] < 0.01 and sn.product[0] > 0.5
    assert none.largest_layer[0] == max(values[0] for values in none.layers.values())


@pytest.mark.slow  # trains twice
def test_watching_does_not_change_the_run(monkeypatch):
    seen = {}
    real_fit = lipschitz_runs.Trainer.fit

    def fit(self, *args, **kwargs):
        out = real_fit(self, *args, **kwargs)
        seen.setdefault("G", []).append([p.detach().clone() for p in self.G.parameters()])
        return out

    monkeypatch.setattr(lipschitz_runs.Trainer, "fit", fit)
    watch_discriminator("C", "sn", steps=3, every=1)
    watch_discriminator("C", "sn", steps=3, every=3)  # measured once instead of every step
    first, second = seen["G"]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_the_properties_and_bad_arguments():
    w = DiscriminatorWatch("D", "none", steps=[0, 1], layers={"a": [2.0, 3.0], "b": [0.5, 4.0]})
    assert w.product == [1.0, 12.0] and w.largest_layer == [2.0, 4.0]
    with pytest.raises(ValueError, match="setting must be one of"):
        watch_discriminator("G", "sn")
    with pytest.raises(ValueError, match="regularizer must be one of"):
        watch_discriminator("D", "gp")
    with pytest.raises(ValueError, match="steps"):
        watch_discriminator("D", "sn", steps=0)
    assert not math.isnan(sum(w.product))
    assert replace(w, setting="C").setting == "C"


def test_draw_sweep_lipschitz_draws_one_line_per_run_in_each_panel():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sngan_edu.plots.images import draw_sweep_lipschitz

    layers = {"a": [1.0, 2.0], "b": [1.0, 1.5]}
    watches = [DiscriminatorWatch(s, r, [0, 10], layers, [1.0, 2.0], [0.5, 1.0])
               for s in "CD" for r in ("sn", "none")]
    fig = plt.figure(figsize=(9, 3))
    draw_sweep_lipschitz(fig, watches)
    assert len(fig.axes) == 3 and [len(ax.lines) for ax in fig.axes] == [4, 5, 4]  # + line at 1
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "linear", "log"]
    assert list(fig.axes[0].lines[0].get_ydata()) == [1.0, 3.0]  # the product
    assert list(fig.axes[2].lines[0].get_ydata()) == [0.5, 1.0]  # gradients on generated
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "C, SN", "C, unnormalized", "D, SN", "D, unnormalized"]
    plt.close(fig)
