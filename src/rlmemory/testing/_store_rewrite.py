"""Detailed failure messages from the store suite: pytest rewrites its modules' asserts.

:mod:`rlmemory.testing.storage` imports this module before any part of the suite, so
that pytest rewrites their ``assert`` statements as it does a test module's (showing the
values that differed, not a bare ``AssertionError``).
"""

from __future__ import annotations

import pytest

SUITE_MODULES = tuple(
    f"rlmemory.testing._store_{part}"
    for part in (
        "backup",
        "bad_input",
        "base",
        "history",
        "learned",
        "operations",
        "transactions",
        "values",
    )
)

pytest.register_assert_rewrite(*SUITE_MODULES)
