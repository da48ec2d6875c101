"""The loop of Algorithm 1 (train_gan) written out by hand gives the trainer's weights: the
trainer adds the machinery around the same loop, not another one."""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sngan_edu.data.toy import make_sampler
from sngan_edu.losses import get_loss
from sngan_edu.models.toy_mlp import ToyDiscriminator, ToyGenerator
from sngan_edu.sn import apply_spectral_norm
from sngan_edu.train.config import RunConfig
from sngan_edu.train.loop import train_gan
from sngan_edu.train.trainer import Trainer

SEED, STEPS, N_DIS, BATCH = 3, 8, 2, 16


def models():
    torch.manual_seed(0)
    return ToyGenerator(z_dim=2, hidden=(16, 16)), ToyDiscriminator(hidden=(16, 16))


def by_hand():
    """Notebook 05's way: the models, Adam, the samplers and the loop, nothing else."""
    G, D = models()
    torch.manual_seed(SEED)
    apply_spectral_norm(D)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    G_avg = AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    z_gen = torch.Generator().manual_seed(SEED)
    data_gen = torch.Generator().manual_seed(SEED + 0x5EED)
    sampler = make_sampler("ring")
    losses = []
    train_gan(G, D, opt_g, opt_d, get_loss("hinge"), lambda: sampler(BATCH, data_gen),
              lambda: torch.randn(BATCH, 2, generator=z_gen), steps=STEPS, n_dis=N_DIS,
              regularizer="sn", G_avg=G_avg,
              after_step=lambda step, loss_d, loss_g: losses.append((step, float(loss_d))))
    return G, D, G_avg, losses


def test_the_loop_by_hand_trains_the_trainers_weights():
    G, D, G_avg, losses = by_hand()
    config = RunConfig(steps=STEPS, batch_size=BATCH, z_dim=2, setting="C", lr=1e-3,
                       n_dis=N_DIS, seed=SEED, device="cpu", g_ema=0.9, out_dir=None,
                       cpu_threads=None, progress=False, channels_last=False)
    trainer = Trainer(*models(), make_sampler("ring"), config)
    trainer.fit()
    for mine, theirs in ((G, trainer.G), (D, trainer.D), (G_avg, trainer.G_ema)):
        torch.testing.assert_close(mine.state_dict(), theirs.state_dict(), rtol=0, atol=0)
    assert [step for step, _ in losses] == list(range(1, STEPS + 1))
    assert [loss for _, loss in losses] == trainer.history["loss_d"]


def test_after_step_stops_the_loop_and_start_continues_it():
    G, D = models()
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (G, D))
    sampler, gen = make_sampler("ring"), torch.Generator().manual_seed(0)
    args = (G, D, opt_g, opt_d, get_loss("vanilla"), lambda: sampler(BATCH, gen),
            lambda: torch.randn(BATCH, 2, generator=gen))
    seen = []
    last = train_gan(*args, steps=10, after_step=lambda step, *_: seen.append(step) or step == 3)
    assert last == 3 and seen == [1, 2, 3]
    assert train_gan(*args, steps=5, start=last, after_step=lambda s, *_: seen.append(s)) == 5
    assert seen == [1, 2, 3, 4, 5]
    assert train_gan(*args, steps=5, start=5) == 5  # nothing left to train
