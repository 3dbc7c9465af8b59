"""The package's shape, read with :mod:`ast` (nothing is imported): no import cycles in ``helpers`` and
``helpers.toolkit``; the core never imports the toolkit; the core's size and function lengths stay in budget.

An import is any ``import helpers.X``, ``from helpers(.toolkit) import X``, ``from helpers.X import y``,
relative import or ``importlib.import_module("helpers.X")``, at the top level or inside a function.
``from helpers import name`` where ``name`` is not a module (e.g. ``__version__``) is an import of the
package itself. Each checker has a test that feeds it a synthetic violation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "helpers"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
TOOLKIT = f"{PACKAGE}.toolkit"
CORE_LINES = 4000  # all of helpers/*.py together, docstrings included
BODY_LINES = 60  # the longest function body in the core, docstring excluded
ENTRY = "__main__.py"  # `python -m helpers`: the one core file that points into the toolkit


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str, this: str = f"{PACKAGE}.x", is_package: bool = False) -> set[str]:
    """Every dotted name that ``source`` (the module ``this``) imports anywhere: ``import a.b`` gives ``a.b``,
    ``from a import b`` gives ``a.b``; relative imports are made absolute."""
    package = this if is_package else this.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from ..x import y
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(filter(None, [*parent, base]))
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def imports_of(source: str, modules: set[str], this: str = f"{PACKAGE}.x", is_package: bool = False) -> set[str]:
    """The modules of ``modules`` that ``source`` (the module ``this``) imports anywhere in its code: for
    each imported name the longest module it starts with (``helpers.__version__`` -> ``helpers``)."""
    def resolve(name: str) -> str | None:
        parts = name.split(".")
        return next((".".join(parts[:end]) for end in range(len(parts), 0, -1)
                     if ".".join(parts[:end]) in modules), None)

    return {resolve(name) for name in imported_names(source, this, is_package)} - {None, this}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    paths = sorted([*root.glob("*.py"), *root.glob("toolkit/*.py")])
    modules = {module_name(path, root) for path in paths}
    return {module_name(path, root): imports_of(path.read_text(encoding="utf-8"), modules, module_name(path, root),
                                                path.stem == "__init__") for path in paths}


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


def toolkit_imports(source: str, this: str = f"{PACKAGE}.x", is_package: bool = False) -> list[str]:
    """The names under ``helpers.toolkit`` that ``source`` imports anywhere (top level or in a function)."""
    return sorted(name for name in imported_names(source, this, is_package)
                  if name == TOOLKIT or name.startswith(f"{TOOLKIT}."))


def oversize(sources: dict[str, str], limit: int = CORE_LINES) -> str | None:
    """A message when the sources together have more than ``limit`` lines, naming the largest; else None."""
    lines = {name: len(text.splitlines()) for name, text in sources.items()}
    if sum(lines.values()) <= limit:
        return None
    largest = ", ".join(f"{name} {count}" for name, count in sorted(lines.items(), key=lambda kv: -kv[1])[:5])
    return f"{sum(lines.values())} lines > {limit} (largest: {largest})"


def long_functions(source: str, module: str = "m", limit: int = BODY_LINES) -> list[str]:
    """``module.qualname (N lines)`` for every function whose body, docstring excluded, is over ``limit`` lines."""
    found: list[str] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = f"{prefix}.{child.name}" if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                   ast.ClassDef)) else prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = child.body[1:] if ast.get_docstring(child) is not None else child.body
                length = body[-1].end_lineno - body[0].lineno + 1 if body else 0
                if length > limit:
                    found.append(f"{name} ({length} lines)")
            visit(child, name)

    visit(ast.parse(source), module)
    return found


def core_sources(root: Path = ROOT) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(root.glob("*.py"))}


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


def test_toolkit_modules_and_relative_imports_resolve():
    modules = {"helpers", "helpers.env", "helpers.toolkit", "helpers.toolkit.cli", "helpers.toolkit.runner"}
    source = "from . import runner\nfrom .. import env\nfrom helpers.toolkit.cli import main\n"
    assert imports_of(source, modules, "helpers.toolkit.workflow") == {
        "helpers.toolkit.runner", "helpers.env", "helpers.toolkit.cli"}
    assert imports_of("from . import cli\n", modules, "helpers.toolkit", is_package=True) == {"helpers.toolkit.cli"}
    assert imports_of("from helpers import toolkit\n", modules, "helpers.data") == {"helpers.toolkit"}


@pytest.mark.parametrize("source", [
    "import helpers.toolkit.cli\n",
    "from helpers import toolkit\n",
    "from helpers.toolkit import export\n",
    "def f():\n    from helpers.toolkit.formats import read_labels\n",
    "def f():\n    if True:\n        from .toolkit import folders\n",
    "import importlib\ndef f():\n    return importlib.import_module('helpers.toolkit.scoring')\n",
])
def test_toolkit_imports_finds_every_kind_of_import(source):
    assert toolkit_imports(source, "helpers.data")


def test_toolkit_imports_ignores_core_imports():
    assert toolkit_imports("from helpers import data, plots\nimport toolkit\nfrom . import files\n",
                           "helpers.data") == []


def test_oversize_reports_the_total_and_the_largest():
    assert oversize({"a.py": "x\n" * 3000, "b.py": "y\n" * 1000}) is None
    message = oversize({"a.py": "x\n" * 3000, "b.py": "y\n" * 1001})
    assert message.startswith("4001 lines > 4000") and "a.py 3000" in message


def test_long_functions_counts_the_body_without_its_docstring():
    def function(name: str, body: int, doc: int = 0, indent: str = "") -> str:
        docstring = f'{indent}    """{"d" * 3}\n' + f"{indent}    d\n" * doc + f'{indent}    """\n' if doc else ""
        return f"{indent}def {name}():\n{docstring}" + f"{indent}    x = 1\n" * body

    source = (function("fits", 60, doc=30) + function("too_long", 61)
              + "class C:\n" + function("method", 70, indent="    "))
    assert long_functions(source, "mod") == ["mod.too_long (61 lines)", "mod.C.method (70 lines)"]
    nested = "def outer():\n    def inner():\n" + "        y = 2\n" * 61 + "    return inner\n"
    assert long_functions(nested, "mod") == ["mod.outer (63 lines)", "mod.outer.inner (61 lines)"]


# ------------------------------------------------------------------------ the package


def test_graph_covers_the_package():
    graph = import_graph()
    assert {"helpers", "helpers.data", "helpers.files", "helpers.toolkit", "helpers.toolkit.cli",
            "helpers.toolkit.runner"} <= set(graph)
    assert "helpers.files" in graph["helpers.data"]  # a top-level import
    assert "helpers.toolkit.cli" in graph["helpers.__main__"]


def test_no_import_cycle_in_helpers_and_the_toolkit():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_runner_does_not_import_cli():
    assert "helpers.toolkit.cli" not in import_graph()["helpers.toolkit.runner"]


def test_the_core_never_imports_the_toolkit():
    crossing = {path.name: found for path in sorted(ROOT.glob("*.py")) if path.name != ENTRY
                and (found := toolkit_imports(path.read_text(encoding="utf-8"), module_name(path),
                                              path.stem == "__init__"))}
    assert not crossing, f"core modules import the toolkit (only helpers/{ENTRY} may): {crossing}"


def test_the_core_fits_its_line_budget():
    message = oversize(core_sources())
    assert message is None, f"helpers/*.py: {message}"


def test_no_long_function_in_the_core():
    long = [name for file, text in core_sources().items() for name in long_functions(text, f"helpers/{file}")]
    assert not long, f"function bodies over {BODY_LINES} lines (docstring excluded): {long}"
