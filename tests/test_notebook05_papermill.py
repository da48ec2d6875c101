"""Notebook 05 run headless by papermill with tiny parameters: files, values, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import papermill
import pytest
import torch
from PIL import Image

from sngan_edu.course import rescore
from sngan_edu.metrics.classifier import DIGITS_CLASSIFIER, load_classifier
from sngan_edu.train import checkpoint

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_sngan_training.ipynb"


def _run(tmp_path: Path, name: str, **parameters):
    out_nb = tmp_path / f"{name}.ipynb"
    return papermill.execute_notebook(
        str(NOTEBOOK), str(out_nb), parameters=parameters, cwd=str(NOTEBOOK.parent),
        kernel_name="python3", progress_bar=False,
    )


def _standard_cnn_params(width: float) -> tuple[int, int]:
    from sngan_edu.models import standard_cnn

    G = standard_cnn.Generator(image_size=16, channels=1, width=width)
    D = standard_cnn.Discriminator(image_size=16, channels=1, width=width)
    return tuple(sum(p.numel() for p in m.parameters()) for m in (G, D))


def test_parameters_cell_is_tagged():
    declared = papermill.inspect_notebook(str(NOTEBOOK))
    expected = {"dataset", "data_root", "image_size", "width", "architecture", "loss",
                "regularizer", "setting", "steps", "batch_size", "n_dis", "seed", "device",
                "out_dir", "eval_every", "resume", "d_width", "g_ema", "lr_decay", "translate",
                "z_dim", "z_categories", "max_minutes"}
    assert expected <= set(declared)


@pytest.mark.slow
def test_tiny_run_writes_files_and_resumes(tmp_path):
    out = tmp_path / "run"
    _run(tmp_path, "first", steps=6, eval_every=3, out_dir=str(out))
    record = json.loads((out / "metrics.json").read_text())
    assert record["step"] == 6 and record["parameters"]["steps"] == 6
    assert [row["step"] for row in record["metrics"]] == [3, 6]
    final = record["final"]
    assert final["step"] == 6 and 1 <= final["classes"] <= 10
    assert 0.0 <= final["confidence"] <= 1.0 and final["fd"] > 0
    # the default: the Adam of the paper's setting D with n_dis overridden to 3
    assert record["optimizer"] == {"lr_d": 1e-3, "lr_g": 1e-3, "beta1": 0.5, "beta2": 0.9,
                                   "n_dis": 3}
    assert record["parameters"]["d_width"] == 0.125 and record["parameters"]["g_ema"] == 0.99
    # G at width 0.5 and D at 0.125 of the paper's channel counts (widths are really applied)
    assert record["n_params"]["D"] == _standard_cnn_params(0.125)[1]
    assert record["n_params"]["G"] == _standard_cnn_params(0.5)[0]
    # the 10,000-sample estimate: the same as re-scoring the checkpoint the run left
    precision = record["precision"]
    # (a 6-step generator can be so uniform that every sample gets the same confidence)
    assert precision["n_samples"] == 10_000 and 0 <= precision["confidence_se"] < 0.01
    assert precision["confidence_se_1000"] >= precision["confidence_se"]
    again = rescore.rescore_run(out, load_classifier(DIGITS_CLASSIFIER), 10_000, seed=1)
    assert again["confidence"] == pytest.approx(precision["confidence"], abs=1e-4)
    for png in ["real.png", "samples_final.png", "samples/step_000003.png",
                "samples/step_000006.png"]:
        with Image.open(out / png) as img:  # a real 8x8 grid of 16x16 images, 1 px padding
            assert img.size == (8 * 17 + 1, 8 * 17 + 1)
    sigma = json.loads((out / "sigma_history.json").read_text())
    assert len(sigma) == 8  # 7 convs + the dense layer of D are spectrally normalized
    for records in sigma.values():
        assert [r[0] for r in records] == list(range(7))
        assert all(r[1] > 0 for r in records)
    state = checkpoint.load(out / "checkpoint.pt")
    assert state["step"] == 6 and len(state["history"]["loss_d"]) == 6

    # resume: continue the same run to 9 steps
    _run(tmp_path, "resumed", steps=9, eval_every=3, out_dir=str(out), resume=True)
    record = json.loads((out / "metrics.json").read_text())
    assert record["step"] == 9 and [row["step"] for row in record["metrics"]] == [3, 6, 9]
    state = checkpoint.load(out / "checkpoint.pt")
    assert state["step"] == 9 and len(state["history"]["loss_d"]) == 9
    # the resumed run equals an uninterrupted 9-step run
    straight = tmp_path / "straight"
    _run(tmp_path, "straight", steps=9, eval_every=3, out_dir=str(straight))
    other = checkpoint.load(straight / "checkpoint.pt")
    torch.testing.assert_close(state["G"], other["G"], rtol=0, atol=0)


@pytest.mark.slow
def test_resnet_without_sn(tmp_path):
    out = tmp_path / "resnet"
    _run(tmp_path, "resnet", steps=2, eval_every=2, out_dir=str(out), architecture="resnet",
         regularizer="none", setting="C", translate=2, z_dim=16, z_categories=4)
    record = json.loads((out / "metrics.json").read_text())
    assert record["step"] == 2 and record["parameters"]["architecture"] == "resnet"
    G, parameters = rescore.load_run_generator(out)  # rebuilt with the run's one-hot code
    assert parameters["z_categories"] == 4 and G.code.categories == 4
    state = checkpoint.load(out / "checkpoint.pt")
    assert state["config"]["translate"] == 2 and state["config"]["z_dim"] == 16  # in the engine
    assert state["G"]["linear.weight"].shape[1] == 16  # and the generator's input layer
    assert json.loads((out / "sigma_history.json").read_text()) == {}


@pytest.mark.slow
def test_max_minutes_stops_training_early_and_keeps_a_checkpoint(tmp_path):
    out = tmp_path / "budget"
    _run(tmp_path, "budget", steps=100_000, eval_every=50_000, out_dir=str(out),
         max_minutes=0.05)  # 3 s: far fewer than 100k steps
    record = json.loads((out / "metrics.json").read_text())
    assert 1 <= record["step"] < 100_000 and record["parameters"]["max_minutes"] == 0.05
    assert [row["step"] for row in record["metrics"]] == [record["step"]]  # scored at the stop
    assert record["train_seconds"] < 60
    state = checkpoint.load(out / "checkpoint.pt")
    assert state["step"] == record["step"] and state["config"]["max_seconds"] == 3.0


@pytest.mark.parametrize(
    "parameters, message",
    [({"loss": "hinj"}, "loss must be one of"), ({"setting": "Z"}, "setting must be one of"),
     ({"regularizer": "bn"}, "regularizer must be one of"),
     ({"image_size": 20}, "image_size must be a multiple of 8"),
     ({"d_width": -1}, "d_width must be a positive number"),
     ({"g_ema": 1.5}, "g_ema must be a decay in (0, 1)"),
     ({"lr_decay": "cosine"}, "lr_decay must be one of"),
     ({"translate": 8}, "translate must be below half the image side"),
     ({"translate": -1}, "translate must be a non-negative integer"),
     ({"z_dim": 0}, "z_dim must be a positive integer"),
     ({"z_categories": 1}, "z_categories must be 0"),
     ({"max_minutes": 0}, "max_minutes must be a positive number of minutes")],
)
def test_bad_parameters_fail_early_with_value_error(tmp_path, parameters, message):
    with pytest.raises(papermill.PapermillExecutionError) as info:
        _run(tmp_path, "bad", out_dir=str(tmp_path / "bad"), **parameters)
    assert info.value.ename == "ValueError" and message in info.value.evalue
    assert "def check_choice" in info.value.source  # stopped in the checking cell
