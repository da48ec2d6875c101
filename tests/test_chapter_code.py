"""The code a chapter shows is the code the library runs (issue 36, d2l's #@save idea).

Notebooks 02, 03 and 04 write their training steps out in code cells. These tests read those
cells from the notebook files (only the ``def`` statements named, so nothing else of the page
runs), execute them, and check that they give the same numbers, bit for bit, as the library
functions the comparisons and widgets use, on the same inputs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sngan_edu import sn
from sngan_edu.experiments import critics

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def page_functions(notebook: str, *names: str, **namespace) -> dict:
    """Run the notebook's ``def``/``class`` statements for ``names`` in ``namespace``; return it."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    found = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics (the install guard)
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
                assert node.name not in found, f"{node.name} is defined twice in {notebook}"
                found[node.name] = node
    missing = set(names) - set(found)
    assert not missing, f"{notebook} no longer defines {sorted(missing)}"
    module = ast.Module(body=[found[n] for n in names], type_ignores=[])
    exec(compile(module, notebook, "exec"), namespace)  # noqa: S102 - our own notebook
    return namespace


def _states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- notebook 02: the three critic updates ------------------------------------------------

STEPS_02 = ("critic_loss", "unconstrained_step", "clipping_step", "gradient_penalty", "gp_step")


def _page_02():
    ns = page_functions("02_lipschitz_constraints.ipynb", *STEPS_02, torch=torch)
    return {"none": ns["unconstrained_step"], "clip": ns["clipping_step"], "gp": ns["gp_step"],
            "sn": ns["unconstrained_step"]}


def _small_critic() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.1), nn.Linear(16, 16),
                         nn.LeakyReLU(0.1), nn.Linear(16, 1))


@pytest.mark.parametrize("method", critics.CRITIC_METHODS)
def test_02_page_step_equals_the_library_step(method):
    page = _page_02()[method]
    torch.manual_seed(0)
    init = _small_critic().state_dict()
    models = []
    for _ in range(2):
        critic = _small_critic()
        critic.load_state_dict(init)
        torch.manual_seed(1)  # the same power-iteration start for both SN critics
        models.append(critics.prepare_critic(critic, method))
    ours, lib = models
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-2, betas=(0.5, 0.9))
    opt_lib = torch.optim.Adam(lib.parameters(), lr=1e-2, betas=(0.5, 0.9))
    data = torch.Generator().manual_seed(2)
    for step in range(6):
        real = torch.randn(32, 2, generator=data) + 2
        fake = torch.randn(32, 2, generator=data)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(100 + step)
            estimate = page(ours, opt_ours, real, fake)
        expected = critics.critic_step(lib, opt_lib, real, fake, method,
                                       generator=torch.Generator().manual_seed(100 + step))
        assert estimate == expected, (method, step)
        assert _states_equal(ours, lib), (method, step)
    # and the steps did something (a test of equal no-ops would prove nothing)
    fresh = critics.prepare_critic(_small_critic(), method)
    assert not _states_equal(ours, fresh)


def test_02_runner_with_the_page_steps_equals_its_default():
    data = torch.Generator().manual_seed(0)
    real = torch.randn(256, 2, generator=data) + 1
    fake = torch.randn(256, 2, generator=data)
    kwargs = dict(steps=4, batch_size=32, lr=1e-2, snapshot_steps=(0, 4), seed=3)
    page = critics.train_critics(_small_critic, real, fake, step_fns=_page_02(), **kwargs)
    lib = critics.train_critics(_small_critic, real, fake, **kwargs)
    for method in critics.CRITIC_METHODS:
        assert page[method].gaps == lib[method].gaps
        assert _states_equal(page[method].critic, lib[method].critic)


def test_02_gradient_penalty_is_the_library_penalty():
    from sngan_edu.regularizers import gradient_penalty

    ns = page_functions("02_lipschitz_constraints.ipynb", "gradient_penalty", torch=torch)
    torch.manual_seed(0)
    critic = _small_critic()
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    torch.manual_seed(5)
    ours = ns["gradient_penalty"](critic, real, fake)
    theirs = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    assert torch.equal(ours, theirs)
    assert ours.requires_grad  # create_graph: the penalty reaches the weights
    (g,) = torch.autograd.grad(ours, critic[0].weight)
    assert g.abs().sum() > 0


def test_02_runner_rejects_a_missing_step():
    with pytest.raises(ValueError, match="step_fns"):
        critics.train_critics(_small_critic, torch.zeros(8, 2), torch.zeros(8, 2), steps=1,
                              batch_size=4, step_fns={"none": lambda *a: 0.0})


# --- notebook 03: the SN forward and the live demo's loop ---------------------------------


