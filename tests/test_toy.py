"""Toy mixtures: exact means and std, seeded sampling, the sampler the trainer uses."""

import math

import pytest
import torch

from sngan_edu.data.toy import DATASETS, make_sampler, mixture_means, mixture_std, sample_mixture
from sngan_edu.experiments.toy_runs import TOY_METHOD_LABELS, TOY_METHODS, toy_gan
from sngan_edu.train.trainer import Trainer


def test_ring_means_are_the_unit_circle_at_multiples_of_45_degrees():
    means = mixture_means("ring").double()
    expected = torch.tensor(
        [[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)] for k in range(8)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(means, expected, atol=1e-7, rtol=0)
    assert mixture_std("ring") == 0.01


def test_grid_means_are_the_25_points_of_minus4_to_4_step_2():
    means = {tuple(p) for p in mixture_means("grid").tolist()}
    assert means == {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert mixture_std("grid") == 0.05


@pytest.mark.parametrize("name", DATASETS)
def test_samples_have_the_right_components_and_spread(name):
    gen = torch.Generator().manual_seed(0)
    x = sample_mixture(name, 20000, gen)
    means = mixture_means(name)
    nearest = torch.cdist(x, means).argmin(1)
    offsets = x - means[nearest]
    # Per-axis std of the offsets is the component std; every component gets about 1/K of the mass.
    expected_std = torch.full((2,), mixture_std(name))
    torch.testing.assert_close(offsets.std(0), expected_std, rtol=0.03, atol=0)
    fractions = torch.bincount(nearest, minlength=len(means)).double() / len(x)
    assert (fractions - 1 / len(means)).abs().max() < 0.01


def test_sampling_is_seeded_and_the_sampler_agrees_with_sample_mixture():
    a = sample_mixture("grid", 100, torch.Generator().manual_seed(5))
    b = sample_mixture("grid", 100, torch.Generator().manual_seed(5))
    c = make_sampler("grid")(100, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(a, sample_mixture("grid", 100, torch.Generator().manual_seed(6)))


def test_bad_names_and_sizes_are_value_errors():
    with pytest.raises(ValueError, match="dataset must be one of"):
        mixture_means("spiral")
    with pytest.raises(ValueError, match="dataset must be one of"):
        make_sampler("moons")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sample_mixture("ring", 0)


# ------------------------------------------------------------------ recipes, plots, widget


def test_toy_gan_recipes():
    G, D, cfg = toy_gan("sn", "grid", steps=600, seed=1)
    assert D.input_scale == pytest.approx(0.5 / 0.05)
    assert (cfg.loss, cfg.regularizer, cfg.steps, cfg.seed, cfg.lr_decay) == (
        "vanilla", "sn", 600, 1, "linear")
    _, D, _ = toy_gan("sn", "ring", steps=600)
    assert D.input_scale == pytest.approx(0.5 / 0.01)
    _, D, cfg = toy_gan("wgan-gp", "ring", steps=600, n_dis=3)
    assert D.input_scale == 1.0 and cfg.steps == 600 and cfg.n_dis == 3  # equal G steps
    for method in TOY_METHODS:  # every method gets the same generator steps
        assert toy_gan(method, "grid", 300)[2].steps == 300
    # Same seed, same initial weights; the recipe builds its models after seeding.
    assert torch.equal(toy_gan("gan", "grid", 10, 4)[0].net[0].weight,
                       toy_gan("sn", "grid", 10, 4)[0].net[0].weight)
    with pytest.raises(ValueError, match="method must be one of"):
        toy_gan("began", "grid", 10)
    with pytest.raises(ValueError, match="dataset must be one of"):
        toy_gan("gan", "spiral", 10)
    # every method has the label notebook 04's figures and tables show
    assert set(TOY_METHOD_LABELS) == set(TOY_METHODS)


@pytest.fixture(scope="module")
def short_run():
    G, D, cfg = toy_gan("sn", "grid", steps=20, seed=0, batch_size=32)
    trainer = Trainer(G, D, make_sampler("grid"), cfg)
    trainer.fit()
    return trainer


def test_landscapes_match_the_discriminator(short_run):
    from sngan_edu.plots.toy import critic_landscape, gradient_landscape

    D = short_run.D
    values = critic_landscape(D, 5.0, n=11)
    grads = gradient_landscape(D, 5.0, n=11)
    assert values.shape == grads.shape == (11, 11)
    # Row i is y, column j is x: the corner (row 0, col 10) is the point (5, -5).
    D.eval()
    with torch.no_grad():
        expected = float(D(torch.tensor([[5.0, -5.0]])))
    D.train()
    assert values[0, 10] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    # SN (eval mode: normalised weights) with input scale 10: gradients stay below 10 (+ slack
    # for the running sigma estimate) and are not all zero.
    assert 0 < grads.max() <= 10 * 1.1


def test_draw_functions_make_the_expected_axes(short_run):
    import matplotlib.pyplot as plt

    from sngan_edu.plots.toy import draw_landscapes, draw_snapshots, draw_training

    snaps = [(0, short_run.sample(50)), (10, short_run.sample(50)), (20, short_run.sample(50))]
    fig = plt.figure()
    draw_snapshots(fig, snaps, "grid", label="SN")
    assert [ax.get_title() for ax in fig.axes] == ["step 0", "step 10", "step 20"]
    assert fig.axes[0].get_ylabel() == "SN"
    fig.clf()
    draw_landscapes(fig, short_run.D, "grid", samples=short_run.sample(20), n=12)
    assert len(fig.axes) == 4  # two heat maps and their colour bars
    fig.clf()
    # samples far outside the map: the heat map keeps its extent and the title says so
    far = torch.cat([short_run.sample(10), torch.full((10, 2), 40.0)])
    draw_landscapes(fig, short_run.D, "grid", samples=far, n=12)
    assert fig.axes[0].get_xlim() == (-5.0, 5.0) and fig.axes[0].get_ylim() == (-5.0, 5.0)
    assert fig.axes[0].get_title() == "D(x); 50% of the samples off the map"
    fig.clf()
    h = short_run.history
    draw_training(fig, short_run.sample(30), "grid", 20, h["loss_d"], h["loss_g"])
    assert len(fig.axes[1].lines) == 2
    plt.close(fig)


def test_snapshot_panels_are_evenly_spaced_in_steps_without_repeats():
    from sngan_edu.plots.toy import pick_snapshots

    x = torch.zeros(1, 2)
    wgan = [(s, x) for s in (0, 83, 166, 249, 332, 333)]  # 333 steps snapshotted every 83
    assert [s for s, _ in pick_snapshots(wgan, 5)] == [0, 83, 166, 249, 333]
    clip = [(s, x) for s in (0, 166, 332, 498, 664, 667)]
    assert [s for s, _ in pick_snapshots(clip, 5)] == [0, 166, 332, 498, 667]
    assert [s for s, _ in pick_snapshots(wgan[:3], 5)] == [0, 83, 166]
    assert pick_snapshots([], 5) == []


def test_sample_rows_put_each_label_on_the_left_of_its_row():
    import matplotlib.pyplot as plt

    from sngan_edu.plots.toy import draw_sample_rows

    x = mixture_means("ring")
    fig = plt.figure()
    draw_sample_rows(fig, {"seed 0": [("a", x), ("b", x)], "seed 1": [("c", x)]}, "ring")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["a", "b", "c", ""]
    assert axes[0].get_ylabel() == "seed 0" and axes[2].get_ylabel() == "seed 1"
    assert not axes[3].axison  # the missing panel of the short row is blank
    plt.close(fig)


def test_run_toy_keeps_snapshots_and_scores_the_run():
    from sngan_edu.experiments.toy_runs import SLOW_D, run_toy

    run = run_toy("gan", "ring", 12, seed=0, snapshots=3, **SLOW_D)
    assert [s for s, _ in run.snapshots] == [0, 4, 8, 12]
    assert run.trainer.step == run.planned_steps == 12
    settings = run.trainer.config.optimizer_settings()
    assert (settings["lr_d"], settings["lr_g"]) == (1e-4, 1e-3)
    assert run.metrics.n_modes == 8 and 0 <= run.reached <= 8 and run.seconds > 0
    with pytest.raises(ValueError, match="snapshots"):
        run_toy("gan", "ring", 12, snapshots=0)


def test_snapshot_explorer_redraws_on_change():
    from sngan_edu.widgets.toy import SnapshotExplorer, snapshot_title

    means = mixture_means("grid")
    snaps = {"good": [(0, means.repeat(4, 1)), (100, means.repeat(4, 1))],
             "collapsed": [(0, means[:1].repeat(100, 1))]}
    explorer = SnapshotExplorer(snaps, "grid")
    first = explorer.image.value
    assert first[:4] == b"\x89PNG"
    explorer.method.value = "collapsed"  # only has step 0: the nearest snapshot is used
    assert explorer.nearest_step("collapsed", 100) == 0
    assert explorer.image.value != first
    assert snapshot_title("good", 100, means.repeat(4, 1), "grid") == (
        "good, step 100: 25/25 modes, 100% high quality")
    with pytest.raises(ValueError, match="method must be one of"):
        explorer.png("other", 0)
    with pytest.raises(ValueError, match="at least one method"):
        SnapshotExplorer({}, "grid")
