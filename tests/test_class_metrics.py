"""Class agreement and per-class Frechet distance, on hand-built probabilities and on the real
digits scored by the course's shipped classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sngan_edu.data.images import load_digits
from sngan_edu.metrics import conditional as cm
from sngan_edu.metrics.classifier import load_classifier
from sngan_edu.metrics.images import classifier_outputs, frechet_distance, gaussian_stats


@pytest.fixture(scope="module")
def digits():
    return load_digits(16, split="train"), load_digits(16, split="test")


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_class_agreement_on_hand_built_probabilities():
    requested = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = torch.tensor([0, 0, 0, 3, 1, 0, 2, 2, 2, 2])
    probs = torch.nn.functional.one_hot(predicted, 5).float() * 0.6 + 0.08
    agreement = cm.class_agreement(probs, requested)
    assert agreement[:3].tolist() == pytest.approx([0.75, 0.5, 1.0])
    assert np.isnan(agreement[3:]).all()  # classes 3 and 4 were never requested


def test_bad_requested_labels_name_the_parameter():
    probs = torch.full((3, 10), 0.1)
    with pytest.raises(ValueError, match="requested must be a torch.long tensor of shape"):
        cm.class_agreement(probs, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="requested must be a torch.long tensor of shape"):
        cm.class_agreement(probs, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"requested must hold labels in \[0, 9\]"):
        cm.class_agreement(probs, torch.tensor([0, 1, 10]))
    with pytest.raises(ValueError, match="n_per_class"):
        cm.requested_labels(10, 0)


def test_real_digits_scored_as_samples_agree_with_their_labels(digits, classifier):
    _, test = digits
    probs, _ = classifier_outputs(classifier, test.float_images())
    agreement = cm.class_agreement(probs, test.labels)
    assert np.nanmean(agreement) > 0.9 and agreement.min() > 0.75
    # the same images with shuffled requests agree about as often as chance
    shuffled = test.labels[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))]
    assert np.nanmean(cm.class_agreement(probs, shuffled)) < 0.25


class OneClassGenerator(nn.Module):
    """Ignores the label and always draws the same real image of class ``k``."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = nn.Parameter(images, requires_grad=False)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(len(z)) % len(self.images)
        return self.images[idx]


def test_a_generator_that_always_draws_one_class_agrees_a_tenth(digits, classifier):
    train, test = digits
    sevens = train.float_images()[train.labels == 7]
    scores = cm.score_conditional_generator(OneClassGenerator(sevens), classifier,
                                            test.float_images(), test.labels, z_dim=4,
                                            n_per_class=20)
    per_class = scores["agreement_per_class"]
    assert per_class[7] > 0.9 and max(per_class[:7] + per_class[8:]) < 0.1
    assert scores["agreement"] == pytest.approx(0.1, abs=0.02)
    # its sevens are close to the real sevens, its "zeros" far from the real zeros
    assert scores["fd_per_class"][7] < 0.5 * min(scores["fd_per_class"][:7])


def test_per_class_fd_of_a_class_against_itself_is_zero_and_matches_the_formula(
        digits, classifier):
    train, test = digits
    _, feats = classifier_outputs(classifier, train.float_images())
    fds = cm.per_class_fd(feats, train.labels, feats, train.labels, 10)
    assert np.abs(fds).max() < 1e-3  # 0 up to the rounding of the matrix square root
    _, test_feats = classifier_outputs(classifier, test.float_images())
    fds = cm.per_class_fd(test_feats, test.labels, feats, train.labels, 10)
    for k in (0, 4, 9):
        a, b = test_feats[test.labels == k], feats[train.labels == k]
        assert fds[k] == pytest.approx(frechet_distance(*gaussian_stats(a), *gaussian_stats(b)))
    # a class against ANOTHER class's real images is much further than against its own
    mismatched = cm.per_class_fd(test_feats, (test.labels + 1) % 10, feats, train.labels, 10)
    assert (mismatched > 3 * fds).all()


def test_conditional_scores_report_overall_and_per_class_values(digits, classifier):
    train, test = digits
    scores = cm.conditional_scores(classifier, test.float_images(), test.labels,
                                   train.float_images(), train.labels)
    assert set(scores) == {"agreement", "agreement_min", "agreement_per_class", "fd",
                           "fd_per_class", "class_fd_mean"}
    assert len(scores["fd_per_class"]) == 10 and scores["agreement"] > 0.9
    _, f_test = classifier_outputs(classifier, test.float_images())
    _, f_train = classifier_outputs(classifier, train.float_images())
    assert scores["fd"] == pytest.approx(
        frechet_distance(*gaussian_stats(f_test), *gaussian_stats(f_train)))
    assert scores["class_fd_mean"] == pytest.approx(np.mean(scores["fd_per_class"]))


def test_generate_classes_uses_fixed_noise_and_the_labels():
    seen = []

    class Echo(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, z, y):
            seen.append(y.clone())
            return z[:, :1, None, None] + y[:, None, None, None].float()

    labels = cm.requested_labels(10, 3)
    assert labels.tolist() == [k for k in range(10) for _ in range(3)]
    a = cm.generate_classes(Echo(), labels, z_dim=2, seed=1, batch_size=7)
    b = cm.generate_classes(Echo(), labels, z_dim=2, seed=1, batch_size=30)
    torch.testing.assert_close(a, b)
    assert torch.equal(torch.cat(seen[:5]), labels)
