"""tracker -> {resolvers, reports} -> predictions; resolvers and reports never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "predictions": {"predictions"},
    "resolvers": {"resolvers", "predictions"},
    "reports": {"reports", "predictions"},
    "service": {"service", "resolvers", "reports", "predictions"},
    "tracker": {"tracker", "service", "resolvers", "reports", "predictions"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layering_packages_import_only_downwards(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(_imports(path) - ALLOWED[package])}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if _imports(path) - ALLOWED[package]
    ]
    assert not offenders, offenders


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports, at any depth (an import inside a function counts)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def test_layering_no_import_cycle_between_modules() -> None:
    """No two modules import each other, directly or round a longer loop (packages' ``__init__``
    re-exporting their own modules aside)."""
    paths = {_module_name(p): p for pkg in ALLOWED for p in sorted((ROOT / pkg).rglob("*.py"))}
    graph = {
        name: {m for m in _module_imports(path, set(paths)) if not name.startswith(m + ".")}
        for name, path in paths.items()
        if path.name != "__init__.py"
    }
    cycles: list[list[str]] = []

    def walk(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == trail[0]:
                cycles.append([*trail, nxt])
            elif nxt not in trail and nxt > trail[0]:
                walk(nxt, [*trail, nxt])

    for start in sorted(graph):
        walk(start, [start])
    assert not cycles, [" -> ".join(c) for c in cycles]


def test_layering_tracker_loads_the_service_only_in_tracker_serve() -> None:
    """The CLI's everyday commands never pay for FastAPI: ``tracker`` imports ``service`` only
    inside a function (``tracker serve``), never at the top of a module."""
    offenders = []
    for path in sorted((ROOT / "tracker").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name.split(".")[0] == "service" for name in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders
