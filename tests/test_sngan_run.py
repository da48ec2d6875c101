"""Notebook 05's run as a library call: parameter checks, the files a run writes, resuming,
the other architecture and regularizers, a time budget, a dataset without a classifier."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from PIL import Image

from sngan_edu.experiments import sngan_run
from sngan_edu.experiments.sngan_run import run_sngan
from sngan_edu.models import FAMILIES
from sngan_edu.train import checkpoint, run_folder
from sngan_edu.train.callbacks import Callback
from sngan_edu.train.config import RunConfig
from sngan_edu.train.run_folder import MetricsRecord


def tiny(out_dir, **changes) -> RunConfig:
    """A run of a few steps of tiny models (cpu_threads=None: the test keeps torch's threads)."""
    base = dict(steps=4, eval_every=2, width=0.0625, d_width=0.0625, batch_size=8, z_dim=16,
                cpu_threads=None, out_dir=str(out_dir))
    return RunConfig(**{**base, **changes})


@pytest.fixture(scope="module", autouse=True)
def fewer_samples():
    """Score 200 samples at each evaluation and 400 at the end instead of 1,000 and 10,000
    (the classifier's time dominates a tiny run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sngan_run, "N_EVAL", 200)
        patch.setattr(sngan_run, "N_PRECISION", 400)
        yield


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, fewer_samples):
    return run_sngan(tiny(tmp_path_factory.mktemp("digits") / "run"), progress=False)


@pytest.mark.parametrize(
    "changes, message",
    [({"dataset": "imagenet"}, "dataset must be one of"),
     ({"architecture": "vit"}, "architecture must be one of"),
     ({"loss": "hinj"}, "loss must be one of"), ({"setting": "Z"}, "setting must be one of"),
     ({"regularizer": "bn"}, "regularizer must be one of"),
     ({"steps": 0}, "steps must be a positive integer"),
     ({"batch_size": 2.5}, "batch_size must be an integer >= 2"),
     ({"batch_size": 1}, "batch_size must be an integer >= 2 (G's BatchNorm needs at least 2"),
     ({"eval_every": True}, "eval_every must be a positive integer"),
     ({"seed": -1}, "seed must be a non-negative integer"),
     ({"image_size": 4}, "image_size must be an integer >= 8"),
     ({"image_size": 20}, "image_size must be a multiple of 8"),
     ({"width": 0}, "width must be a positive number"),
     ({"d_width": -1}, "d_width must be a positive number"),
     ({"width": -1, "d_width": None}, "width must be a positive number"),
     ({"width": 0.01}, "width must be >= 0.015625 for architecture='standard' (below it a layer"
                       " of G would have less than 1 channel: 64 at width 1.0); got 0.01"),
     ({"d_width": 0.005, "architecture": "resnet"}, "d_width must be >= 0.0078125 for "
                                                    "architecture='resnet'"),
     ({"resume": True, "overwrite": True}, "resume=True and overwrite=True contradict"),
     ({"overwrite": 1}, "overwrite must be True or False"),
     ({"amp": "fp8"}, "amp must be one of"),
     ({"torch_compile": "yes"}, "torch_compile must be True or False"),
     ({"n_dis": 0}, "n_dis must be a positive integer"),
     ({"translate": 8}, "translate must be below half the image side"),
     ({"translate": -1}, "translate must be a non-negative integer"),
     ({"resume": "yes"}, "resume must be True or False"),
     ({"max_minutes": 0}, "max_minutes must be a positive number of minutes"),
     ({"cpu_threads": 0}, "cpu_threads must be a positive integer"),
     ({"g_ema": 1.5}, "g_ema must be a decay in (0, 1)"),
     ({"lr_decay": "cosine"}, "lr_decay must be one of"),
     ({"z_dim": 0}, "z_dim must be a positive integer"),
     ({"device": "tpu"}, "device must be one of"),
     ({"z_categories": 1}, "z_categories must be 0")],
)
def test_a_bad_parameter_is_named_before_any_work(tmp_path, changes, message):
    with pytest.raises(ValueError) as info:
        RunConfig(out_dir=str(tmp_path / "run"), **changes)
    assert message in str(info.value)
    assert not (tmp_path / "run").exists()  # nothing written, no data loaded


def test_defaults_are_notebook_05s_and_resolved_once():
    config = RunConfig()
    assert config.optimizer == {"lr_d": 1e-3, "lr_g": 1e-3, "beta1": 0.5, "beta2": 0.9,
                                "n_dis": 3}  # setting D with n_dis=3
    assert (config.batch_size, config.steps, config.g_ema, config.log_every) == (32, 3000, 0.99,
                                                                                 50)
    assert config.channels_last and config.max_seconds is None
    assert config.checkpoint_period == 500 and config.checkpoint_seconds == 300  # at evaluations
    assert replace(config, max_minutes=2).max_seconds == 120.0
    assert config.disc_width == 0.125 and replace(config, d_width=None).disc_width == 0.5
    assert (config.amp, config.compile) == ("none", False)
    assert isinstance(config.torch_device, torch.device)
    gpu = replace(config, amp="bf16", torch_compile=True)
    assert (gpu.amp, gpu.compile) == ("bf16", "default")  # torch.compile's default mode
    assert set(config.parameters()) == set(RunConfig.names())  # defaults: the notebook's own
    assert replace(config, lr=1e-4).parameters()["lr"] == 1e-4  # other fields when changed
    assert all(RunConfig.help()[name] for name in RunConfig.help())


def test_parameters_read_back_from_a_record():
    config = RunConfig.from_parameters({"width": 0.25, "z_dim": 32})
    assert config.width == 0.25 and config.z_categories == 0
    with pytest.raises(ValueError, match="unknown run parameter"):
        RunConfig.from_parameters({"widht": 0.25})


def test_a_run_writes_its_folder(digits_run):
    out = digits_run.out
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt", "metrics.json", "real.png", "samples", "samples_final.png",
        "sigma_history.json"]
    record = run_folder.read_metrics(out)
    assert record == json.loads(json.dumps(digits_run.record))
    assert set(record) == set(MetricsRecord.__annotations__) - {"fidelity"}
    assert record["parameters"] == digits_run.config.parameters()
    assert record["step"] == 4 and [row["step"] for row in record["metrics"]] == [2, 4]
    assert record["final"] == record["metrics"][-1] == digits_run.final
    assert set(record["final"]) == {"step", "classes", "class_kl", "confidence", "fd",
                                    "confidence_plain"}
    assert record["optimizer"]["n_dis"] == 3 and record["n_params"]["D"] == sum(
        p.numel() for p in sngan_run.build_discriminator(digits_run.config, 1).parameters())
    precision = record["precision"]
    assert precision["n_samples"] == 400 and precision["seed"] == 1
    assert 0 <= precision["confidence_se"] < 0.05 and 0 <= precision["confidence_se_1000"] < 0.1
    assert digits_run.samples.shape == (200, 1, 16, 16)
    assert digits_run.sample_probs.shape == (200, 10)
    for png in ["real.png", "samples_final.png", "samples/step_000002.png",
                "samples/step_000004.png"]:
        with Image.open(out / png) as img:  # an 8x8 grid of 16x16 images, 1 px padding
            assert img.size == (8 * 17 + 1, 8 * 17 + 1)
    sigma = json.loads((out / "sigma_history.json").read_text())
    assert len(sigma) == 8  # 7 convs + the dense layer of D are spectrally normalized
    assert all([r[0] for r in records] == list(range(5)) for records in sigma.values())
    state = checkpoint.load(out / "checkpoint.pt")
    assert state["step"] == 4 and state["config"] == digits_run.config.settings()
    assert digits_run.config.channels_last  # NHWC conv weights: the default of a run


def test_a_resumed_run_continues_the_same_run(digits_run, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(digits_run.out, out)
    resumed = run_sngan(replace(digits_run.config, steps=6, eval_every=6, resume=True,
                                out_dir=str(out)), progress=False)
    assert resumed.start_step == 4 and resumed.trainer.step == 6
    assert [row["step"] for row in resumed.record["metrics"]] == [2, 4, 6]
    assert len(resumed.trainer.history["loss_d"]) == 6
    straight = run_sngan(replace(digits_run.config, steps=6, eval_every=6,
                                 out_dir=str(tmp_path / "s")), progress=False)
    assert straight.start_step == 0
    torch.testing.assert_close(resumed.trainer.G.state_dict(), straight.trainer.G.state_dict(),
                               rtol=0, atol=0)
    assert resumed.final == straight.final


def test_resnet_without_sn_with_a_latent_code(tmp_path):
    result = run_sngan(tiny(tmp_path, steps=2, architecture="resnet", regularizer="none",
                            setting="C", translate=2, z_categories=4), progress=False)
    assert result.record["step"] == 2 and result.setup.G.code.categories == 4
    state = checkpoint.load(tmp_path / "checkpoint.pt")
    assert state["config"]["translate"] == 2 and state["config"]["z_dim"] == 16
    assert state["G"]["linear.weight"].shape[1] == 16
    assert json.loads((tmp_path / "sigma_history.json").read_text()) == {}


def test_max_minutes_stops_training_early_and_keeps_a_checkpoint(tmp_path):
    result = run_sngan(tiny(tmp_path, steps=100_000, eval_every=50_000, max_minutes=0.02),
                       progress=False)  # 1.2 s: far fewer than 100k steps
    record = result.record
    assert 1 <= record["step"] < 100_000
    assert [row["step"] for row in record["metrics"]] == [record["step"]]  # scored at the stop
    state = checkpoint.load(tmp_path / "checkpoint.pt")
    assert state["step"] == record["step"] and state["config"]["max_minutes"] == 0.02


def colour_folder(root, n=6):
    """A folder dataset of ``n`` random 16x16 RGB images in two classes."""
    gen = torch.Generator().manual_seed(0)
    for i in range(n):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (16, 16, 3), generator=gen, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    return root


def test_a_dataset_without_a_classifier_trains_unscored(tmp_path):
    data_root = colour_folder(tmp_path / "images")
    result = run_sngan(tiny(tmp_path / "run", dataset="folder", data_root=str(data_root),
                            steps=2), progress=False)
    assert result.setup.classifier is None and result.setup.data.channels == 3
    assert result.final == {"step": 2} and result.precision is None
    assert result.samples is None and result.final_samples.shape == (64, 3, 16, 16)
    assert (tmp_path / "run" / "samples" / "step_000002.png").is_file()


def test_batch_size_counts_two_images_per_process(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 4 \(G's BatchNorm "
                                         r"needs at least 2 images per batch on each of the 2 "):
        RunConfig(batch_size=2, out_dir=str(tmp_path))


def test_the_smallest_widths_give_every_layer_a_channel():
    for architecture in ("standard", "resnet"):
        family = FAMILIES[architecture]
        config = RunConfig(architecture=architecture, width=family.MIN_WIDTH["G"],
                           d_width=family.MIN_WIDTH["D"])
        for model in (sngan_run.build_generator(config, 1),
                      sngan_run.build_discriminator(config, 1)):
            convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
            assert min(m.out_channels for m in convs) >= 1 and min(
                m.in_channels for m in convs) >= 1


@pytest.fixture
def finished(digits_run, tmp_path):
    """A copy of the tiny finished run (4 steps), with a file of the user's beside it."""
    import shutil

    out = tmp_path / "finished"
    shutil.copytree(digits_run.out, out)
    (out / "notes.txt").write_text("mine")
    return out


def test_a_folder_holding_a_run_is_refused_unless_resume_or_overwrite(digits_run, finished):
    before = (finished / "metrics.json").read_bytes()
    with pytest.raises(ValueError, match=r"out_dir .*finished already holds a run \(checkpoint"
                                         r"\.pt, metrics\.json\) and resume=False; use resume="
                                         r"True to continue it, overwrite=True to delete it"):
        run_sngan(replace(digits_run.config, out_dir=str(finished)), progress=False)
    assert (finished / "metrics.json").read_bytes() == before  # untouched, nothing trained
    assert not (finished / ".lock").exists()
    result = run_sngan(replace(digits_run.config, steps=2, eval_every=2, overwrite=True,
                               out_dir=str(finished)), progress=False)
    assert result.start_step == 0 and run_folder.read_metrics(finished)["step"] == 2
    assert sorted(p.name for p in (finished / "samples").iterdir()) == ["step_000002.png"]
    assert (finished / "notes.txt").read_text() == "mine"  # only the run's own files went


def test_resume_needs_a_checkpoint_of_the_same_run_not_past_steps(digits_run, finished, tmp_path):
    config = replace(digits_run.config, resume=True, out_dir=str(finished))
    with pytest.raises(ValueError, match=r"resume=True but there is nothing to resume at .*"
                                         r"empty: no checkpoint\.pt in it; use resume=False"):
        run_sngan(replace(config, out_dir=str(tmp_path / "empty")), progress=False)
    for changes, named in [({"width": 0.125}, "width: saved 0.0625 vs now 0.125"),
                           ({"architecture": "resnet"}, "architecture: saved 'standard' vs now "
                                                        "'resnet'"),
                           ({"dataset": "mnist"}, "dataset: saved 'digits' vs now 'mnist'"),
                           ({"batch_size": 16, "z_dim": 8}, "batch_size: saved 8 vs now 16, "
                                                            "z_dim: saved 16 vs now 8")]:
        with pytest.raises(ValueError, match="written with a different config") as info:
            run_sngan(replace(config, **changes), progress=False)
        assert named in str(info.value) and "resume=False with overwrite=True" in str(info.value)
    with pytest.raises(ValueError, match=r"steps=3 is below step 4 of the checkpoint at .*"
                                         r"already past it; use steps >= 4"):
        run_sngan(replace(config, steps=3), progress=False)
    state = checkpoint.load(finished / "checkpoint.pt")  # the parameters travel with it
    assert state["config"] == digits_run.config.settings()


def test_a_locked_folder_is_refused_and_a_stale_lock_taken_over(digits_run, tmp_path):
    import os
    import subprocess
    import sys

    from sngan_edu.train.lock import FolderLock

    out = tmp_path / "locked"
    out.mkdir()
    lock = out / ".lock"
    lock.write_text(f"{os.getppid()} {__import__('socket').gethostname()}\n")  # alive
    config = replace(digits_run.config, steps=2, eval_every=2, out_dir=str(out))
    with pytest.raises(ValueError, match=r"another run is using the folder .*locked \(process "
                                         r"\d+ on .* holds .*\.lock\); wait for it to finish"):
        run_sngan(config, progress=False)
    assert lock.exists() and not (out / "checkpoint.pt").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    lock.write_text(f"{dead} {__import__('socket').gethostname()}\n")
    with pytest.warns(UserWarning, match=f"taking over the stale lock .*process {dead}"):
        run_sngan(config, progress=False)
    assert not lock.exists() and (out / "metrics.json").is_file()  # released at the end
    with pytest.raises(ValueError, match="already holds a run"):  # released after an error too
        run_sngan(config, progress=False)
    assert not lock.exists()
    mine = FolderLock(out).acquire()  # this process may take its own lock again
    assert FolderLock(out).acquire().held
    mine.release()
    assert not lock.exists()


def test_only_rank_0_takes_the_lock(monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "1")
    assert run_folder.claim_folder(tiny(tmp_path / "run"), tmp_path / "run") is None
    assert not (tmp_path / "run").exists()


def test_a_setup_run_twice_claims_its_folder_again(tmp_path):
    setup = sngan_run.prepare_run(tiny(tmp_path, steps=2, eval_every=2), progress=False)
    assert (tmp_path / ".lock").is_file()  # held from prepare_run to the end of the run
    run_sngan(setup)
    assert not (tmp_path / ".lock").exists()
    with pytest.raises(ValueError, match="already holds a run"):
        run_sngan(setup)


def test_short_runs_checkpoint_at_evaluations_and_write_json_atomically(tmp_path, monkeypatch):
    class Record(Callback):
        def on_step(self, trainer):
            seen.append(trainer.last_checkpoint_step)

    out = tmp_path / "run"
    out.mkdir()
    orphans = [out / "checkpoint.pt.killed.tmp", out / "metrics.json.killed.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a file")
    setup = sngan_run.prepare_run(tiny(out), progress=False)
    assert not any(orphan.exists() for orphan in orphans)  # removed before training
    written = []
    real_write = checkpoint.write_json_atomic
    monkeypatch.setattr(checkpoint, "write_json_atomic",
                        lambda obj, path, indent=1: written.append(path.name) or
                        real_write(obj, path, indent))
    seen = []  # the last checkpoint's step as each step's callbacks see it
    run_sngan(setup, [Record()])
    assert seen == [None, None, 2, 2]  # checkpointed at the evaluation of step 2
    assert sorted(written) == ["metrics.json", "sigma_history.json"]
