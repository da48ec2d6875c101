"""Re-scoring a finished run: the right generator, the right weights, the same samples."""

from __future__ import annotations

import json

import pytest
import torch

from sngan_edu.course import rescore
from sngan_edu.metrics import images as image_metrics
from sngan_edu.metrics.classifier import DIGITS_CLASSIFIER, load_classifier
from sngan_edu.models import FAMILIES, resnet, standard_cnn
from sngan_edu.train.config import TrainConfig
from sngan_edu.train.trainer import Trainer


def _uniform_images(channels: int):
    """A data sampler of uniform 16x16 images with ``channels`` channels in [-1, 1]."""
    def sample(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, channels, 16, 16, generator=generator) * 2 - 1
    return sample


def test_families_are_the_two_architectures():
    assert FAMILIES == {"standard": standard_cnn, "resnet": resnet}


def _finished_run(folder, architecture="standard", g_ema=0.9, channels=1):
    """A run folder as notebook 05 leaves it: checkpoint.pt and metrics.json's parameters."""
    family = FAMILIES[architecture]
    torch.manual_seed(0)
    G = family.Generator(z_dim=8, image_size=16, channels=channels, width=0.0625)
    D = family.Discriminator(image_size=16, channels=channels, width=0.0625)
    cfg = TrainConfig(steps=3, batch_size=8, z_dim=8, preset="D", g_ema=g_ema, progress=False,
                      checkpoint_dir=str(folder))
    trainer = Trainer(G, D, _uniform_images(channels), cfg)
    trainer.fit()
    parameters = {"architecture": architecture, "z_dim": 8, "image_size": 16, "width": 0.0625}
    final = {"confidence": 0.5}
    (folder / "metrics.json").write_text(json.dumps({"parameters": parameters, "final": final}))
    return trainer


@pytest.mark.parametrize("architecture, g_ema", [("standard", 0.9), ("standard", None),
                                                  ("resnet", 0.9)])
def test_loaded_generator_samples_like_the_trainer(tmp_path, architecture, g_ema):
    trainer = _finished_run(tmp_path, architecture, g_ema)
    G, parameters = rescore.load_run_generator(tmp_path)
    assert not G.training and parameters["architecture"] == architecture
    expected = trainer.sample(40, seed=5)  # the averaged generator when g_ema is set
    got = image_metrics.generate(G, 40, 8, seed=5)
    assert torch.allclose(got, expected, atol=1e-5)
    if g_ema is not None:  # and not the raw one, which differs after 3 steps
        raw = trainer.G.eval()(torch.randn(40, 8, generator=torch.Generator().manual_seed(5)))
        assert not torch.allclose(got, raw.detach(), atol=1e-3)


def test_colour_generator_keeps_three_channels(tmp_path):
    _finished_run(tmp_path, channels=3)
    G, _ = rescore.load_run_generator(tmp_path)
    assert image_metrics.generate(G, 2, 8).shape == (2, 3, 16, 16)


def test_rescore_run_scores_fresh_samples_with_the_classifier(tmp_path):
    trainer = _finished_run(tmp_path)
    classifier = load_classifier(DIGITS_CLASSIFIER, device="cpu")
    row = rescore.rescore_run(tmp_path, classifier, n_samples=300, seed=2)
    probs, _ = image_metrics.classifier_outputs(classifier, trainer.sample(300, seed=2))
    assert row["confidence"] == pytest.approx(image_metrics.mean_confidence(probs), abs=1e-5)
    assert row["confidence_se"] == pytest.approx(image_metrics.mean_confidence_error(probs),
                                                 rel=1e-3)
    assert row["classes"] == image_metrics.class_coverage(probs)
    assert row["n_samples"] == 300 and row["reported_confidence"] == 0.5
    with pytest.raises(ValueError, match="n_samples"):
        rescore.rescore_run(tmp_path, classifier, n_samples=1)


def test_cli_writes_results_and_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    _finished_run(tmp_path / "run")
    out = tmp_path / "scores.json"
    rescore.main([str(tmp_path / "run"), "--samples", "50", "--results", str(out)])
    record = json.loads(out.read_text())
    assert record["command"].startswith("python -m sngan_edu.course.rescore")
    assert [r["run"] for r in record["runs"]] == ["run"] and record["runs"][0]["n_samples"] == 50
    assert "over 50 samples" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        rescore.main([str(tmp_path / "nothing here")])
    assert "not a finished notebook 05 run" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no metrics.json"):
        rescore.load_run_generator(tmp_path / "nothing here")
