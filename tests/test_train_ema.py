"""The moving-average generator (RunConfig.g_ema), checked against an EMA computed by hand."""

import pytest
import torch
from torch import nn

from sngan_edu.data.toy import make_sampler
from sngan_edu.models.toy_mlp import ToyDiscriminator
from sngan_edu.train import checkpoint as ckpt
from sngan_edu.train.callbacks import Callback
from sngan_edu.train.config import RunConfig
from sngan_edu.train.trainer import Trainer

torch.set_num_threads(1)


class BatchNormGenerator(nn.Module):
    """A tiny generator with BatchNorm, so running statistics (buffers) exist to be averaged."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, z):
        return self.net(z)


def models(seed=0):
    torch.manual_seed(seed)
    return BatchNormGenerator(), ToyDiscriminator(hidden=(16, 16))


def config(**kw):
    base = dict(steps=10, batch_size=16, z_dim=2, lr=1e-2, loss="hinge", regularizer="sn",
                n_dis=1, seed=1, device="cpu", progress=False, g_ema=0.9, setting="C",
                out_dir=None, cpu_threads=None, checkpoint_every=0)
    base.update(kw)
    return RunConfig(**base)


class RecordG(Callback):
    """Keeps a copy of G's floating-point state after every generator step."""

    def __init__(self):
        self.states = []

    def on_step(self, trainer):
        self.states.append({k: v.clone() for k, v in trainer.G.state_dict().items()
                            if v.is_floating_point()})


def test_averaged_generator_is_the_exponential_average_of_the_weights_and_statistics():
    record = RecordG()
    trainer = Trainer(*models(), make_sampler("grid"), config(), callbacks=[record])
    trainer.fit()
    decay = 0.9
    expected = dict(record.states[0])  # the first update copies the weights
    for state in record.states[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * state[k] for k in expected}
    averaged = trainer.G_ema.module.state_dict()
    for key, value in expected.items():  # weights and BatchNorm running mean/var
        torch.testing.assert_close(averaged[key], value, rtol=1e-5, atol=1e-6)
    # The average really differs from the last weights, and sampling uses it.
    assert not torch.allclose(averaged["net.0.weight"], trainer.G.state_dict()["net.0.weight"])
    z = torch.randn(8, 2)
    trainer.G_ema.module.eval()
    with torch.no_grad():
        torch.testing.assert_close(trainer.generate(z), trainer.G_ema.module(z))
    assert trainer.G.training  # generate() left the training state alone


def test_without_g_ema_sampling_uses_g_itself():
    trainer = Trainer(*models(), make_sampler("grid"), config(g_ema=None))
    trainer.fit()
    assert trainer.G_ema is None and trainer.sampling_generator is trainer.G


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, "0.99"])
def test_bad_decay_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="g_ema"):
        config(g_ema=bad)


def test_resumed_run_restores_the_average_bit_for_bit(tmp_path):
    reference = Trainer(*models(), make_sampler("grid"), config())
    reference.fit()
    cfg = config(out_dir=str(tmp_path), resume=True)
    first = Trainer(*models(), make_sampler("grid"), cfg)
    first.fit(steps=4)
    assert "G_ema" in ckpt.load(tmp_path / "checkpoint.pt")
    second = Trainer(*models(seed=7), make_sampler("grid"), cfg)
    assert second.step == 4
    second.fit()
    for key, value in reference.G_ema.state_dict().items():
        assert torch.equal(value, second.G_ema.state_dict()[key]), key
