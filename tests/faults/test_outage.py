"""During a PostgreSQL outage every call raises a typed StoreError; afterwards the store reconnects.

The test starts its own throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl`` as the
``postgres`` user, a free port on 127.0.0.1, data under a temporary folder) — never the
shared test server — opens a store on it, stops the server, and checks that every kind
of call raises :class:`~rlmemory.errors.StoreError` naming the URL without its password,
with no raw driver error and no SQLAlchemy warning; then starts the server again and
checks that the same store object works and lost nothing committed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import running_in_ci
from rlmemory.errors import StoreError

BINDIR = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
PASSWORD = "outage-secret"
COMMAND_TIMEOUT = 60

pytestmark = pytest.mark.postgres


def as_postgres(*command: str) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *command],
        check=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
        cwd="/",
    )


class Cluster:
    """A private PostgreSQL cluster on 127.0.0.1 that the test may stop and start."""

    def __init__(self, folder: Path) -> None:
        assert BINDIR is not None
        self.data = folder / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.data.mkdir()
        shutil.chown(self.data, "postgres", "postgres")
        as_postgres(str(BINDIR / "initdb"), "-D", str(self.data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        self.url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data} -c fsync=off"
        log = str(self.data / "server.log")
        as_postgres(str(BINDIR / "pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-t", "30",
                    "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        as_postgres(str(BINDIR / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                    "-t", "30", "stop")  # fmt: skip


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if BINDIR is None or shutil.which("runuser") is None or os.geteuid() != 0:
        reason = "needs PostgreSQL server binaries and root (to run them as postgres)"
        if running_in_ci():
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run, not skip)")
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="rlmemory-outage-"))
    folder.chmod(0o755)  # the postgres user must reach its data folder
    cluster = Cluster(folder)
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _in_transaction(store: Any) -> None:
    with store.transaction():
        store.lock_learner("router")
        store.save_agent_reward("router", 3.0, {})


CALLS: dict[str, Callable[[Any], object]] = {
    "save_agent_reward": lambda store: store.save_agent_reward("router", 2.0, {}),
    "get_agent_rewards": lambda store: store.get_agent_rewards("router"),
    "save_q_values": lambda store: store.save_q_values("router", {"s": {"a": 1.0}}),
    "get_q_values": lambda store: store.get_q_values("router", "s"),
    "get_q_table": lambda store: store.get_q_table("router"),
    "agent_stats": lambda store: store.agent_stats("router"),
    "list_agents": lambda store: store.list_agents(),
    "transaction": _in_transaction,
}


def test_calls_during_an_outage_raise_store_error_and_the_store_reconnects(
    cluster: Cluster,
) -> None:
    from rlmemory.store.sql import MemoryDatabase

    with MemoryDatabase(cluster.url, busy_timeout=5) as store:
        store.save_agent_reward("router", 1.0, {})
        cluster.stop()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for name, call in CALLS.items():
                for _attempt in range(2):  # the first call finds the connection dead
                    with pytest.raises(StoreError) as raised:
                        call(store)
                    message = str(raised.value)
                    assert f"127.0.0.1:{cluster.port}" in message, (name, message)
                    assert PASSWORD not in message, (name, message)
                    assert raised.value.location == store.location
        assert [str(w.message) for w in caught] == []
        cluster.start()
        store.save_agent_reward("router", 4.0, {})
        assert [row["reward"] for row in store.get_agent_rewards("router")] == [4.0, 1.0]
        with store.transaction():
            store.lock_learner("router")
            store.save_q_values("router", {"s": {"a": 0.5}})
        assert store.get_q_values("router", "s") == {"a": 0.5}
    with MemoryDatabase(cluster.url) as reopened:
        assert reopened.agent_stats("router")["rewards"] == 2
