"""An HTML page of a headless run of the course: one section per notebook, readable anywhere.

For each executed notebook the page shows its title, its run time, its headline figures and
numbers, and a link to the whole notebook rendered as HTML by nbconvert. Headline figures are
the image outputs of cells tagged ``headline``; a notebook without such a tag shows its last
image. Figures are written as PNG files beside the page, so it opens in any browser without
Jupyter.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat

HEADLINE_TAG = "headline"
MAX_FIGURES = 2


def notebook_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The first Markdown heading of the notebook (without the #), or ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def _pngs(cell: nbformat.NotebookNode) -> list[bytes]:
    images = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "image/png" in data:
            images.append(base64.b64decode(data["image/png"]))
    return images


def headline_figures(nb: nbformat.NotebookNode, limit: int = MAX_FIGURES) -> list[bytes]:
    """PNG bytes of the cells tagged ``headline`` (else the notebook's last image)."""
    tagged = [png for cell in nb.cells if HEADLINE_TAG in cell.get("metadata", {}).get("tags", [])
              for png in _pngs(cell)]
    if tagged:
        return tagged[:limit]
    every = [png for cell in nb.cells if cell.cell_type == "code" for png in _pngs(cell)]
    return every[-1:]


def render_notebook_html(notebook: Path, target: Path) -> Path:
    """The executed ``notebook`` as a standalone HTML page (nbconvert's HTML exporter)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return target


def _numbers(record: Mapping[str, Any]) -> dict[str, float]:
    metrics = record.get("metrics") or {}
    final = metrics.get("final", metrics)
    return {k: v for k, v in final.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k != "step"}


def write_report(out_root: Path, records: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``out_root/index.html`` for the executed notebooks named in ``records``.

    Each record has ``notebook`` (file name in ``out_root``) and ``seconds``, and optionally
    ``metrics`` (the run's metrics.json). Returns the path of the page.
    """
    out_root = Path(out_root)
    sections = []
    for record in records:
        notebook = out_root / record["notebook"]
        nb = nbformat.read(notebook, as_version=4)
        stem = notebook.stem
        page = render_notebook_html(notebook, out_root / "html" / f"{stem}.html")
        figures = []
        for i, png in enumerate(headline_figures(nb)):
            path = out_root / "figures" / f"{stem}_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
            figures.append(f'<img src="figures/{path.name}" alt="{html.escape(stem)} figure">')
        numbers = _numbers(record)
        facts = "".join(f"<li>{html.escape(k)}: {v:.4g}</li>" for k, v in numbers.items())
        sections.append(
            f'<section id="{html.escape(stem)}">\n'
            f"<h2>{html.escape(notebook_title(nb, stem))}</h2>\n"
            f'<p class="meta">{html.escape(record["notebook"])} ran in '
            f'{record["seconds"]:.0f} s &middot; <a href="html/{page.name}">read the notebook</a>'
            f"</p>\n" + (f"<ul>{facts}</ul>\n" if facts else "") + "\n".join(figures)
            + "\n</section>"
        )
    total = sum(r["seconds"] for r in records)
    index = out_root / "index.html"
    index.write_text(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<title>sngan-edu: the course, run headless</title>\n"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "img{max-width:100%;margin:.5em 0}section{border-top:1px solid #ccc;padding:.5em 0}"
        ".meta{color:#555}</style></head><body>\n"
        "<h1>sngan-edu: the course, run headless</h1>\n"
        f"<p>{len(records)} notebooks in {total:.0f} s. Each section links to the notebook "
        "with every output.</p>\n" + "\n".join(sections) + "\n</body></html>\n",
        encoding="utf-8",
    )
    return index


__all__ = ["headline_figures", "notebook_title", "render_notebook_html", "write_report"]
