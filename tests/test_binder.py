"""The Binder set-up (repo2docker reads binder/) installs what pyproject.toml declares."""

from __future__ import annotations

import os
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def _requirements() -> list[str]:
    lines = (REPO / "binder" / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-"))]


def test_binder_requirements_match_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["keras"]
    assert sorted(_requirements()) == sorted(declared)


def test_binder_uses_cpu_torch_wheels_and_installs_the_course():
    text = (REPO / "binder" / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    post = REPO / "binder" / "postBuild"
    assert os.access(post, os.X_OK)
    script = post.read_text()
    assert 'pip install --no-cache-dir --no-deps -e ".[keras]"' in script
    assert "sngan_edu/assets/jupyter/overrides.json5" in script
    assert (REPO / "sngan_edu" / "assets" / "jupyter" / "overrides.json5").is_file()


def test_conda_environment_uses_conda_forge_only_and_the_supported_pythons():
    text = (REPO / "environment.yml").read_text()
    channels = text.split("channels:", 1)[1].split("dependencies:", 1)[0].split()
    assert channels == ["-", "conda-forge"]  # conda-forge's pytorch, not the pytorch channel
    assert "  - pytorch>=2.4\n" in text and "  - torchvision>=0.19\n" in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10,<3.14"
    assert "  - python>=3.10,<3.14\n" in text
