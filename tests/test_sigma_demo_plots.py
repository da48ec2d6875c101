"""Notebook 03's sigma figure (excess over 1 on a log scale) and the sigma demo's two-call mode."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from sngan_edu.experiments.sigma_demo import train_sigma_demo  # noqa: E402
from sngan_edu.plots.sigma import draw_sigma_history  # noqa: E402

HISTORY = {
    "a": [(0, 0.5, 0.5, 1.0), (10, 0.6, 0.7, 1.2), (20, 0.7, 0.7, 1.001)],
    "b": [(0, 1.0, float("nan"), float("nan")), (10, 1.1, float("nan"), float("nan"))],
}


def test_log_excess_draws_sigma_minus_one_on_a_log_axis():
    fig = plt.figure()
    draw_sigma_history(fig, HISTORY, log_excess=True)
    raw, norm = fig.axes
    assert norm.get_yscale() == "log"
    (line,) = norm.get_lines()  # layer b logged no SVD values
    assert line.get_ydata() == pytest.approx([1e-5, 0.2, 0.001])  # 1.0 - 1 drawn at the floor
    assert norm.get_ylim() == pytest.approx((1e-5, 1.0))
    assert "1.05" in norm.get_title()
    assert len(raw.get_lines()) == 3  # a: estimate and exact, b: estimate only
    plt.close(fig)


def test_default_keeps_the_linear_axis_for_other_notebooks():
    fig = plt.figure()
    draw_sigma_history(fig, HISTORY)
    norm = fig.axes[1]
    assert norm.get_yscale() == "linear"
    (line,) = [ln for ln in norm.get_lines() if ln.get_label() == "a"]
    assert list(line.get_ydata()) == pytest.approx([1.0, 1.2, 1.001])
    plt.close(fig)


def test_the_widget_renders_the_log_figure():
    from sngan_edu.widgets import sigma as widget

    png_log = widget.render_sigma_history(HISTORY, "t")
    png_linear = widget.render_sigma_history(HISTORY, "t", log_excess=False)
    assert png_log.startswith(b"\x89PNG") and png_log != png_linear


def test_two_calls_per_step_run_two_power_iterations(power_iteration_counts):
    counts = power_iteration_counts
    train_sigma_demo(1, steps=0, joint=False)
    setup = sorted(counts.values())
    counts.clear()
    train_sigma_demo(1, steps=3, record_every=10, joint=False)
    assert len(counts) == 8
    assert [c - s for c, s in zip(sorted(counts.values()), setup, strict=True)] == [6] * 8


def test_two_calls_train_another_discriminator_than_one_batch():
    one = train_sigma_demo(1, steps=4, record_every=2)
    two = train_sigma_demo(1, steps=4, record_every=2, joint=False)
    assert one["main.0"][0] == two["main.0"][0]  # same start
    assert one["main.0"][-1] != two["main.0"][-1]
    assert all(math.isfinite(r[3]) for records in two.values() for r in records)
