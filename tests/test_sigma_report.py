"""Per-layer sigma reports and histories (sngan_edu.sigma_report) against SVD and dense convs,
and the notebook-03 sigma demo that records them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sngan_edu import sn
from sngan_edu.conv_norm import conv_to_dense
from sngan_edu.layer_info import layer_role
from sngan_edu.sigma_report import SigmaHistory, record_sigma_history, sigma_report


def _small_d():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.LeakyReLU(0.1),
        nn.ConvTranspose2d(4, 2, 4, 2, 1),
        nn.Flatten(),
        nn.Linear(2 * 12 * 12, 3),
    )


def test_sigma_report_rejects_a_bad_input_shape():
    with pytest.raises(ValueError, match="input_shapes"):
        sigma_report(_small_d(), input_shapes="3x8x8")


def test_sigma_report_against_svd_and_dense_conv():
    torch.manual_seed(0)
    model = sn.apply_spectral_norm(_small_d())
    model[1].eval()
    report = sigma_report(model, input_shapes=(3, 6, 6))
    assert [r.layer for r in report.rows] == ["0", "3", "5"]
    row = report["0"]
    raw = model[0].parametrizations.weight.original.detach()
    assert row.exact_raw == pytest.approx(torch.linalg.matrix_norm(raw.flatten(1), 2).item(), 1e-5)
    assert row.normalized == pytest.approx(row.exact_raw / row.estimate, rel=1e-6)
    dense = conv_to_dense(raw.double() / row.estimate, (3, 6, 6), padding=1)
    true = torch.linalg.matrix_norm(dense, ord=2).item()
    assert row.conv_operator_norm == pytest.approx(true, rel=1e-3)
    raw_t = model[3].parametrizations.weight.original.detach().double()
    dense_t = conv_to_dense(raw_t / report["3"].estimate, (4, 6, 6), 2, 1, transposed=True)
    assert report["3"].conv_operator_norm == pytest.approx(
        torch.linalg.matrix_norm(dense_t, ord=2).item(), rel=1e-3
    )
    text = repr(report)
    assert text == repr(sigma_report(model, input_shapes=(3, 6, 6)))
    assert text.splitlines()[0].startswith("layer")
    html_table = report._repr_html_()
    assert "<table>" in html_table and "convT 4x4 s2" in html_table  # layers named by role
    assert [r.kind for r in report.rows] == [layer_role(model[i]) for i in (0, 3, 5)]
    assert [r.kind for r in report.rows] == ["conv 3x3 s1", "convT 4x4 s2", "linear 288->3"]


def test_sigma_report_lists_unnormalized_layers():
    report = sigma_report(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1)))
    assert len(report) == 2
    assert "-" in repr(report)  # no running estimate without SN
    w = report.rows[0]
    assert w.normalized == w.exact_raw


def test_record_sigma_history_matches_svd_and_has_no_side_effects():
    torch.manual_seed(0)
    model = sn.apply_spectral_norm(_small_d())
    u = model[0].parametrizations.weight[0]._u.clone()
    history = record_sigma_history({}, model, step=3)
    record_sigma_history(history, model, step=4, exact=False)
    assert list(history) == ["0", "3", "5"]
    step, estimate, exact, normalized = history["5"][0]
    raw = model[5].parametrizations.weight.original.detach().double()
    assert step == 3
    assert estimate == pytest.approx(sn.running_sigma(model[5]))
    assert exact == pytest.approx(torch.linalg.matrix_norm(raw, 2).item(), rel=1e-6)
    assert normalized == pytest.approx(exact / estimate)
    assert history["5"][1][0] == 4 and torch.isnan(torch.tensor(history["5"][1][2]))
    assert torch.equal(model[0].parametrizations.weight[0]._u, u)


def test_draw_sigma_history_draws_every_layer():
    import matplotlib.pyplot as plt

    from sngan_edu.plots.sigma import draw_sigma_history

    history = {
        "a": [(0, 1.0, 1.0, 1.0), (10, 1.2, 1.3, 1.3 / 1.2)],
        "b": [(0, 0.5, float("nan"), float("nan")), (10, 0.6, float("nan"), float("nan"))],
    }
    fig = plt.figure()
    draw_sigma_history(fig, history, title="t")
    left, right = fig.axes[:2]
    assert len(left.get_lines()) == 3  # a: estimate + exact; b: estimate only (no exact logged)
    assert len(right.get_lines()) == 2  # a's normalized sigma + the line at 1
    plt.close(fig)

    fig = plt.figure()
    draw_sigma_history(fig, history, labels={"a": "1: conv 3x3 s1"})  # b keeps its name
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["1: conv 3x3 s1", "b"]
    plt.close(fig)


def test_train_sigma_demo_history_and_callback():
    from sngan_edu.experiments.sigma_demo import max_normalized_sigma, train_sigma_demo

    calls = []
    history = train_sigma_demo(2, steps=6, record_every=3, callback=lambda s, h: calls.append(s))
    assert calls == [0, 3, 6]
    assert len(history) == 8 and all(len(r) == 3 for r in history.values())
    assert [r[0] for r in history["linear"]] == [0, 3, 6]
    for records in history.values():
        for _, estimate, exact, normalized in records:
            assert estimate <= exact * (1 + 1e-5)  # power iteration never overshoots sigma
            assert normalized == pytest.approx(exact / estimate)
    assert max_normalized_sigma(history) >= 1.0 - 1e-6
    again = train_sigma_demo(2, steps=6, record_every=3)
    assert again == history  # seeded: same numbers
    with pytest.raises(ValueError, match="n_power_iterations"):
        train_sigma_demo(0)


@pytest.mark.parametrize("n_power_iterations", [1, 3])
def test_train_sigma_demo_runs_n_power_iterations_per_step(power_iteration_counts,
                                                           n_power_iterations):
    from sngan_edu.experiments.sigma_demo import train_sigma_demo

    counts = power_iteration_counts
    train_sigma_demo(n_power_iterations, steps=0)
    setup = sorted(counts.values())  # warm-up and torch's check forward when SN is attached
    counts.clear()
    train_sigma_demo(n_power_iterations, steps=3, record_every=10)
    # 8 layers, each n iterations per step (real and fake in one batch; calling D twice per
    # step would run 2n).
    assert len(counts) == 8
    assert [c - s for c, s in zip(sorted(counts.values()), setup, strict=True)] == [
        3 * n_power_iterations
    ] * 8


def test_train_sigma_demo_matches_a_reference_with_one_normalized_weight_per_step():
    import torch.nn.functional as F

    from sngan_edu.experiments.sigma_demo import noise_images, smooth_images, train_sigma_demo
    from sngan_edu.models.standard_cnn import Discriminator

    steps, n = 4, 2
    history = train_sigma_demo(n, steps=steps, record_every=1)
    # Reference (same seeds as train_sigma_demo): the step's power iterations by hand, then
    # D(real) and D(fake) in eval mode, where SN reuses one u, v for both calls.
    torch.manual_seed(0)
    D = Discriminator(image_size=16, width=0.125, spectral_norm=True, n_power_iterations=n)
    opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    data = torch.Generator().manual_seed(1)
    expected: SigmaHistory = {}
    record_sigma_history(expected, D, 0)
    for step in range(1, steps + 1):
        real, fake = smooth_images(32, 16, data), noise_images(32, 16, data)
        sn.refresh_power_iteration(D, n_iters=n)
        D.eval()
        loss = F.binary_cross_entropy_with_logits(
            D(real), torch.ones(32)
        ) + F.binary_cross_entropy_with_logits(D(fake), torch.zeros(32))
        D.train()
        opt.zero_grad()
        loss.backward()
        opt.step()
        record_sigma_history(expected, D, step)
    assert history.keys() == expected.keys()
    for name, records in history.items():
        for got, want in zip(records, expected[name], strict=True):
            assert got[0] == want[0]
            # float32 and Adam's first steps (which amplify tiny gradients) leave ~2e-4 of
            # noise; scoring fake with one more power iteration than real was off by ~3e-2.
            assert got[1:] == pytest.approx(want[1:], rel=2e-3)


def test_sigma_demo_slider_retrains_with_new_setting():
    from sngan_edu.experiments.sigma_demo import train_sigma_demo
    from sngan_edu.widgets.sigma import SigmaDemoControls

    initial = train_sigma_demo(1, steps=2, record_every=1)
    controls = SigmaDemoControls(initial, steps=2)
    first = controls.image.value
    assert first[:4] == b"\x89PNG"
    controls.slider.value = 3  # what dragging the slider does
    assert controls.history == train_sigma_demo(3, steps=2, record_every=10)
    assert controls.image.value != first and controls.status.value == "done."
