"""The ``rlmemory`` command: a thin skin over the library.

Each command group lives in its own module and registers itself on
:data:`rlmemory.cli.app.app` when imported; this module imports them all.
"""

from __future__ import annotations

import importlib
import pkgutil

from rlmemory.cli.app import app

__all__ = ["app", "main"]

for _module in pkgutil.iter_modules(__path__):
    if _module.name.startswith("cmd_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def main() -> None:
    """Entry point of the ``rlmemory`` console script."""
    app()
