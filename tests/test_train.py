"""The training engine: presets, config errors, reproducibility, resume, divergence, callbacks."""

import dataclasses

import pytest
import torch
from torch import nn

from sngan_edu.data.toy import make_sampler
from sngan_edu.gan_step import discriminator_step, generator_step
from sngan_edu.models.toy_mlp import ToyDiscriminator, ToyGenerator
from sngan_edu.sn import SpectralNorm, apply_spectral_norm, spectral_norm_layers
from sngan_edu.train import checkpoint as ckpt
from sngan_edu.train.callbacks import Callback, MetricEval, SampleSnapshot, SigmaLogger
from sngan_edu.train.config import RunConfig
from sngan_edu.train.presets import PRESETS, get_preset
from sngan_edu.train.trainer import DivergenceError, Trainer

torch.set_num_threads(1)  # tiny models: one thread is fastest and avoids oversubscription


def tiny_models(seed=0):
    torch.manual_seed(seed)
    return ToyGenerator(z_dim=2, hidden=(16, 16)), ToyDiscriminator(hidden=(16, 16))


def config(**kw):
    base = dict(steps=12, batch_size=16, z_dim=2, setting="C", lr=1e-3, loss="hinge",
                regularizer="sn", n_dis=2, seed=3, device="cpu", log_every=4, progress=False,
                g_ema=None, out_dir=None, cpu_threads=None, checkpoint_every=0)
    base.update(kw)
    return RunConfig(**base)


def train(G, D, sample_real, cfg, callbacks=()):
    trainer = Trainer(G, D, sample_real, cfg, callbacks)
    trainer.fit()
    return trainer


class Every(Callback):
    """Calls ``fn(trainer)`` after every generator step."""

    def __init__(self, fn):
        self.every, self.fn = 1, fn

    def on_step(self, trainer):
        self.fn(trainer)


def full_state(trainer):
    return {
        "G": trainer.G.state_dict(),
        "D": trainer.D.state_dict(),
        "opt_d": trainer.opt_d.state_dict()["state"],
        "opt_g": trainer.opt_g.state_dict()["state"],
    }


def assert_bit_identical(a, b):
    for part in a:
        for key in a[part]:
            x, y = a[part][key], b[part][key]
            if isinstance(x, dict):
                for k in x:
                    assert torch.equal(x[k], y[k]), (part, key, k)
            else:
                assert torch.equal(x, y), (part, key)


def test_presets_are_the_paper_values():
    table = {  # Miyato et al. 2018, Table 1 (lr, beta1, beta2, n_dis) and the ResNet runs
        "A": (1e-4, 0.5, 0.9, 5), "B": (1e-4, 0.5, 0.999, 1), "C": (2e-4, 0.5, 0.999, 1),
        "D": (1e-3, 0.5, 0.9, 5), "E": (1e-3, 0.5, 0.999, 5), "F": (1e-3, 0.9, 0.999, 5),
        "resnet": (2e-4, 0.0, 0.9, 5),
    }
    assert set(PRESETS) == set(table)
    for name, values in table.items():
        p = get_preset(name)
        assert (p.lr, p.beta1, p.beta2, p.n_dis) == values


