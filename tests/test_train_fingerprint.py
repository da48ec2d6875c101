"""The training code trains the same weights, bit for bit, as when the sums were recorded:
short runs of several configurations against sums recorded from it (`python
tests/test_train_fingerprint.py > tests/train_fingerprint.json` after a deliberate change).

A change to the order of random draws, the batches or the operations of a step changes these
sums (and would change notebooks 04-06's stored outputs). The sums were recorded with one torch
on one CPU type (its kernels' rounding); elsewhere the test is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sngan_edu.data.toy import make_sampler
from sngan_edu.experiments import sngan_run
from sngan_edu.experiments.sngan_run import run_sngan
from sngan_edu.models.toy_mlp import ToyDiscriminator, ToyGenerator
from sngan_edu.train.config import RunConfig
from sngan_edu.train.trainer import Trainer

EXPECTED = Path(__file__).with_name("train_fingerprint.json")

IMAGE_RUNS = {
    "sn_ndis3_ema_translate": dict(n_dis=3, g_ema=0.99, translate=2),
    "sn_ndis1_noema": dict(n_dis=1, g_ema=None),
    "none_ndis3_linear": dict(regularizer="none", n_dis=3, lr_decay="linear", loss="vanilla"),
}
TOY_RUNS = {
    "toy_gp": dict(regularizer="gp", loss="wasserstein", n_dis=2),
    "toy_clip_linear": dict(regularizer="clip", loss="wasserstein", lr_decay="linear", lr=5e-5),
    "toy_sn_ema": dict(regularizer="sn", loss="vanilla", g_ema=0.9),
}


def _sums(module: torch.nn.Module) -> list[str]:
    return [repr(float(t.double().sum())) for t in module.state_dict().values()
            if torch.is_tensor(t) and t.is_floating_point()]


def fingerprint(trainer) -> dict:
    ema = trainer.G_ema
    return {"G": _sums(trainer.G), "D": _sums(trainer.D),
            "G_ema": None if ema is None else _sums(ema.module),
            "loss_d": [repr(v) for v in trainer.history["loss_d"]],
            "loss_g": [repr(v) for v in trainer.history["loss_g"]]}


def image_run(tmp_path, **changes):
    base = dict(steps=12, eval_every=6, width=0.125, d_width=0.125, batch_size=8, z_dim=16,
                cpu_threads=None, out_dir=str(tmp_path))
    return run_sngan(RunConfig(**{**base, **changes}), progress=False).trainer


def toy_run(**changes):
    torch.manual_seed(3)
    G, D = ToyGenerator(z_dim=2, hidden=(16, 16)), ToyDiscriminator(hidden=(16, 16))
    base = dict(steps=20, batch_size=16, z_dim=2, lr=1e-3, beta1=0.5, beta2=0.9, seed=1,
                progress=False, log_every=5, setting="C", n_dis=None, g_ema=None, out_dir=None,
                cpu_threads=None, channels_last=False)
    trainer = Trainer(G, D, make_sampler("grid"), RunConfig(**{**base, **changes}))
    trainer.fit()
    return trainer


@pytest.fixture(autouse=True)
def fewer_samples_one_thread(monkeypatch):
    """50 samples scored per evaluation; one thread (the kernels' rounding depends on it)."""
    monkeypatch.setattr(sngan_run, "N_EVAL", 50)
    monkeypatch.setattr(sngan_run, "N_PRECISION", 50)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def record(tmp_path) -> dict:
    out = {name: fingerprint(image_run(tmp_path / name, **kw)) for name, kw in IMAGE_RUNS.items()}
    out.update({name: fingerprint(toy_run(**kw)) for name, kw in TOY_RUNS.items()})
    return out


def machine() -> dict[str, str]:
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


@pytest.mark.slow
def test_training_gives_the_recorded_weights_and_losses(tmp_path):
    expected = json.loads(EXPECTED.read_text())
    if machine() != expected["machine"]:
        pytest.skip(f"recorded with {expected['machine']}, this is {machine()}")
    assert record(tmp_path) == expected["runs"]


if __name__ == "__main__":  # prints the sums of the code as it is
    import sys
    import tempfile

    sngan_run.N_EVAL = sngan_run.N_PRECISION = 50
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        json.dump({"machine": machine(), "runs": record(Path(tmp))}, sys.stdout, indent=0)
