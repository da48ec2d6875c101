"""`make demo`'s index.html in headless Chromium: a section and a figure for every notebook.

The page is built by the same code as the demo's (:func:`sngan_edu.course.report.write_report`)
from copies of the committed notebooks, whose stored outputs are those of an executed run.
"""

from __future__ import annotations

import shutil

import pytest

from sngan_edu.course import demo, report

from .conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def test_every_notebook_has_its_section_and_figure(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (install Debian's chromium: make test-browser)")
    from playwright.sync_api import sync_playwright

    notebooks = demo.series()
    records = []
    for notebook in notebooks:
        shutil.copy(notebook, tmp_path / notebook.name)
        records.append({"notebook": notebook.name, "seconds": 1.0})
    index = report.write_report(tmp_path, records)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(index.as_uri())
            sections = page.locator("section")
            assert sections.count() == len(notebooks) >= 6
            for notebook in notebooks:
                # An attribute selector: a CSS id selector may not start with a digit.
                section = page.locator(f'section[id="{notebook.stem}"]')
                assert section.locator("h2").inner_text().strip()
                images = section.locator("img")
                assert images.count() >= 1, notebook.name
                loaded = images.first.evaluate("img => img.complete && img.naturalWidth > 0")
                assert loaded, f"{notebook.name}: its figure did not load"
                link = section.locator("a")
                page_url = link.get_attribute("href")
                assert (tmp_path / page_url).is_file()
            page.goto((tmp_path / "html" / f"{notebooks[0].stem}.html").as_uri())
            assert page.locator(".jp-Cell").count() > 5  # nbconvert's rendering of the cells
        finally:
            browser.close()
