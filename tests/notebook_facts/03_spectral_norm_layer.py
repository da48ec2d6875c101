"""Facts about notebooks/03_spectral_norm_layer.ipynb, run in its kernel after its last cell.

Its variables are this file's globals (see tools/nbval_facts.py). The sigma demo's
digits depend on the CPU's float kernels (training amplifies last-bit rounding), so its cells
are not compared; what the text says of them is asserted here.
"""


def fact_hand_sn_matches_the_library_and_torch():
    # section 1 (the printed checks)
    assert diff_lib < 1e-6 and diff_torch < 1e-6
    assert abs(float(spectral_norm_exact(w_hand)) - 1.0) < 0.01


def fact_state_dicts_use_the_same_keys():
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())


def _facts_report_model():
    """The discriminator of section 2 as sigma_report saw it (rebuilt the same way)."""
    torch.manual_seed(0)
    model = Discriminator(image_size=16, width=0.125)
    sn.apply_spectral_norm(model)
    return model


def fact_main10_operator_norm_is_below_its_reshaped_sigma_without_a_full_window():
    # section 2: 4x4 stride-2 conv, padding 1, on a 4x4 input: every window overlaps the
    # padding, and the true norm (dense SVD, not power iteration) is below the reshaped sigma.
    from sngan_edu.conv_norm import conv_to_dense

    row = report["main.10"]
    assert round(row.normalized, 3) == 1.013 and round(row.conv_operator_norm, 4) == 0.9934
    layer = _facts_report_model().main[10]
    used = layer.parametrizations.weight.original.detach() / sn.running_sigma(layer)
    dense = conv_to_dense(used.double(), (32, 4, 4), stride=2, padding=1)
    true_norm = float(torch.linalg.matrix_norm(dense, ord=2))
    assert abs(true_norm - row.conv_operator_norm) < 1e-3
    assert true_norm < row.normalized - 0.01
    assert (layer.kernel_size, layer.stride, layer.padding) == ((4, 4), (2, 2), (1, 1))


def fact_the_other_convs_have_operator_norms_above_their_reshaped_sigma():
    # the text: usually larger; main.12 (3x3 on a 2x2 input, no full window) happens to be above
    for row in report.rows:
        if row.layer.startswith("main.") and row.layer != "main.10":
            assert row.conv_operator_norm > row.normalized, row
    assert round(report["main.12"].conv_operator_norm, 3) == 1.127


def fact_gradient_formula_and_library_backward_equal_autograd():
    # section 3 (the printed checks)
    assert torch.allclose(grad_formula, grad_auto, atol=1e-10)
    assert torch.allclose(grad_lib, grad_auto, atol=1e-10)
    assert abs(float((grad_auto * W.detach()).sum())) < 1e-12


def fact_u_updates_in_training_mode_only():
    # section 4: rerun the check on a fresh copy, so the notebook's model is untouched
    import copy

    model = copy.deepcopy(D)
    buffers = model.main[0].parametrizations.weight[0]
    model.eval()
    before = buffers._u.clone()
    assert torch.equal(model(x), model(x)) and torch.equal(before, buffers._u)
    model.train()
    model(x)
    assert not torch.equal(before, buffers._u)


# Section 5's run: the text states what holds over the five seeds of
# benchmarks/results/sigma_demo_seeds.json (tests/test_sigma_demo_seeds.py); the facts assert of
# this run only what holds for every one of them, with a margin (another CPU is another seed).
def fact_one_iteration_lags_early_far_above_the_band():
    early = {layer: max(r[3] for r in records if 0 < r[0] <= 50)
             for layer, records in history.items()}
    assert max(early.values()) > 1.2
    assert sum(v > 1.1 for v in early.values()) >= 3


def fact_one_iteration_catches_up_below_1_1_after_step_100():
    assert max_normalized_sigma(history, after_step=100) < 1.1
