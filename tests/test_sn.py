"""Our spectral norm against PyTorch's built-in, SVD, autograd and the paper's gradient formula."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from sngan_edu import sn

LAYERS = {
    "linear": (lambda: nn.Linear(7, 5), lambda g: torch.randn(4, 7, generator=g)),
    "conv1d": (lambda: nn.Conv1d(3, 4, 3, padding=1), lambda g: torch.randn(2, 3, 9, generator=g)),
    "conv2d": (lambda: nn.Conv2d(3, 4, 3, 2, 1), lambda g: torch.randn(2, 3, 8, 8, generator=g)),
    "conv3d": (lambda: nn.Conv3d(2, 3, 3), lambda g: torch.randn(2, 2, 5, 5, 5, generator=g)),
    "convT2d": (
        lambda: nn.ConvTranspose2d(4, 3, 4, 2, 1),
        lambda g: torch.randn(2, 4, 4, 4, generator=g),
    ),
    "embedding": (lambda: nn.Embedding(10, 6), lambda g: torch.randint(0, 10, (5,), generator=g)),
}


def _pair(kind: str, n_power_iterations: int = 1):
    """The same layer with our SN and with PyTorch's, starting from identical u, v."""
    make, _ = LAYERS[kind]
    torch.manual_seed(0)
    base = make()
    ours = sn.spectral_norm(copy.deepcopy(base), n_power_iterations=n_power_iterations)
    theirs = torch_spectral_norm(copy.deepcopy(base), n_power_iterations=n_power_iterations)
    # Start from the same vectors (equal seeds give equal ones anyway; do not rely on it).
    with torch.no_grad():
        ours.parametrizations.weight[0]._u.copy_(theirs.parametrizations.weight[0]._u)
        ours.parametrizations.weight[0]._v.copy_(theirs.parametrizations.weight[0]._v)
    return ours, theirs


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("n_power_iterations", [1, 3])
def test_matches_torch_over_training_steps(kind, n_power_iterations):
    ours, theirs = _pair(kind, n_power_iterations)
    _, make_input = LAYERS[kind]
    opt_a = torch.optim.SGD(ours.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(theirs.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    for _ in range(25):
        x = make_input(g)
        out_a, out_b = ours(x), theirs(x)
        torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-6)
        for opt, out in ((opt_a, out_a), (opt_b, out_b)):
            opt.zero_grad()
            (out.square().mean() + out.mean()).backward()
            opt.step()
    pa, pb = ours.parametrizations.weight, theirs.parametrizations.weight
    torch.testing.assert_close(pa.original, pb.original, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pa[0]._u, pb[0]._u, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pa[0]._v, pb[0]._v, rtol=1e-4, atol=1e-5)
    # Eval mode: both reuse the stored vectors, which therefore must not move.
    ours.eval()
    theirs.eval()
    u_before = pa[0]._u.clone()
    x = make_input(g)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours(x), ours(x))
    assert torch.equal(pa[0]._u, u_before)


def test_same_seed_gives_same_vectors_as_torch():
    torch.manual_seed(3)
    a = sn.spectral_norm(nn.Linear(6, 4))
    torch.manual_seed(3)
    b = torch_spectral_norm(nn.Linear(6, 4))
    assert torch.equal(a.parametrizations.weight[0]._u, b.parametrizations.weight[0]._u)


@pytest.mark.parametrize("kind", ["linear", "conv2d", "convT2d"])
def test_same_seed_gives_bit_identical_weights_gradients_and_vectors_as_torch(kind):
    make, make_input = LAYERS[kind]
    layers = []
    for attach in (sn.spectral_norm, torch_spectral_norm):
        torch.manual_seed(0)
        layers.append(attach(make()))
    x = make_input(torch.Generator().manual_seed(1))
    for _ in range(5):
        grads = []
        for layer in layers:
            raw = layer.parametrizations.weight.original
            raw.grad = None
            layer(x).square().sum().backward()
            grads.append(raw.grad.clone())
            with torch.no_grad():
                raw.sub_(0.1 * raw.grad)
        ours, theirs = (layer.parametrizations.weight for layer in layers)
        assert torch.equal(grads[0], grads[1])
        assert torch.equal(ours[0]._u, theirs[0]._u) and torch.equal(ours[0]._v, theirs[0]._v)
        assert torch.equal(ours.original, theirs.original)


def test_train_mode_updates_u_eval_mode_does_not():
    layer = sn.spectral_norm(nn.Linear(8, 6))
    u = layer.parametrizations.weight[0]._u
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(torch.linspace(0.5, 2, 8))
    before = u.clone()
    layer.eval()
    layer(torch.randn(2, 8))
    assert torch.equal(u, before)
    layer.train()
    layer(torch.randn(2, 8))
    assert not torch.equal(u, before)


