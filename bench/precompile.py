"""Compile the project's modules to bytecode before a benchmark times ``tracker`` in subprocesses.

``pip install .`` leaves every module compiled; an editable install (``pip install -e``, as
``.ci/run`` and a development checkout use) compiles a module when it is first imported and caches
the result in ``__pycache__``, unless ``PYTHONDONTWRITEBYTECODE`` is set (it is on the reference
machine), in which case every ``tracker`` process would compile its modules again (tens of ms per
command). The benchmarks time the program as installed, so they compile it first.
"""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tracker", "predictions", "resolvers", "reports")


def compile_project() -> None:
    """Write ``__pycache__`` bytecode for every module of the project (quietly)."""
    for name in PACKAGES:
        compileall.compile_dir(ROOT / name, quiet=1)