def test_preset_reaches_the_optimizers():
    G, D = tiny_models()
    trainer = Trainer(G, D, make_sampler("ring"), config(setting="F", lr=None, n_dis=None))
    group = trainer.opt_d.param_groups[0]
    assert group["lr"] == 1e-3 and group["betas"] == (0.9, 0.999) and trainer.n_dis == 5
    cfg = config(setting="A", lr=None, lr_g=5e-4, n_dis=None)
    trainer = Trainer(*tiny_models(), make_sampler("ring"), cfg)
    assert trainer.opt_d.param_groups[0]["lr"] == 1e-4
    assert trainer.opt_g.param_groups[0]["lr"] == 5e-4
    assert trainer.n_dis == 5


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"setting": "G"}, "setting must be one of"),
        ({"loss": "lsgan"}, "loss must be one of"),
        ({"regularizer": "bn"}, "regularizer must be one of"),
        ({"n_dis": 0}, "n_dis"),
        ({"lr": 0.0}, "lr must be a positive"),
        ({"lr_d": -1e-3}, "lr_d must be a positive"),
        ({"steps": 0}, "steps must be a positive"),
        ({"batch_size": 0}, "batch_size"),
        ({"beta2": 1.0}, "beta2"),
        ({"resume": True}, "resume=True needs out_dir"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_config_errors_come_before_any_training(kw, match):
    def sampler(n, gen):  # pragma: no cover - must never be called
        raise AssertionError("training started")

    with pytest.raises(ValueError, match=match):
        Trainer(*tiny_models(), sampler, config(**kw))


def test_sn_is_applied_once_and_other_regularizers_refuse_an_sn_discriminator():
    G, D = tiny_models()
    trainer = Trainer(G, D, make_sampler("ring"), config(regularizer="sn"))
    assert set(spectral_norm_layers(trainer.D)) == {"net.0", "net.2", "net.4"}
    G, D = tiny_models()
    apply_spectral_norm(D)
    with pytest.raises(ValueError, match="already has spectral normalization"):
        Trainer(G, D, make_sampler("ring"), config(regularizer="none"))


@pytest.mark.parametrize(
    "kw",
    [
        {"loss": "hinge", "regularizer": "sn"},
        {"loss": "vanilla", "regularizer": "none"},
        {"loss": "wasserstein", "regularizer": "gp"},
        {"loss": "wasserstein", "regularizer": "clip"},
    ],
)
def test_same_seed_same_bits_different_seed_different_bits(kw):
    runs = []
    for seed in (3, 3, 4):
        trainer = train(*tiny_models(), make_sampler("grid"), config(seed=seed, **kw))
        runs.append(trainer)
    assert_bit_identical(full_state(runs[0]), full_state(runs[1]))
    assert runs[0].history == runs[1].history
    assert not torch.equal(runs[0].G.net[0].weight, runs[2].G.net[0].weight)


def test_clip_keeps_weights_in_range_and_d_learns():
    trainer = train(*tiny_models(), make_sampler("ring"),
                    config(loss="wasserstein", regularizer="clip", clip_c=0.02))
    for p in trainer.D.parameters():
        assert p.abs().max() <= 0.02
    assert len(trainer.history["loss_d"]) == 12


class StopAt(Callback):
    """Simulates an interruption (Ctrl-C) after a given step."""

    def __init__(self, step):
        self.every, self.stop = 1, step

    def on_step(self, trainer):
        if trainer.step == self.stop:
            raise KeyboardInterrupt


@pytest.mark.parametrize("kw", [{"loss": "hinge", "regularizer": "sn"},
                                {"loss": "wasserstein", "regularizer": "gp"}])
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, kw):
    def loggers():
        return [SigmaLogger(every=3)] if kw["regularizer"] == "sn" else []

    reference = train(*tiny_models(), make_sampler("grid"), config(**kw), callbacks=loggers())
    cfg = config(out_dir=str(tmp_path), checkpoint_every=5, resume=True, **kw)
    first = Trainer(*tiny_models(), make_sampler("grid"), cfg, callbacks=[StopAt(8), *loggers()])
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert ckpt.load(tmp_path / "checkpoint.pt")["step"] == 5

    # Fresh models from another seed: everything must come from the checkpoint.
    second = Trainer(*tiny_models(seed=99), make_sampler("grid"), cfg, callbacks=loggers())
    assert second.step == 5
    second.fit()
    assert second.step == 12
    assert_bit_identical(full_state(reference), full_state(second))
    assert repr(reference.history) == repr(second.history)  # repr: NaN fields compare equal
    if kw["regularizer"] == "sn":  # the SN power-iteration vectors came back too
        assert any(k.endswith("_u") for k in second.D.state_dict())
        assert [r[0] for r in reference.history["sigma"]["net.0"]] == [0, 3, 6, 9, 12]


def test_resume_extends_a_finished_run_and_refuses_a_different_config(tmp_path):
    cfg = config(out_dir=str(tmp_path), resume=True, steps=6)
    train(*tiny_models(), make_sampler("ring"), cfg)
    longer = train(*tiny_models(), make_sampler("ring"), dataclasses.replace(cfg, steps=12))
    reference = train(*tiny_models(), make_sampler("ring"), config(steps=12))
    assert_bit_identical(full_state(reference), full_state(longer))
    with pytest.raises(ValueError, match="different config.*loss"):
        Trainer(*tiny_models(), make_sampler("ring"), dataclasses.replace(cfg, loss="vanilla"))
    with pytest.raises(ValueError, match=r"different config \(lr: saved 0.001 vs now 0.0005"):
        Trainer(*tiny_models(), make_sampler("ring"), dataclasses.replace(cfg, lr=5e-4))
    with pytest.raises(ValueError, match=r"different config \(gp_lambda: saved 10.0 vs now 1"):
        Trainer(*tiny_models(), make_sampler("ring"), dataclasses.replace(cfg, gp_lambda=1.0))


