"""JupyterLab, for real: run notebook 01 in headless Chromium and drive its slider.

Opens notebooks/01_svd_vs_power_iteration.ipynb (a temporary copy, outputs stripped) in a
JupyterLab served on 127.0.0.1, runs all cells, checks the PowerIterationExplorer rendered its
sliders and plot, moves the "iterations k" slider with the keyboard, and checks that the plot
image is redrawn and that re-running the cell printing the estimate prints the new iteration
count. Screenshots before/after go to test-artifacts/.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

NOTEBOOK = "01_svd_vs_power_iteration.ipynb"
STEPS = 5  # iterations 30 -> 35
RUN_ALL_TIMEOUT = 300_000  # ms; kernel start plus all of notebook 01 on 2 busy cores


def _run_cell_starting_with(page, prefix: str) -> None:
    """Make the code cell whose source starts with ``prefix`` active and run it."""
    found = page.evaluate(
        """(prefix) => {
            const app = window.jupyterapp;
            const notebook = app.shell.currentWidget.content;
            const i = notebook.widgets.findIndex(
                (c) => c.model.sharedModel.getSource().startsWith(prefix));
            if (i < 0) return false;
            notebook.activeCellIndex = i;
            notebook.mode = 'command';
            app.commands.execute('notebook:run-cell');
            return true;
        }""",
        prefix,
    )
    assert found, f"no cell starting with {prefix!r}"


def test_notebook01_slider_redraws_plot_and_estimate(lab_server, page, artifacts):
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}?token={lab_server.token}")
    # JupyterLab exposes itself (expose_app_in_browser); wait for the notebook's kernel to be idle.
    page.wait_for_function(
        """(name) => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session
                && w.sessionContext.session.kernel;
            return w && w.context && w.context.path.endsWith(name)
                && kernel && kernel.status === 'idle';
        }""",
        arg=NOTEBOOK,
        timeout=120_000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    explorer = page.locator(".jp-CodeCell", has_text="explorer = PowerIterationExplorer(")
    estimate = page.locator(".jp-CodeCell", has_text="res = explorer.result")
    last = page.locator(".jp-CodeCell").last
    # Run All stops at the first error, so output in the last cell means every cell ran; the
    # kernel going idle afterwards means it is free for widget messages.
    done = last.locator(".jp-OutputArea-output", has_text="bounds 1 and 3")
    done.wait_for(timeout=RUN_ALL_TIMEOUT)
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
        " === 'idle'",
        timeout=RUN_ALL_TIMEOUT,
    )

    slider = explorer.locator(".widget-slider", has_text="iterations k")
    slider.wait_for()
    assert explorer.locator(".widget-slider").count() == 3  # iterations, gap, size
    readout = slider.locator(".widget-readout")
    assert readout.inner_text().strip() == "30"
    image = explorer.locator(".jp-RenderedImage img")
    image.wait_for()
    src_before = image.get_attribute("src")
    assert src_before and src_before.startswith("data:image/png")
    text_before = estimate.locator(".jp-OutputArea-output").first.inner_text()
    assert "after 30:" in text_before, text_before
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "jupyterlab_nb01_before.png"))

    # Type the new value into the slider's editable readout (ipywidgets sends it on Enter).
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(30 + STEPS))
    page.keyboard.press("Enter")
    page.wait_for_function(
        "([el, v]) => el.textContent.trim() === v",
        arg=[readout.element_handle(), str(30 + STEPS)],
        timeout=30_000,
    )
    page.screenshot(path=str(artifacts / "jupyterlab_nb01_moved.png"))
    _run_cell_starting_with(page, "res = explorer.result")
    expected = f"after {30 + STEPS}:"
    estimate.locator(".jp-OutputArea-output", has_text=expected).wait_for(timeout=120_000)
    text_after = estimate.locator(".jp-OutputArea-output").first.inner_text()
    assert text_after != text_before
    match = re.search(r"after (\d+): ([0-9.]+)", text_after)
    assert match and int(match.group(1)) == 30 + STEPS, text_after
    assert abs(float(match.group(2)) - 1.0) < 1e-6  # 35 iterations at gap 0.8: converged
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "jupyterlab_nb01_after.png"))

    # The slider callback redrew the LiveFigure in place (update_display_data): new image.
    page.wait_for_function(
        "([el, before]) => el.getAttribute('src') !== before",
        arg=[image.element_handle(), src_before],
        timeout=60_000,
    )
    src_after = image.get_attribute("src")
    assert src_after.startswith("data:image/png") and src_after != src_before
