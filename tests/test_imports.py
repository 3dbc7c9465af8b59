"""No import cycle between the ``helpers`` modules, counting imports inside functions too.

Every ``helpers/*.py`` is parsed with :mod:`ast` (nothing is imported); each ``import helpers.X``,
``from helpers import X``, ``from helpers.X import y``, relative import and
``importlib.import_module("helpers.X")`` anywhere in a module (top level, functions, ``if``
blocks) is an edge. ``from helpers import name`` where ``name`` is not a module (e.g.
``__version__``) is an edge to the package itself, ``helpers`` (its ``__init__.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "helpers"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_name(path: Path) -> str:
    return PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"


def imports_of(source: str, modules: set[str], this: str = f"{PACKAGE}.x") -> set[str]:
    """The ``helpers`` modules that ``source`` (the module ``this``) imports anywhere in its code."""
    this_package = this if this == PACKAGE else this.rsplit(".", 1)[0]

    def resolve(name: str) -> str | None:
        """The module for a dotted name under ``helpers`` (``helpers.data.x`` -> ``helpers.data``)."""
        parts = name.split(".")
        if parts[0] != PACKAGE:
            return None
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in modules:
                return candidate
        return None

    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(filter(None, (resolve(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from .x import y
                base = ".".join(filter(None, [this_package, base]))
            if base == PACKAGE:
                for alias in node.names:
                    sub = f"{PACKAGE}.{alias.name}"
                    found.add(sub if sub in modules else PACKAGE)
            elif (target := resolve(base)) is not None:
                found.add(target)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                target = resolve(node.args[0].value)
                if target is not None:
                    found.add(target)
    found.discard(this)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    paths = sorted(root.glob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports_of(path.read_text(), modules, module_name(path)) for path in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or ``None`` if the graph has none (depth-first search)."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_stack:
                return stack[stack.index(target):] + [target]
            if target not in done and (cycle := visit(target)):
                return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit(start)):
            return cycle
    return None


# ------------------------------------------------------------------------ self-checks


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b", "d"}, "b": {"c"}, "c": set(), "d": {"b", "e"}, "e": {"d"}}, ["d", "e", "d"]),
    ({"a": {"a"}}, ["a", "a"]),
    ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),  # a diamond is not a cycle
    ({}, None),
])
def test_find_cycle_on_synthetic_graphs(graph, cycle):
    assert find_cycle(graph) == cycle


def test_imports_inside_functions_are_edges():
    modules = {"helpers", "helpers.a", "helpers.b", "helpers.c", "helpers.d", "helpers.e", "helpers.f"}
    source = (
        "import os\n"
        "from helpers import a\n"
        "def f():\n"
        "    from helpers.b import thing\n"
        "    import helpers.c as c\n"
        "    if True:\n"
        "        from . import d\n"
        "    from .e import other\n"
        "    importlib.import_module('helpers.f')\n"
        "    from helpers import __version__\n"
    )
    assert imports_of(source, modules, "helpers.x") == modules
    two = {"helpers.a": imports_of("def f():\n    from helpers import b\n", modules, "helpers.a"),
           "helpers.b": imports_of("from helpers.a import g\n", modules, "helpers.b")}
    assert find_cycle(two) == ["helpers.a", "helpers.b", "helpers.a"]


# ------------------------------------------------------------------------ the package


def test_graph_covers_the_package():
    graph = import_graph()
    assert {"helpers", "helpers.cli", "helpers.data", "helpers.files", "helpers.runner"} <= set(graph)
    assert "helpers.files" in graph["helpers.data"]  # a top-level import
    assert "helpers.runner" in graph["helpers.cli"]  # an import inside a function


def test_no_import_cycle_in_helpers():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_runner_does_not_import_cli():
    assert "helpers.cli" not in import_graph()["helpers.runner"]
