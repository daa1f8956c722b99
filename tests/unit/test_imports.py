"""Import structure of the whole product (orchestrator/, apps/, state_machines/):

- no import cycles between modules (imports inside functions count: a cycle hidden in a
  function is still a cycle; only `if TYPE_CHECKING:` blocks are left out);
- no module imports another package's private names (`from pkg.mod import _name`) or private
  modules (`pkg._mod`): a package's private parts are used inside that package only.

Checked on the source (AST). The checker is tested on a small synthetic tree that breaks both
rules, so the test can fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestrator", "apps", "state_machines")


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    packages: set[str] = field(default_factory=set)  # modules that are packages (__init__)
    edges: dict[str, set[str]] = field(default_factory=dict)
    private: list[str] = field(default_factory=list)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(graph: Graph, module: str) -> str:
    return module if module in graph.packages else module.rpartition(".")[0]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def build_graph(root: Path, packages: Iterable[str]) -> Graph:
    graph = Graph()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = _module_name(root, path)
            graph.modules[name] = path
            if path.name == "__init__.py":
                graph.packages.add(name)
    for name, path in graph.modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_nodes(tree)
        own_package = _package_of(graph, name)
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            imported: list[tuple[str, str | None]] = []  # (module, name imported from it)
            if isinstance(node, ast.Import):
                imported = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = own_package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    imported.append((sub, None) if sub in graph.modules else (base, alias.name))
            for module, attr in imported:
                if module not in graph.modules:
                    continue  # third-party or standard library
                targets.add(module)
                target_package = _package_of(graph, module)
                if target_package == own_package:
                    continue
                private_module = next((p for p in module.split(".") if _is_private(p)), None)
                where = f"{path.relative_to(root)}:{node.lineno}"
                if private_module is not None:
                    graph.private.append(f"{where}: imports private module {module}")
                if attr is not None and _is_private(attr):
                    graph.private.append(f"{where}: imports private name {module}.{attr}")
        targets.discard(name)
        graph.edges[name] = targets
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph.modules):
        if v not in index:
            visit(v)
    return out


def test_the_whole_product_is_scanned() -> None:
    graph = build_graph(ROOT, PACKAGES)
    assert "orchestrator.engine.processing" in graph.modules
    assert "state_machines.handlers.customer" in graph.modules
    assert "state_machines.conversation" in graph.edges["state_machines.table"] or (
        "state_machines.table" in graph.edges["state_machines.conversation"]
    )


def test_no_import_cycles() -> None:
    assert cycles(build_graph(ROOT, PACKAGES)) == []


def test_no_private_imports_across_packages() -> None:
    assert build_graph(ROOT, PACKAGES).private == []


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_a_cycle_even_inside_a_function(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from pkg.c import g\n",
            "pkg/c.py": "from . import a\ndef g(): ...\n",
            "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",
        },
    )
    assert cycles(build_graph(tmp_path, ["pkg"])) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_checker_finds_private_imports_across_packages(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "one/__init__.py": "",
            "one/mod.py": "_secret = 1\nopen_value = 2\n",
            "one/_hidden.py": "x = 1\n",
            "one/same.py": "from one.mod import _secret\n",  # same package: allowed
            "two/__init__.py": "",
            "two/user.py": "from one.mod import _secret, open_value\nfrom one._hidden import x\n",
        },
    )
    private = build_graph(tmp_path, ["one", "two"]).private
    assert private == [
        "two/user.py:1: imports private name one.mod._secret",
        "two/user.py:2: imports private module one._hidden",
    ]
