"""Helpers of the scripts in benchmarks/ (outside the package), loaded from their files."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str):
    """The script benchmarks/NAME.py as a module (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_toy_summary_is_mean_and_sample_std_over_seeds():
    toy_modes = load("toy_modes")

    def run(method, seed, modes, hq, kl):
        return {"dataset": "grid", "method": method, "seed": seed, "steps": 10, "n_modes": 25,
                "modes": modes, "high_quality": hq, "reverse_kl": kl, "seconds": 2.0 + seed,
                "cpu_seconds": 1.0 + 2 * seed}

    runs = [run("sn", 0, 25, 90.0, 0.02), run("sn", 1, 24, 94.0, 0.04),
            run("gan", 0, 0, 0.0, math.nan), run("gan", 1, 3, 10.0, 1.5)]
    rows = toy_modes.summarize_runs(runs)
    assert [(r["method"], r["seeds"]) for r in rows] == [("sn", 2), ("gan", 2)]
    sn, gan = rows
    assert sn["modes_mean"] == 24.5 and sn["modes_std"] == pytest.approx(math.sqrt(0.5))
    assert sn["hq_mean"] == 92.0 and sn["kl_mean"] == pytest.approx(0.03)
    assert sn["full_coverage"] == 1 and sn["seconds_mean"] == 2.5
    assert sn["cpu_seconds_mean"] == 2.0 and sn["cpu_seconds_max"] == 3.0
    # a run with no high-quality sample has no reverse KL: left out of the mean, counted
    assert gan["kl_mean"] == 1.5 and gan["kl_std"] == 0.0 and gan["kl_undefined"] == 1


def test_critic_step_times_cover_every_method_and_leave_the_critics_untouched():
    from sngan_edu.experiments.critics import CRITIC_METHODS, prepare_critic

    critic_steps = load("critic_steps")
    torch.manual_seed(0)
    critics = {m: prepare_critic(critic_steps.make_critic(), m) for m in CRITIC_METHODS}
    before = {m: {k: v.clone() for k, v in c.state_dict().items()} for m, c in critics.items()}
    times = critic_steps.time_critic_steps(critics, torch.randn(8, 2), torch.randn(8, 2),
                                           repeats=3)
    assert set(times) == set(CRITIC_METHODS) and all(t > 0 for t in times.values())
    for m, c in critics.items():
        assert all(torch.equal(v, before[m][k]) for k, v in c.state_dict().items()), m
    with pytest.raises(ValueError, match="method"):
        critic_steps.time_critic_steps({"spectral": critic_steps.make_critic()},
                                       torch.randn(8, 2), torch.randn(8, 2), repeats=1)


@pytest.mark.slow  # runs the benchmark script
def test_critic_steps_script_prints_a_ratio_per_method(capsys, one_thread):
    from sngan_edu.experiments.critics import CRITIC_METHODS

    load("critic_steps").main(["--batch", "16", "--rounds", "2", "--threads", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == list(CRITIC_METHODS)
    assert lines[1].endswith("x1.00 of none")
