"""Training beyond one process and one precision: DDP over gloo on the CPU, SN's buffers under
DDP, checkpoints across rank counts, bf16/fp16 autocast, torch.compile, the command line.

Runs that are compared with each other train in float64: Adam divides each gradient by its
running RMS, so a gradient entry near zero whose float32 rounding differs (all-reduce order,
compiled kernels) can move its weight by a whole learning rate; in float64 the rounding stays
far below Adam's eps and the runs agree to ~1e-12.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from sngan_edu import sn as sn_module
from sngan_edu.data.toy import make_sampler
from sngan_edu.models.toy_mlp import ToyDiscriminator, ToyGenerator
from sngan_edu.sn import spectral_norm_layers
from sngan_edu.train import checkpoint as ckpt
from sngan_edu.train import distributed
from sngan_edu.train.callbacks import Callback
from sngan_edu.train.config import RunConfig
from sngan_edu.train.trainer import Trainer

REPO = Path(__file__).resolve().parent.parent
STEPS = 4  # generator steps of the 2-rank runs
#: The 2-rank runs: name -> RunConfig overrides (and which models).
RUNS = {
    "joint": {},  # D scores real and fake in one forward
    "separate": {"joint_d_forward": False},  # two forwards of D per D step
    "images": {"translate": 1, "batch_size": 8},  # shifts drawn for the global batch
}


def run_config(**kw) -> RunConfig:
    base = dict(steps=STEPS, batch_size=16, z_dim=2, setting="C", lr=1e-3, loss="hinge",
                regularizer="sn", n_dis=2, seed=3, device="cpu", log_every=1, progress=False,
                g_ema=None, out_dir=None, cpu_threads=None, channels_last=False,
                checkpoint_every=0)
    base.update(kw)
    return RunConfig(**base)


class Every(Callback):
    """Calls ``fn(trainer)`` after every generator step."""

    def __init__(self, fn):
        self.every, self.fn = 1, fn

    def on_step(self, trainer):
        self.fn(trainer)


def image_sampler(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=generator) * 2 - 1


def build_trainer(name: str, callbacks=(), **kw) -> Trainer:
    """The models of run ``name`` (toy MLPs without BatchNorm, or a tiny image pair), seeded."""
    torch.manual_seed(0)
    cfg = run_config(**{**RUNS[name], **kw})
    if name == "images":
        G = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
        D = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.LeakyReLU(0.1), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 1))
        return Trainer(G, D, image_sampler, cfg, callbacks)
    return Trainer(ToyGenerator(z_dim=2, hidden=(16, 16)), ToyDiscriminator(hidden=(16, 16)),
                   make_sampler("ring"), cfg, callbacks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(trainer: Trainer) -> dict:
    return {"G": trainer.G.state_dict(), "D": trainer.D.state_dict(),
            "loss_d": trainer.history["loss_d"], "loss_g": trainer.history["loss_g"]}


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank of the 2-process runs (module level: mp.spawn pickles it by name)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    saves = []
    real_save = ckpt.save_atomic
    ckpt.save_atomic = lambda state, path: saves.append(path) or real_save(state, path)
    results = {}
    for name in RUNS:
        calls: list[int] = []
        record = Every(lambda t, calls=calls: calls.append(t.step))
        trainer = build_trainer(name, callbacks=[record], out_dir=f"{out}/{name}",
                                checkpoint_every=2)
        trainer.fit()
        results[name] = {**snapshot(trainer), "world_size": trainer.world_size,
                         "callback_steps": calls, "saves": len(saves)}
        saves.clear()
    torch.save(results, f"{out}/rank{rank}.pt")
    distributed.teardown()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The RUNS trained by 2 gloo processes: (folder, [rank 0's results, rank 1's])."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_ddp_worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    return out, [torch.load(out / f"rank{r}.pt") for r in range(2)]


@pytest.fixture
def float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def max_difference(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("name", list(RUNS))
def test_two_processes_train_like_one_on_the_same_global_batch(two_ranks, float64, name):
    _, ranks = two_ranks
    one = build_trainer(name)
    one.fit()
    assert one.world_size == 1 and ranks[0][name]["world_size"] == 2
    diffs = {part: max_difference(one.__getattribute__(part).state_dict(), ranks[0][name][part])
             for part in ("G", "D")}
    print(f"\n{name}: max |2 ranks - 1 process| after {STEPS} steps: "
          + ", ".join(f"{p} {d:.1e}" for p, d in diffs.items()))
    assert max(diffs.values()) < 1e-9
    # the losses in the history are the global batch's (averaged over the ranks)
    torch.testing.assert_close(ranks[0][name]["loss_d"], one.history["loss_d"], rtol=0,
                               atol=1e-9)
    torch.testing.assert_close(ranks[0][name]["loss_g"], one.history["loss_g"], rtol=0,
                               atol=1e-9)


@pytest.mark.parametrize("name", list(RUNS))
def test_sn_buffers_and_weights_are_equal_on_all_ranks(two_ranks, name):
    _, (rank0, rank1) = two_ranks
    buffers = [k for k in rank0[name]["D"] if k.endswith(("._u", "._v"))]
    assert len(buffers) == (4 if name == "images" else 6)  # u and v of every SN layer
    for part in ("G", "D"):
        for key, value in rank0[name][part].items():
            assert torch.equal(value, rank1[name][part][key]), (part, key)  # bit for bit
    assert rank0[name]["loss_d"] == rank1[name]["loss_d"]


def test_rank_zero_alone_runs_callbacks_and_writes_checkpoints(two_ranks):
    out, (rank0, rank1) = two_ranks
    for name in RUNS:
        assert rank0[name]["callback_steps"] == list(range(1, STEPS + 1))
        assert rank1[name]["callback_steps"] == []
        assert rank0[name]["saves"] == 2 and rank1[name]["saves"] == 0  # steps 2 and 4
        assert sorted(p.name for p in (out / name).iterdir()) == [ckpt.CHECKPOINT_NAME]


def test_checkpoint_from_two_ranks_resumes_on_one(two_ranks, float64, tmp_path):
    out, _ = two_ranks
    shutil.copytree(out / "joint", tmp_path / "joint")
    state = ckpt.load(tmp_path / "joint" / ckpt.CHECKPOINT_NAME)
    assert state["world_size"] == 2 and state["step"] == STEPS
    resumed = build_trainer("joint", steps=STEPS + 3, out_dir=str(tmp_path / "joint"),
                            resume=True)
    assert resumed.step == STEPS
    resumed.fit()
    straight = build_trainer("joint", steps=STEPS + 3)
    straight.fit()
    assert max_difference(resumed.D.state_dict(), straight.D.state_dict()) < 1e-9
    assert max_difference(resumed.G.state_dict(), straight.G.state_dict()) < 1e-9
    torch.testing.assert_close(resumed.history["loss_d"], straight.history["loss_d"], rtol=0,
                               atol=1e-9)


def test_bad_values_fail_before_training(monkeypatch):
    with pytest.raises(ValueError, match=r"amp must be one of \('none', 'bf16', 'fp16'\)"):
        run_config(amp="fp8")
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        run_config(torch_compile=True, compile_mode="fast")
    with pytest.raises(ValueError, match="amp='fp16' does not support regularizer='gp'"):
        run_config(amp="fp16", regularizer="gp")
    with pytest.raises(ValueError, match="torch_compile does not support regularizer='gp'"):
        run_config(torch_compile=True, regularizer="gp")

    def never(*args, **kwargs):
        raise AssertionError("the process group must not be joined with a bad config")

    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setattr(distributed, "init", never)
    message = r"batch_size=16 must be divisible by the number of ranks \(3\)"
    with pytest.raises(ValueError, match=message):
        build_trainer("joint")
    with pytest.raises(ValueError, match=message):  # notebook 05's parameters, before any data
        RunConfig(batch_size=16)
    run_config(batch_size=12)  # 12 = 3 x 4 is fine


def test_bf16_autocast_trains_and_keeps_sigma_in_float32(monkeypatch):
    seen = []
    power_iteration, sigma_estimate = sn_module.power_iteration_, sn_module.sigma_estimate

    def spy_iteration(W, u, v, *args, **kwargs):
        seen.append(("power iteration", torch.is_autocast_enabled("cpu"), W.dtype, u.dtype,
                     v.dtype))
        return power_iteration(W, u, v, *args, **kwargs)

    def spy_sigma(W, u, v):
        sigma = sigma_estimate(W, u, v)
        seen.append(("sigma", torch.is_autocast_enabled("cpu"), W.dtype, sigma.dtype))
        return sigma

    monkeypatch.setattr(sn_module, "power_iteration_", spy_iteration)
    monkeypatch.setattr(sn_module, "sigma_estimate", spy_sigma)
    trainer = build_trainer("joint", amp="bf16", steps=3)
    first = trainer.D.net[0]
    layer_out = []
    first.register_forward_hook(lambda m, args, out: layer_out.append(out.dtype))
    trainer.fit()
    assert len(trainer.history["loss_d"]) == 3
    assert all(torch.isfinite(torch.tensor(trainer.history["loss_d"])))
    assert set(layer_out) == {torch.bfloat16}  # the layers ran in bf16 under autocast...
    assert seen and all(kind[1] is False for kind in seen)  # ...SN with autocast off
    assert {dtype for kind in seen for dtype in kind[2:]} == {torch.float32}
    for layer in spectral_norm_layers(trainer.D).values():
        param = layer.parametrizations.weight[0]
        assert param._u.dtype == param._v.dtype == torch.float32
    # Under autocast, SN's forward (power iteration, sigma, W / sigma) is the float32 one,
    # bit for bit.
    twin = copy.deepcopy(first)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w_autocast = first.weight
    w_plain = twin.weight
    assert w_autocast.dtype == torch.float32 and torch.equal(w_autocast, w_plain)
    param, twin_param = first.parametrizations.weight[0], twin.parametrizations.weight[0]
    assert torch.equal(param._u, twin_param._u) and torch.equal(param._v, twin_param._v)
    assert trainer.D(torch.randn(4, 2)).dtype == torch.float32  # D itself is untouched


def test_fp16_scales_the_losses_and_resumes_bit_for_bit(tmp_path):
    straight = build_trainer("joint", amp="fp16", steps=4)
    straight.fit()
    assert straight.scaler_d is not None and straight.scaler_d.get_scale() > 1
    assert all(abs(x) < 10 for x in straight.history["loss_d"])  # unscaled in the history

    class Stop(Exception):
        pass

    def stop_at_2(trainer):
        if trainer.step == 2:
            raise Stop

    resumable = dict(amp="fp16", steps=4, out_dir=str(tmp_path), checkpoint_every=1,
                     resume=True)
    with pytest.raises(Stop):
        build_trainer("joint", callbacks=[Every(stop_at_2)], **resumable).fit()
    assert "scaler_d" in ckpt.load(tmp_path / ckpt.CHECKPOINT_NAME)
    resumed = build_trainer("joint", **resumable)
    resumed.fit()
    assert resumed.history["loss_d"] == straight.history["loss_d"]
    for key, value in straight.D.state_dict().items():
        assert torch.equal(resumed.D.state_dict()[key], value), key


def test_compiled_step_gives_the_eager_weights(float64):
    eager, compiled = build_trainer("joint", steps=3), build_trainer("joint", steps=3,
                                                                     torch_compile=True)
    eager.fit()
    compiled.fit()
    assert compiled.D_run is not compiled.D  # it did run the compiled modules
    diffs = {part: max_difference(getattr(eager, part).state_dict(),
                                  getattr(compiled, part).state_dict()) for part in ("G", "D")}
    print("\ncompiled vs eager, 3 steps: "
          + ", ".join(f"{p} {d:.1e}" for p, d in diffs.items()))
    assert max(diffs.values()) < 1e-9
    torch.testing.assert_close(eager.history["loss_d"], compiled.history["loss_d"], rtol=0,
                               atol=1e-9)


# ---------------------------------------------------------------------------- command line
def test_train_flags_are_the_run_config_with_its_help_and_defaults(capsys):
    from sngan_edu.cli import main, parse_train_config

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    for name, help_text in RunConfig.help().items():
        assert "--" + name.replace("_", "-") in text, name
        assert " ".join(help_text.split()) in text, name
    assert "--batch-size INT" in text and "(default: 32)" in text
    config = parse_train_config(["--n-dis", "none", "--no-resume", "--width", "1",
                                 "--g-ema", "None", "--amp", "none"])
    assert config == RunConfig(n_dis=None, width=1.0, g_ema=None)


def test_train_refuses_a_bad_value_with_a_usage_error(capsys):
    from sngan_edu.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--batch-size", "0", "--out-dir", "never"])
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "batch_size must be an integer >= 2" in err
    assert not Path("never").exists()


def test_torchrun_two_processes_write_the_run_folder_once(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "SNGAN_EDU_PROGRESS": "0", "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "sngan_edu", "train", "--device", "cpu",
               "--steps", "4", "--eval-every", "2", "--batch-size", "16", "--cpu-threads", "1",
               "--out-dir", str(out)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1  # rank 0 alone reports (and writes)
    assert "on 2 process(es)" in done.stdout
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["checkpoint.pt", "metrics.json", "real.png", "samples/step_000002.png",
                     "samples/step_000004.png", "samples_final.png", "sigma_history.json"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 4 and metrics["parameters"]["batch_size"] == 16
    assert ckpt.load(out / "checkpoint.pt")["world_size"] == 2
