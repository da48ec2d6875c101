"""The package's imports run one way, from the mathematics up to the course tooling.

Every import of a ``sngan_edu`` module is read from the source (module level and inside
functions alike; only ``if TYPE_CHECKING:`` blocks, which never run, are left out). A module may
import modules of its own layer or of a lower one, never of a higher one, and the graph of
imports has no cycle. A new module must be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sngan_edu

#: Lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("sngan_edu", "sngan_edu.assets", "sngan_edu.checks", "sngan_edu.device"),
    ("sngan_edu.spectral",),
    ("sngan_edu.conv_norm", "sngan_edu.sn"),
    ("sngan_edu.layer_info",),
    ("sngan_edu.sigma_report",),
    ("sngan_edu.lipschitz", "sngan_edu.losses"),
    ("sngan_edu.regularizers",),
    ("sngan_edu.gan_step",),
    ("sngan_edu.data", "sngan_edu.models"),
    ("sngan_edu.train",),
    ("sngan_edu.metrics",),
    ("sngan_edu.experiments",),
    ("sngan_edu.plots", "sngan_edu.widgets"),
    ("sngan_edu.course", "sngan_edu.__main__", "sngan_edu.cli"),
)


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(source: str, package: str, modules: set[str]) -> set[str]:
    """The package's modules that ``source`` imports anywhere (not under TYPE_CHECKING)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == package:
                for alias in node.names:  # "from pkg import submodule" imports the submodule
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules it imports}`` for every .py file below ``root``."""
    files = {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    return {name: imported_modules(path.read_text(encoding="utf-8"), package, modules) - {name}
            for name, path in files.items()}


def layer_of(module: str, layers: tuple[tuple[str, ...], ...]) -> int | None:
    best, best_len = None, -1
    for index, prefixes in enumerate(layers):
        for prefix in prefixes:
            inside = module == prefix or ("." in prefix and module.startswith(prefix + "."))
            if inside and len(prefix) > best_len:  # the bare package name matches only itself
                best, best_len = index, len(prefix)
    return best


def layer_violations(graph: dict[str, set[str]], layers) -> list[str]:
    """Modules without a layer, and imports of a higher layer, as readable lines."""
    problems = [f"{m} has no layer in LAYERS" for m in sorted(graph) if layer_of(m, layers) is None]
    for module, targets in sorted(graph.items()):
        here = layer_of(module, layers)
        for target in sorted(targets):
            there = layer_of(target, layers)
            if here is not None and there is not None and there > here:
                problems.append(f"{module} (layer {here}) imports {target} (layer {there})")
    return problems


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


PACKAGE_ROOT = Path(sngan_edu.__file__).parent


def test_the_package_imports_run_one_way():
    graph = import_graph(PACKAGE_ROOT, "sngan_edu")
    assert len(graph) > 30  # the walk found the package
    assert layer_violations(graph, LAYERS) == []


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph(PACKAGE_ROOT, "sngan_edu")) is None


def _plant(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "pkg"
    for name, text in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pkg


PLANTED_LAYERS = (("pkg", "pkg.low"), ("pkg.mid",), ("pkg.high",))


def test_a_planted_cycle_hidden_inside_a_function_is_found(tmp_path):
    pkg = _plant(tmp_path, {
        "__init__.py": "",
        "low.py": "def f():\n    from pkg.mid import g\n    return g\n",
        "mid.py": "from pkg import low\n",
        "high.py": "import pkg.mid\n",
    })
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.mid"] == {"pkg.low"} and graph["pkg.high"] == {"pkg.mid"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"pkg.low", "pkg.mid"}
    assert layer_violations(graph, PLANTED_LAYERS) == [
        "pkg.low (layer 0) imports pkg.mid (layer 1)"
    ]


def test_type_checking_imports_and_unlisted_modules(tmp_path):
    pkg = _plant(tmp_path, {
        "__init__.py": "",
        "low.py": ("from typing import TYPE_CHECKING\n"
                   "if TYPE_CHECKING:\n    from pkg.high import H\n"),
        "high.py": "from pkg.low import x\n",
        "extra/__init__.py": "",
    })
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.low"] == set() and find_cycle(graph) is None
    assert layer_violations(graph, PLANTED_LAYERS) == ["pkg.extra has no layer in LAYERS"]


@pytest.mark.parametrize("module", ["sngan_edu.sn", "sngan_edu.train.trainer",
                                    "sngan_edu.course.exercises"])
def test_known_modules_sit_in_their_layer(module):
    order = [layer_of(m, LAYERS) for m in ("sngan_edu.sn", "sngan_edu.train.trainer",
                                           "sngan_edu.course.exercises")]
    assert order == sorted(order) and layer_of(module, LAYERS) is not None
