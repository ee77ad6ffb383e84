"""The four wings, read off the source: the runtime never reaches the CLI, the dev tools or the
client library,
and no module imports itself back round a circle.

Every ``import`` statement counts, at module level or inside a function, so a circle
cannot hide behind a lazy import.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGE = ROOT / "certsas"
WINGS = ("certsas.cli", "certsas.devtools", "certsas.client")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def in_wing(name: str, wing: str) -> bool:
    return name == wing or name.startswith(wing + ".")


def is_runtime(name: str) -> bool:
    return name != "certsas.__main__" and not any(in_wing(name, wing) for wing in WINGS)


def imported(tree: ast.AST, *, inside_functions_only: bool = False) -> Iterator[str]:
    """The certsas modules a tree imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    nodes: list[ast.AST] = [tree]
    if inside_functions_only:
        nodes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "certsas":
                        yield alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] != "certsas":
                    continue
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    yield sub if sub in MODULES else node.module


def graph() -> dict[str, set[str]]:
    return {
        name: {target for target in imported(ast.parse(path.read_text())) if target != name}
        for name, path in MODULES.items()
    }


def test_the_wings_exist_and_the_runtime_is_most_of_the_package() -> None:
    assert {"certsas.cli", "certsas.devtools", "certsas.ocsp", "certsas.broker"} <= set(MODULES)
    assert all(target in MODULES for targets in graph().values() for target in targets)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if is_runtime(n)))
def test_runtime_module_never_imports_the_cli_or_the_dev_tools(name: str) -> None:
    bad = sorted(t for t in graph()[name] if not is_runtime(t))
    assert bad == [], f"{name} imports {bad}"


def test_the_function_app_imports_the_runtime_alone() -> None:
    tree = ast.parse((ROOT / "function_app.py").read_text())
    targets = set(imported(tree))
    assert targets and all(is_runtime(t) for t in targets), targets


def test_no_import_circles() -> None:
    edges = graph()
    seen: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        path.append(node)
        for target in sorted(edges[node]):
            if seen.get(target) == 1:
                cycle = [*path[path.index(target):], target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if target not in seen:
                visit(target)
        path.pop()
        seen[node] = 2

    for name in sorted(edges):
        if name not in seen:
            visit(name)


def test_no_certsas_import_hides_inside_a_function() -> None:
    """A certsas import inside a function is how circles were dodged; there are none."""
    hidden = {
        name: sorted(set(imported(ast.parse(path.read_text()), inside_functions_only=True)))
        for name, path in MODULES.items()
    }
    assert {name: found for name, found in hidden.items() if found} == {}


def test_the_import_reader_sees_from_imports_and_lazy_ones() -> None:
    """What the checks above rest on: both forms of import are read, wherever they stand."""
    a = ast.parse("from certsas import broker\n")
    assert list(imported(a)) == ["certsas.broker"]
    b = ast.parse("def f():\n    from certsas.cli import admin\n")
    assert list(imported(b, inside_functions_only=True)) == ["certsas.cli.admin"]


def test_docs_architecture_names_every_runtime_module_and_only_those() -> None:
    """docs/architecture.md's module table and module graph stay the package's: a new
    module is listed, a removed one is not left behind."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^\| `certsas/(\w+)(?:\.py|/)`", text, re.MULTILINE))
    runtime = {name.split(".")[1] for name in MODULES
               if is_runtime(name) and name.count(".") >= 1}
    assert listed == runtime, (sorted(runtime - listed), sorted(listed - runtime))
    graph_block = text.split("```mermaid\nflowchart TD\n")[1].split("```")[0]
    drawn = set(re.findall(r"\b([a-z_]+)\b(?!\])", re.sub(r"\[[^]]*\]", "", graph_block)))
    assert drawn - {"fa"} <= runtime, sorted(drawn - {"fa"} - runtime)
