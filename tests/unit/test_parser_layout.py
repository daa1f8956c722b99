"""The parser's layout (issue 7): modules by concept with one-way dependencies, no private
names imported across modules, and one public entry point exported from the package."""

from __future__ import annotations

import ast
from pathlib import Path

import orchestrator.ingress.parser as parser

PACKAGE = Path(parser.__file__).resolve().parent
# Lower layers first: a module may import only from modules before it in this list.
LAYERS = ["values", "context", "unknown", "content", "messaging", "changes", "body"]


def imports_of(module: str) -> list[tuple[str, str]]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    return [
        (node.module or "", alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]


def test_every_module_is_in_the_layer_list() -> None:
    assert sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__") == sorted(LAYERS)


def test_dependencies_point_down_the_layers_only() -> None:
    for index, module in enumerate(LAYERS):
        for source, _ in imports_of(module):
            if source.startswith("orchestrator.ingress.parser."):
                target = source.rsplit(".", 1)[1]
                assert target in LAYERS[:index], f"{module} imports {target}"


def test_no_private_names_cross_modules() -> None:
    for module in [*LAYERS, "__init__"]:
        for source, name in imports_of(module):
            if source.startswith("orchestrator."):
                assert not name.startswith("_"), f"{module} imports {source}.{name}"


def test_the_package_exports_the_entry_point() -> None:
    assert set(parser.__all__) == {
        "KNOWN_OBJECTS",
        "MalformedJSON",
        "ParsedBody",
        "parse_body",
        "parse_payload",
    }
    assert all(hasattr(parser, name) for name in parser.__all__)


def test_other_packages_import_the_parser_package_only() -> None:
    root = PACKAGE.parents[2]
    offenders = []
    for folder in ("orchestrator", "apps", "state_machines", "tests"):
        for path in (root / folder).rglob("*.py"):
            if PACKAGE in path.parents:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "orchestrator.ingress.parser."
                ):
                    offenders.append(f"{path.relative_to(root)}: {node.module}")
    assert offenders == []
