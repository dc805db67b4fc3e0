"""Consistent online backups, verification and restore, within and across backends.

Two kinds of backup:

* **SQLite copy** (``backup(store, "copy.db")`` on a SQLite store): SQLite's own online
  backup API copies the database file page by page from one read snapshot, while
  writers keep running. The copy is a plain SQLite database.
* **Portable archive** (any other path, any backend): a tar file holding
  ``manifest.json`` and one zstandard-compressed JSON Lines member per table
  (``tables/<table>.jsonl.zst``), every row with its id. The manifest records the
  archive format, the schema version, the source backend, row counts and the SHA-256
  of every member. The rows are read from one consistent snapshot of the store.

:func:`restore` loads either kind into any store (SQLite, PostgreSQL or files), so a
SQLite store moves to PostgreSQL and back. It checks the whole backup before writing
anything; the target must be empty unless ``replace=True``, which first saves a version
of every agent in the target and keeps the target's versions. Encrypted values are
copied as they are stored (ciphertext), so an archive of an encrypted store stays
encrypted and needs the same key once restored.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlmemory.errors import CorruptStoreError, EncryptionKeyError, SchemaVersionError
from rlmemory.ops.crypto import encrypted_key_id
from rlmemory.ops.progress import ProgressCallback
from rlmemory.ops.progress import report as report_progress
from rlmemory.store.base import SCHEMA_VERSION, MemoryStore, Row

ARCHIVE_FORMAT = "rlmemory-archive"
ARCHIVE_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_SQLITE_MAGIC = b"SQLite format 3\x00"


# ------------------------------------------------------------------ reports
@dataclass(frozen=True)
class BackupReport:
    """A written backup: its path, kind (``sqlite`` or ``archive``) and rows per table."""

    path: Path
    kind: str
    counts: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class VerifyReport:
    """The result of :func:`verify`: ``ok`` and, if not, what is wrong."""

    path: Path
    kind: str
    ok: bool
    schema_version: int | None
    counts: dict[str, int]
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore` loaded, and the versions saved in the target before it."""

    source: Path
    target: str
    counts: dict[str, int]
    saved_versions: dict[str, int]


# ------------------------------------------------------------------- backup
def backup(
    store: MemoryStore,
    path: str | os.PathLike[str],
    *,
    kind: str = "auto",
    progress: ProgressCallback | None = None,
) -> BackupReport:
    """Back up ``store`` to ``path``; ``progress(tables done, tables)`` as it goes.

    ``kind`` is ``"sqlite"`` (a SQLite copy; SQLite stores only), ``"archive"``, or
    ``"auto"``: a SQLite copy when the store is SQLite and ``path`` ends in ``.db``,
    ``.sqlite`` or ``.sqlite3``, else an archive. An existing file at ``path`` is
    replaced only once the new backup is complete.
    """
    target = Path(path)
    if kind not in {"auto", "sqlite", "archive"}:
        raise ValueError(f"kind must be auto, sqlite or archive; got {kind!r}")
    sqlite_file = sqlite_path_of(store)
    if kind == "auto":
        kind = "sqlite" if sqlite_file and target.suffix.lower() in SQLITE_SUFFIXES else "archive"
    if kind == "sqlite" and sqlite_file is None:
        raise ValueError(f"{store.location} is not a SQLite store; use an archive backup")
    started = time.perf_counter()
    if kind == "sqlite":
        assert sqlite_file is not None
        report_progress(progress, 0, 1)
        sqlite_copy(sqlite_file, target)
        counts = _sqlite_counts(target)
        report_progress(progress, 1, 1)
    else:
        counts = write_archive(store, target, progress=progress)
    return BackupReport(target, kind, counts, time.perf_counter() - started)


def sqlite_path_of(store: MemoryStore) -> Path | None:
    """The database file of a SQLite store, or None for other backends."""
    path = getattr(store, "sqlite_path", None)
    return None if path is None else Path(path)