def test_estimate_converges_to_svd_sigma():
    torch.manual_seed(0)
    layer = sn.spectral_norm(nn.Conv2d(3, 5, 3), n_power_iterations=5)
    for _ in range(20):
        layer(torch.randn(1, 3, 6, 6))
    raw = layer.parametrizations.weight.original.detach().flatten(1)
    exact = torch.linalg.matrix_norm(raw.double(), ord=2).item()
    assert sn.running_sigma(layer) == pytest.approx(exact, rel=1e-5)
    w_sn = layer.weight.detach().flatten(1).double()
    assert torch.linalg.matrix_norm(w_sn, ord=2).item() == pytest.approx(1.0, rel=1e-5)


def test_transposed_conv_uses_output_dim():
    layer = sn.spectral_norm(nn.ConvTranspose2d(4, 3, 3))
    p = layer.parametrizations.weight[0]
    assert p.dim == 1
    assert p._u.shape == (3,) and p._v.shape == (4 * 9,)


def test_gradient_matches_paper_formula():
    """dL/dW = (G - <G, W_SN> u v^T) / sigma, with G = dL/dW_SN (Miyato et al., eq. 12)."""
    torch.manual_seed(0)
    layer = sn.spectral_norm(nn.Linear(6, 4, bias=False)).double()
    layer.eval()  # fixed u, v: the formula treats them as constants
    x = torch.randn(10, 6, dtype=torch.double)
    raw = layer.parametrizations.weight.original
    out = layer(x)
    loss = (out.sin() * torch.arange(4.0, dtype=torch.double)).sum()
    (grad_raw,) = torch.autograd.grad(loss, raw)
    # G by autograd through a plain linear map with W_SN as a leaf.
    p = layer.parametrizations.weight[0]
    u, v = p._u, p._v
    sigma = u @ raw.detach() @ v
    w_sn = (raw.detach() / sigma).requires_grad_(True)
    loss2 = ((x @ w_sn.T).sin() * torch.arange(4.0, dtype=torch.double)).sum()
    (G,) = torch.autograd.grad(loss2, w_sn)
    lam = (G * w_sn.detach()).sum()
    expected = (G - lam * torch.outer(u, v)) / sigma
    torch.testing.assert_close(grad_raw, expected)
    # W / sigma(W) is scale invariant, so the gradient is orthogonal to W.
    assert (grad_raw * raw.detach()).sum().abs().item() < 1e-10


def test_two_forwards_then_one_backward_in_train_mode():
    """D(real) and D(fake) in one graph: in-place u updates must not break backward."""
    layer = sn.spectral_norm(nn.Linear(5, 1))
    loss = layer(torch.randn(3, 5)).mean() - layer(torch.randn(3, 5)).mean()
    loss.backward()
    assert layer.parametrizations.weight.original.grad is not None


@pytest.mark.parametrize("kind", ["linear", "conv2d", "convT2d", "embedding"])
def test_state_dict_loads_both_ways_with_torch(kind):
    ours, theirs = _pair(kind)
    _, make_input = LAYERS[kind]
    x = make_input(torch.Generator().manual_seed(0))
    ours(x)  # one training step of power iteration so the state is not the initial one
    assert set(ours.state_dict()) == set(theirs.state_dict())
    fresh_theirs = torch_spectral_norm(LAYERS[kind][0]())
    fresh_theirs.load_state_dict(ours.state_dict())
    fresh_ours = sn.spectral_norm(LAYERS[kind][0]())
    fresh_ours.load_state_dict(fresh_theirs.state_dict())
    for m in (ours, fresh_theirs, fresh_ours):
        m.eval()
    torch.testing.assert_close(fresh_theirs(x), ours(x))
    torch.testing.assert_close(fresh_ours(x), ours(x))


def test_deepcopy_and_save_state_dict_round_trip():
    model = sn.apply_spectral_norm(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    )
    x = torch.randn(2, 3, 6, 6)
    model(x)
    clone = copy.deepcopy(model)
    clone.eval()
    model.eval()
    torch.testing.assert_close(clone(x), model(x))
    u_clone = clone[0].parametrizations.weight[0]._u
    assert u_clone.data_ptr() != model[0].parametrizations.weight[0]._u.data_ptr()

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = sn.apply_spectral_norm(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    )
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    loaded.eval()
    torch.testing.assert_close(loaded(x), model(x))


def test_legacy_state_dict_converts():
    torch.manual_seed(0)
    legacy = torch.nn.utils.spectral_norm(nn.Linear(5, 3))
    x = torch.randn(4, 5)
    legacy(x)
    legacy.eval()
    ours = sn.spectral_norm(nn.Linear(5, 3))
    ours.load_state_dict(sn.convert_legacy_state_dict(legacy.state_dict()))
    ours.eval()
    torch.testing.assert_close(ours(x), legacy(x))


