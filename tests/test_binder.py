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
