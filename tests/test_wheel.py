"""The course as a student installs it: a wheel in a fresh virtual environment, used from an
empty folder outside the repository.

The wheel is built from a copy of the sources (so stale build/ files cannot leak into it) and
installed with --no-deps into a new venv whose only link to the project's .venv is a ``.pth``
line adding that venv's site-packages for the dependencies (torch & co. are not installed
again). A ``.pth`` path line does not run that folder's own ``.pth`` files, so the repository's
editable install stays inactive: the test checks that ``sngan_edu`` comes from the new venv.
Notebook 05 itself is executed by nbval and, with injected parameters, by
tests/test_notebook05_papermill.py; here the installed ``sngan-edu train`` runs a few steps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and a venv, then trains

REPO = Path(__file__).resolve().parents[1]
TINY = {"steps": 20, "eval_every": 10, "width": 0.0625, "d_width": 0.0625, "batch_size": 8,
        "z_dim": 16, "cpu_threads": 1}  # `sngan-edu train` at a tiny size
SCORES = ("classes", "confidence", "fd")  # the digit classifier's scores in metrics.json


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A fresh venv holding the course wheel; the environment to run it in; an empty folder."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in ("sngan_edu", "notebooks"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"  # everything is here already; never the network
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(base / "dist"), str(source)], base, env)
    (wheel,) = (base / "dist").glob("sngan_edu-*.whl")

    target = base / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     base, env).strip())
    (site / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
          str(wheel)], base, env)
    empty = base / "student"
    empty.mkdir()
    env["PATH"] = f"{target / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["SNGAN_EDU_DATA"] = str(base / "data")
    return {"wheel": wheel, "venv": target, "python": str(python), "env": env, "cwd": empty}


def test_the_wheel_holds_the_package_data(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for name in ("sngan_edu/assets/digits_classifier.pt",
                 "sngan_edu/assets/jupyter/overrides.json5",
                 "sngan_edu/assets/studies/sweep_results.json",
                 "sngan_edu/assets/studies/sweep_results_samples/A_sn_seed0.png",
                 "sngan_edu/assets/studies/toy_results_samples.npz",
                 "sngan_edu/course_notebooks/05_sngan_training.ipynb",
                 "sngan_edu/course_notebooks/exercises/01_power_iteration.ipynb"):
        assert name in names, name
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()
    assert "sngan-edu = sngan_edu.cli:main" in text
    assert not [n for n in names if n.startswith("tools/") or n.startswith("tests/")]


def test_the_installed_course_runs_from_an_empty_folder(installed):
    python, env, cwd = installed["python"], installed["env"], installed["cwd"]
    venv_dir = installed["venv"].resolve()
    # every public module imports, from the wheel (not from the repository)
    probe = (
        "import importlib, json, pkgutil, sys, sngan_edu\n"
        "mods = [m.name for m in pkgutil.walk_packages(sngan_edu.__path__, 'sngan_edu.')\n"
        "        if not m.name.rsplit('.', 1)[-1].startswith('_')]  # public: no __main__\n"
        "for m in mods: importlib.import_module(m)\n"
        "assert 'pytest' not in sys.modules, 'a module of the package imports pytest'\n"
        "from jupyter_client.kernelspec import KernelSpecManager\n"
        "kernel = KernelSpecManager().get_kernel_spec('python3').argv[0]\n"
        "print(json.dumps({'file': sngan_edu.__file__, 'modules': mods, 'kernel': kernel}))\n"
    )
    found = json.loads(_run([python, "-c", probe], cwd, env).splitlines()[-1])
    assert Path(found["file"]).resolve().is_relative_to(venv_dir), found["file"]
    assert {"sngan_edu.cli", "sngan_edu.course.shipped", "sngan_edu.experiments.sweep",
            "sngan_edu.course_notebooks"} <= set(found["modules"])
    assert Path(found["kernel"]).resolve().is_relative_to(venv_dir)  # notebooks use the wheel

    script = str(installed["venv"] / "bin" / "sngan-edu")
    assert "notebooks" in _run([script, "--help"], cwd, env)
    _run([script, "notebooks", "course/"], cwd, env)
    assert (cwd / "course" / "05_sngan_training.ipynb").is_file()
    assert (cwd / "course" / "exercises" / "01_power_iteration.ipynb").is_file()

    flags = [w for k, v in TINY.items() for w in ("--" + k.replace("_", "-"), str(v))]
    _run([script, "train", *flags, "--out-dir", "cli_run", "--progress", "False"], cwd, env)
    metrics = json.loads((cwd / "cli_run" / "metrics.json").read_text())
    assert metrics["step"] == TINY["steps"]
    # scored by the digit classifier the wheel ships
    assert all(metrics["final"].get(k) is not None for k in SCORES), metrics["final"]
