"""papermill's injected parameters checked against a notebook's own: a misspelt ``-p`` name
stops the notebook instead of running it with the defaults."""

from __future__ import annotations

from types import SimpleNamespace

import nbformat
import papermill
import pytest

from sngan_edu.course import notebook

INJECTED = "# Parameters\nstepz = 50\nwidth: float = 0.25\n"


def fake_shell(monkeypatch, cells):
    """Make IPython's get_ipython() return a shell whose ``In`` holds ``cells``."""
    import IPython

    shell = SimpleNamespace(user_ns={"In": ["", *cells]})
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)


def test_names_of_the_injected_cell_are_parsed():
    assert notebook.injected_names(["steps = 3", INJECTED, "a, (b, c) = 1, (2, 3)"]) == [
        "stepz", "width"]
    assert notebook.assigned_names("a, (b, c) = 1, (2, 3)\nx += 1\nprint(a)") == [
        "a", "b", "c", "x"]


def test_an_unknown_injected_name_is_refused_with_the_valid_ones(monkeypatch):
    fake_shell(monkeypatch, ["steps = 3000\nwidth = 0.5", INJECTED])
    with pytest.raises(ValueError, match=r"unknown notebook parameter\(s\) \['stepz'\] \(given to "
                                         r"papermill with -p NAME VALUE\); check the spelling: "
                                         r"the parameters are \('steps', 'width'\)"):
        notebook.check_injected_parameters(["steps", "width"])
    notebook.check_injected_parameters(["steps", "stepz", "width"])


def test_nothing_to_check_outside_ipython_or_without_an_injected_cell(monkeypatch):
    notebook.check_injected_parameters([])  # pytest runs outside IPython
    fake_shell(monkeypatch, ["steps = 3000", "# parameters of my own\nx = 1"])
    notebook.check_injected_parameters(["steps"])


@pytest.mark.slow
def test_papermill_run_fails_on_an_unknown_parameter(tmp_path):
    parameters = nbformat.v4.new_code_cell("a = 1")
    parameters.metadata["tags"] = ["parameters"]
    check = nbformat.v4.new_code_cell("from sngan_edu.course.notebook import "
                                      "check_injected_parameters\ncheck_injected_parameters(['a'])")
    source = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[parameters, check], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}}), source)

    def run(**given):
        return papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"),
                                          parameters=given, kernel_name="python3",
                                          progress_bar=False, cwd=str(tmp_path))

    with pytest.raises(papermill.PapermillExecutionError, match=r"unknown notebook parameter"
                                                                r"\(s\) \['b'\]"):
        run(b=2)
    assert run(a=2).cells[1].source.startswith("# Parameters")  # the injected cell, accepted