def _small_d():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.LeakyReLU(0.1),
        nn.ConvTranspose2d(4, 2, 4, 2, 1),
        nn.Flatten(),
        nn.Linear(2 * 12 * 12, 3),
    )


def test_apply_spectral_norm_covers_weight_layers_only():
    model = sn.apply_spectral_norm(_small_d())
    assert list(sn.spectral_norm_layers(model)) == ["0", "3", "5"]
    assert not parametrize.is_parametrized(model[1])
    assert model[3].parametrizations.weight[0].dim == 1
    sn.apply_spectral_norm(model)  # idempotent: already normalized layers are skipped
    assert len(model[0].parametrizations.weight) == 1
    only_linear = sn.apply_spectral_norm(_small_d(), layer_types=(nn.Linear,))
    assert list(sn.spectral_norm_layers(only_linear)) == ["5"]


def test_spectral_norm_on_a_whole_model_explains_the_fix():
    with pytest.raises(ValueError, match="apply_spectral_norm"):
        sn.spectral_norm(_small_d())


def _empty_linear() -> nn.Linear:
    layer = nn.Linear(3, 3)
    layer.weight = nn.Parameter(torch.empty(0, 3))
    return layer


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: sn.spectral_norm(nn.Linear(3, 3), n_power_iterations=0), "n_power_iterations"),
        (lambda: sn.spectral_norm(nn.Linear(3, 3), n_power_iterations=1.5), "n_power_iterations"),
        (lambda: sn.spectral_norm(nn.Linear(3, 3), dim=2), "dim"),
        (lambda: sn.spectral_norm(nn.Conv2d(3, 3, 3), dim=-5), "dim"),
        (lambda: sn.spectral_norm(_empty_linear()), "empty"),
        (lambda: sn.spectral_norm(nn.BatchNorm2d(3)), "2 dimensions"),
        (lambda: sn.spectral_norm(nn.Linear(3, 3), name="bias_x"), "name"),
        (lambda: sn.spectral_norm(nn.Linear(3, 3), eps=0), "eps"),
        (lambda: sn.spectral_norm(sn.spectral_norm(nn.Linear(3, 3))), "already"),
        (lambda: sn.apply_spectral_norm(_small_d(), layer_types=(int,)), "layer_types"),
        (lambda: sn.apply_spectral_norm(_small_d(), layer_types=(nn.BatchNorm2d,)), "layer_types"),
        (lambda: sn.apply_spectral_norm(_small_d(), n_power_iterations=0), "n_power_iterations"),
        (lambda: sn.remove_spectral_norm(nn.Linear(3, 3)), "no spectral norm"),
    ],
)
def test_bad_input_raises_value_error_naming_it(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_bad_apply_settings_leave_the_model_untouched():
    model = _small_d()
    with pytest.raises(ValueError):
        sn.apply_spectral_norm(model, eps=-1.0)
    assert not sn.spectral_norm_layers(model)


def test_remove_spectral_norm_keeps_normalized_weight_without_iterating():
    model = sn.apply_spectral_norm(_small_d())
    model.eval()
    expected = model[5].weight.detach().clone()
    param = model[5].parametrizations.weight[0]
    u = param._u.clone()
    model.train()
    sn.remove_spectral_norm(model)
    assert not sn.spectral_norm_layers(model)
    assert isinstance(model[5].weight, nn.Parameter)
    torch.testing.assert_close(model[5].weight.detach(), expected)
    assert torch.equal(param._u, u)  # the stored vector was used as is (no extra iteration)


def test_layer_sigmas_and_normalized_sigmas_have_no_side_effects():
    torch.manual_seed(0)
    model = torch_spectral_norm(nn.Linear(6, 5))  # also reads PyTorch's built-in SN
    p = model.parametrizations.weight[0]
    before = p._u.clone()
    sigmas = sn.layer_sigmas(model)
    raw = model.parametrizations.weight.original.detach()
    assert sigmas[""] == pytest.approx(float(p._u @ raw @ p._v), rel=1e-6)
    exact = torch.linalg.matrix_norm(raw.double(), ord=2).item()
    assert sn.normalized_sigmas(model)[""] == pytest.approx(exact / sigmas[""], rel=1e-6)
    assert torch.equal(p._u, before)


@pytest.mark.parametrize("dim", [0, 1])
def test_divide_by_sigma_passes_gradcheck_and_gradgradcheck(dim):
    torch.manual_seed(0)
    weight = torch.randn(3, 4, 2, 2, dtype=torch.double, requires_grad=True)
    mat = weight.detach().movedim(dim, 0).flatten(1)
    u = torch.nn.functional.normalize(torch.randn(mat.shape[0], dtype=torch.double), dim=0)
    v = torch.nn.functional.normalize(torch.randn(mat.shape[1], dtype=torch.double), dim=0)
    assert torch.autograd.gradcheck(lambda w: sn.divide_by_sigma(w, u, v, dim), (weight,))
    assert torch.autograd.gradgradcheck(lambda w: sn.divide_by_sigma(w, u, v, dim), (weight,))


FUNC_LAYERS = {
    "linear": (lambda: nn.Linear(6, 4), (3, 6)),
    "conv2d": (lambda: nn.Conv2d(2, 3, 3, 2, 1), (2, 2, 5, 5)),
    "convT2d": (lambda: nn.ConvTranspose2d(3, 2, 4, 2, 1), (2, 3, 3, 3)),
}
RAW = "parametrizations.weight.original"


def _pair64(kind: str, training: bool):
    """Our SN and PyTorch's on one float64 layer with identical u, v; a loss of the raw weight."""
    make, shape = FUNC_LAYERS[kind]
    torch.manual_seed(0)
    base = make().double()
    x = torch.randn(shape, dtype=torch.double)
    pair = []
    for attach in (sn.spectral_norm, torch_spectral_norm):
        layer = attach(copy.deepcopy(base)).train(training)
        pair.append(layer)
    with torch.no_grad():
        for name in ("_u", "_v"):
            getattr(pair[0].parametrizations.weight[0], name).copy_(
                getattr(pair[1].parametrizations.weight[0], name))
    weight = base.weight.detach().clone()
    return pair, x, weight


def _loss(layer: nn.Module, x: torch.Tensor):
    return lambda w: torch.func.functional_call(layer, {RAW: w}, (x,)).square().sum()


@pytest.mark.parametrize("kind", sorted(FUNC_LAYERS))
def test_second_derivative_passes_gradgradcheck_like_torch(kind):
    # Eval mode: u, v stay fixed, so the layer is a function of W that finite differences can
    # check. (In training mode every call runs a power iteration, for torch's layer as for ours.)
    (ours, theirs), x, weight = _pair64(kind, training=False)
    for layer in (ours, theirs):
        assert torch.autograd.gradgradcheck(_loss(layer, x), (weight.clone().requires_grad_(),))


@pytest.mark.parametrize("kind", sorted(FUNC_LAYERS))
@pytest.mark.parametrize("training", [False, True])
def test_torch_func_grad_matches_torch(kind, training):
    (ours, theirs), x, weight = _pair64(kind, training)
    g_ours = torch.func.grad(_loss(ours, x))(weight)
    g_theirs = torch.func.grad(_loss(theirs, x))(weight)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-10, atol=1e-12)
    # Both ran the same power iteration on their buffers in training mode.
    torch.testing.assert_close(ours.parametrizations.weight[0]._u,
                               theirs.parametrizations.weight[0]._u, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(FUNC_LAYERS))
