"""Re-scoring a finished run: the right generator, the right weights, the same samples."""

from __future__ import annotations

import json

import pytest
import torch

from sngan_edu.course import rescore
from sngan_edu.experiments import sngan_run
from sngan_edu.experiments.sngan_run import run_sngan
from sngan_edu.metrics import images as image_metrics
from sngan_edu.metrics.classifier import DIGITS_CLASSIFIER, load_classifier
from sngan_edu.models import FAMILIES, resnet, standard_cnn
from sngan_edu.train import run_folder
from sngan_edu.train.config import RunConfig


def test_families_are_the_two_architectures():
    assert FAMILIES == {"standard": standard_cnn, "resnet": resnet}


@pytest.fixture(autouse=True)
def fewer_samples(monkeypatch):
    """Tiny runs score 100 samples, not 1,000 and 10,000 (the classifier's time dominates)."""
    monkeypatch.setattr(sngan_run, "N_EVAL", 100)
    monkeypatch.setattr(sngan_run, "N_PRECISION", 100)


def _finished_run(folder, architecture="standard", g_ema=0.9, **changes):
    """A run folder as notebook 05 leaves it, from three steps of tiny models."""
    config = RunConfig(architecture=architecture, g_ema=g_ema, steps=3, eval_every=3, z_dim=8,
                       width=0.0625, d_width=0.0625, batch_size=8, cpu_threads=None,
                       out_dir=str(folder), **changes)
    return run_sngan(config, progress=False).trainer


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


def test_generator_keeps_its_latent_code_and_colour_channels(tmp_path):
    from PIL import Image

    data_root = tmp_path / "images"  # a folder dataset: two random RGB images
    (data_root / "a").mkdir(parents=True)
    for i in range(2):
        Image.effect_noise((16, 16), 60).convert("RGB").save(data_root / "a" / f"{i}.png")
    _finished_run(tmp_path / "run", "resnet", dataset="folder", data_root=str(data_root),
                  z_categories=4)
    G, parameters = rescore.load_run_generator(tmp_path / "run")  # rebuilt with its code
    assert parameters["z_categories"] == 4 and G.code.categories == 4
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
    reported = run_folder.read_metrics(tmp_path)["final"]["confidence"]
    assert row["n_samples"] == 300 and row["reported_confidence"] == reported
    with pytest.raises(ValueError, match="n_samples"):
        rescore.rescore_run(tmp_path, classifier, n_samples=1)
    # the run's own 10,000-sample estimate (here 100) is the same re-scoring
    precision = run_folder.read_metrics(tmp_path)["precision"]
    again = rescore.rescore_run(tmp_path, classifier, n_samples=100, seed=1)
    assert again["confidence"] == pytest.approx(precision["confidence"], abs=1e-5)


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


def test_a_record_written_before_a_parameter_existed_still_loads(tmp_path):
    _finished_run(tmp_path)
    record = run_folder.read_metrics(tmp_path)
    del record["parameters"]["z_categories"]  # older runs had no latent code
    run_folder.write_metrics(tmp_path, record)
    G, parameters = rescore.load_run_generator(tmp_path)
    assert parameters["z_categories"] == 0 and G.code.categories == 0


def _colour_run(folder):
    """A finished run on a folder of two random RGB images (3-channel generator)."""
    from PIL import Image

    data_root = folder.parent / f"{folder.name}_images"
    (data_root / "a").mkdir(parents=True)
    for i in range(2):
        Image.effect_noise((16, 16), 60).convert("RGB").save(data_root / "a" / f"{i}.png")
    _finished_run(folder, dataset="folder", data_root=str(data_root))


@pytest.fixture
def scored(monkeypatch):
    """The runs rescore_run is called on (it still scores them)."""
    calls = []
    real = rescore.rescore_run

    def recording(run, *args, **kwargs):
        calls.append(str(run))
        return real(run, *args, **kwargs)

    monkeypatch.setattr(rescore, "rescore_run", recording)
    return calls


def test_every_run_is_checked_before_any_is_scored(tmp_path, capsys, scored):
    from sngan_edu.train import checkpoint

    _finished_run(tmp_path / "good")
    _colour_run(tmp_path / "colour")
    _finished_run(tmp_path / "damaged")
    state = checkpoint.load(tmp_path / "damaged" / "checkpoint.pt")
    del state["G_ema"]["module.main.0.weight"]  # a generator that no longer rebuilds
    checkpoint.save_atomic(state, tmp_path / "damaged" / "checkpoint.pt")
    results = tmp_path / "scores.json"
    with pytest.raises(SystemExit):
        rescore.main([str(tmp_path / name) for name in ("good", "colour", "damaged")]
                     + ["--samples", "20", "--results", str(results)])
    err = capsys.readouterr().err
    assert "nothing was scored; fix or leave out these runs" in err
    assert ("colour: its generator makes 3-channel images but the classifier takes 1-channel "
            "ones") in err
    assert "damaged: " in err and "main.0.weight" in err and "good:" not in err
    assert scored == [] and not results.exists()


def test_results_are_written_after_each_run(tmp_path, monkeypatch, capsys, scored):
    for name in ("first", "second"):
        _finished_run(tmp_path / name)
    real = rescore.rescore_run

    def second_fails(run, *args, **kwargs):
        if run.endswith("second"):
            raise KeyboardInterrupt  # stopped while scoring the second run
        return real(run, *args, **kwargs)

    monkeypatch.setattr(rescore, "rescore_run", second_fails)
    results = tmp_path / "scores.json"
    with pytest.raises(KeyboardInterrupt):
        rescore.main([str(tmp_path / "first"), str(tmp_path / "second"), "--samples", "20",
                      "--results", str(results)])
    assert [r["run"] for r in json.loads(results.read_text())["runs"]] == ["first"]
    assert "first: confidence" in capsys.readouterr().out


def test_a_run_without_a_reported_confidence_prints(monkeypatch):
    row = {"run": "r", "confidence": 0.5, "confidence_se": 0.01, "n_samples": 10, "classes": 3,
           "reported_confidence": None}
    assert rescore._describe(row).endswith("reported n/a over 1000")
