"""A file store on read-only media: reads work, writes are a one-line ReadOnlyStoreError.

Issue 8, finding 12: opening a store on read-only media raised an ``OSError`` traceback
even to read, because the lock file was opened for writing. The tests run as root, for
whom ``chmod a-w`` changes nothing, so the store is put on a real read-only filesystem:
a read-only bind mount, made in a private mount namespace (``unshare -m``, or
``unshare -rm`` for other users) that only the child process sees.

File store only: SQLite opens read-only files through its own ``mode=ro`` handling and
PostgreSQL has no local files.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rlmemory.store.files import FileBackedMemoryDatabase

AGENT = "router"

CHILD = textwrap.dedent(
    """
    import json, sys
    from rlmemory.errors import ReadOnlyStoreError
    from rlmemory.store.files import FileBackedMemoryDatabase

    def in_a_transaction(store):
        with store.transaction():
            store.save_agent_decision("router", "s", "a", {}, None)

    folder = sys.argv[1]
    result = {}
    with FileBackedMemoryDatabase(folder, lock_timeout=5) as store:
        result["read_only"] = store.read_only
        result["rewards"] = [row["reward"] for row in store.get_agent_rewards("router")]
        result["q_table"] = store.get_q_table("router")
        result["agents"] = store.list_agents()
        result["stats"] = store.agent_stats("router")["rewards"]
        result["decision"] = store.get_agent_decision(1)["selected_action"]
        result["versions"] = [row["version"] for row in store.list_versions("router")]
        with store.snapshot() as read:
            result["dumped"] = sum(1 for table in store.backup_tables() for _ in read(table))
        writes = {
            "reward": lambda: store.save_agent_reward("router", 1.0, {}),
            "q_values": lambda: store.save_q_values("router", {"s": {"a": 1.0}}),
            "new agent": lambda: store.save_policy_params("newcomer", {"w": [1.0]}),
            "transaction": lambda: in_a_transaction(store),
            "prune": lambda: store.prune_history("router", "rewards", keep_newest=0),
            "clear": lambda: store.clear_data(),
        }
        result["writes"] = {}
        for name, write in writes.items():
            try:
                write()
                result["writes"][name] = "written"
            except ReadOnlyStoreError as error:
                result["writes"][name] = str(error)
    print(json.dumps(result))
    """
)


def _namespace_command() -> list[str]:
    return ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]


def _run_read_only(
    source: Path, mount_point: Path, command: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with ``source`` mounted read-only at ``mount_point`` (for it only)."""
    mount = (
        f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(mount_point))} && "
        f"mount -o remount,bind,ro {shlex.quote(str(mount_point))} && "
        f"touch {shlex.quote(str(mount_point / 'probe'))} 2>/dev/null && exit 97; "
        f"exec {shlex.join(command)}"
    )
    return subprocess.run(
        [*_namespace_command(), "sh", "-c", mount],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture
def read_only_store(tmp_path: Path) -> tuple[Path, Path]:
    source, mount_point = tmp_path / "store", tmp_path / "mounted"
    mount_point.mkdir()
    with FileBackedMemoryDatabase(source) as store:
        decision_id = store.save_agent_decision(AGENT, "code", "coder", {"coder": 1.0}, None)
        store.save_agent_reward(AGENT, 0.75, {}, decision_id)
        store.save_q_values(AGENT, {"code": {"coder": 1.0}})
        store.save_version(AGENT, b"state", "v1")
    probe = subprocess.run(
        [*_namespace_command(), "sh", "-c", f"mount --bind {source} {mount_point}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private read-only mount here: {probe.stderr.strip()}")
    return source, mount_point


def store_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_reads_work_and_every_write_is_refused_naming_the_folder(
    read_only_store: tuple[Path, Path], subprocess_env: dict[str, str]
) -> None:
    source, mount_point = read_only_store
    before = store_bytes(source)
    result = _run_read_only(
        source, mount_point, [sys.executable, "-c", CHILD, str(mount_point)], subprocess_env
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["read_only"] is True
    assert seen["rewards"] == [0.75]
    assert seen["q_table"] == {"code": {"coder": 1.0}}
    assert seen["agents"] == [AGENT]
    assert seen["stats"] == 1
    assert seen["decision"] == "coder"
    assert seen["versions"] == [1]
    assert seen["dumped"] > 0
    for name, outcome in seen["writes"].items():
        assert outcome.startswith(f"{mount_point} is read-only"), (name, outcome)
        assert "writing is refused" in outcome
    assert store_bytes(source) == before


def test_the_cli_reads_and_refuses_writes_in_one_line(
    read_only_store: tuple[Path, Path], subprocess_env: dict[str, str]
) -> None:
    source, mount_point = read_only_store
    cli = [sys.executable, "-c", "from rlmemory.cli import main; main()"]
    env = {**subprocess_env, "COLUMNS": "400"}

    stats = _run_read_only(source, mount_point, [*cli, "stats", "--db", str(mount_point)], env)
    write = _run_read_only(
        source, mount_point, [*cli, "correct-reward", "1", "0.5", "--db", str(mount_point)], env
    )

    assert stats.returncode == 0, stats.stderr
    assert AGENT in stats.stdout
    assert write.returncode == 1, write.stdout + write.stderr
    assert "Traceback" not in write.stderr + write.stdout
    assert f"{mount_point} is read-only" in write.stderr
    assert len(write.stderr.strip().splitlines()) == 1


def test_an_unfinished_transaction_on_read_only_media_is_a_typed_error(
    read_only_store: tuple[Path, Path], subprocess_env: dict[str, str]
) -> None:
    source, mount_point = read_only_store
    journal = source / "journal" / "journal.jsonl"
    journal.parent.mkdir(exist_ok=True)
    journal.write_text(json.dumps({"append": "index/rewards.jsonl", "size": 0}) + "\n")
    child = (
        "import sys\n"
        "from rlmemory.errors import ReadOnlyStoreError\n"
        "from rlmemory.store.files import FileBackedMemoryDatabase\n"
        "try:\n"
        "    FileBackedMemoryDatabase(sys.argv[1])\n"
        "except ReadOnlyStoreError as error:\n"
        "    print(error)\n"
    )
    result = _run_read_only(
        source, mount_point, [sys.executable, "-c", child, str(mount_point)], subprocess_env
    )
    assert result.returncode == 0, result.stderr
    assert "unfinished transaction" in result.stdout and str(mount_point) in result.stdout
    assert journal.stat().st_size > 0


FULL_DISK_CHILD = textwrap.dedent(
    """
    import json, sys
    from rlmemory.errors import StoreError
    from rlmemory.store.files import FileBackedMemoryDatabase

    folder = sys.argv[1] + "/store"
    acknowledged, error = [], None
    with FileBackedMemoryDatabase(folder, lock_timeout=5) as store:
        for index in range(1000):
            try:
                acknowledged.append(store.save_agent_reward("router", 1.0, {"pad": "x" * 20000}))
            except StoreError as caught:
                error = str(caught)
                break
    with FileBackedMemoryDatabase(folder, lock_timeout=5) as store:
        stored = [row["id"] for row in store.get_agent_rewards("router", limit=1000)]
    print(json.dumps({"acknowledged": acknowledged, "stored": stored, "error": error}))
    """
)


def test_a_full_disk_is_a_store_error_naming_the_file_and_keeps_acknowledged_rows(
    read_only_store: tuple[Path, Path], subprocess_env: dict[str, str]
) -> None:
    _, mount_point = read_only_store
    script = (
        f"mount -t tmpfs -o size=256k tmpfs {shlex.quote(str(mount_point))} && "
        f"exec {shlex.join([sys.executable, '-c', FULL_DISK_CHILD, str(mount_point)])}"
    )
    result = subprocess.run(
        [*_namespace_command(), "sh", "-c", script],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["error"] is not None, "the 256 KiB disk never filled up"
    assert "writing" in seen["error"] and "No space left on device" in seen["error"]
    assert seen["acknowledged"], "not one reward fitted"
    assert sorted(seen["stored"]) == seen["acknowledged"]