def sqlite_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy a live SQLite database with SQLite's online backup API (one read snapshot).

    Writers are not blocked (WAL mode); the copy is written beside ``target`` and renamed
    into place when complete.
    """
    destination = Path(target)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    reader = sqlite3.connect(f"file:{Path(source)}?mode=ro", uri=True, timeout=60)
    try:
        writer = sqlite3.connect(partial)
        try:
            # pages=-1 copies everything in one step from one snapshot; stepping in
            # chunks would restart whenever another connection writes.
            reader.backup(writer, pages=-1)
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()
    finally:
        reader.close()
    os.replace(partial, destination)
    return destination


def _encode_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$b64"}:
        return base64.b64decode(value["$b64"])
    return value


def _encode_row(row: Mapping[str, Any]) -> bytes:
    document = {key: _encode_value(value) for key, value in row.items()}
    return (json.dumps(document, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_archive(
    store: MemoryStore,
    path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Write every row of ``store`` into a portable archive at ``path``; return row counts."""
    from rlmemory.ops.compression import _zstd

    zstandard = _zstd()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    members: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=".rlmemory-backup-", dir=target.parent) as scratch:
        with store.snapshot() as read_table:
            tables = store.backup_tables()
            for done, table in enumerate(tables):
                report_progress(progress, done, len(tables))
                member = f"tables/{table}.jsonl.zst"
                local = Path(scratch) / f"{table}.jsonl.zst"
                count = 0
                with local.open("wb") as raw:
                    writer = zstandard.ZstdCompressor(level=3).stream_writer(raw)
                    for row in read_table(table):
                        writer.write(_encode_row(row))
                        count += 1
                    writer.flush(zstandard.FLUSH_FRAME)
                counts[table] = count
                members[table] = {
                    "member": member,
                    "rows": count,
                    "sha256": _sha256(local),
                    "bytes": local.stat().st_size,
                }
        manifest = {
            "format": ARCHIVE_FORMAT,
            "format_version": ARCHIVE_VERSION,
            "schema_version": store.schema_version,
            "created": time.time(),
            "source": store.location,
            "source_backend": type(store).__name__,
            "tables": members,
        }
        partial = Path(scratch) / "archive.tar"
        with tarfile.open(partial, "w") as archive:
            data = json.dumps(manifest, indent=2).encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(time.time())
            archive.addfile(info, io.BytesIO(data))
            for table, entry in members.items():
                archive.add(Path(scratch) / f"{table}.jsonl.zst", arcname=entry["member"])
        os.replace(partial, target)
    report_progress(progress, len(members), len(members))
    return counts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------- verify
def backup_kind(path: str | os.PathLike[str]) -> str:
    """``sqlite`` or ``archive``, from the file's first bytes; else a ``ValueError``."""
    source = Path(path)
    try:
        with source.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        raise FileNotFoundError(f"backup {source} does not exist") from None
    if head == _SQLITE_MAGIC:
        return "sqlite"
    if tarfile.is_tarfile(source):
        return "archive"
    raise CorruptStoreError(
        f"{source} is neither a SQLite database nor an rlmemory archive", str(source)
    )


def verify(
    path: str | os.PathLike[str], *, progress: ProgressCallback | None = None
) -> VerifyReport:
    """Check a backup without loading it anywhere; ``progress(tables done, tables)``.

    Archives: the manifest, every member's SHA-256 and row count, and that every row
    is JSON. SQLite copies: ``PRAGMA integrity_check``, the schema version and counts.
    """
    source = Path(path)
    kind = backup_kind(source)
    if kind == "sqlite":
        return _verify_sqlite(source)
    return _verify_archive(source, progress)


def _verify_sqlite(source: Path) -> VerifyReport:
    problems: list[str] = []
    version = None
    counts: dict[str, int] = {}
    try:
        connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            result = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                problems.extend(f"integrity_check: {line}" for line in result[:10])
            row = connection.execute(
                "SELECT value FROM rlmemory_meta WHERE key = 'schema_version'"
            ).fetchone()
            version = None if row is None else int(row[0])
            if version is None:
                problems.append("no rlmemory schema version recorded")
        finally:
            connection.close()
        counts = _sqlite_counts(source)
    except sqlite3.DatabaseError as error:
        problems.append(f"not a readable SQLite database: {error}")
    return VerifyReport(source, "sqlite", not problems, version, counts, problems)


