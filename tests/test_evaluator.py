"""The digits classifier: shipped weights, accuracy, determinism, and that its scores separate
real digits from junk."""

from __future__ import annotations

import math

import pytest
import torch

from sngan_edu.data.images import load_image_data
from sngan_edu.metrics import classifier as evaluator
from sngan_edu.metrics import images as image_metrics


@pytest.fixture(scope="module")
def clf():
    return evaluator.load_classifier(evaluator.DIGITS_CLASSIFIER)


@pytest.fixture(scope="module")
def digits():
    return (load_image_data("digits", image_size=16, split="train"),
            load_image_data("digits", image_size=16, split="test"))


def test_shipped_weights_load_safely_and_are_small(clf):
    assert evaluator.DIGITS_CLASSIFIER.stat().st_size < 2_000_000
    payload = torch.load(evaluator.DIGITS_CLASSIFIER, weights_only=True)  # no pickled code
    assert payload["config"] == {"channels": 1, "image_size": 16, "num_classes": 10}
    assert payload["meta"]["dataset"] == "digits"
    assert not clf.training


@pytest.fixture(scope="module")
def plain_clf():
    return evaluator.load_classifier(evaluator.DIGITS_PLAIN_CLASSIFIER)


def test_shipped_plain_classifier_is_accurate_but_confident_on_noise(clf, plain_clf, digits):
    """The plain classifier (no outlier exposure) exists to show what the course's scorer fixes:
    both are accurate on held-out digits, only the course's is unsure on noise."""
    assert evaluator.DIGITS_PLAIN_CLASSIFIER.stat().st_size < 2_000_000
    assert plain_clf.meta["outlier_weight"] == 0 and plain_clf.meta["dataset"] == "digits"
    _, test = digits
    assert evaluator.accuracy(plain_clf, test) >= 0.97
    noise = torch.rand(500, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    plain_noise = image_metrics.classifier_metrics(plain_clf, noise)["confidence"]
    strict_noise = image_metrics.classifier_metrics(clf, noise)["confidence"]
    assert plain_noise > 0.6 and strict_noise < 0.3
    real = [image_metrics.classifier_metrics(c, test.images)["confidence"]
            for c in (clf, plain_clf)]
    assert min(real) > 0.9


def test_outlier_weight_zero_trains_on_digits_only(digits, monkeypatch):
    train, _ = digits
    small = type(train)(train.images[:64], train.labels[:64], "digits")
    calls = []
    real_make_junk = evaluator.make_junk
    monkeypatch.setattr(evaluator, "make_junk",
                        lambda *a: calls.append(1) or real_make_junk(*a))
    evaluator.train_classifier(small, epochs=1, outlier_weight=0)
    assert calls == []
    evaluator.train_classifier(small, epochs=1, outlier_weight=0.5)
    assert len(calls) == 1  # one batch of 64


@pytest.mark.parametrize("bad", [-0.1, "0.5", True, float("nan")])
def test_bad_outlier_weight_is_rejected(digits, bad):
    train, _ = digits
    with pytest.raises(ValueError, match="outlier_weight must be a number >= 0"):
        evaluator.train_classifier(train, epochs=1, outlier_weight=bad)


def test_held_out_accuracy(clf, digits):
    _, test = digits
    acc = evaluator.accuracy(clf, test)
    assert acc >= 0.97
    # sklearn's own reference: a linear SVM-free baseline, logistic regression on raw pixels,
    # gets about 0.96 on this split; the CNN should not be worse
    from sklearn.linear_model import LogisticRegression

    train, _ = digits
    lr = LogisticRegression(max_iter=2000).fit(train.images.flatten(1).numpy(), train.labels)
    assert acc >= lr.score(test.images.flatten(1).numpy(), test.labels) - 0.005


def test_scores_separate_real_from_noise_and_collapse(clf, digits):
    train, test = digits
    real = image_metrics.classifier_metrics(clf, test.images, train.images)
    assert real["classes"] == 10 and real["class_kl"] < 0.02 and real["confidence"] > 0.9
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(500, 1, 16, 16, generator=gen) * 2 - 1
    bad = image_metrics.classifier_metrics(clf, noise, train.images)
    assert bad["confidence"] < 0.4 and bad["fd"] > 20 * real["fd"]
    single = train.images[train.labels == 3]
    collapsed = image_metrics.classifier_metrics(clf, single, train.images)
    assert collapsed["classes"] == 1
    assert collapsed["class_kl"] == pytest.approx(math.log(10), abs=0.05)
    assert collapsed["fd"] > 10 * real["fd"]


def test_classifier_accepts_other_sizes_and_rgb(clf, digits):
    _, test = digits
    x = test.images[:8]
    big = torch.nn.functional.interpolate(x, size=32, mode="bilinear", antialias=True)
    rgb = big.expand(-1, 3, -1, -1)
    with torch.no_grad():
        assert clf(rgb).argmax(1).tolist() == clf(x).argmax(1).tolist()


def test_training_is_deterministic_and_junk_is_valid(digits):
    train, _ = digits
    small = type(train)(train.images[:128], train.labels[:128], "digits")
    a = evaluator.train_classifier(small, epochs=1, seed=3)
    b = evaluator.train_classifier(small, epochs=1, seed=3)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    gen = torch.Generator().manual_seed(0)
    junk = evaluator.make_junk(small.images[:64], small.labels[:64], gen)
    assert junk.shape == (64, 1, 16, 16) and junk.min() >= -1 and junk.max() <= 1


def classifier_cli(args: list[str]) -> int:
    """``sngan-edu classifier ARGS``, in this process."""
    from sngan_edu import cli

    return cli.main(["classifier", *args])


def test_cli_writes_loadable_weights(tmp_path, capsys):
    out = tmp_path / "clf.pt"
    classifier_cli(["--dataset", "digits", "--epochs", "1", "--outlier-weight", "0",
                    "--out", str(out)])
    assert "test accuracy" in capsys.readouterr().out
    model = evaluator.load_classifier(out)
    assert model.meta["epochs"] == 1 and 0.5 < model.meta["test_accuracy"] <= 1
    assert model.meta["outlier_weight"] == 0


def test_cli_rejects_a_negative_outlier_weight(tmp_path, capsys):
    with pytest.raises(SystemExit):
        classifier_cli(["--outlier-weight", "-1", "--out", str(tmp_path / "clf.pt")])
    assert "outlier_weight must be a number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "clf.pt").exists()


def test_missing_weights_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="sngan-edu classifier"):
        evaluator.load_classifier(tmp_path / "none.pt")


