"""The conditional generator (conditional BN) and the projection / concatenation discriminators,
against independent references: plain BatchNorm, a hand-computed projection term, SVD."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sngan_edu.models.conditional import (
    BoundLabels,
    ConcatDiscriminator,
    ConditionalBatchNorm,
    ConditionalGenerator,
    ProjectionDiscriminator,
)
from sngan_edu.models.standard_cnn import Discriminator, Generator
from sngan_edu.sn import apply_spectral_norm


def small_d(**kw) -> ProjectionDiscriminator:
    torch.manual_seed(0)
    return ProjectionDiscriminator(**({"image_size": 16, "channels": 1, "width": 0.25} | kw))


@pytest.mark.parametrize("dims, shape", [(1, (12, 6)), (2, (12, 6, 4, 4))])
def test_conditional_bn_at_init_is_plain_bn(dims, shape):
    torch.manual_seed(0)
    h = torch.randn(shape) * 3 + 1
    y = torch.randint(0, 10, (12,))
    cbn = ConditionalBatchNorm(6, 10, dims=dims)
    plain = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(6)
    torch.testing.assert_close(cbn(h, y), plain(h))
    torch.testing.assert_close(cbn.bn.running_mean, plain.running_mean)
    assert torch.equal(cbn.gain.weight, torch.ones(10, 6))
    assert torch.equal(cbn.bias.weight, torch.zeros(10, 6))


def test_conditional_bn_applies_the_gain_and_bias_of_each_sample_class():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm(3, 4)
    with torch.no_grad():
        cbn.gain.weight.copy_(torch.randn(4, 3))
        cbn.bias.weight.copy_(torch.randn(4, 3))
    h, y = torch.randn(8, 3, 2, 2), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    normed = F.batch_norm(h, None, None, training=True)
    expected = torch.stack([normed[i] * cbn.gain.weight[y[i]].view(3, 1, 1)
                            + cbn.bias.weight[y[i]].view(3, 1, 1) for i in range(8)])
    torch.testing.assert_close(cbn(h, y), expected)


def test_conditional_generator_at_init_equals_the_unconditional_one():
    torch.manual_seed(3)
    G = ConditionalGenerator(z_dim=16, image_size=16, channels=1, width=0.25)
    torch.manual_seed(3)
    plain = Generator(z_dim=16, image_size=16, channels=1, width=0.25)
    mapping = [("linear", "head.0"), ("deconvs.0", "main.0"), ("deconvs.1", "main.3"),
               ("deconvs.2", "main.6"), ("out", "main.9")]
    with torch.no_grad():
        for mine, theirs in mapping:
            G.get_submodule(mine).weight.copy_(plain.get_submodule(theirs).weight)
            G.get_submodule(mine).bias.copy_(plain.get_submodule(theirs).bias)
    z = torch.randn(6, 16)
    for y in (torch.zeros(6, dtype=torch.long), torch.arange(6)):
        torch.testing.assert_close(G(z, y), plain(z))


def test_projection_term_equals_a_hand_computed_inner_product():
    D = small_d()
    with torch.no_grad():
        D.embed.weight.normal_()
    x, y = torch.randn(5, 1, 16, 16), torch.tensor([0, 3, 9, 3, 7])
    phi = D.main(x).reshape(5, -1)
    psi = phi @ D.linear.weight[0] + D.linear.bias[0]
    expected = psi + torch.stack([torch.dot(D.embed.weight[y[i]], phi[i]) for i in range(5)])
    torch.testing.assert_close(D(x, y), expected)


def test_the_class_enters_only_through_its_embedding_row():
    D = small_d()
    x = torch.randn(4, 1, 16, 16)
    y = torch.tensor([2, 2, 5, 5])
    (D(x, y)).sum().backward()
    grad = D.embed.weight.grad
    assert grad[[2, 5]].abs().sum() > 0
    assert torch.equal(grad[[0, 1, 3, 4, 6, 7, 8, 9]], torch.zeros(8, grad.shape[1]))
    # changing another class's row changes nothing; changing row 2 changes only the 2s
    before = D(x, y).detach()
    with torch.no_grad():
        D.embed.weight[7] += 1.0
    torch.testing.assert_close(D(x, y), before)
    with torch.no_grad():
        D.embed.weight[2] += 1.0
    after = D(x, y).detach()
    assert not torch.allclose(after[:2], before[:2]) and torch.equal(after[2:], before[2:])
    # the difference of two labels' scores is (embed[a] - embed[b]) . phi(x)
    a, b = torch.full((4,), 1), torch.full((4,), 8)
    phi = D.features(x)
    torch.testing.assert_close(D(x, a) - D(x, b), phi @ (D.embed.weight[1] - D.embed.weight[8]))


def test_spectral_norm_is_on_every_layer_of_d_including_the_embedding():
    D = small_d(spectral_norm=True)
    assert parametrize.is_parametrized(D.embed, "weight")
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert len(layers) == 9 and all(parametrize.is_parametrized(m, "weight") for m in layers)
    x = torch.randn(8, 1, 16, 16)
    y = torch.arange(8)
    D.train()
    with torch.no_grad():
        for _ in range(60):
            D(x, y)
    D.eval()
    for m in layers:
        w = m.weight.detach().flatten(1).double()
        assert torch.linalg.svdvals(w)[0].item() == pytest.approx(1.0, abs=0.02)
    raw = D.embed.parametrizations.weight.original.detach().double()
    assert torch.linalg.svdvals(raw)[0].item() > 0.1  # not 1 by chance: SN did the work


def test_apply_spectral_norm_twice_leaves_one_parametrization():
    D = small_d(spectral_norm=True)
    apply_spectral_norm(D)
    assert len(D.embed.parametrizations.weight) == 1


@pytest.mark.parametrize("cls", [ProjectionDiscriminator, ConcatDiscriminator])
@pytest.mark.parametrize("bad, message", [
    (torch.tensor([0, 1, 10]), r"y must hold labels in \[0, 9\]"),
    (torch.tensor([0, -1, 2]), r"y must hold labels in \[0, 9\]"),
    (torch.tensor([0.0, 1.0, 2.0]), "y must be an integer tensor"),
    (torch.tensor([True, False, True]), "y must be an integer tensor"),
    ([0, 1, 2], "y must be an integer tensor"),
    (torch.tensor([[0, 1, 2]]), r"y must have shape \(3,\)"),
    (torch.tensor([0, 1]), r"y must have shape \(3,\)"),
])
def test_bad_labels_are_a_value_error_naming_y(cls, bad, message):
    D = cls(image_size=16, channels=1, width=0.25)
    with pytest.raises(ValueError, match=message):
        D(torch.randn(3, 1, 16, 16), bad)


def test_bad_labels_to_the_generator_and_bad_sizes():
    G = ConditionalGenerator(z_dim=8, image_size=16, channels=1, width=0.25)
    with pytest.raises(ValueError, match="y must hold labels"):
        G(torch.randn(2, 8), torch.tensor([3, 12]))
    with pytest.raises(ValueError, match="num_classes"):
        ConditionalGenerator(num_classes=1)
    with pytest.raises(ValueError, match="num_classes"):
        ProjectionDiscriminator(num_classes=2.5)
    with pytest.raises(ValueError, match="image_size"):
        ProjectionDiscriminator(image_size=20)


@pytest.mark.parametrize("size, channels", [(16, 1), (32, 3)])
@pytest.mark.parametrize("width", [0.25, 0.5])
def test_shapes_and_widths(size, channels, width):
    G = ConditionalGenerator(z_dim=32, image_size=size, channels=channels, width=width)
    y = torch.tensor([0, 4, 9])
    x = G(G.sample_z(3), y)
    assert x.shape == (3, channels, size, size) and x.abs().max() <= 1
    for cls in (ProjectionDiscriminator, ConcatDiscriminator):
        D = cls(image_size=size, channels=channels, width=width, spectral_norm=True)
        assert D(x, y).shape == (3,)
        assert D.channels == channels
    # the same channel counts as the unconditional models of that width
    plain_d = Discriminator(image_size=size, channels=channels, width=width)
    proj = ProjectionDiscriminator(image_size=size, channels=channels, width=width)
    assert proj.embed.weight.shape == (10, plain_d.linear.in_features)
    plain_g = Generator(z_dim=32, image_size=size, channels=channels, width=width)
    assert [m.out_channels for m in G.deconvs] == [
        m.out_channels for m in plain_g.main if isinstance(m, nn.ConvTranspose2d)]


def test_concat_discriminator_sees_the_one_hot_label_as_planes():
    torch.manual_seed(0)
    D = ConcatDiscriminator(image_size=16, channels=1, width=0.25)
    first = D.main[0]
    assert first.in_channels == 11
    x, y = torch.randn(2, 1, 16, 16), torch.tensor([3, 8])
    planes = F.one_hot(y, 10).float()[:, :, None, None].expand(-1, -1, 16, 16)
    expected = Discriminator.forward(D, torch.cat([x, planes], 1))
    torch.testing.assert_close(D(x, y), expected)


def test_bound_labels_forwards_the_labels_it_holds():
    D = small_d()
    bound = BoundLabels(D)
    x = torch.randn(3, 1, 16, 16)
    with pytest.raises(ValueError, match="labels"):
        bound(x)
    bound.labels = torch.tensor([1, 2, 3])
    torch.testing.assert_close(bound(x), D(x, bound.labels))
    assert {id(p) for p in bound.parameters()} == {id(p) for p in D.parameters()}
