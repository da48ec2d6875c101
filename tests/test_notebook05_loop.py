"""Notebook 05's visible training loop (the cell defining ``train``) is the library's: run from
the notebook's own source, it trains bit for bit the weights of
:func:`sngan_edu.train.loop.train_gan` and of the runner's :class:`~sngan_edu.train.trainer.Trainer`
for the same seed and steps."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import torch

from sngan_edu.data.images import load_image_data
from sngan_edu.experiments.sngan_run import build_discriminator, build_generator
from sngan_edu.losses import get_loss
from sngan_edu.sn import apply_spectral_norm
from sngan_edu.train.config import RunConfig
from sngan_edu.train.loop import train_gan
from sngan_edu.train.trainer import Trainer

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_sngan_training.ipynb"
# A tiny run of notebook 05's model: 6 generator steps, each after 2 steps of D.
CONFIG = RunConfig(steps=6, n_dis=2, batch_size=8, z_dim=16, width=0.0625, d_width=0.0625,
                   seed=3, device="cpu", out_dir=None, cpu_threads=None, progress=False,
                   channels_last=False)


def loop_cell() -> str:
    """The source of the notebook's code cell that defines ``train``."""
    cells = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells
             if c.cell_type == "code" and "def train(" in c.source]
    found = [s for s in cells if any(isinstance(n, ast.FunctionDef) and n.name == "train"
                                     for n in ast.parse(s).body)]
    assert len(found) == 1, "notebook 05 should define train() in exactly one cell"
    return found[0]


def notebook_train():
    namespace = {"torch": torch}
    exec(compile(loop_cell(), "notebook 05: the loop cell", "exec"), namespace)
    return namespace["train"]


def test_the_loop_cell_is_short_and_shows_every_part_of_algorithm_1():
    source = loop_cell()
    assert len(source.splitlines()) <= 26
    for part in ("for _ in range(n_dis)", "sample_real()", "torch.no_grad()", "F.relu(1 - d_real)",
                 "opt_d.step()", "opt_g.step()", "G_avg.update_parameters(G)"):
        assert part in source, part


@pytest.fixture(scope="module")
def data():
    return load_image_data(CONFIG.dataset, image_size=CONFIG.image_size, split="all")


def models(data):
    torch.manual_seed(CONFIG.seed)
    return build_generator(CONFIG, data.channels), build_discriminator(CONFIG, data.channels)


def by_hand(data, loop, runner_optimizers):
    """What the runner does around the loop, written out: SN on D, Adam with the setting's
    settings, the average of G's weights, the runner's random streams for data and noise."""
    G, D = models(data)
    torch.manual_seed(CONFIG.seed)  # the runner draws SN's first u after seeding
    apply_spectral_norm(D)
    adam = CONFIG.optimizer
    opt_g, opt_d, G_avg = runner_optimizers(G, D, CONFIG)
    z_rng = torch.Generator().manual_seed(CONFIG.seed)
    data_rng = torch.Generator().manual_seed(CONFIG.seed + 0x5EED)
    losses = []
    sample_real = lambda: data.sample(CONFIG.batch_size, data_rng)  # noqa: E731
    sample_z = lambda: torch.randn(CONFIG.batch_size, CONFIG.z_dim, generator=z_rng)  # noqa: E731
    after_step = lambda step, loss_d, loss_g: losses.append((step, float(loss_d), float(loss_g)))  # noqa: E731
    if loop is None:
        train_gan(G, D, opt_g, opt_d, get_loss("hinge"), sample_real, sample_z,
                  steps=CONFIG.steps, n_dis=adam["n_dis"], regularizer="sn", G_avg=G_avg,
                  after_step=after_step)
    else:
        loop(G, D, opt_g, opt_d, sample_real, sample_z, CONFIG.steps, adam["n_dis"], G_avg,
             after_step)
    return G, D, G_avg, losses


def assert_same_weights(mine, theirs):
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)


def test_the_notebooks_loop_trains_the_weights_of_train_gan(data, runner_optimizers):
    G, D, G_avg, losses = by_hand(data, notebook_train(), runner_optimizers)
    G2, D2, G_avg2, losses2 = by_hand(data, None, runner_optimizers)
    assert_same_weights((G, D, G_avg), (G2, D2, G_avg2))
    assert losses == losses2 and [s for s, *_ in losses] == list(range(1, CONFIG.steps + 1))
    # the test can fail: a loop that changes a line trains other weights
    G0, _ = models(data)
    assert not torch.equal(G0.state_dict()["head.0.weight"], G.state_dict()["head.0.weight"])


def test_the_notebooks_loop_trains_the_weights_of_the_runner(data, runner_optimizers):
    G, D, G_avg, losses = by_hand(data, notebook_train(), runner_optimizers)
    trainer = Trainer(*models(data), data.sample, CONFIG)
    trainer.fit()
    assert_same_weights((G, D, G_avg), (trainer.G, trainer.D, trainer.G_ema))
    assert [loss_d for _, loss_d, _ in losses] == trainer.history["loss_d"]
    assert [loss_g for *_, loss_g in losses] == trainer.history["loss_g"]


def test_a_changed_line_is_caught(data, runner_optimizers):
    """The comparison has teeth: one step of D fewer per G step gives other weights."""
    source = loop_cell().replace("for _ in range(n_dis)", "for _ in range(n_dis - 1)")
    namespace = {"torch": torch}
    exec(compile(source, "changed loop", "exec"), namespace)
    G, D, G_avg, _ = by_hand(data, namespace["train"], runner_optimizers)
    G2, D2, G_avg2, _ = by_hand(data, None, runner_optimizers)
    with pytest.raises(AssertionError):
        assert_same_weights((G, D, G_avg), (G2, D2, G_avg2))