def test_checkpoint_loads_with_weights_only_and_is_written_atomically(tmp_path):
    cfg = config(out_dir=str(tmp_path), checkpoint_every=4)
    train(*tiny_models(), make_sampler("ring"), cfg)
    outer = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # no pickled code
    assert outer["format"] == ckpt.FORMAT and len(outer["sha256"]) == 64
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert state["step"] == 12 and len(state["history"]["loss_d"]) == 12
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp files left


class NaNAfter:
    """A real-data sampler that starts returning NaN at its ``bad_call``-th call."""

    def __init__(self, bad_call):
        self.inner, self.calls, self.bad_call = make_sampler("ring"), 0, bad_call

    def __call__(self, n, gen):
        self.calls += 1
        batch = self.inner(n, gen)
        return batch * float("nan") if self.calls >= self.bad_call else batch


def test_divergence_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    # n_dis = 2: sampler call 15 is the first D update of generator step 8.
    cfg = config(out_dir=str(tmp_path), checkpoint_every=5, log_every=50)
    trainer = Trainer(*tiny_models(), NaNAfter(15), cfg)
    with pytest.raises(DivergenceError, match=r"step 8\b.*discriminator loss became nan") as err:
        trainer.fit()
    assert err.value.step == 8
    assert "checkpoint.pt (step 5)" in str(err.value)
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert state["step"] == 5
    assert all(torch.isfinite(v).all() for v in state["D"].values())
    assert all(torch.isfinite(v).all() for v in state["G"].values())


class Amplified(nn.Module):
    """A toy D whose output is multiplied by ``gain`` (set from outside to blow the loss up)."""

    def __init__(self):
        super().__init__()
        self.inner, self.gain = ToyDiscriminator(hidden=(16, 16)), 1.0

    def forward(self, x):
        return self.inner(x) * self.gain


def test_an_exploding_finite_loss_stops_with_the_last_good_checkpoint(tmp_path):
    def amplify(trainer):  # from generator step 7 on, D's output is 1e12 times larger
        if trainer.step == 6:
            trainer.D.gain = 1e12

    cfg = config(out_dir=str(tmp_path), checkpoint_every=5, log_every=50,
                 loss="wasserstein", regularizer="none")
    G, _ = tiny_models()
    trainer = Trainer(G, Amplified(), make_sampler("ring"), cfg, [Every(amplify)])
    with pytest.raises(DivergenceError, match=r"step 7\b.*loss reached .*beyond "
                                              r"max_abs_loss=1e\+06") as err:
        trainer.fit()
    assert err.value.step == 7 and "checkpoint.pt (step 5)" in str(err.value)
    assert ckpt.load(tmp_path / "checkpoint.pt")["step"] == 5
    G, _ = tiny_models()  # without the bound the same run "finishes"
    free = Trainer(G, Amplified(), make_sampler("ring"), dataclasses.replace(
        cfg, max_abs_loss=None, out_dir=None, checkpoint_every=0),
        [Every(amplify)])
    assert abs(free.fit()["loss_d"][-1]) > 1e6


def test_checkpoints_every_checkpoint_seconds_of_training(tmp_path):
    seen = []  # the last checkpoint's step as each step's callbacks see it
    record = Every(lambda trainer: seen.append(trainer.last_checkpoint_step))
    cfg = config(steps=4, out_dir=str(tmp_path), checkpoint_seconds=1e-9)
    train(*tiny_models(), make_sampler("ring"), cfg, [record])
    assert seen == [None, 1, 2, 3]  # a checkpoint after every step
    seen.clear()
    train(*tiny_models(), make_sampler("ring"), dataclasses.replace(cfg, checkpoint_seconds=None),
          [record])
    assert seen == [None] * 4
    with pytest.raises(ValueError, match="checkpoint_seconds must be a positive number or None"):
        config(checkpoint_seconds=0)


def test_resume_refuses_steps_below_the_checkpoint_and_cleans_orphans_at_start(tmp_path):
    cfg = config(out_dir=str(tmp_path), resume=True, steps=6)
    train(*tiny_models(), make_sampler("ring"), cfg)
    orphan = tmp_path / "checkpoint.pt.killed.tmp"
    orphan.write_bytes(b"half a checkpoint")
    with pytest.raises(ValueError, match=r"steps=4 is below step 6 of the checkpoint at .*"
                                         r"already past it; use steps >= 6"):
        Trainer(*tiny_models(), make_sampler("ring"), dataclasses.replace(cfg, steps=4))
    assert not orphan.exists()  # removed when the trainer started, before any write


