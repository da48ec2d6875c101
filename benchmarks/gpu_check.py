"""A prepared check for a lent GPU, in one go: throughput, SN's cost, notebook 05 (under 6 min).

Everything runs in this one process, side by side, on synthetic 32x32x3 images held on the
device (uint8, like CIFAR-10), the paper's width-1 models, hinge loss, Adam, ``n_dis`` 5, batch
64:

- **Throughput** (generator updates per second, hours per 100k updates) of the course's engine
  (:class:`sngan_edu.train.trainer.Trainer`, data drawn as notebook 05 draws it:
  :class:`~sngan_edu.data.images.ImageData`) and of a plain PyTorch loop on the same models
  with torch's own ``torch.nn.utils.parametrizations.spectral_norm``: float32, bf16 autocast,
  ``torch.compile``, CUDA graphs (``mode="reduce-overhead"``), for the standard CNN and the
  ResNet. A run that fails records its error in the table instead of stopping the script.
- **SN's cost**: one D step (real and fake in one forward, backward, Adam) with the library's
  SN, with torch's SN and without SN, eager and compiled, and the sigmas of the eager and the
  compiled step compared after one step (they must agree to float tolerance).
- **Notebook 05** through papermill on the GPU (only when papermill is importable and the
  device is a GPU).

Each number is the median of 3 timed rounds after a warm-up (compilation happens in the
warm-up and is reported as ``compile_s``); each measurement gets a time budget, and once the
script's budget (``--budget``, 330 s) runs low the remaining rows are recorded as skipped, so
the whole check fits in 6 minutes. It prints one table and writes it as JSON (``--out``).

    python benchmarks/gpu_check.py --out gpu_check.json                 # on the GPU
    python benchmarks/gpu_check.py --device cpu --quick --out q.json    # CPU smoke run, < 1 min

``--quick`` shrinks models (width 1/8, 16x16 images), batch (8) and rounds so the same rows run
in under a minute on a CPU; compiled rows are skipped there (inductor's first compile of these
models takes longer than that on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sngan_edu.data.images import ImageData
from sngan_edu.models import FAMILIES
from sngan_edu.sn import layer_sigmas, spectral_norm_layers
from sngan_edu.train.accel import compile_module
from sngan_edu.train.config import RunConfig
from sngan_edu.train.trainer import Trainer

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_05 = REPO / "notebooks" / "05_sngan_training.ipynb"
Z_DIM = 128
N_IMAGES = 10_000


# ------------------------------------------------------------------------------------ budget
@dataclass
class Settings:
    device: torch.device
    quick: bool
    width: float = 1.0
    batch: int = 64
    n_dis: int = 5
    image_size: int = 32
    round_s: float = 1.5  # wall time of one timed round
    rounds: int = 3
    budget_s: float = 330.0
    eager_need_s: float = 8.0  # do not start an eager row with less time left
    compile_need_s: float = 75.0  # nor a compiled one
    notebook_need_s: float = 90.0
    only: tuple[str, ...] = ()  # run only rows whose name contains one of these
    start: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def skip_reason(self, name: str, need_s: float, compiled: bool = False,
                    needs_cuda: bool = False) -> str | None:
        """Why the row ``name`` is not run (None: run it)."""
        if self.only and not any(part in name for part in self.only):
            return "skipped: not selected (--only)"
        if needs_cuda and self.device.type != "cuda":
            return "skipped: needs CUDA"
        if compiled and self.quick:
            return "skipped: --quick (a first compile takes minutes on a CPU)"
        if self.left() < need_s:
            return f"skipped: time budget ({self.left():.0f} s left)"
        return None


def settings_for(device: torch.device, quick: bool, budget: float | None) -> Settings:
    s = Settings(device, quick)
    if quick:
        s.width, s.batch, s.image_size, s.round_s, s.budget_s = 0.125, 8, 16, 0.1, 35.0
        s.eager_need_s, s.compile_need_s = 1.0, 1e9  # compiled rows: skipped (see docstring)
    if budget is not None:
        s.budget_s = budget
    return s


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_rounds(run: Callable[[int], None], s: Settings, warmup: int = 2) -> dict[str, float]:
    """Warm up with ``run(warmup)`` (compilation happens here), size a round to ``round_s``
    from one more step, then time ``rounds`` rounds. Returns seconds per step (median) etc."""
    t0 = time.perf_counter()
    run(warmup)
    synchronize(s.device)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(1)
    synchronize(s.device)
    per_step = max(time.perf_counter() - t0, 1e-6)
    n = max(1, min(2000, int(s.round_s / per_step)))
    times = []
    for _ in range(s.rounds):
        synchronize(s.device)
        t0 = time.perf_counter()
        run(n)
        synchronize(s.device)
        times.append((time.perf_counter() - t0) / n)
    return {"s_per_step": statistics.median(times), "steps_per_round": n, "warmup_s": warm,
            "spread": (max(times) - min(times)) / statistics.median(times)}


# ------------------------------------------------------------------------------------ models
def synthetic_images(s: Settings) -> ImageData:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (N_IMAGES, 3, s.image_size, s.image_size), generator=gen,
                           dtype=torch.uint8)
    return ImageData(images, None, "synthetic").to(s.device)


def build_models(arch: str, s: Settings, sn: str = "ours") -> tuple[nn.Module, nn.Module]:
    """G and D of ``arch`` at ``s.width``; D with ``sn`` = "ours" | "torch" | "none"."""
    family = FAMILIES[arch]
    torch.manual_seed(0)
    G = family.Generator(z_dim=Z_DIM, image_size=s.image_size, channels=3, width=s.width)
    D = family.Discriminator(image_size=s.image_size, channels=3, width=s.width,
                             spectral_norm=sn == "ours")
    if sn == "torch":
        from torch.nn.utils.parametrizations import spectral_norm

        for module in list(D.modules()):
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                spectral_norm(module)
    return G.to(s.device), D.to(s.device)


# ------------------------------------------------------------------------------------ rows
ROW_KEYS = ("name", "kind", "model", "updates_per_s", "hours_per_100k", "ms_per_step",
            "vs_ref", "compile_s", "status", "note")


def new_row(name: str, kind: str, model: str, **extra: Any) -> dict[str, Any]:
    row = {key: None for key in ROW_KEYS}
    row.update({"name": name, "kind": kind, "model": model, "status": "ok", "note": ""})
    row.update(extra)
    return row


def engine_runner(arch: str, s: Settings, *, amp: str = "none", compile: bool | str = False,
                  fused_adam: bool | None = None, n_dis: int | None = None,
                  batch: int | None = None, device_sampler: bool = False):
    G, D = build_models(arch, s, "ours")
    data = synthetic_images(s)
    sampler = data.sample
    if device_sampler:  # indices drawn on the device: no host-to-device copy per batch
        gen = torch.Generator(device=s.device).manual_seed(0)

        def sampler(n: int, _generator: torch.Generator) -> torch.Tensor:
            idx = torch.randint(len(data), (n,), generator=gen, device=s.device)
            return data.as_float(data.images[idx])

    config = RunConfig(
        steps=10**9, batch_size=batch or s.batch, z_dim=Z_DIM, setting="resnet",
        n_dis=n_dis or s.n_dis, loss="hinge", regularizer="sn", device=str(s.device),
        log_every=10**9, progress=False, amp=amp, torch_compile=bool(compile),
        compile_mode=compile if isinstance(compile, str) else "default", fused_adam=fused_adam,
        g_ema=None, out_dir=None, cpu_threads=None, channels_last=False,
    )
    trainer = Trainer(G, D, sampler, config)
    return lambda steps: trainer.fit(trainer.step + steps)


def plain_runner(arch: str, s: Settings, *, amp: str = "none", compile: bool = False):
    """The loop one writes by hand: torch's SN, hinge, Adam(2e-4, 0, 0.9), real and fake in one
    forward of D, data indexed on the device. Compiled: plain ``torch.compile`` + fused Adam."""
    G, D = build_models(arch, s, "torch")
    data = synthetic_images(s)
    images, dev, b, n_dis = data.images, s.device, s.batch, s.n_dis
    fused = compile and dev.type == "cuda"
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.9), fused=fused or None)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.9), fused=fused or None)
    g, d = (torch.compile(G), torch.compile(D)) if compile else (G, D)
    dtype = {"none": None, "bf16": torch.bfloat16}[amp]

    def autocast():
        return torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None)

    def run(steps: int) -> None:
        for _ in range(steps):
            for _ in range(n_dis):
                real = images[torch.randint(len(images), (b,), device=dev)].float() / 127.5 - 1
                with torch.no_grad(), autocast():
                    fake = g(torch.randn(b, Z_DIM, device=dev))
                with autocast():
                    out = d(torch.cat((real, fake.float()))).float()
                loss = F.relu(1 - out[:b]).mean() + F.relu(1 + out[b:]).mean()
                opt_d.zero_grad(set_to_none=True)
                loss.backward()
                opt_d.step()
            with autocast():
                loss_g = -d(g(torch.randn(b, Z_DIM, device=dev))).float().mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

    return run


def throughput_row(name: str, model: str, make: Callable[[], Callable[[int], None]],
                   s: Settings, compiled: bool = False, needs_cuda: bool = False,
                   note: str = "") -> dict[str, Any]:
    row = new_row(name, "throughput", model, note=note)
    skip = s.skip_reason(name, s.compile_need_s if compiled else s.eager_need_s, compiled,
                         needs_cuda)
    if skip:
        row["status"] = skip
        return row
    try:
        timing = time_rounds(make(), s, warmup=3 if compiled else 1 if s.quick else 2)
    except Exception as err:  # record, do not crash: the table says what failed and why
        row["status"] = "error: " + " ".join(f"{type(err).__name__}: {err}".split())[:300]
        traceback.print_exc(limit=3, file=sys.stderr)
        return row
    finally:
        torch.compiler.reset()
        if s.device.type == "cuda":
            torch.cuda.empty_cache()
    rate = 1.0 / timing["s_per_step"]
    row.update(updates_per_s=rate, hours_per_100k=100_000 / rate / 3600,
               ms_per_step=1000 * timing["s_per_step"],
               compile_s=timing["warmup_s"] if compiled else None,
               steps_per_round=timing["steps_per_round"], spread=timing["spread"])
    return row


# ------------------------------------------------------------------------------------ SN cost
def d_step_runner(D: nn.Module, s: Settings, batch: torch.Tensor):
    fused = s.device.type == "cuda"
    opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.9), fused=fused or None)
    b = batch.shape[0] // 2

    def step() -> None:
        out = D(batch)
        loss = F.relu(1 - out[:b]).mean() + F.relu(1 + out[b:]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def run(steps: int) -> None:
        for _ in range(steps):
            step()

    return run


def sn_cost_rows(s: Settings, compiled: bool,
                 variants: tuple[str, ...] = ("none", "ours", "torch")) -> list[dict[str, Any]]:
    """One D step (standard CNN) without SN, with this library's SN and with torch's.

    The variants are built and warmed up first, then timed round-robin (the order rotating
    every round), so a change of load or clock hits all alike; medians over the rounds.
    """
    label = "compiled" if compiled else "eager"
    gen = torch.Generator().manual_seed(1)
    batch = (torch.rand(2 * s.batch, 3, s.image_size, s.image_size, generator=gen) * 2 - 1)
    batch = batch.to(s.device)
    rows, runs = {}, {}
    try:
        for sn in variants:
            name = f"D step {label}, {'no SN' if sn == 'none' else sn + ' SN'}"
            row = rows[sn] = new_row(name, "sn_cost", "standard")
            skip = s.skip_reason(name, 30.0 if compiled else s.eager_need_s / 2, compiled)
            if skip:
                row["status"] = skip
                continue
            try:
                _, D = build_models("standard", s, sn)
                run = d_step_runner(compile_module(D) if compiled else D, s, batch)
                t0 = time.perf_counter()
                run(3 if compiled else 2)
                synchronize(s.device)
                warm = time.perf_counter() - t0
                t0 = time.perf_counter()
                run(1)
                synchronize(s.device)
                per_step = max(time.perf_counter() - t0, 1e-6)
            except Exception as err:
                row["status"] = "error: " + " ".join(f"{type(err).__name__}: {err}".split())[:300]
                continue
            runs[sn] = (run, max(1, min(2000, int(s.round_s / per_step))))
            row["compile_s"] = warm if compiled else None
        times: dict[str, list[float]] = {sn: [] for sn in runs}
        order = list(runs)
        for r in range(s.rounds if order else 0):
            for sn in order[r % len(order):] + order[:r % len(order)]:
                run, n = runs[sn]
                synchronize(s.device)
                t0 = time.perf_counter()
                run(n)
                synchronize(s.device)
                times[sn].append((time.perf_counter() - t0) / n)
    finally:
        torch.compiler.reset()
    ms = {sn: 1000 * statistics.median(t) for sn, t in times.items()}
    for sn, row in rows.items():
        if sn in ms:
            row.update(ms_per_step=ms[sn], steps_per_round=runs[sn][1])
            if "none" in ms:
                row["vs_ref"] = ms[sn] / ms["none"]
                row["note"] = "ratio to the D step without SN (interleaved rounds)"
    return list(rows.values())


def sigma_check_row(s: Settings) -> dict[str, Any]:
    """One D step eager and one compiled from the same state: u, v and the sigma estimates
    u^T W v of every layer must agree to float tolerance."""
    row = new_row("sigma: eager vs compiled D step", "sigma_check", "standard")
    skip = s.skip_reason(row["name"], 30.0, compiled=True)
    if skip:
        row["status"] = skip
        return row
    try:
        _, D = build_models("standard", s, "ours")
        D2 = copy.deepcopy(D)
        gen = torch.Generator().manual_seed(2)
        batch = (torch.rand(2 * s.batch, 3, s.image_size, s.image_size, generator=gen) * 2 - 1)
        batch = batch.to(s.device)
        d_step_runner(D, s, batch)(1)
        d_step_runner(compile_module(D2), s, batch)(1)
        eager, comp = layer_sigmas(D), layer_sigmas(D2)
        rel = max(abs(eager[k] - comp[k]) / abs(eager[k]) for k in eager)
        uv = max(
            float((getattr(a.parametrizations.weight[0], n) - getattr(
                b.parametrizations.weight[0], n)).abs().max())
            for a, b in zip(spectral_norm_layers(D).values(), spectral_norm_layers(D2).values(),
                            strict=True)
            for n in ("_u", "_v")
        )
        ok = rel < 1e-4 and uv < 1e-3
        row.update(vs_ref=rel, status="ok" if ok else "MISMATCH",
                   note=f"max relative sigma difference {rel:.2e}, max |u, v difference| "
                        f"{uv:.2e} (tolerance 1e-4, 1e-3)")
    except Exception as err:
        row["status"] = "error: " + " ".join(f"{type(err).__name__}: {err}".split())[:300]
    finally:
        torch.compiler.reset()
    return row


# ------------------------------------------------------------------------------------ notebook
def notebook_row(s: Settings) -> dict[str, Any]:
    row = new_row("notebook 05 via papermill", "notebook", "standard")
    skip = s.skip_reason(row["name"], s.notebook_need_s, needs_cuda=True)
    if skip:
        row["status"] = skip
        return row
    try:
        import papermill
    except ImportError:
        row["status"] = "skipped: papermill not importable"
        return row
    params = {"device": "cuda", "steps": 400, "eval_every": 200}
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp) / "run"
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(NOTEBOOK_05), str(Path(tmp) / "05.ipynb"),
                parameters={**params, "out_dir": str(out_dir)}, cwd=str(NOTEBOOK_05.parent),
                progress_bar=False, execution_timeout=max(60, int(s.left())),
            )
        except Exception as err:
            row["status"] = "error: " + " ".join(f"{type(err).__name__}: {err}".split())[:300]
            return row
        wall = time.perf_counter() - t0
        metrics = json.loads((out_dir / "metrics.json").read_text())
    final = metrics.get("final", {})
    row.update(ms_per_step=None, note=(
        f"{params}: wall {wall:.0f} s, training {metrics.get('train_seconds')} s, "
        + ", ".join(f"{k} {v:.3g}" for k, v in final.items() if isinstance(v, float))))
    row["wall_s"] = wall
    row["final"] = final
    return row


# ------------------------------------------------------------------------------------ device
def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": str(device), "torch": torch.__version__, "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "cuda_available": torch.cuda.is_available(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}", gpus=torch.cuda.device_count(),
            cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
            bf16=torch.cuda.is_bf16_supported(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
    return info


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA GPU here (torch {torch.__version__})")
    return device


# ------------------------------------------------------------------------------------ main
def run_all(s: Settings) -> list[dict[str, Any]]:
    """Every row, most important first: once the budget runs low the tail is skipped."""
    std, res = "standard", "resnet"
    cfg = f"n_dis {s.n_dis}, batch {s.batch}, width {s.width:g}"
    rows: list[dict[str, Any]] = []

    def add(*new: dict[str, Any]) -> None:
        for row in new:
            rows.append(row)
            shown = row["updates_per_s"] or row["ms_per_step"]
            print(f"  {row['name']:<58} {shown if shown is None else round(shown, 2)!s:>8}  "
                  f"{row['status']}  ({s.left():.0f} s left)", file=sys.stderr, flush=True)

    # Eager rows (seconds each).
    add(throughput_row("engine, standard CNN, fp32", std,
                       lambda: engine_runner(std, s), s, note=cfg))
    add(throughput_row("plain loop, standard CNN, torch SN, fp32", std,
                       lambda: plain_runner(std, s), s, note=cfg))
    add(throughput_row("engine, standard CNN, bf16", std,
                       lambda: engine_runner(std, s, amp="bf16"), s))
    add(throughput_row("plain loop, standard CNN, torch SN, bf16", std,
                       lambda: plain_runner(std, s, amp="bf16"), s))
    add(throughput_row("engine, standard CNN, fp32, per-tensor Adam", std,
                       lambda: engine_runner(std, s, fused_adam=False), s,
                       note="fused_adam=False (the default fuses Adam on CUDA)"))
    add(throughput_row("engine, standard CNN, fp32, indices drawn on the device", std,
                       lambda: engine_runner(std, s, device_sampler=True), s,
                       note="no host-to-device index copy per batch (ImageData draws on the "
                            "CPU)"))
    add(throughput_row("engine, ResNet, fp32", res, lambda: engine_runner(res, s), s, note=cfg))
    add(throughput_row("plain loop, ResNet, torch SN, fp32", res,
                       lambda: plain_runner(res, s), s, note=cfg))
    add(throughput_row("engine, standard CNN, n_dis 1, double batch", std,
                       lambda: engine_runner(std, s, n_dis=1, batch=2 * s.batch), s,
                       note=f"n_dis 1, batch {2 * s.batch}"))
    add(*sn_cost_rows(s, compiled=False))
    # Compiled rows (inductor compiles for tens of seconds each), most wanted first.
    add(throughput_row("engine, standard CNN, compile", std,
                       lambda: engine_runner(std, s, compile=True), s, compiled=True))
    add(*sn_cost_rows(s, compiled=True, variants=("none", "ours")))
    add(sigma_check_row(s))
    add(throughput_row("engine, standard CNN, CUDA graphs (reduce-overhead)", std,
                       lambda: engine_runner(std, s, compile="reduce-overhead"), s,
                       compiled=True, needs_cuda=True))
    add(notebook_row(s))
    add(throughput_row("plain loop, standard CNN, torch SN, compile + fused Adam", std,
                       lambda: plain_runner(std, s, compile=True), s, compiled=True,
                       note="plain torch.compile: torch 2.14 may compute SN's weight gradients "
                            "wrong (see sngan_edu.train.accel.compile_module)"))
    add(throughput_row("engine, ResNet, compile", res,
                       lambda: engine_runner(res, s, compile=True), s, compiled=True))
    add(*sn_cost_rows(s, compiled=True, variants=("torch",)))
    add(throughput_row("engine, standard CNN, bf16 + compile", std,
                       lambda: engine_runner(std, s, amp="bf16", compile=True), s,
                       compiled=True))
    # Speed relative to the plain fp32 loop of the same model.
    plain = {r["model"]: r["updates_per_s"] for r in rows
             if r["name"].startswith("plain loop") and r["name"].endswith("fp32")}
    for r in rows:
        if r["kind"] == "throughput" and r["updates_per_s"] and plain.get(r["model"]):
            r["vs_ref"] = r["updates_per_s"] / plain[r["model"]]
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = ("run", "G updates/s", "h/100k", "ms/step", "vs ref", "compile s", "status / note")

    def fmt(x: Any, digits: int = 3) -> str:
        return "-" if x is None else f"{x:.{digits}g}"

    lines = [[r["name"], fmt(r["updates_per_s"]), fmt(r["hours_per_100k"]),
              fmt(r["ms_per_step"]), fmt(r["vs_ref"]), fmt(r["compile_s"], 2),
              r["status"] if r["status"] != "ok" else r["note"]] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=False)][:-1]
    out = []
    for cells in [list(head), ["-" * w for w in widths] + ["-" * 13], *lines]:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False))
                   + "  " + str(cells[-1]))
    return "\n".join(line.rstrip() for line in out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto | cuda | cuda:N | cpu")
    parser.add_argument("--quick", action="store_true",
                        help="tiny models and rounds (CPU smoke test, under a minute)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for all measurements (default 330; 35 with --quick)")
    parser.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only the rows whose name contains TEXT (repeatable), e.g. "
                             "--only compile --only 'CUDA graphs' to rerun those")
    args = parser.parse_args(argv)
    os.environ.setdefault("SNGAN_EDU_PROGRESS", "0")
    device = pick_device(args.device)
    if args.quick and device.type == "cpu":
        torch.set_num_threads(1)  # a smoke run: one thread copes best with a busy machine
    s = settings_for(device, args.quick, args.budget)
    s.only = tuple(args.only)
    info = device_info(device)
    print("device: " + ", ".join(f"{k} {v}" for k, v in info.items()), file=sys.stderr)
    rows = run_all(s)
    result = {"device": info, "settings": {k: v for k, v in asdict(s).items()
                                            if k not in ("device", "start")},
              "total_s": time.perf_counter() - s.start, "rows": rows}
    print(format_table(rows))
    print(f"total {result['total_s']:.0f} s on {info.get('gpu', info['device'])}", flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    main()
