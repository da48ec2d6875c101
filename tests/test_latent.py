"""The one-hot category code of the latent prior (sngan_edu.models.latent) and its generators."""

import pytest
import torch

from sngan_edu.models import FAMILIES
from sngan_edu.models.latent import check_categories, with_category_code


def test_code_is_one_hot_at_the_argmax_and_keeps_the_rest():
    z = torch.randn(500, 20, generator=torch.Generator().manual_seed(0))
    coded = with_category_code(z, 5)
    assert coded.shape == z.shape
    torch.testing.assert_close(coded[:, :15], z[:, :15])
    code = coded[:, 15:]
    assert set(code.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(code.sum(1), torch.ones(500))
    assert torch.equal(code.argmax(1), z[:, 15:].argmax(1))


def test_zero_categories_is_the_plain_gaussian():
    z = torch.randn(8, 16)
    assert with_category_code(z, 0) is z


def test_categories_are_uniform_for_gaussian_z():
    # 200,000 draws: each share has standard error 0.0007, so 0.004 is about 6 of them.
    z = torch.randn(200_000, 16, generator=torch.Generator().manual_seed(1))
    shares = with_category_code(z, 10)[:, -10:].mean(0)
    assert torch.allclose(shares, torch.full((10,), 0.1), atol=0.004)


@pytest.mark.parametrize("bad", [1, -1, 16, 17, 2.0, True, None])
def test_bad_category_counts_are_refused(bad):
    with pytest.raises(ValueError, match="z_categories"):
        check_categories(bad, 16)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generator_applies_the_code_first(family):
    Generator = FAMILIES[family].Generator
    torch.manual_seed(0)
    coded = Generator(z_dim=16, image_size=16, channels=1, width=0.125, z_categories=4).eval()
    plain = Generator(z_dim=16, image_size=16, channels=1, width=0.125).eval()
    plain.load_state_dict(coded.state_dict())
    z = torch.randn(6, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(coded(z), plain(with_category_code(z, 4)))
    # Only the argmax of the code entries matters: rescale them and the images stay the same...
    z_same = z.clone()
    z_same[:, -4:] = z[:, -4:] * 3 + 10
    torch.testing.assert_close(coded(z_same), coded(z))
    # ...while the plain generator sees every entry.
    assert not torch.allclose(plain(z_same), plain(z))


def test_generator_refuses_a_bad_category_count():
    with pytest.raises(ValueError, match="z_categories"):
        FAMILIES["standard"].Generator(z_dim=8, z_categories=8)