def test_nan_weight_is_caught():
    def poison(trainer):
        if trainer.step == 3:
            with torch.no_grad():
                trainer.G.net[0].bias[0] = float("inf")

    cfg = config(regularizer="none", log_every=1)
    trainer = Trainer(*tiny_models(), make_sampler("ring"), cfg, [Every(poison)])
    with pytest.raises(DivergenceError, match="step [34]"):
        trainer.fit()


class BatchNormD(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def count_sn_calls(D):
    counts = {"n": 0}
    for m in D.modules():
        if isinstance(m, SpectralNorm):
            m.register_forward_hook(lambda *_: counts.__setitem__("n", counts["n"] + 1))
    return counts


def test_joint_forward_runs_power_iteration_once_per_d_step_and_not_with_batchnorm():
    G, D = tiny_models()
    apply_spectral_norm(D)
    counts = count_sn_calls(D)
    trainer = train(G, D, make_sampler("ring"), config(steps=1, n_dis=3))
    assert trainer.joint_d_forward
    # 3 layers x (3 D updates with one joint forward + 1 generator update).
    assert counts["n"] == 3 * (3 + 1)
    G, D = tiny_models()
    apply_spectral_norm(D)
    counts = count_sn_calls(D)
    train(G, D, make_sampler("ring"), config(steps=1, n_dis=3, joint_d_forward=False))
    assert counts["n"] == 3 * (3 * 2 + 1)
    trainer = Trainer(tiny_models()[0], BatchNormD(), make_sampler("ring"),
                      config(regularizer="none"))
    assert not trainer.joint_d_forward


def test_joint_and_separate_forward_give_the_same_losses_and_gradients():
    grads = []
    for joint in (True, False):
        trainer = Trainer(*tiny_models(), make_sampler("ring"),
                          config(regularizer="none", joint_d_forward=joint, n_dis=1))
        trainer.opt_d.step = lambda: None  # keep the gradients, skip the update
        loss = discriminator_step(trainer.D, trainer.opt_d, trainer._sample_real(),
                                  trainer.G(trainer._sample_z()).detach(), trainer.loss.d_loss,
                                  joint=trainer.joint_d_forward).loss
        grads.append((loss, [p.grad.clone() for p in trainer.D.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(a, b)


def test_generator_step_leaves_d_untouched_and_restores_requires_grad():
    G, D = tiny_models()
    trainer = Trainer(G, D, make_sampler("ring"), config(regularizer="none"))
    before = [p.clone() for p in trainer.D.parameters()]
    generator_step(trainer.G, trainer.D, trainer.opt_g, trainer._sample_z(), trainer.loss.g_loss)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.D.parameters(), strict=True))
    assert all(p.grad is None and p.requires_grad for p in trainer.D.parameters())
    assert any(p.grad is not None for p in trainer.G.parameters())


def test_callbacks_observe_without_changing_the_run():
    reference = train(*tiny_models(), make_sampler("grid"), config())
    snaps = SampleSnapshot(every=4, n=10)
    metric = MetricEval(every=6, fn=lambda t: {"mean_x": t.sample(50, seed=1)[:, 0].mean()})
    observed = train(*tiny_models(), make_sampler("grid"), config(),
                     callbacks=[SigmaLogger(every=5), snaps, metric])
    assert_bit_identical(full_state(reference), full_state(observed))
    assert [s for s, _ in snaps.snapshots] == [0, 4, 8, 12]
    assert snaps.snapshots[-1][1].shape == (10, 2)
    assert [row["step"] for row in observed.history["metrics"]] == [6, 12]
    assert set(observed.history["sigma"]) == {"net.0", "net.2", "net.4"}
    assert all([r[0] for r in rows] == [0, 5, 10] for rows in observed.history["sigma"].values())
    assert reference.history["loss_d"] == observed.history["loss_d"]


def test_sigma_logger_matches_svd_of_the_weights():
    G, D = tiny_models()
    trainer = train(G, D, make_sampler("ring"), config(steps=6),
                    callbacks=[SigmaLogger(every=3, exact=True)])
    for name, rows in trainer.history["sigma"].items():
        step, estimate, exact_raw, normalized = rows[-1]
        raw = trainer.D.get_submodule(name).parametrizations.weight.original.detach()
        assert step == 6
        assert exact_raw == pytest.approx(float(torch.linalg.matrix_norm(raw.double(), 2)))
        assert normalized == pytest.approx(exact_raw / estimate)
        assert 0.9 < normalized < 1.2  # one power iteration per step keeps the estimate close


def test_losses_are_logged_every_step_and_sample_is_private():
    trainer = train(*tiny_models(), make_sampler("ring"), config(log_every=5))
    assert len(trainer.history["loss_d"]) == len(trainer.history["loss_g"]) == 12
    state = trainer.z_generator.get_state()
    a, b = trainer.sample(20, seed=7), trainer.sample(20, seed=7)
    assert torch.equal(a, b) and a.shape == (20, 2)
    assert torch.equal(state, trainer.z_generator.get_state())


def test_linear_lr_decay_and_threads_are_restored(tmp_path):
    threads = torch.get_num_threads()
    cfg = config(lr_decay="linear", steps=10, cpu_threads=1)
    trainer = Trainer(*tiny_models(), make_sampler("ring"), cfg)
    trainer.fit(4)
    # The lr of generator step s (0-based) is lr * (1 - s / steps); the last one run was s = 3.
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 3 / 10))
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 3 / 10))
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="lr_decay must be one of"):
        config(lr_decay="cosine")
    # Interrupted and resumed with decay: still bit-identical.
    reference = train(*tiny_models(), make_sampler("ring"), config(lr_decay="linear"))
    ck = config(lr_decay="linear", out_dir=str(tmp_path), checkpoint_every=5, resume=True)
    with pytest.raises(KeyboardInterrupt):
        Trainer(*tiny_models(), make_sampler("ring"), ck, callbacks=[StopAt(7)]).fit()
    resumed = train(*tiny_models(seed=5), make_sampler("ring"), ck)
    assert_bit_identical(full_state(reference), full_state(resumed))