def _sqlite_counts(source: Path) -> dict[str, int]:
    connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        names = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {
            name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names
        }
    finally:
        connection.close()


def _read_manifest(archive: tarfile.TarFile, source: Path) -> dict[str, Any]:
    try:
        handle = archive.extractfile(MANIFEST)
    except KeyError:
        raise CorruptStoreError(f"{source} has no {MANIFEST}", str(source)) from None
    if handle is None:
        raise CorruptStoreError(f"{source}: {MANIFEST} is not a file", str(source))
    try:
        manifest = json.loads(handle.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptStoreError(f"{source}: {MANIFEST} is not JSON: {error}", str(source)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise CorruptStoreError(f"{source} is not an rlmemory archive", str(source))
    if manifest.get("format_version", 0) > ARCHIVE_VERSION:
        raise CorruptStoreError(
            f"{source} has archive format {manifest.get('format_version')}; this rlmemory "
            f"reads up to {ARCHIVE_VERSION}; upgrade rlmemory",
            str(source),
        )
    return manifest


def _iter_member_rows(archive: tarfile.TarFile, member: str) -> Iterator[Row]:
    from rlmemory.ops.compression import _zstd

    handle = archive.extractfile(member)
    if handle is None:
        raise KeyError(member)
    reader = _zstd().ZstdDecompressor().stream_reader(handle)
    text = io.TextIOWrapper(reader, encoding="utf-8")
    for line in text:
        document = json.loads(line)
        yield {key: _decode_value(value) for key, value in document.items()}


def _verify_archive(source: Path, progress: ProgressCallback | None = None) -> VerifyReport:
    problems: list[str] = []
    counts: dict[str, int] = {}
    version = None
    try:
        with tarfile.open(source, "r") as archive:
            manifest = _read_manifest(archive, source)
            version = manifest.get("schema_version")
            entries = manifest.get("tables", {})
            for done, (table, entry) in enumerate(entries.items()):
                report_progress(progress, done, len(entries))
                member = entry.get("member")
                try:
                    info = archive.getmember(member)
                except KeyError:
                    problems.append(f"{table}: member {member} is missing")
                    continue
                handle = archive.extractfile(info)
                digest = hashlib.sha256(handle.read() if handle else b"").hexdigest()
                if digest != entry.get("sha256"):
                    problems.append(f"{table}: SHA-256 mismatch (member altered or damaged)")
                    continue
                try:
                    count = sum(1 for _ in _iter_member_rows(archive, member))
                except (ValueError, OSError) as error:  # JSON or zstd errors
                    problems.append(f"{table}: rows cannot be read: {error}")
                    continue
                counts[table] = count
                if count != entry.get("rows"):
                    problems.append(f"{table}: {count} rows, manifest says {entry.get('rows')}")
    except (tarfile.TarError, OSError, CorruptStoreError) as error:
        problems.append(str(error))
    report_progress(progress, len(counts), len(counts))
    return VerifyReport(source, "archive", not problems, version, counts, problems)


# ------------------------------------------------------------------ restore
@contextlib.contextmanager
def _open_rows(source: Path) -> Iterator[tuple[int, dict[str, Iterable[Row]]]]:
    """Schema version and, per table, an iterable of rows of the backup at ``source``."""
    kind = backup_kind(source)
    if kind == "archive":
        with tarfile.open(source, "r") as archive:
            manifest = _read_manifest(archive, source)
            tables = {
                table: _Rows(archive, entry["member"])
                for table, entry in manifest["tables"].items()
            }
            yield int(manifest["schema_version"]), tables
        return
    from rlmemory.store.sql import MemoryDatabase

    # Opening may migrate an older copy; work on a scratch copy, never the backup.
    with tempfile.TemporaryDirectory(prefix=".rlmemory-restore-") as scratch:
        copy = Path(scratch) / "backup.db"
        shutil.copyfile(source, copy)
        with MemoryDatabase(copy) as backup_store, backup_store.snapshot() as read_table:
            tables = {
                table: _Rows(None, table, read_table) for table in backup_store.backup_tables()
            }
            yield backup_store.schema_version, tables


class _Rows:
    """Re-iterable rows of one table of a backup."""

    def __init__(self, archive: tarfile.TarFile | None, member: str, reader: Any = None) -> None:
        self._archive, self._member, self._reader = archive, member, reader

    def __iter__(self) -> Iterator[Row]:
        if self._archive is not None:
            return _iter_member_rows(self._archive, self._member)
        return iter(self._reader(self._member))


def restore(
    path: str | os.PathLike[str],
    target: MemoryStore,
    *,
    replace: bool = False,
    progress: ProgressCallback | None = None,
) -> RestoreReport:
    """Load the backup at ``path`` into ``target`` (any backend).

    ``progress(tables done, tables)`` is called as the tables are verified and loaded.

    The backup is verified first; a damaged backup changes nothing. ``target`` must
    hold no data unless ``replace`` is true: then every agent in it is checkpointed
    ("auto: before restore"), its data other than versions is deleted and the backup's
    rows are loaded, all in one transaction; the backup's versions are added after the
    target's own (those already present are not duplicated).
    """
    from rlmemory.ops.versions import checkpoint

    source = Path(path)
    # Progress runs over twice the tables: each is verified, then loaded.
    steps = len(target.backup_tables())
    report = verify(
        source,
        progress=None
        if progress is None
        else lambda done, _: progress(min(done, steps), 2 * steps),
    )
    if not report.ok:
        raise CorruptStoreError(
            f"backup {source} failed verification: {'; '.join(report.problems)}", str(source)
        )
    if report.schema_version is not None and report.schema_version > SCHEMA_VERSION:
        raise SchemaVersionError(str(source), report.schema_version, SCHEMA_VERSION)
    existing_agents = target.list_agents()
    if existing_agents and not replace:
        raise ValueError(
            f"{target.location} already holds data for {len(existing_agents)} agent(s) "
            f"({', '.join(existing_agents[:5])}); restore into an empty store, or pass "
            "replace=True (--replace) to replace it"
        )
    saved: dict[str, int] = {}
    counts: dict[str, int] = {}
    with _open_rows(source) as (_version, tables), target.transaction():
        for agent_name in existing_agents:
            saved[agent_name] = checkpoint(
                target, agent_name, f"auto: before restore from {source.name}"
            )
        if existing_agents:
            target.clear_data(keep_versions=True)
        key_ids: set[str] = set()
        for done, table in enumerate(target.backup_tables()):
            report_progress(progress, steps + done, 2 * steps)
            rows = tables.get(table)
            if rows is None:
                continue
            if table == "agent_versions" and existing_agents:
                rows = _new_versions(target, rows)
            counts[table] = target.load_rows(table, _noting_key_ids(rows, key_ids))
        if key_ids and target.encryption_key_id not in key_ids:
            # Raising here rolls the whole restore back: nothing is left half-readable.
            raise EncryptionKeyError(
                f"{source} holds values encrypted with key {', '.join(sorted(key_ids))}; "
                f"open {target.location} with that key to restore it",
                target.location,
            )
    report_progress(progress, 2 * steps, 2 * steps)
    return RestoreReport(source, target.location, counts, saved)


def _noting_key_ids(rows: Iterable[Row], key_ids: set[str]) -> Iterator[Row]:
    """Pass rows through, collecting the key ids of encrypted values."""
    for row in rows:
        for value in row.values():
            kid = encrypted_key_id(value) if isinstance(value, str | bytes) else None
            if kid is not None:
                key_ids.add(kid)
        yield row


def _new_versions(target: MemoryStore, rows: Iterable[Row]) -> Iterator[Row]:
    """Backup version rows not already in ``target``, renumbered after its newest."""
    with target.snapshot() as read_table:
        present = list(read_table("agent_versions"))
    seen = {(row["agent_name"], row["created"], bytes(row["payload"])) for row in present}
    newest: dict[str, int] = {}
    for row in present:
        newest[row["agent_name"]] = max(newest.get(row["agent_name"], 0), int(row["version"]))
    for row in rows:
        key = (row["agent_name"], row["created"], bytes(row["payload"]))
        if key in seen:
            continue
        newest[row["agent_name"]] = newest.get(row["agent_name"], 0) + 1
        yield {**row, "version": newest[row["agent_name"]]}