def test_03_hand_sn_equals_the_library_layer_while_the_weight_moves():
    ns = page_functions("03_spectral_norm_layer.ipynb", "HandSN", torch=torch, F=F)
    torch.manual_seed(0)
    layer = nn.Linear(12, 7)
    torch.manual_seed(1)
    sn.spectral_norm(layer)
    state = layer.parametrizations.weight[0]
    hand = ns["HandSN"](state._u, state._v)
    W = layer.parametrizations.weight.original.detach().clone()
    moves = torch.Generator().manual_seed(2)
    for _ in range(5):
        W += 0.1 * torch.randn(W.shape, generator=moves)
        with torch.no_grad():
            layer.parametrizations.weight.original.copy_(W)
        torch.testing.assert_close(hand(W), layer.weight.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(hand.u, state._u)
    layer.eval()  # eval: no iteration, the same stored vectors
    torch.testing.assert_close(hand(W, training=False), layer.weight.detach(), rtol=1e-6,
                               atol=1e-7)


def _page_03():
    from sngan_edu.experiments.sigma_demo import noise_images, smooth_images
    from sngan_edu.models.standard_cnn import Discriminator
    from sngan_edu.sigma_report import record_sigma_history

    return page_functions("03_spectral_norm_layer.ipynb", "d_step", "watch_sigmas", torch=torch,
                          F=F, sn=sn, Discriminator=Discriminator, smooth_images=smooth_images,
                          noise_images=noise_images, record_sigma_history=record_sigma_history)


def test_03_page_d_step_is_the_library_discriminator_step():
    from sngan_edu.experiments.sigma_demo import _bce_d_loss
    from sngan_edu.gan_step import discriminator_step
    from sngan_edu.models.standard_cnn import Discriminator

    ns = _page_03()
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        D = Discriminator(image_size=16, width=0.125, spectral_norm=True)
        models.append((D, torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))))
    (ours, opt_ours), (lib, opt_lib) = models
    data = torch.Generator().manual_seed(3)
    for _ in range(3):
        real, fake = torch.randn(8, 3, 16, 16, generator=data), torch.rand(8, 3, 16, 16)
        ns["d_step"](ours, opt_ours, real, fake)
        discriminator_step(lib, opt_lib, real, fake, _bce_d_loss, joint=True)
        assert _states_equal(ours, lib)


def test_03_page_loop_gives_the_library_demo_history():
    from sngan_edu.experiments.sigma_demo import train_sigma_demo

    seen = []
    page = _page_03()["watch_sigmas"](steps=20, record_every=5,
                                      callback=lambda step, h: seen.append(step))
    lib = train_sigma_demo(n_power_iterations=1, steps=20, record_every=5)
    assert seen == [0, 5, 10, 15, 20]
    assert page == lib
    assert page["main.0"][0] != page["main.0"][-1]  # it trained


def test_02_explorer_carries_its_picture_for_a_page_without_a_kernel():
    import base64

    from sngan_edu.widgets.lipschitz import LandscapeExplorer

    grids = {(m, s): torch.rand(6, 6, generator=torch.Generator().manual_seed(i))
             for i, (m, s) in enumerate([("none", 0), ("sn", 0), ("none", 5), ("sn", 5)])}
    explorer = LandscapeExplorer(grids, (-2, 2, -2, 2))
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live widget first
    assert base64.b64decode(bundle["image/png"]) == explorer.png("sn", 5)  # its default view
    explorer.method.value = "none"
    assert base64.b64decode(explorer._repr_mimebundle_()["image/png"]) == explorer.png("none", 5)


# --- notebook 04: the toy GAN loop -------------------------------------------------------------


@pytest.mark.parametrize(("method", "overrides"),
                         [("gan", {}), ("sn", {}), ("gan", {"lr_d": 1e-4})])
def test_04_page_loop_trains_the_same_weights_as_run_toy(method, overrides):
    from sngan_edu.data.toy import make_sampler
    from sngan_edu.experiments.toy_runs import run_toy, toy_gan
    from sngan_edu.gan_step import discriminator_step, generator_step
    from sngan_edu.losses import vanilla_d_loss, vanilla_g_loss

    ns = page_functions("04_toy_gan_mode_collapse.ipynb", "train_toy_gan", torch=torch,
                        discriminator_step=discriminator_step, generator_step=generator_step,
                        vanilla_d_loss=vanilla_d_loss, vanilla_g_loss=vanilla_g_loss)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # run_toy trains on one thread
    try:
        steps, seed = 12, 3
        G, D, config = toy_gan(method, "ring", steps, seed=seed, **overrides)
        if config.regularizer == "sn":  # what the Trainer does once, before the loop
            torch.manual_seed(seed)
            sn.apply_spectral_norm(D, n_power_iterations=config.sn_power_iterations)
        opt = config.optimizer_settings()
        ns["train_toy_gan"](G, D, make_sampler("ring"), steps, n_dis=opt["n_dis"],
                            lr_d=opt["lr_d"], lr_g=opt["lr_g"], batch=config.batch_size,
                            seed=seed)
        lib = run_toy(method, "ring", steps, seed=seed, **overrides).trainer
    finally:
        torch.set_num_threads(threads)
    assert _states_equal(G, lib.G) and _states_equal(D, lib.D)
    fresh_G, _, _ = toy_gan(method, "ring", steps, seed=seed)
    assert not _states_equal(G, fresh_G)  # it trained
