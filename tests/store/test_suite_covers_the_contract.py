"""The shipped store suite uses every public member of MemoryStore.

``recorded_suite.py`` runs :class:`rlmemory.testing.storage.StoreConformance` on SQLite
with each store behind a proxy that records the public names the suite calls or reads;
this test runs it in a child pytest and compares the record with the members of
:class:`~rlmemory.store.base.MemoryStore` found by ``inspect``. A new contract method
without a test in the suite fails here.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlmemory.store.base import MemoryStore

RECORDED_SUITE = Path(__file__).with_name("recorded_suite.py")
REPOSITORY = Path(__file__).resolve().parents[2]


def public_members() -> set[str]:
    """Every public method, property and annotated attribute of the contract."""
    names = {name for name, _ in inspect.getmembers(MemoryStore) if not name.startswith("_")}
    names |= {name for name in inspect.get_annotations(MemoryStore) if not name.startswith("_")}
    return names


def test_the_contract_has_the_members_this_check_expects() -> None:
    members = public_members()
    assert {"save_q_table", "transaction", "schema_version", "location", "reencrypt"} <= members
    assert len(members) >= 62


@pytest.mark.slow
def test_the_suite_calls_every_public_member_of_the_contract(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    record = tmp_path / "called.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(RECORDED_SUITE),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
        ],
        cwd=REPOSITORY,
        env={**subprocess_env, "RLMEMORY_RECORDED_CALLS": str(record)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert " passed" in result.stdout
    called = set(json.loads(record.read_text(encoding="utf-8")))
    assert sorted(public_members() - called) == [], "members the suite never uses"


def test_importing_rlmemory_and_its_testing_package_needs_no_pytest(
    subprocess_env: dict[str, str],
) -> None:
    """Only ``rlmemory.testing.storage`` needs pytest and hypothesis (the test extra)."""
    code = (
        "import sys, rlmemory, rlmemory.testing, rlmemory.store;"
        "print(sorted(m for m in ('pytest', 'hypothesis') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
