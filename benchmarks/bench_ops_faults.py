"""Key rotation leaves no old secret on disk; killed backups leave nothing behind.

Part 1 writes ``--rows`` interactions whose texts each hold a unique secret into a
store (SQLite file, files folder, and PostgreSQL when ``--postgres URL`` is given),
counts how many secrets the raw storage holds, rotates the store from plain to a key
and from that key to another (:func:`rlmemory.ops.rotation.rotate_key`, which rewrites
the storage afterwards), and counts again: plaintext secrets after the first rotation,
first-key ciphertexts after the second. It prints the time of each rotation. Reading
PostgreSQL's relation files needs root on the server's machine (``runuser -u
postgres -- psql`` reports the data directory and runs ``CHECKPOINT``).

Part 2 backs a SQLite store up in a child process, over and over, and SIGKILLs it at
a random moment ``--kills`` times for each kind of backup (archive, SQLite copy). It
counts the kills that left a temporary file, checks the previous backup still verifies
after each kill, and then whether the next backup leaves anything but itself.

Run::

    PYTHONPATH=src python benchmarks/bench_ops_faults.py --rows 10000 --kills 30 \\
        --postgres postgresql+psycopg://rlmemory:rlmemory@127.0.0.1:55432/rlmemory_test
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bandit_common import machine_description, markdown_table

from rlmemory.ops.backup import backup, verify
from rlmemory.ops.crypto import generate_key
from rlmemory.ops.rotation import rotate_key
from rlmemory.store import open_store

CHILD = """
import sys
from rlmemory.ops.backup import backup
from rlmemory.store import open_store
store = open_store(sys.argv[1])
print("ready", flush=True)
while True:
    backup(store, sys.argv[2], kind=sys.argv[3])
    print("done", flush=True)
"""


# ------------------------------------------------------------------ part 1
def _superuser(port: int, sql: str) -> str:
    command = ["runuser", "-u", "postgres", "--", "psql", "-h", "127.0.0.1", "-p", str(port)]
    return subprocess.run(
        [*command, "-Atc", sql], check=True, capture_output=True, text=True
    ).stdout.strip()


def _postgres_files(url: str) -> Iterator[Path]:
    parsed = sa.make_url(url)
    port = parsed.port or 5432
    _superuser(port, "CHECKPOINT")
    data = Path(_superuser(port, "SHOW data_directory"))
    oid = _superuser(port, f"SELECT oid FROM pg_database WHERE datname = '{parsed.database}'")
    yield from (path for path in (data / "base" / oid).iterdir() if path.is_file())


def _raw(location: str) -> bytes:
    if location.startswith("postgresql"):
        paths = list(_postgres_files(location))
    elif location.startswith("files://"):
        paths = [p for p in Path(location[8:]).rglob("*") if p.is_file()]
    else:
        paths = [p for p in (Path(location), Path(location + "-wal")) if p.exists()]
    return b"".join(path.read_bytes() for path in paths)


def _fill(location: str, rows: int) -> list[bytes]:
    secrets = [f"secret-{number:06d}-{uuid.uuid4().hex[:8]}".encode() for number in range(rows)]
    with open_store(location) as store, store.transaction():
        for secret in secrets:
            store.save_agent_interaction(
                "router", f"route {secret.decode()} " + "x" * 40, "ok", None
            )
    return secrets


def _tokens(location: str, key: str) -> list[bytes]:
    with open_store(location, encryption_key=key) as store, store.snapshot() as read_table:
        return [row["request"][20:60].encode() for row in read_table("agent_interactions")]


def _found(raw: bytes, pattern: bytes, needles: list[bytes], cut: slice) -> int:
    """How many of ``needles`` occur in ``raw`` (one regex pass, not one scan each)."""
    present = {match[cut] for match in re.findall(pattern, raw)}
    return len(present & set(needles))


SECRET = rb"secret-\d{6}-[0-9a-f]{8}"
TOKEN = rb"rlm:enc:v1:[0-9a-f]{8}:[A-Za-z0-9_=-]{40,}"


def rotation_row(backend: str, location: str, rows: int) -> list[object]:
    secrets = _fill(location, rows)
    whole = slice(None)
    before = _found(_raw(location), SECRET, secrets, whole)
    first, second = generate_key(), generate_key()
    started = time.perf_counter()
    rotate_key(location, new_key=first)
    to_key = time.perf_counter() - started
    plain_after = _found(_raw(location), SECRET, secrets, whole)
    tokens = _tokens(location, first)
    started = time.perf_counter()
    rotate_key(location, new_key=second, old_key=first)
    to_new_key = time.perf_counter() - started
    old_after = _found(_raw(location), TOKEN, tokens, slice(20, 60))
    return [backend, rows, before, plain_after, f"{to_key:.2f}", old_after, f"{to_new_key:.2f}"]


# ------------------------------------------------------------------ part 2
def kill_row(kind: str, kills: int, folder: Path, env: dict[str, str]) -> list[object]:
    live = str(folder / "live.db")
    target = (
        folder / f"backups-{kind}" / ("nightly.db" if kind == "sqlite" else "nightly.rlmbackup")
    )
    randomness = random.Random(7)
    left_temporaries = verified_after_kill = 0
    for _ in range(kills):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, live, str(target), kind],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        child.stdout.readline()
        for _ in range(randomness.randint(1, 2)):
            child.stdout.readline()
        time.sleep(randomness.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        left_temporaries += any(path != target for path in target.parent.iterdir())
        verified_after_kill += target.exists() and verify(target).ok
    with open_store(live) as store:
        backup(store, target, kind=kind)
    leftovers = [path.name for path in target.parent.iterdir() if path != target]
    return [kind, kills, left_temporaries, verified_after_kill, len(leftovers), verify(target).ok]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--postgres", help="a database URL on a server on this machine")
    options = parser.parse_args()
    print(machine_description(["sqlalchemy", "psycopg", "cryptography", "zstandard"]))
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        rows = [
            rotation_row("sqlite", str(folder / "rot.db"), options.rows),
            rotation_row("files", "files://" + str(folder / "rot"), options.rows),
        ]
        if options.postgres:
            rows.append(_postgres_rotation(options.postgres, options.rows))
        print("\nPart 1: secrets in the raw storage around `keys rotate`\n")
        header = ["backend", "rows", "plain before", "plain after", "s (plain->key)"]
        header += ["old-key tokens after", "s (key->key)"]
        print(markdown_table(header, rows))

        with open_store(str(folder / "live.db")) as store, store.transaction():
            for number in range(3000):
                store.save_agent_interaction("router", f"request {number} " * 8, "reply", None)
        env = dict(os.environ)
        print(f"\nPart 2: {options.kills} SIGKILLs of a looping backup per kind\n")
        header = ["kind", "kills", "left a temporary", "previous backup verified"]
        header += ["leftovers after next run", "next backup verifies"]
        kill_rows = [kill_row(kind, options.kills, folder, env) for kind in ("archive", "sqlite")]
        print(markdown_table(header, kill_rows))


def _postgres_rotation(server_url: str, rows: int) -> list[object]:
    import psycopg

    url = sa.make_url(server_url)
    name = f"rlm_bench_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        location = url.set(database=name).render_as_string(hide_password=False)
        return rotation_row("postgresql", location, rows)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
