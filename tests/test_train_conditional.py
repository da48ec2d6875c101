"""Notebook 07's class-conditional run: ``RunConfig(conditional=True)`` through the same loop.

A short run writes its folder and resumes bit for bit; the samplers hand the loop each batch's
labels (real: the images' own, fake: uniform); ``sngan-edu train --conditional True`` trains
one; a conditional run that cannot work is refused when the config is made.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch

from sngan_edu import cli
from sngan_edu.experiments import sngan_run
from sngan_edu.experiments.sngan_run import run_sngan
from sngan_edu.models.conditional import (
    BoundLabels,
    ConcatDiscriminator,
    ConditionalGenerator,
    ProjectionDiscriminator,
)
from sngan_edu.sn import has_spectral_norm
from sngan_edu.train.config import RunConfig
from sngan_edu.train.labels import LabelBinding, cycle_labels


def tiny(out_dir, **changes) -> RunConfig:
    base = dict(conditional=True, steps=4, eval_every=2, width=0.0625, d_width=0.0625,
                batch_size=8, z_dim=16, cpu_threads=None, out_dir=str(out_dir), progress=False)
    return RunConfig(**{**base, **changes})


@pytest.fixture(scope="module", autouse=True)
def fewer_samples():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sngan_run, "N_EVAL", 200)
        patch.setattr(sngan_run, "N_PRECISION", 400)
        yield


@pytest.fixture(scope="module")
def run(tmp_path_factory, fewer_samples):
    return run_sngan(tiny(tmp_path_factory.mktemp("cond") / "run"))


def test_a_conditional_run_writes_its_folder(run):
    names = sorted(p.name for p in run.out.iterdir())
    assert names == ["checkpoint.pt", "metrics.json", "real.png", "samples",
                     "samples_final.png", "sigma_history.json"]
    trainer = run.trainer
    assert isinstance(trainer.G, ConditionalGenerator)
    assert isinstance(trainer.D, ProjectionDiscriminator) and has_spectral_norm(trainer.D.embed)
    record = json.loads((run.out / "metrics.json").read_text())
    assert record["parameters"]["conditional"] is True
    assert [m["step"] for m in record["metrics"]] == [2, 4]
    final = record["final"]
    assert 0 <= final["agreement_min"] <= final["agreement"] <= 1 and final["fd"] > 0
    assert "embed" in trainer.history["sigma"]  # the embedding's sigma is logged with the rest


def test_a_conditional_run_resumes_bit_for_bit(run, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(run.out, out)
    resumed = run_sngan(replace(run.config, steps=6, eval_every=6, resume=True,
                                out_dir=str(out)))
    straight = run_sngan(replace(run.config, steps=6, eval_every=6,
                                 out_dir=str(tmp_path / "straight")))
    assert resumed.start_step == 4 and resumed.trainer.step == 6
    for mine, theirs in [(resumed.trainer.G, straight.trainer.G),
                         (resumed.trainer.D, straight.trainer.D),
                         (resumed.trainer.G_ema, straight.trainer.G_ema)]:
        torch.testing.assert_close(mine.state_dict(), theirs.state_dict(), rtol=0, atol=0)
    assert resumed.trainer.history["loss_d"] == straight.trainer.history["loss_d"]
    assert resumed.final == straight.final


def test_the_concat_discriminator_is_one_parameter_away(tmp_path):
    result = run_sngan(tiny(tmp_path / "concat", d_conditioning="concat", steps=2))
    assert isinstance(result.trainer.D, ConcatDiscriminator)
    assert result.record["parameters"]["d_conditioning"] == "concat"


def test_the_samplers_bind_real_labels_then_fake_ones():
    G = ConditionalGenerator(10, 8, 16, 1, 0.0625)
    D = ProjectionDiscriminator(10, 16, 1, 0.0625)
    binding = LabelBinding(G, D, 10)
    real_labels = torch.tensor([3, 1, 4])
    images = binding.real(torch.zeros(3, 1, 16, 16), real_labels)
    fake_labels = binding.fake(3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 16, 16)
    assert torch.equal(binding.G.labels, fake_labels)
    assert torch.equal(binding.D.labels, torch.cat((real_labels, fake_labels)))  # D's step
    again = binding.fake(3, torch.Generator().manual_seed(1))  # G's step: no real batch
    assert torch.equal(binding.D.labels, again) and torch.equal(binding.G.labels, again)
    assert isinstance(binding.G, BoundLabels) and binding.D(torch.zeros(3, 1, 16, 16)).shape == (3,)
    draws = torch.cat([binding.fake(100, torch.Generator().manual_seed(s)) for s in range(20)])
    assert torch.bincount(draws, minlength=10).min() > 150  # uniform over the ten classes
    assert cycle_labels(12, 10).tolist() == [*range(10), 0, 1]


def test_the_unconditional_run_has_no_labels(tmp_path):
    from sngan_edu.train.trainer import Trainer

    config = replace(tiny(None), conditional=False, out_dir=None)
    data = sngan_run.load_image_data("digits", image_size=16)
    trainer = Trainer(sngan_run.build_generator(config, 1),
                      sngan_run.build_discriminator(config, 1), data.sample, config)
    assert trainer.labels is None and trainer.G_run is trainer.G
    assert "conditional" not in config.parameters()  # the record of 05's runs is unchanged


def test_sngan_edu_train_conditional(tmp_path, capsys):
    out = tmp_path / "cli"
    status = cli.main(["train", "--conditional", "True", "--d-conditioning", "concat",
                       "--steps", "2", "--eval-every", "2", "--width", "0.0625", "--d-width",
                       "0.0625", "--batch-size", "4", "--z-dim", "8", "--cpu-threads", "None",
                       "--progress", "False", "--out-dir", str(out)])
    assert status == 0, capsys.readouterr().err
    parameters = json.loads((out / "metrics.json").read_text())["parameters"]
    assert parameters["conditional"] is True and parameters["d_conditioning"] == "concat"
    with pytest.raises(SystemExit) as info:  # tyro's usage error, before any work
        cli.main(["train", "--conditional", "True", "--dataset", "stl10"])
    assert info.value.code == 2 and "needs a labelled" in capsys.readouterr().err
    assert cli.parse_train_config(["--conditional", "False", "--resume", "true"]).resume
    assert not cli.parse_train_config(["--conditional", "False"]).conditional


@pytest.mark.parametrize("changes, message", [
    ({"conditional": "yes"}, "conditional must be True or False"),
    ({"d_conditioning": "film"}, "d_conditioning must be one of"),
    ({"dataset": "stl10"}, "conditional=True needs a labelled dataset"),
    ({"architecture": "resnet"}, "needs architecture='standard'"),
    ({"regularizer": "gp"}, "a regularizer other than 'gp'"),
    ({"joint_d_forward": False}, "joint_d_forward None or True"),
    ({"z_categories": 10}, "z_categories=0"),
])
def test_a_conditional_run_that_cannot_work_is_refused(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny(None, **changes)
