"""Notebook 07's visible training loop (the cell defining ``train``) is the library's: run from
the notebook's own source with labelled samplers, it trains bit for bit the weights of the
runner's :class:`~sngan_edu.train.trainer.Trainer` with ``conditional=True`` (notebook 05's
``train_gan`` on G and D bound to the labels) for the same seed and steps."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import torch

from sngan_edu.data.images import load_image_data
from sngan_edu.experiments.sngan_run import build_discriminator, build_generator
from sngan_edu.sn import apply_spectral_norm
from sngan_edu.train.config import RunConfig
from sngan_edu.train.trainer import Trainer

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "07_conditional_sngan.ipynb"
NOTEBOOK_05 = NOTEBOOK.with_name("05_sngan_training.ipynb")
CONFIG = RunConfig(conditional=True, steps=6, n_dis=2, batch_size=8, z_dim=16, width=0.0625,
                   d_width=0.0625, seed=3, device="cpu", out_dir=None, cpu_threads=None,
                   progress=False, channels_last=False)


def loop_cell(path: Path = NOTEBOOK) -> str:
    """The source of the notebook's code cell that defines ``train``."""
    cells = [c.source for c in nbformat.read(path, as_version=4).cells
             if c.cell_type == "code" and "def train(" in c.source]
    found = [s for s in cells if any(isinstance(n, ast.FunctionDef) and n.name == "train"
                                     for n in ast.parse(s).body)]
    assert len(found) == 1, f"{path.name} should define train() in exactly one cell"
    return found[0]


def compiled_train(source: str):
    namespace = {"torch": torch}
    exec(compile(source, "notebook 07: the loop cell", "exec"), namespace)
    return namespace["train"]


def test_the_loop_differs_from_05s_only_by_the_labels():
    ours, theirs = loop_cell().splitlines(), loop_cell(NOTEBOOK_05).splitlines()
    changed = [line for line in ours if line not in theirs]
    assert len(ours) <= len(theirs) + 2 and len(changed) <= 7, changed
    assert all(any(word in line for word in ("y_real", "y_fake", ", y", "label", "asked"))
               for line in changed if not line.lstrip().startswith(("def ", '"""'))), changed


@pytest.fixture(scope="module")
def data():
    return load_image_data(CONFIG.dataset, image_size=CONFIG.image_size, split="all")


def models(data):
    torch.manual_seed(CONFIG.seed)
    return (build_generator(CONFIG, data.channels, data.num_classes),
            build_discriminator(CONFIG, data.channels, data.num_classes))


def by_hand(data, loop, runner_optimizers):
    """What the runner does around the loop, written out, with labelled samplers: real labels
    come with the data, G's are drawn after its noise from the noise's generator."""
    G, D = models(data)
    torch.manual_seed(CONFIG.seed)
    apply_spectral_norm(D)  # every layer, the class embedding included
    adam = CONFIG.optimizer
    opt_g, opt_d, G_avg = runner_optimizers(G, D, CONFIG)
    z_rng = torch.Generator().manual_seed(CONFIG.seed)
    data_rng = torch.Generator().manual_seed(CONFIG.seed + 0x5EED)
    losses = []

    def sample_z():
        z = torch.randn(CONFIG.batch_size, CONFIG.z_dim, generator=z_rng)
        return z, torch.randint(data.num_classes, (CONFIG.batch_size,), generator=z_rng)

    loop(G, D, opt_g, opt_d, lambda: data.sample_labelled(CONFIG.batch_size, data_rng),
         sample_z, CONFIG.steps, adam["n_dis"], G_avg,
         lambda step, loss_d, loss_g: losses.append((step, float(loss_d), float(loss_g))))
    return G, D, G_avg, losses


def assert_same_weights(mine, theirs):
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)


def test_the_notebooks_loop_trains_the_weights_of_the_runner(data, runner_optimizers):
    G, D, G_avg, losses = by_hand(data, compiled_train(loop_cell()), runner_optimizers)
    trainer = Trainer(*models(data), data.sample_labelled, CONFIG)
    trainer.fit()
    assert_same_weights((G, D, G_avg), (trainer.G, trainer.D, trainer.G_ema))
    assert [loss_d for _, loss_d, _ in losses] == trainer.history["loss_d"]
    assert [loss_g for *_, loss_g in losses] == trainer.history["loss_g"]
    assert [s for s, *_ in losses] == list(range(1, CONFIG.steps + 1))
    G0, _ = models(data)  # it trained: the class gains moved
    assert not torch.equal(G0.norms[1].gain.weight, G.norms[1].gain.weight)


@pytest.mark.parametrize("change", [
    ("torch.cat((y_real, y_fake))", "torch.cat((y_fake, y_real))"),  # labels swapped
    ("-D(G(z, y), y)", "-D(G(z, y), y_fake)"),  # D scores G's step with stale labels
])
def test_a_changed_label_is_caught(data, runner_optimizers, change):
    """The comparison has teeth: a wrong label in the loop gives other weights."""
    source = loop_cell()
    assert change[0] in source
    G, D, G_avg, _ = by_hand(data, compiled_train(source.replace(*change)), runner_optimizers)
    trainer = Trainer(*models(data), data.sample_labelled, CONFIG)
    trainer.fit()
    with pytest.raises(AssertionError):
        assert_same_weights((G, D, G_avg), (trainer.G, trainer.D, trainer.G_ema))
