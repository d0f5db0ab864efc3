"""The examples in the resolver modules' docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "resolvers.base",
        "resolvers.text",
        "resolvers.registry",
        "resolvers.json_api",
        "resolvers.sweep",
        "resolvers.rules",
    ],
)
def test_docstrings_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
