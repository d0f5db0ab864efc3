"""Each package's and module's public surface is its ``__all__``: every name listed exists, every
public class and function a module defines is listed, and the packages re-export what they name."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tracker", "predictions", "resolvers", "reports", "service")


def _module_names() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts or parts[-1] == "__main__":
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _defined_public(module_name: str) -> set[str]:
    """Classes and functions defined at the top of the module's source with a public name (a
    command module's click commands are its ``COMMANDS``, which ``tracker.cli`` registers; a
    route's endpoint is in the route table, :mod:`service.routes`)."""
    module = importlib.import_module(module_name)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.name.startswith("_")
        and not isinstance(getattr(module, node.name, None), click.Command)
        and not _is_endpoint(getattr(module, node.name, None))
    }


def _is_endpoint(obj: object) -> bool:
    """A route's endpoint: the service's route table lists it (as ``COMMANDS`` lists commands)."""
    from service.routes import rules

    return any(rule.endpoint is obj for rule in rules())


@pytest.mark.parametrize("module_name", _module_names())
def test_public_surface_is_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what it lacks: {missing}"
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ repeats a name"
    unlisted = sorted(_defined_public(module_name) - set(exported))
    assert not unlisted, f"{module_name} defines public names outside __all__: {unlisted}"


def test_public_surface_every_error_is_in_the_one_tree() -> None:
    """Every exception class a package module defines derives from the documented base."""
    from predictions.errors import TrackerError

    strays = []
    for module_name in _module_names():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and not issubclass(value, TrackerError)
            ):
                strays.append(f"{module_name}.{name}")
    assert not strays, f"errors outside predictions.errors' tree: {strays}"
