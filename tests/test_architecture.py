"""The package's shape: layers import downwards only, and no import cycle, even through an
import inside a function (docs/architecture.md).

The graph is built from the source with :mod:`ast`: every ``import`` and ``from ... import`` of
our own modules, at module level or inside a function, except those under ``if TYPE_CHECKING``
(type annotations only: never run). ``from package import name`` is an edge to the submodule
when ``name`` is one, else to the package.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: top to bottom: a module may import its own layer's package (within it), or any layer below;
#: never above, never a sibling of its layer (the names in one inner list are siblings)
LAYERS: list[list[str]] = [
    ["specs"],
    ["specs.__main__"],
    ["specs.cli"],
    ["specs.dashboard", "specs.mcp_server"],
    ["specs.api"],
    ["specs.insights", "specs.templates"],
    ["specs.history"],
    ["specs.backends", "specs.record", "specs.llm"],
    ["specs.engine"],
    ["specs.executors"],
    ["specs.plan"],
    ["specs.spec"],
    ["specs.atomic", "specs.events", "specs.secrets"],
    ["specs.errors"],
    ["specs.diagnostics", "specs.version"],
]


def modules(root: Path = SRC) -> dict[str, Path]:
    found = {}
    for path in sorted((root / "specs").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, and whether it is inside a function."""

    def visit(node: ast.AST, inner: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    yield from visit(other, inner)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, inner
            yield from visit(child, inner or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    yield from visit(tree, False)


def graph(root: Path = SRC) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (anywhere but under TYPE_CHECKING)."""
    mods = modules(root)
    edges: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, _inner in _imports(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in mods else base)
            edges[name].update(t for t in targets if t in mods and t != name)
    return edges


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the layer's package) of a module: its longest matching package."""
    best: tuple[int, str] | None = None
    for index, names in enumerate(LAYERS):
        for package in names:
            if (module == package or module.startswith(package + ".")) and (
                    best is None or len(package) > len(best[1])):
                best = (index, package)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(edges):
            if v not in index:
                strong(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer or across to a sibling."""
    out = []
    for module, targets in sorted(edges.items()):
        mine, my_package = layer_of(module)
        for target in sorted(targets):
            theirs, their_package = layer_of(target)
            if theirs > mine or their_package == my_package:
                continue
            if module.startswith(target + ".") and target == "specs":
                continue  # a module's parent packages run first anyway
            out.append(f"{module} imports {target} ({their_package} is "
                       f"{'above' if theirs < mine else 'beside'} {my_package})")
    return out


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_layers_import_downwards_only() -> None:
    assert violations(graph()) == []


def test_every_module_is_in_a_layer() -> None:
    for module in modules():
        layer_of(module)


#: what only the library wires (specs.api.wiring): a face that imports these builds runs itself
WIRING = ("specs.engine.runner.Runner", "specs.engine.journal", "specs.llm.agent",
          "specs.llm.judge", "specs.llm.research", "specs.llm.providers", "specs.llm.mcp",
          "specs.llm.cache", "specs.backends", "specs.record.progress", "specs.record.notepad")


def _imported_names(path: Path) -> set[str]:
    names = set()
    for node, _inner in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_cli_does_no_engine_wiring() -> None:
    """The CLI parses, calls :mod:`specs.api`, and renders: it never builds a runner, a
    provider, an executor, an MCP hub or a projection writer itself."""
    found = []
    for module, path in modules().items():
        if module == "specs.cli" or module.startswith("specs.cli."):
            found += [f"{module}: {name}" for name in sorted(_imported_names(path))
                      if any(name == w or name.startswith(w + ".") for w in WIRING)]
    assert found == []


# -- the checks themselves catch what they are for ---------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "specs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize("hidden", [False, True])
def test_a_cycle_is_found_even_through_an_import_in_a_function(tmp_path: Path,
                                                                hidden: bool) -> None:
    inner = "def f():\n    from specs.spec import load\n" if hidden else \
        "from specs.spec import load\n"
    root = _tree(tmp_path, {"__init__.py": "", "spec/__init__.py": "",
                            "spec/load.py": "from specs.spec.compose import x\n",
                            "spec/compose.py": inner})
    assert cycles(graph(root)) == [["specs.spec.compose", "specs.spec.load"]]


def test_an_upward_import_is_a_violation(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"__init__.py": "", "engine/__init__.py": "",
                            "record/__init__.py": "",
                            "engine/runner.py": "def f():\n    import specs.record.notepad\n",
                            "record/notepad.py": "from specs.engine import runner\n"})
    assert violations(graph(root)) == [
        "specs.engine.runner imports specs.record.notepad (specs.record is above specs.engine)"]


def test_siblings_do_not_import_each_other(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"__init__.py": "", "llm/__init__.py": "", "record/__init__.py": "",
                            "llm/cache.py": "from specs.record.progress import w\n",
                            "record/progress.py": ""})
    assert violations(graph(root)) == [
        "specs.llm.cache imports specs.record.progress (specs.record is beside specs.llm)"]


def test_type_checking_imports_are_not_edges(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"__init__.py": "", "spec/__init__.py": "",
                            "spec/files.py": "from typing import TYPE_CHECKING\n"
                            "if TYPE_CHECKING:\n    from specs.spec.compose import C\n",
                            "spec/compose.py": "from specs.spec.files import LoadedSpec\n"})
    assert cycles(graph(root)) == []