def test_torch_func_jvp_matches_torch(kind):
    (ours, theirs), x, weight = _pair64(kind, training=False)
    gen = torch.Generator().manual_seed(1)
    tangent = torch.randn(weight.shape, dtype=torch.double, generator=gen)
    out_ours, jvp_ours = torch.func.jvp(_loss(ours, x), (weight,), (tangent,))
    out_theirs, jvp_theirs = torch.func.jvp(_loss(theirs, x), (weight,), (tangent,))
    torch.testing.assert_close(out_ours, out_theirs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jvp_ours, jvp_theirs, rtol=1e-10, atol=1e-12)
    # And the directional derivative is the gradient's inner product with the tangent.
    grad = torch.func.grad(_loss(ours, x))(weight)
    torch.testing.assert_close(jvp_ours, (grad * tangent).sum(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(FUNC_LAYERS))
def test_torch_func_vmap_matches_torch(kind):
    (ours, theirs), x, weight = _pair64(kind, training=False)
    weights = torch.stack([weight, 2 * weight, weight.flip(0)])
    batched = [torch.func.vmap(lambda w, layer=layer: torch.func.functional_call(
        layer, {RAW: w}, (x,)))(weights) for layer in (ours, theirs)]
    torch.testing.assert_close(batched[0], batched[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(batched[0][1], batched[0][0])  # W / sigma(W) ignores the scale
    for layer in (ours, theirs):  # vmap over the inputs, in training mode as well
        layer.train()
    per_input = [torch.func.vmap(lambda xi, layer=layer: layer(xi[None])[0])(x)
                 for layer in (ours, theirs)]
    torch.testing.assert_close(per_input[0], per_input[1], rtol=1e-12, atol=1e-12)


def test_spectral_norm_with_gradient_penalty_double_backward():
    from sngan_edu.regularizers import gradient_penalty

    model = sn.apply_spectral_norm(nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)))
    gp = gradient_penalty(model, torch.randn(4, 3), torch.randn(4, 3))
    gp.backward()
    raw = model[0].parametrizations.weight.original
    assert raw.grad is not None and torch.isfinite(raw.grad).all()
