"""The one-hot category code of the latent prior (sngan_edu.models.latent) and its generators."""

import pytest
import torch

from sngan_edu.models import FAMILIES
from sngan_edu.models.latent import check_categories, with_category_code
from sngan_edu.train import checkpoint as ckpt
from sngan_edu.train.config import RunConfig
from sngan_edu.train.trainer import Trainer


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
    weights = {k: v for k, v in coded.state_dict().items() if k != "code._extra_state"}
    plain.load_state_dict(weights)
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


def tiny_generator(family="standard", categories=0):
    return FAMILIES[family].Generator(z_dim=16, image_size=16, channels=1, width=0.125,
                                      z_categories=categories)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_saved_weights_remember_their_category_count(family, tmp_path):
    torch.manual_seed(0)
    coded = tiny_generator(family, 4)
    # Through a real checkpoint file, read back with weights_only=True.
    state = ckpt.load(ckpt.save_atomic({"G": coded.state_dict()}, tmp_path / "g.pt"))["G"]
    assert state["code._extra_state"] == {"categories": 4}
    same = tiny_generator(family, 4)
    same.load_state_dict(state)
    z = torch.randn(3, 16)
    torch.testing.assert_close(same.eval()(z), coded.eval()(z))
    for other in (0, 3):
        with pytest.raises(ValueError, match="trained with z_categories=4.*build it with "
                                             "z_categories=4"):
            tiny_generator(family, other).load_state_dict(state)


def test_weights_saved_before_the_code_existed_load_as_the_plain_prior():
    old = {k: v for k, v in tiny_generator().state_dict().items() if k != "code._extra_state"}
    tiny_generator().load_state_dict(old)  # strict load: the missing count means 0
    with pytest.raises(ValueError, match="trained with z_categories=0"):
        tiny_generator(categories=5).load_state_dict(old)


def test_resuming_with_another_category_count_is_refused(tmp_path):
    def fake_digits(n, generator):
        return torch.rand(n, 1, 16, 16, generator=generator) * 2 - 1

    def trainer(categories, steps):
        torch.manual_seed(0)
        D = FAMILIES["standard"].Discriminator(image_size=16, channels=1, width=0.125)
        cfg = RunConfig(steps=steps, batch_size=4, z_dim=16, setting="A", n_dis=None,
                        loss="hinge", regularizer="sn", seed=0, device="cpu", progress=False,
                        g_ema=None, cpu_threads=None, out_dir=str(tmp_path), resume=True)
        return Trainer(tiny_generator(categories=categories), D, fake_digits, cfg)

    trainer(4, 2).fit()
    assert trainer(4, 3).step == 2  # the same count resumes
    with pytest.raises(ValueError, match="trained with z_categories=4"):
        trainer(0, 3)
