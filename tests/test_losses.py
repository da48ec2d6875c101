"""GAN losses against their textbook formulas (sigmoid/log written out, BCE, explicit hinge)."""

import pytest
import torch
import torch.nn.functional as F

from sngan_edu.losses import LOSS_NAMES, get_loss


@pytest.fixture
def logits():
    gen = torch.Generator().manual_seed(0)
    return 3 * torch.randn(64, generator=gen), 3 * torch.randn(64, generator=gen)


def test_vanilla_matches_log_sigmoid_formula_and_bce(logits):
    real, fake = (t.double() for t in logits)
    loss = get_loss("vanilla")
    expected_d = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    torch.testing.assert_close(loss.d_loss(real, fake), expected_d)
    bce_real = F.binary_cross_entropy(torch.sigmoid(real), torch.ones_like(real))
    bce_fake = F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros_like(fake))
    bce = bce_real + bce_fake
    torch.testing.assert_close(loss.d_loss(real, fake), bce)
    # Non-saturating generator loss -E[log D(G(z))], not the minimax E[log(1 - D(G(z)))].
    torch.testing.assert_close(loss.g_loss(fake), -torch.log(torch.sigmoid(fake)).mean())


def test_vanilla_is_stable_for_huge_logits():
    loss = get_loss("vanilla")
    d = loss.d_loss(torch.tensor([200.0]), torch.tensor([-200.0]))
    g = loss.g_loss(torch.tensor([-200.0]))
    assert torch.isfinite(d) and float(d) < 1e-30
    assert float(g) == pytest.approx(200.0)


def test_hinge_matches_formula(logits):
    real, fake = logits
    loss = get_loss("hinge")
    expected = torch.tensor(
        sum(max(0.0, 1 - r) for r in real.tolist()) / 64
        + sum(max(0.0, 1 + f) for f in fake.tolist()) / 64
    )
    torch.testing.assert_close(loss.d_loss(real, fake), expected.float())
    torch.testing.assert_close(loss.g_loss(fake), -fake.mean())


def test_hinge_ignores_confident_samples():
    loss = get_loss("hinge")
    real = torch.tensor([2.0, 0.5])
    fake = torch.tensor([-3.0, -0.5])
    # Only the samples inside the margin contribute: (1 - 0.5)/2 + (1 - 0.5)/2.
    assert float(loss.d_loss(real, fake)) == pytest.approx(0.5)


def test_wasserstein_matches_formula(logits):
    real, fake = logits
    loss = get_loss("wasserstein")
    torch.testing.assert_close(loss.d_loss(real, fake), fake.mean() - real.mean())
    torch.testing.assert_close(loss.g_loss(fake), -fake.mean())


def test_gradients_point_the_right_way():
    # Raising D(real) lowers every D loss; raising D(fake) lowers every G loss.
    for name in LOSS_NAMES:
        loss = get_loss(name)
        real = torch.zeros(4, requires_grad=True)
        fake = torch.zeros(4, requires_grad=True)
        loss.d_loss(real, fake).backward()
        assert (real.grad < 0).all() and (fake.grad > 0).all(), name
        fake2 = torch.zeros(4, requires_grad=True)
        loss.g_loss(fake2).backward()
        assert (fake2.grad < 0).all(), name


def test_unknown_loss_is_a_value_error():
    with pytest.raises(ValueError, match="loss must be one of"):
        get_loss("lsgan")
