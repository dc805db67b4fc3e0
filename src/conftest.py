"""Doctest collection of ``src/``: modules kept only as old import paths are skipped.

Such an alias module (``rlmemory.store.files_ops`` …) replaces itself in ``sys.modules``
by the module it moved to, which pytest collects under its new path; collecting the
alias's file too would be an "import file mismatch".
"""

from __future__ import annotations

from pathlib import Path

_ALIAS_MARK = "sys.modules[__name__] = "

collect_ignore = [
    str(path.relative_to(Path(__file__).parent))
    for path in sorted(Path(__file__).parent.glob("rlmemory/**/*.py"))
    if _ALIAS_MARK in path.read_text(encoding="utf-8")
]
