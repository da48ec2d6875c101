"""`make demo`'s machinery on two tiny notebooks: progress, the HTML page, no kernel warnings."""

from __future__ import annotations

import base64
import io
import json

import matplotlib
import nbformat
import pytest

from sngan_edu.course import demo, report

matplotlib.use("Agg")


def _png() -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    ax.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _notebook(path, title, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nText."),
                nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


PLOT = ("import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
        "import matplotlib.pyplot as plt\nplt.figure(figsize=(1, 1), dpi=20)\n"
        "_ = plt.plot([0, 1])\nplt.show()")


@pytest.mark.slow
def test_run_series_writes_a_page_with_every_notebook(tmp_path, capfd):
    src = tmp_path / "src"
    src.mkdir()
    notebooks = [_notebook(src / "01_first.ipynb", "First lesson", PLOT),
                 _notebook(src / "02_second.ipynb", "Second lesson", "print(6 * 7)")]
    out = tmp_path / "run"
    records = demo.run_series(out, notebooks)
    index = report.write_report(out, records)
    text = index.read_text()
    assert [r["notebook"] for r in records] == ["01_first.ipynb", "02_second.ipynb"]
    for stem, title in [("01_first", "First lesson"), ("02_second", "Second lesson")]:
        assert f'<section id="{stem}">' in text and f"<h2>{title}</h2>" in text
        assert (out / "html" / f"{stem}.html").is_file()
        assert f'href="html/{stem}.html"' in text
    assert (out / "figures" / "01_first_0.png").read_bytes().startswith(b"\x89PNG")
    assert 'src="figures/01_first_0.png"' in text
    err = capfd.readouterr().err
    assert "without encryption" not in err  # IPC transport: no TCP warning for the newcomer


def test_headline_tag_wins_over_the_last_image():
    png = _png()
    image = {"output_type": "display_data", "metadata": {},
             "data": {"image/png": base64.b64encode(png).decode()}}
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell("a", outputs=[nbformat.from_dict(image)])
    last = nbformat.v4.new_code_cell("b", outputs=[nbformat.from_dict(image)])
    nb.cells = [first, last]
    assert report.headline_figures(nb) == [png]  # the last image
    first.metadata["tags"] = ["headline"]
    last.outputs = []
    assert report.headline_figures(nb) == [png]
    assert report.headline_figures(nbformat.v4.new_notebook()) == []


def test_numbers_come_from_the_runs_final_scores(tmp_path):
    nb = _notebook(tmp_path / "05_x.ipynb", "Training", "1")
    record = {"notebook": nb.name, "seconds": 3.0,
              "metrics": {"final": {"step": 10, "classes": 10, "confidence": 0.88123}}}
    index = report.write_report(tmp_path, [record])
    text = index.read_text()
    assert "<li>classes: 10</li>" in text and "<li>confidence: 0.8812</li>" in text
    assert "step:" not in text and "ran in 3 s" in text
    assert json.loads(json.dumps(record))  # records stay JSON (summary.json)