def test_channels_last_changes_the_layout_not_the_math(tmp_path):
    from sngan_edu.data.images import load_digits
    from sngan_edu.models import standard_cnn

    data = load_digits(16)

    def run(channels_last, **kw):
        torch.manual_seed(0)
        G = standard_cnn.Generator(image_size=16, channels=1, width=0.125)
        D = standard_cnn.Discriminator(image_size=16, channels=1, width=0.125)
        cfg = config(steps=4, batch_size=8, z_dim=128, setting="D", n_dis=1,
                     channels_last=channels_last, **kw)
        return train(G, D, data.sample, cfg)

    plain, nhwc = run(False), run(True)
    conv_g = plain.G.main[0].weight  # a ConvTranspose2d kernel
    assert conv_g.is_contiguous() and not conv_g.is_contiguous(memory_format=torch.channels_last)
    assert nhwc.G.main[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert nhwc.D.main[0].parametrizations.weight.original.is_contiguous(
        memory_format=torch.channels_last)
    # The first D loss comes before any update: the same to rounding. Later, Adam turns rounding
    # differences of near-zero gradients into steps of up to lr, so weights agree to a few lr.
    assert nhwc.history["loss_d"][0] == pytest.approx(plain.history["loss_d"][0], rel=1e-5)
    torch.testing.assert_close(nhwc.G.state_dict(), plain.G.state_dict(), rtol=0, atol=5e-3)
    # a channels_last checkpoint resumes into a run with the default layout: the loaded weights
    # are the saved ones exactly (training them anew in NCHW would differ in the last digits)
    saved = run(True, out_dir=str(tmp_path))
    resumed = run(False, out_dir=str(tmp_path), resume=True)
    assert resumed.step == 4 and resumed.history["loss_d"] == saved.history["loss_d"]
    torch.testing.assert_close(resumed.G.state_dict(), saved.G.state_dict(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="channels_last must be True or False"):
        config(channels_last="yes")


def test_fused_adam_is_the_same_update_as_the_loop():
    def one_update(**kw):  # one D and one G update: later steps would amplify rounding
        trainer = Trainer(*tiny_models(), make_sampler("ring"), config(steps=1, n_dis=1, **kw))
        before = {part: {k: v.clone() for k, v in getattr(trainer, part).state_dict().items()}
                  for part in ("G", "D")}
        trainer.fit()
        return trainer, before

    (fused, before), (loop, _) = one_update(fused_adam=True), one_update()
    assert fused.opt_g.param_groups[0]["fused"] and fused.opt_d.param_groups[0]["fused"]
    assert not loop.opt_g.param_groups[0]["fused"]
    for part in ("G", "D"):
        mine, reference = getattr(fused, part).state_dict(), getattr(loop, part).state_dict()
        for key, value in reference.items():
            torch.testing.assert_close(mine[key], value, rtol=1e-5, atol=1e-6)
        assert any(not torch.equal(mine[k], before[part][k]) for k in mine)  # they did train
    with pytest.raises(ValueError, match="fused_adam must be True or False"):
        config(fused_adam=1)


class RecordingD(nn.Module):
    """Wraps a D and keeps every batch it is shown."""

    def __init__(self, D):
        super().__init__()
        self.D, self.inputs = D, []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.D(x)


def test_translate_shows_d_shifted_real_images_and_resumes(tmp_path):
    from sngan_edu.data.images import load_digits
    from sngan_edu.models import standard_cnn

    data = load_digits(16)
    digit = data.float_images(1)  # a sampler that always returns this one digit

    def same_digit(n, gen):
        return digit.expand(n, -1, -1, -1).clone()

    def trainer(translate, callbacks=(), **kw):
        torch.manual_seed(0)
        G = standard_cnn.Generator(image_size=16, channels=1, width=0.125)
        D = RecordingD(standard_cnn.Discriminator(image_size=16, channels=1, width=0.125))
        cfg = config(steps=4, batch_size=32, z_dim=128, setting="D", n_dis=1,
                     translate=translate, **kw)
        return Trainer(G, D, same_digit, cfg, callbacks)

    plain, shifted = trainer(0), trainer(1)
    plain.fit()
    shifted.fit()
    # joint forward: the first half of each D-step batch is the real one
    plain_real, shifted_real = plain.D.inputs[0][:32], shifted.D.inputs[0][:32]
    assert all(torch.equal(x, digit[0]) for x in plain_real)
    shifts = {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    padded = torch.nn.functional.pad(digit, (1, 1, 1, 1), mode="replicate")[0]
    crops = {s: padded[:, 1 + s[0]:17 + s[0], 1 + s[1]:17 + s[1]] for s in shifts}
    matched = {next(s for s, c in crops.items() if torch.equal(x, c)) for x in shifted_real}
    assert len(matched) > 3  # several different shifts within one batch
    assert not torch.equal(plain.G.head[0].weight, shifted.G.head[0].weight)
    # the shift generator is part of the checkpoint: an interrupted run resumes bit for bit
    resumable = dict(out_dir=str(tmp_path), checkpoint_every=2, resume=True)
    with pytest.raises(KeyboardInterrupt):
        trainer(1, callbacks=[StopAt(3)], **resumable).fit()
    second = trainer(1, **resumable)
    assert second.step == 2
    second.fit()
    assert second.history["loss_d"] == shifted.history["loss_d"]
    torch.testing.assert_close(second.G.state_dict(), shifted.G.state_dict(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="translate must be a non-negative integer"):
        config(translate=-1)


def test_defaults_train_as_before_one_process_float32_eager():
    # The stored notebook outputs depend on bit-identical training: by default the steps call
    # the plain models (no autocast, DDP or compile), with the per-tensor Adam on the CPU.
    trainer = Trainer(*tiny_models(), make_sampler("ring"), config(steps=2))
    cfg = trainer.config
    assert (cfg.amp, cfg.torch_compile, cfg.fused_adam) == ("none", False, None)
    assert trainer.world_size == 1 and trainer.is_main and trainer._rows is None
    assert trainer.G_run is trainer.G and trainer.D_run is trainer.D
    assert trainer.scaler_d is None
    assert not trainer.opt_d.param_groups[0]["fused"]
    assert "scaler_d" not in trainer.state_dict() and trainer.state_dict()["world_size"] == 1


def test_amp_compile_and_fused_adam_are_validated():
    for kw, match in [({"amp": "fp32"}, "amp must be one of"),
                      ({"torch_compile": "yes"}, "torch_compile must be True or False"),
                      ({"compile_mode": "fast"}, "compile_mode must be one of"),
                      ({"fused_adam": "on"}, "fused_adam must be True or False")]:
        with pytest.raises(ValueError, match=match):
            config(**kw)
    for kw in ({"amp": "bf16"}, {"amp": "fp16"}, {"torch_compile": True},
               {"torch_compile": True, "compile_mode": "reduce-overhead"}, {"fused_adam": None}):
        config(**kw)
