"""Two PyTorch pitfalls of SN: averaging an SN model (EMA) and calling one SN module twice.

References are independent of ``sngan_edu.sn``: SVD for sigma, PyTorch's own forward for the
power iteration, and autograd on a plain re-implementation (power iteration written out, no
custom backward) for gradients. Every check runs for our SN and for PyTorch's built-in.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sngan_edu import sn

torch.set_num_threads(1)

ATTACH = {"ours": sn.spectral_norm, "torch": torch_spectral_norm}


def _param(layer: nn.Module):
    return layer.parametrizations.weight[0]


def _matrix(layer: nn.Module) -> torch.Tensor:
    """The raw weight as the matrix SN normalizes (ConvTranspose: output dim 1 first)."""
    raw = layer.parametrizations.weight.original.detach()
    if isinstance(layer, nn.ConvTranspose2d):
        raw = raw.transpose(0, 1)
    return raw.flatten(1)


def _svd_sigma(matrix: torch.Tensor) -> float:
    return float(torch.linalg.svdvals(matrix.double())[0])


def _used_weight_sigma(layer: nn.Module) -> float:
    """SVD sigma of the weight the eval-mode forward really uses (read through .weight)."""
    was_training = layer.training
    layer.eval()
    try:
        w = layer.weight.detach()
    finally:
        layer.train(was_training)
    if isinstance(layer, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return _svd_sigma(w.flatten(1))


LAYERS = {
    "linear": lambda: nn.Linear(9, 6),
    "conv2d": lambda: nn.Conv2d(3, 5, 3),
    "convT2d": lambda: nn.ConvTranspose2d(4, 3, 4, 2, 1),
}


# --------------------------------------------------------------------------------------------
# refresh_power_iteration
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", sorted(ATTACH))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_refresh_repairs_shrunk_vectors_to_the_svd_sigma(impl, kind):
    torch.manual_seed(0)
    layer = ATTACH[impl](LAYERS[kind]().double())
    p = _param(layer)
    with torch.no_grad():  # an "average" of the vectors with other unit vectors: shorter than 1
        p._u.mul_(0.5).add_(0.5 * F.normalize(torch.randn_like(p._u), dim=0))
        p._v.mul_(0.5).add_(0.5 * F.normalize(torch.randn_like(p._v), dim=0))
    exact = _svd_sigma(_matrix(layer))
    assert _used_weight_sigma(layer) > 1.05  # the pitfall: the estimate is too small

    assert sn.refresh_power_iteration(layer, n_iters=300) is layer
    assert abs(float(p._u.norm()) - 1) < 1e-12 and abs(float(p._v.norm()) - 1) < 1e-12
    estimate = float(p._u @ _matrix(layer) @ p._v)
    assert estimate == pytest.approx(exact, rel=1e-8)
    assert _used_weight_sigma(layer) == pytest.approx(1.0, abs=1e-8)
    u1 = torch.linalg.svd(_matrix(layer))[0][:, 0]
    assert abs(float(u1 @ p._u)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("impl", sorted(ATTACH))
@pytest.mark.parametrize("n_iters", [1, 2, 5])
def test_refresh_equals_n_training_forwards_of_torch(impl, n_iters):
    """n_iters refresh iterations == n_iters training-mode forwards (torch's SN as reference)."""
    torch.manual_seed(0)
    layer = ATTACH[impl](nn.Conv2d(3, 4, 3))
    reference = torch_spectral_norm(nn.Conv2d(3, 4, 3))
    with torch.no_grad():
        reference.parametrizations.weight.original.copy_(layer.parametrizations.weight.original)
        _param(reference)._u.copy_(_param(layer)._u)
        _param(reference)._v.copy_(_param(layer)._v)
    for _ in range(n_iters):
        reference.parametrizations.weight[0](reference.parametrizations.weight.original)
    sn.refresh_power_iteration(layer, n_iters=n_iters)
    torch.testing.assert_close(_param(layer)._u, _param(reference)._u, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(_param(layer)._v, _param(reference)._v, rtol=1e-6, atol=1e-7)


def test_refresh_touches_only_the_vectors():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    sn.apply_spectral_norm(model)
    model.eval()
    model[2].train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.enable_grad():
        sn.refresh_power_iteration(model, n_iters=3)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"{i}.parametrizations.weight.0.{b}" for i in (0, 2) for b in ("_u", "_v")}
    assert [m.training for m in model] == [False, False, True]
    assert all(p.grad is None for p in model.parameters())
    assert not any(b.requires_grad for b in model.buffers())


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_refresh_rejects_bad_iteration_counts(bad):
    layer = sn.spectral_norm(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="n_iters"):
        sn.refresh_power_iteration(layer, n_iters=bad)


# --------------------------------------------------------------------------------------------
# Pitfall 1: an EMA of an SN model averages u and v too
# --------------------------------------------------------------------------------------------


def _train_with_ema(impl: str, steps: int = 200):
    """A small SN classifier (a discriminator's task: inside vs outside a disc) and its EMA."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 32), nn.LeakyReLU(0.1), nn.Linear(32, 32), nn.LeakyReLU(0.1), nn.Linear(32, 1)
    ).double()
    for layer in model[::2]:
        ATTACH[impl](layer)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.99), use_buffers=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(64, 6, generator=gen, dtype=torch.float64)
        target = (x[:, :2].norm(dim=1) < 1).double()
        loss = F.binary_cross_entropy_with_logits(model(x).squeeze(1), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update_parameters(model)
    return model, ema


@pytest.mark.parametrize("impl", sorted(ATTACH))
def test_ema_shrinks_vectors_underestimates_sigma_and_refresh_fixes_it(impl):
    model, ema = _train_with_ema(impl)
    averaged = ema.module.eval()
    layers = list(averaged[::2])
    norms = [float(_param(m)._u.norm()) for m in layers]
    used = [_used_weight_sigma(m) for m in layers]
    # The trained model stays close to normalized (one iteration per step lags a little) ...
    assert max(_used_weight_sigma(m) for m in model[::2]) < 1.1
    # ... its average does not: shorter vectors, smaller u^T W v, sigma(W / estimate) > 1.
    assert min(norms) < 0.9
    assert all(s >= 1 - 1e-9 for s in used)
    assert max(used) > 2
    sn.refresh_power_iteration(averaged, n_iters=500)
    assert [_used_weight_sigma(m) for m in layers] == pytest.approx([1.0] * len(layers), abs=1e-6)


# --------------------------------------------------------------------------------------------
# Pitfall 2: one SN module called twice in one graph (D(real), D(fake), one backward)
# --------------------------------------------------------------------------------------------


def _plain_reference(W0, b, u, v, batches):
    """Autograd through plain ops, one power iteration per call, from the vectors (u, v)."""
    W = W0.clone().requires_grad_()
    outputs = []
    for x in batches:
        with torch.no_grad():
            u = F.normalize(W @ v, dim=0)
            v = F.normalize(W.T @ u, dim=0)
        outputs.append((x @ (W / (u @ W @ v)).T + b).tanh().sum(1))
    return W, torch.cat(outputs), u


@pytest.mark.parametrize("impl", sorted(ATTACH))
def test_two_calls_one_backward_gives_the_gradient_of_two_iterations(impl):
    torch.manual_seed(0)
    layer = ATTACH[impl](nn.Linear(8, 5).double())
    real = torch.randn(6, 8, dtype=torch.float64)
    fake = torch.randn(6, 8, dtype=torch.float64)
    W0 = layer.parametrizations.weight.original.detach().clone()
    b = layer.bias.detach()
    u0, v0 = _param(layer)._u.clone(), _param(layer)._v.clone()
    with torch.no_grad():  # move W away from the warm-up state so each iteration matters
        layer.parametrizations.weight.original.add_(0.3 * torch.randn_like(W0))
    W0 = layer.parametrizations.weight.original.detach().clone()

    joint = copy.deepcopy(layer)
    loss = layer(real).tanh().sum(1).mean() - layer(fake).tanh().sum(1).mean()
    loss.backward()  # no "modified by an inplace operation" error

    W, out, u_ref = _plain_reference(W0, b, u0, v0, [real, fake])
    (out[:6].mean() - out[6:].mean()).backward()
    torch.testing.assert_close(
        layer.parametrizations.weight.original.grad, W.grad, rtol=1e-10, atol=1e-12
    )
    torch.testing.assert_close(_param(layer)._u, u_ref, rtol=1e-12, atol=1e-12)  # two iterations

    # One concatenated batch: one iteration, and the gradient of one normalized weight.
    out_joint = joint(torch.cat((real, fake))).tanh().sum(1)
    (out_joint[:6].mean() - out_joint[6:].mean()).backward()
    W1, out1, u1 = _plain_reference(W0, b, u0, v0, [torch.cat((real, fake))])
    (out1[:6].mean() - out1[6:].mean()).backward()
    torch.testing.assert_close(
        joint.parametrizations.weight.original.grad, W1.grad, rtol=1e-10, atol=1e-12
    )
    torch.testing.assert_close(_param(joint)._u, u1, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(W1.grad, W.grad, rtol=1e-6, atol=0)  # the two are not the same


class _NoCloneSN(nn.Module):
    """A naive SN that feeds its in-place-updated buffers straight into the graph."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("_u", F.normalize(torch.randn(weight.shape[0]), dim=0))
        self.register_buffer("_v", F.normalize(torch.randn(weight.shape[1]), dim=0))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self._u.copy_(F.normalize(weight @ self._v, dim=0))
                self._v.copy_(F.normalize(weight.T @ self._u, dim=0))
        return weight / (self._u @ weight @ self._v)


def test_without_clones_two_calls_raise_the_inplace_error():
    """Why sn.SpectralNorm clones u and v: the naive version breaks the second backward."""
    torch.manual_seed(0)
    layer = nn.Linear(4, 3)
    parametrize.register_parametrization(layer, "weight", _NoCloneSN(layer.weight))
    loss = layer(torch.randn(2, 4)).sum() - layer(torch.randn(2, 4)).sum()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("impl", sorted(ATTACH))
def test_the_generator_step_advances_u_of_a_training_mode_d(impl):
    """The pitfalls appendix: a generator update calls D(G(z)) with D in training mode, so every
    G step also runs one power iteration in each SN layer of D (as the authors' updater does);
    in eval mode it runs none. Reference: the power iteration written out on the raw weight."""
    from sngan_edu.gan_step import generator_step
    from sngan_edu.losses import hinge_g_loss

    torch.manual_seed(0)
    G = nn.Linear(3, 8).double()
    D = nn.Sequential(ATTACH[impl](nn.Linear(8, 5)), nn.ReLU(), ATTACH[impl](nn.Linear(5, 1)))
    D = D.double()
    with torch.no_grad():  # move the weights so that one more iteration changes u
        for layer in (D[0], D[2]):
            layer.parametrizations.weight.original.add_(0.3 * torch.randn_like(_matrix(layer)))
    before = {i: (_param(D[i])._u.clone(), _param(D[i])._v.clone()) for i in (0, 2)}
    opt = torch.optim.SGD(G.parameters(), lr=0.1)
    z = torch.randn(4, 3, dtype=torch.float64)

    D.eval()
    generator_step(G, D, opt, z, hinge_g_loss)
    for i in (0, 2):  # eval mode: u, v untouched
        assert torch.equal(_param(D[i])._u, before[i][0])

    D.train()
    generator_step(G, D, opt, z, hinge_g_loss)
    for i in (0, 2):
        W = _matrix(D[i]).double()
        u = F.normalize(W @ before[i][1], dim=0)  # one iteration: u <- W v / |W v|
        v = F.normalize(W.T @ u, dim=0)  # then v <- W^T u / |W^T u|
        torch.testing.assert_close(_param(D[i])._u, u, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(_param(D[i])._v, v, rtol=1e-10, atol=1e-12)
        assert not torch.allclose(v, before[i][1], atol=1e-6)  # it moved
    assert all(p.requires_grad for p in D.parameters())  # D's parameters restored


def test_the_appendix_quotes_its_runs_over_the_stored_seeds():
    """The pitfalls appendix states of its short runs what holds over the five seeds stored by
    benchmarks/sn_pitfalls_seeds.py, and its facts file's thresholds hold for every one of them."""
    import json
    from pathlib import Path

    import nbformat

    root = Path(__file__).resolve().parents[1]
    stored = json.loads((root / "benchmarks" / "results" / "sn_pitfalls_seeds.json").read_text())
    runs = stored["runs"]
    assert sorted(r["seed"] for r in runs) == [0, 1, 2, 3, 4]
    nb = nbformat.read(root / "notebooks" / "appendix_sn_pitfalls.ipynb", 4)
    text = " ".join(" ".join(c.source.split()) for c in nb.cells if c.cell_type == "markdown")

    def span(key, fmt):
        values = [r[key] for r in runs]
        return f"{min(values):{fmt}} to {max(values):{fmt}}"

    assert f"({span('averaged_product', '.0f')} over five seeds of this run" in text
    assert f"with the largest layer at {span('averaged_max_sigma', '.1f')})" in text
    assert max(r["refreshed_max_deviation"] for r in runs) < 0.03  # "within 3 % of 1"
    assert max(r["refreshed_more_max_deviation"] for r in runs) < 0.005  # "within 0.5 %"
    assert (f"after step 100 is {span('one_batch_max_lag_after_100', '.2f')} with one batch and "
            f"{span('two_calls_max_lag_after_100', '.2f')} with two calls") in text
    assert (f"early peak {span('one_batch_max_lag', '.2f')} with one batch and "
            f"{span('two_calls_max_lag', '.2f')} with two calls") in text
    for r in runs:  # the facts file's thresholds (tests/notebook_facts/appendix_sn_pitfalls.py)
        assert r["trained_max_deviation"] < 0.1 and r["trained_product"] < 1.2
        assert r["averaged_max_sigma"] > 1.5 and r["averaged_min_sigma"] > 0.99
        assert 100 <= r["averaged_product"] < 1000 and r["averaged_min_u_length"] < 0.95
        assert r["refreshed_max_deviation"] < 0.05 and r["refreshed_more_max_deviation"] < 0.01
        for how in ("one_batch", "two_calls"):
            assert r[f"{how}_max_lag"] > 1.05 and r[f"{how}_max_lag_after_100"] < 1.1
