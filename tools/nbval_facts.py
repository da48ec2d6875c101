"""A pytest plugin for `python -m pytest --nbval -p tools.nbval_facts`: facts about notebooks.

A notebook NAME.ipynb with a file tests/notebook_facts/NAME.py gets one more test item, "facts",
run right after nbval has executed and compared its last cell. The facts file is executed in the
notebook's own kernel (its globals are the notebook's variables); every function named fact_*
in it is called, and the item fails listing each fact that raised. The notebook is executed
once: nbval's run serves both the output comparison and the facts.
"""

from __future__ import annotations

import json
from pathlib import Path
from queue import Empty

import pytest

FACTS_FOLDER = Path("tests") / "notebook_facts"  # relative to pytest's rootdir
_MARK = "NOTEBOOK-FACTS-RESULT "
_RUNNER = """
def __run_notebook_facts__(path):
    import json, traceback
    namespace = globals()
    exec(compile(open(path, encoding="utf-8").read(), path, "exec"), namespace)
    results = {}
    for name in sorted(k for k in list(namespace) if k.startswith("fact_")):
        try:
            namespace[name]()
            results[name] = None
        except Exception:
            results[name] = traceback.format_exc(limit=-2)
    print(%r + json.dumps(results))
__run_notebook_facts__(%r)
"""


def facts_file(notebook: Path, root: Path) -> Path:
    """Where the facts of ``notebook`` live below the project ``root`` (they need not exist)."""
    return root / FACTS_FOLDER / f"{Path(notebook).stem}.py"


class NotebookFacts(pytest.Item):
    """Run a notebook's facts file in the kernel nbval used for it."""

    def __init__(self, *, path_to_facts: Path, **kwargs):
        super().__init__(**kwargs)
        self.path_to_facts = path_to_facts

    def runtest(self) -> None:
        kernel = self.parent.kernel
        if kernel is None or not kernel.is_alive():
            raise RuntimeError("the notebook's kernel is not running (an earlier cell failed?)")
        msg_id = kernel.execute_cell_input(_RUNNER % (_MARK, str(self.path_to_facts)),
                                           allow_stdin=False)
        kernel.await_reply(msg_id, timeout=600)
        text, error = "", None
        while True:
            try:
                msg = kernel.get_message("iopub", timeout=60)
            except Empty:
                break
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                text += content["text"]
            elif kind == "error":
                error = "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        if error is not None:
            raise AssertionError(f"the facts file {self.path_to_facts.name} failed:\n{error}")
        line = next((ln for ln in text.splitlines() if ln.startswith(_MARK)), None)
        if line is None:
            raise AssertionError(f"no result from {self.path_to_facts.name}; output:\n{text}")
        results = json.loads(line[len(_MARK):])
        if not results:
            raise AssertionError(f"{self.path_to_facts.name} defines no fact_* function")
        failed = {name: tb for name, tb in results.items() if tb is not None}
        if failed:
            report = "\n\n".join(f"{name} failed:\n{tb}" for name, tb in failed.items())
            raise AssertionError(report)

    def reportinfo(self):
        return self.path_to_facts, None, f"facts of {self.parent.name}"


def pytest_collection_modifyitems(session, config, items):
    """Put a facts item after the last cell of every notebook that has a facts file."""
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # pragma: no cover - nbval is a dev dependency
        return
    last_index: dict[object, int] = {}
    for index, item in enumerate(items):
        if isinstance(item, IPyNbCell):
            last_index[item.parent] = index
    for parent, index in sorted(last_index.items(), key=lambda kv: -kv[1]):
        path = facts_file(Path(str(parent.fspath)), config.rootpath)
        if path.is_file():
            items.insert(index + 1, NotebookFacts.from_parent(parent, name="facts",
                                                              path_to_facts=path))
