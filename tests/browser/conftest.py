"""Fixtures for the end-to-end browser tests: a throwaway JupyterLab server and headless Chromium.

The server runs on 127.0.0.1 with a random token, serving a temporary copy of notebooks/ with
outputs stripped (the committed notebooks are never touched), with settings, workspaces and
runtime files in the temporary directory too. Like ``make lab``, it reads the course's default
settings from sngan_edu/assets/jupyter/ (no Jupyter news pop-up). Debian's /usr/bin/chromium is
driven by Playwright; without it every test here is skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import nbformat
import pytest

from sngan_edu.assets import jupyter_settings_dir

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
APP_SETTINGS = jupyter_settings_dir()  # overrides.json5: the course's settings defaults
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class LabServer(NamedTuple):
    """A running JupyterLab: base URL, its token and the folder it serves."""

    url: str
    token: str
    root: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _copy_notebooks_without_outputs(dest: Path) -> None:
    """Copy notebooks/*.ipynb with outputs removed, so only this run's outputs can be seen."""
    for src in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(src, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        nbformat.write(nb, dest / src.name)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """Start ``jupyter lab`` from the venv on a free port; terminate it at the end."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (install Debian's chromium: make test-browser)")
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    _copy_notebooks_without_outputs(root)
    settings = base / "settings"
    # Render every cell (no windowing), so locators see all cells however long the notebook is.
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)  # the venv: kernel "python3" is its python
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["JUPYTER_CONFIG_DIR"] = str(base / "config")
    env["JUPYTER_RUNTIME_DIR"] = str(base / "runtime")
    env["IPYTHONDIR"] = str(base / "ipython")
    cmd = [
        str(Path(bin_dir) / "jupyter"), "lab", "--no-browser", "--allow-root",  # CI runs as root
        "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.app_settings_dir={APP_SETTINGS}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]  # fmt: skip
    log = (base / "jupyter.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=base)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{_tail(base)}")
            try:
                request = urllib.request.Request(
                    f"{url}/api/status", headers={"Authorization": f"token {token}"}
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer /api/status in 120 s:\n{_tail(base)}")
            time.sleep(0.5)
        yield LabServer(url, token, root)
    finally:
        proc.terminate()  # jupyter shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _tail(base: Path, n: int = 3000) -> str:
    return (base / "jupyter.log").read_text(errors="replace")[-n:]


@pytest.fixture(scope="session")
def browser(lab_server: LabServer):
    """Headless Debian Chromium under Playwright (no downloaded browsers)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh 1400x1000 page in its own browser context, 60 s default timeout."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots (ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