def test_unlabelled_data_is_rejected(digits):
    train, _ = digits
    with pytest.raises(ValueError, match="labelled"):
        evaluator.train_classifier(type(train)(train.images[:8], None, "folder"), epochs=1)


def test_classifier_metrics_adds_the_plain_classifiers_mean_confidence(clf, plain_clf, digits):
    _, test = digits
    x = test.images[:200]
    scores = image_metrics.classifier_metrics(clf, x, plain=plain_clf)
    with torch.no_grad():  # reference: the plain classifier's mean top softmax, by hand
        expected = plain_clf(x).softmax(1).max(1).values.mean().item()
    assert scores["confidence_plain"] == pytest.approx(expected, abs=1e-6)
    assert scores["confidence"] != pytest.approx(expected, abs=1e-4)  # not the scorer's own
    assert "confidence_plain" not in image_metrics.classifier_metrics(clf, x)


def test_cli_default_output_is_not_a_shipped_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shipped = evaluator.DIGITS_CLASSIFIER.read_bytes()
    classifier_cli(["--dataset", "digits", "--epochs", "1"])
    assert "wrote runs/classifiers/digits_classifier.pt" in capsys.readouterr().out
    assert (tmp_path / "runs" / "classifiers" / "digits_classifier.pt").is_file()
    assert evaluator.DIGITS_CLASSIFIER.read_bytes() == shipped


def test_cli_refuses_to_replace_a_shipped_classifier_without_the_flag(capsys):
    shipped = evaluator.DIGITS_CLASSIFIER.read_bytes()
    with pytest.raises(SystemExit):
        classifier_cli(["--epochs", "1", "--out", str(evaluator.DIGITS_CLASSIFIER)])
    assert "shipped with the course; pass --replace-shipped" in capsys.readouterr().err
    assert evaluator.DIGITS_CLASSIFIER.read_bytes() == shipped


def test_cli_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
    out = tmp_path / "clf.pt"
    out.write_bytes(b"mine")
    with pytest.raises(SystemExit):
        classifier_cli(["--epochs", "1", "--out", str(out)])
    assert "pass --overwrite" in capsys.readouterr().err and out.read_bytes() == b"mine"


@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_cli_rejects_epochs_below_one(tmp_path, capsys, epochs):
    with pytest.raises(SystemExit):
        classifier_cli(["--epochs", epochs, "--out", str(tmp_path / "clf.pt")])
    assert "epochs must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "clf.pt").exists()


def test_cli_on_a_folder_holds_images_out(tmp_path, capsys):
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(10):
            pixels = (torch.rand(8, 8, 3, generator=gen) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{i}.png")
    classifier_cli(["--dataset", "folder", "--data-root", str(tmp_path / "imgs"),
                    "--image-size", "8", "--epochs", "1", "--out", str(tmp_path / "clf.pt")])
    out = capsys.readouterr().out
    assert "on 4 images held out of the folder (it has no test split)" in out
    assert evaluator.load_classifier(tmp_path / "clf.pt").meta["n_train"] == 16
