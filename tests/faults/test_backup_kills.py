"""A backup killed with SIGKILL leaves at most one temporary file, which the next run
cleans, and never a damaged backup under the real name.

A child process backs up a store to one path in a loop; the parent kills it at a random
moment, and counts the kills that landed while a backup was being written (something
beside the backup is left in the folder). The loop runs until enough kills landed mid-write, bounded
in attempts. Then one more backup must succeed, leave only the backup in the folder, and
verify. Archives are tested from every backend (the temporary files are the ops layer's,
the backend only changes how rows are read); SQLite copies exist for SQLite only.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rlmemory.ops.backup import backup, verify

WORKER = Path(__file__).with_name("backup_worker.py")
KILLS_MID_WRITE = 4
MAX_ATTEMPTS = 40


def _fill(store) -> None:
    with store.transaction():
        for number in range(1500):
            decision = store.save_agent_decision("router", f"s{number}", "a", {"a": 1.0}, 0.5)
            store.save_agent_reward("router", 0.5, {"task": 1.0}, decision)
            store.save_agent_interaction("router", f"request {number} " * 8, "reply", None)


def _kill_backups_mid_write(location: str, target: Path, kind: str, env: dict) -> int:
    """Kill looping backups until KILLS_MID_WRITE landed mid-write; return the attempts."""
    randomness = random.Random(20261201)
    landed = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        child = subprocess.Popen(
            [sys.executable, str(WORKER), location, str(target), kind],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        try:
            assert child.stdout.readline().strip() == "ready"
            for _ in range(randomness.randint(1, 3)):  # let some backups complete first
                assert child.stdout.readline().startswith("backup")
            # The kill lands somewhere inside the next backup: timing is the point here.
            subprocess.run(["sleep", f"{randomness.uniform(0.0, 0.15):.3f}"], check=True)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            child.stdout.close()
        if any(path != target for path in target.parent.iterdir()):  # temporaries left
            landed += 1
            if target.exists():  # a complete earlier backup is never damaged by a kill
                assert verify(target).ok
        if landed >= KILLS_MID_WRITE:
            return attempt
    pytest.fail(f"only {landed} of {MAX_ATTEMPTS} kills landed mid-write")


@pytest.mark.slow
def test_a_killed_archive_backup_leaves_nothing_after_the_next_run(
    make_store, tmp_path, subprocess_env
):
    store = make_store()
    _fill(store)
    folder = tmp_path / "backups"
    target = folder / "nightly.rlmbackup"

    _kill_backups_mid_write(make_store.location, target, "archive", subprocess_env)
    backup(store, target)

    assert sorted(path.name for path in folder.iterdir()) == ["nightly.rlmbackup"]
    assert verify(target).ok and verify(target).counts["agent_rewards"] == 1500


@pytest.mark.slow
def test_a_killed_sqlite_copy_leaves_nothing_after_the_next_run(tmp_path, subprocess_env):
    from rlmemory.store import open_store

    with open_store(str(tmp_path / "live.db")) as store:
        _fill(store)
        folder = tmp_path / "backups"
        target = folder / "nightly.db"

        _kill_backups_mid_write(str(tmp_path / "live.db"), target, "sqlite", subprocess_env)
        backup(store, target)

    assert sorted(path.name for path in folder.iterdir()) == ["nightly.db"]
    assert verify(target).ok


def test_a_second_backup_to_the_same_path_while_one_runs_is_refused(store, tmp_path):
    import fcntl

    from rlmemory.errors import FileAccessError

    target = tmp_path / "nightly.rlmbackup"
    with open(tmp_path / ".nightly.rlmbackup.partial", "a+b") as running:
        fcntl.flock(running.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running backup
        with pytest.raises(FileAccessError, match=r"another backup to .* is running"):
            backup(store, target)
        assert (tmp_path / ".nightly.rlmbackup.partial").exists()  # the running one's file
    assert not target.exists()
    backup(store, target)
    assert sorted(path.name for path in tmp_path.iterdir() if "nightly" in path.name) == [
        "nightly.rlmbackup"
    ]
