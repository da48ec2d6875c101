"""JupyterLab, for real: notebook 03's live sigma plot redraws while the discriminator trains.

Opens notebooks/03_spectral_norm_layer.ipynb (a temporary copy, outputs stripped) in headless
Chromium, runs all cells, and samples the ``src`` of the live plot's image while the training
cell is still running (the cell after it has no output yet). The plot is a LiveFigure: shown
once with a display_id and replaced in place every 10 training steps, so the browser must see
several different images in the same output before training ends. Screenshots of an early
frame, a later frame and the final one go to test-artifacts/.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.browser

NOTEBOOK = "03_spectral_norm_layer.ipynb"
LIVE_CELL = "live = LiveFigure(draw_sigma_history"
AFTER_CELL = 'print(f"max sigma(W/estimate)'
RUN_TIMEOUT_S = 300  # kernel start plus notebook 03 up to its live cell, on 2 busy cores
MIN_FRAMES = 3  # distinct images seen while training runs (the demo draws 21)


def _wait_for_idle_kernel(page, name: str) -> None:
    page.wait_for_function(
        """(name) => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session
                && w.sessionContext.session.kernel;
            return w && w.context && w.context.path.endsWith(name)
                && kernel && kernel.status === 'idle';
        }""",
        arg=name,
        timeout=120_000,
    )


# One poll: the live cell's image src (or null) and whether the cell after it has printed.
_SAMPLE = """([live, after]) => {
    const cells = [...document.querySelectorAll('.jp-CodeCell')];
    const source = (c) => c.querySelector('.jp-InputArea-editor').textContent;
    const cell = cells.find((c) => source(c).startsWith(live));
    const next = cells.find((c) => source(c).startsWith(after));
    if (!cell || !next) return {missing: true};
    const img = cell.querySelector('.jp-OutputArea-output img');
    const done = next.querySelectorAll('.jp-OutputArea-output').length > 0;
    return {src: img ? img.getAttribute('src') : null, done: done,
            images: cell.querySelectorAll('.jp-OutputArea-output img').length};
}"""


def test_notebook03_live_sigma_plot_updates_while_training(lab_server, page, artifacts):
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}?token={lab_server.token}")
    _wait_for_idle_kernel(page, NOTEBOOK)
    # Do not return the command's promise: page.evaluate would wait for every cell to finish.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

    live = page.locator(".jp-CodeCell", has_text="live = LiveFigure(")
    frames: list[str] = []  # distinct image sources, in the order they appeared
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        state = page.evaluate(_SAMPLE, [LIVE_CELL, AFTER_CELL])
        assert not state.get("missing"), "notebook 03 lacks the live-plot cell or the one after"
        if state["done"]:
            break
        src = state["src"]
        if src and (not frames or src != frames[-1]):
            assert src.startswith("data:image/png"), src[:40]
            # one output updated in place, never a growing stack of figures
            assert state["images"] == 1, f"{state['images']} images in the live cell"
            frames.append(src)
            if len(frames) in (1, MIN_FRAMES):
                live.scroll_into_view_if_needed()
                page.screenshot(path=str(artifacts / f"jupyterlab_nb03_frame{len(frames)}.png"))
        assert time.monotonic() < deadline, f"training cell not done in {RUN_TIMEOUT_S} s"
        time.sleep(0.1)

    final = live.locator(".jp-OutputArea-output img")
    assert final.count() == 1
    live.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "jupyterlab_nb03_final.png"))
    assert len(frames) >= MIN_FRAMES, (
        f"saw {len(frames)} distinct frames of the live sigma plot while training ran"
    )
    assert final.get_attribute("src") not in frames[:-1]  # the final frame is a new one
