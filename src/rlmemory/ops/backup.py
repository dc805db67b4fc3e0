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
import functools
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, SupportsIndex, SupportsInt

from rlmemory.errors import (
    CorruptStoreError,
    EncryptionKeyError,
    FileAccessError,
    SchemaVersionError,
    StoreError,
)
from rlmemory.ops.crypto import encrypted_key_id
from rlmemory.ops.progress import ProgressCallback
from rlmemory.ops.progress import report as report_progress
from rlmemory.store._operations import BACKUP_TABLES, SETTINGS_TABLE
from rlmemory.store.base import SCHEMA_VERSION, MemoryStore, Row
from rlmemory.store.locations import mask_credentials
from rlmemory.store.sql.backup_rows import BackupRowCheck

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock on the partial file
    fcntl = None  # type: ignore[assignment]

ARCHIVE_FORMAT = "rlmemory-archive"
#: Archive format: 2 adds the settings table (format 1 archives never hold it).
ARCHIVE_VERSION = 2
MANIFEST = "manifest.json"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Tables that archives of an older schema version do not have (table: first version).
TABLE_SINCE_SCHEMA = {"learner_steps": 3, SETTINGS_TABLE: 4}
#: Tables that archives of an older format do not have (table: first format); format 1
#: archives of schema 4 and 5 were written before backups carried the settings.
TABLE_SINCE_FORMAT = {SETTINGS_TABLE: 2}
#: The ``rlmemory_meta`` key under which a SQLite copy records the checksum of its rows.
DIGEST_KEY = "backup_rows_sha256"


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
    ``.sqlite`` or ``.sqlite3``, else an archive. The backup is written under one
    temporary name beside ``path`` (``.NAME.partial``) and renamed into place when
    complete, so an existing file at ``path`` is replaced only by a complete backup; a
    temporary file left by a run that was killed is reused and so cleaned by the next
    run. A folder that cannot be written, or another backup to the same ``path`` still
    running, is a :class:`~rlmemory.errors.FileAccessError`.
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


@contextlib.contextmanager
def _partial_file(target: Path) -> Iterator[tuple[Path, BinaryIO]]:
    """The one temporary name a backup to ``target`` is written under, locked and empty.

    On success the caller's content is renamed to ``target``; on any failure the
    temporary file is removed. A kill leaves it behind, and the next backup to
    ``target`` truncates and reuses it (and the SQLite journal beside it).
    """
    partial = target.with_name(f".{target.name}.partial")
    handle = _locked_partial(partial, target)
    try:
        for stale in (partial.with_name(partial.name + "-journal"), *_legacy_scratch(target)):
            with contextlib.suppress(OSError):
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        handle.truncate(0)
        yield partial, handle
        handle.flush()
        os.fsync(handle.fileno())
        os.replace(partial, target)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _file_error("cannot write backup", target, error) from None
        raise
    finally:
        handle.close()


def _locked_partial(partial: Path, target: Path) -> BinaryIO:
    """Open ``partial`` holding its lock; refuse while another backup holds it."""
    while True:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = partial.open("a+b")
        except OSError as error:
            raise _file_error("cannot write backup", target, error) from None
        if fcntl is None:
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()  # the file is the running backup's: leave it alone
            raise FileAccessError(
                f"another backup to {target} is running ({partial.name} is locked)",
                str(target),
            ) from None
        # The backup that held the lock may have renamed this very file to ``target``
        # between our open and our lock: then it is the finished backup, not ours.
        try:
            current = partial.stat().st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(handle.fileno()).st_ino:
            return handle
        handle.close()


def _legacy_scratch(target: Path) -> list[Path]:
    """Scratch folders that rlmemory before 0.1.1 left beside a killed archive backup."""
    return sorted(target.parent.glob(".rlmemory-backup-*"))


def _file_error(doing: str, path: Path, error: OSError) -> FileAccessError:
    reason = error.strerror or str(error)
    return FileAccessError(f"{doing} {path}: {reason}", str(path))


def sqlite_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy a live SQLite database with SQLite's online backup API (one read snapshot).

    Writers are not blocked (WAL mode). The copy records a checksum of its rows
    (:func:`sqlite_rows_digest`) that :func:`verify` checks, and is written under
    ``.NAME.partial`` and renamed into place when complete.
    """
    destination = Path(target)
    with _partial_file(destination) as (partial, _handle):
        reader = sqlite3.connect(f"file:{Path(source)}?mode=ro", uri=True, timeout=60)
        try:
            writer = sqlite3.connect(partial, isolation_level=None)
            try:
                # pages=-1 copies everything in one step from one snapshot; stepping in
                # chunks would restart whenever another connection writes.
                reader.backup(writer, pages=-1)
                writer.execute("PRAGMA journal_mode=DELETE")
                digest = sqlite_rows_digest(writer)
                writer.execute(
                    "INSERT OR REPLACE INTO rlmemory_meta (key, value) VALUES (?, ?)",
                    (DIGEST_KEY, digest),
                )
            except sqlite3.OperationalError as error:  # disk full, I/O error, locked
                raise FileAccessError(
                    f"cannot copy {source} into {destination}: {error}", str(destination)
                ) from None
            except sqlite3.DatabaseError as error:  # the source is not a sound database
                raise CorruptStoreError(
                    f"cannot copy {source} into {destination}: {error}", str(source)
                ) from None
            finally:
                writer.close()
        finally:
            reader.close()
    return destination


def sqlite_rows_digest(connection: sqlite3.Connection) -> str:
    """SHA-256 of every row of every table of a SQLite copy (its own checksum excluded).

    Tables in name order, rows in primary-key order, each row as the ``repr`` of its
    values: the same rows always give the same digest, and any edited value changes it.
    """
    digest = hashlib.sha256()
    tables = [
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    for table in tables:
        info = connection.execute(f'PRAGMA table_info("{table}")').fetchall()
        keys = [row[1] for row in sorted(info, key=lambda row: row[5]) if row[5]]
        order = ", ".join(f'"{name}"' for name in keys) or ", ".join(
            str(position + 1) for position in range(len(info))
        )
        where = f" WHERE key != '{DIGEST_KEY}'" if table == "rlmemory_meta" else ""
        digest.update(f"\x00table {table}\n".encode())
        for row in connection.execute(f'SELECT * FROM "{table}"{where} ORDER BY {order}'):
            digest.update(repr(row).encode("utf-8", "backslashreplace") + b"\n")
    return digest.hexdigest()


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
    counts: dict[str, int] = {}
    members: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as scratch_files, _partial_file(target) as (_partial, handle):
        compressed: dict[str, BinaryIO] = {}
        with store.snapshot() as read_table:
            tables = store.backup_tables()
            for done, table in enumerate(tables):
                report_progress(progress, done, len(tables))
                # Anonymous temporary files: a kill leaves nothing of them behind.
                local = scratch_files.enter_context(tempfile.TemporaryFile(dir=target.parent))
                writer = zstandard.ZstdCompressor(level=3).stream_writer(local, closefd=False)
                count = 0
                for row in read_table(table):
                    writer.write(_encode_row(row))
                    count += 1
                writer.flush(zstandard.FLUSH_FRAME)
                compressed[table] = local
                counts[table] = count
                members[table] = {
                    "member": f"tables/{table}.jsonl.zst",
                    "rows": count,
                    "sha256": _sha256(local),
                    "bytes": local.tell(),
                }
        manifest = {
            "format": ARCHIVE_FORMAT,
            "format_version": ARCHIVE_VERSION,
            "schema_version": store.schema_version,
            "created": time.time(),
            "source": mask_credentials(store.location),
            "source_backend": type(store).__name__,
            "tables": members,
        }
        with tarfile.open(fileobj=handle, mode="w") as archive:
            _add_member(archive, MANIFEST, io.BytesIO(json.dumps(manifest, indent=2).encode()))
            for table, entry in members.items():
                _add_member(archive, entry["member"], compressed[table])
    report_progress(progress, len(members), len(members))
    return counts


def _add_member(archive: tarfile.TarFile, name: str, data: BinaryIO) -> None:
    data.seek(0, io.SEEK_END)
    info = tarfile.TarInfo(name)
    info.size, info.mtime = data.tell(), int(time.time())
    data.seek(0)
    archive.addfile(info, data)


def _sha256(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------- verify
def backup_kind(path: str | os.PathLike[str]) -> str:
    """``sqlite`` or ``archive``, from the file's first bytes.

    A missing or unreadable file is a :class:`~rlmemory.errors.FileAccessError`; a file
    that is neither a :class:`~rlmemory.errors.CorruptStoreError`.
    """
    source = Path(path)
    try:
        with source.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        raise FileAccessError(f"backup {source} does not exist", str(source)) from None
    except OSError as error:
        raise _file_error("cannot read backup", source, error) from None
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
    """Check a backup without loading it anywhere; :func:`restore` loads only what passes.

    ``progress(tables done, tables)`` is called as the members are checked.

    Archives: the manifest (format, schema version, an entry for every table of the
    format, each naming its member, row count and SHA-256), every member's SHA-256 and
    row count, and every row (JSON object, known columns, types, no NaN or infinity, no
    missing required value, no key twice). SQLite copies: ``PRAGMA integrity_check``,
    the schema version, and the checksum of all rows recorded when the copy was made.
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
            meta = dict(connection.execute("SELECT key, value FROM rlmemory_meta").fetchall())
            version = _schema_version(meta.get("schema_version"), problems)
            recorded = meta.get(DIGEST_KEY)
            if recorded is None:
                problems.append("no checksum of the rows is recorded (not an rlmemory backup copy)")
            elif sqlite_rows_digest(connection) != recorded:
                problems.append("rows do not match the recorded checksum (edited or damaged)")
        finally:
            connection.close()
        counts = _sqlite_counts(source)
    except sqlite3.DatabaseError as error:
        problems.append(f"not a readable rlmemory SQLite database: {error}")
    return VerifyReport(source, "sqlite", not problems, version, counts, problems)


def _as_int(value: object) -> int | None:
    """``int(value)``, or None when ``int`` refuses ``value``."""
    if isinstance(value, str | bytes | bytearray | SupportsInt | SupportsIndex):
        with contextlib.suppress(TypeError, ValueError):
            return int(value)
    return None


def _schema_version(value: object, problems: list[str]) -> int | None:
    version = _as_int(value)
    if version is None:
        problems.append(f"schema version {value!r} is not a number")
        return None
    if not 0 <= version <= SCHEMA_VERSION:
        problems.append(
            f"schema version {version}; this rlmemory reads up to {SCHEMA_VERSION} "
            "(upgrade rlmemory)"
        )
    return version


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
        manifest = json.loads(handle.read().decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptStoreError(f"{source}: {MANIFEST} is not JSON: {error}", str(source)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise CorruptStoreError(f"{source} is not an rlmemory archive", str(source))
    format_version = manifest.get("format_version", 0)
    if not isinstance(format_version, int) or format_version > ARCHIVE_VERSION:
        raise CorruptStoreError(
            f"{source} has archive format {format_version!r}; this rlmemory reads up to "
            f"{ARCHIVE_VERSION}; upgrade rlmemory",
            str(source),
        )
    return manifest


def _manifest_problems(manifest: Mapping[str, Any], version: int | None) -> list[str]:
    """What is wrong with the manifest's table list, before any member is read."""
    tables = manifest.get("tables")
    if not isinstance(tables, dict):
        return [f"{MANIFEST}: 'tables' is {type(tables).__name__}, not an object of tables"]
    problems = []
    format_version = manifest.get("format_version", 0)
    required = [
        table
        for table in BACKUP_TABLES
        if (version is None or TABLE_SINCE_SCHEMA.get(table, 0) <= version)
        and TABLE_SINCE_FORMAT.get(table, 0) <= format_version
    ]
    missing = [table for table in required if table not in tables]
    if missing:
        problems.append(f"{MANIFEST} lists no entry for tables {', '.join(missing)}")
    unknown = sorted(set(tables) - set(BACKUP_TABLES))
    if unknown:
        problems.append(f"{MANIFEST} lists unknown tables {', '.join(unknown)}")
    for table, entry in tables.items():
        if not isinstance(entry, dict):
            problems.append(f"{table}: manifest entry is {type(entry).__name__}, not an object")
            continue
        wrong = [
            name
            for name, kind in (("member", str), ("sha256", str), ("rows", int))
            if not isinstance(entry.get(name), kind) or isinstance(entry.get(name), bool)
        ]
        if wrong:
            problems.append(f"{table}: manifest entry lacks a valid {', '.join(wrong)}")
        elif entry["member"] != f"tables/{table}.jsonl.zst":
            problems.append(f"{table}: manifest names member {entry['member']!r}")
    return problems


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _iter_member_rows(archive: tarfile.TarFile, member: str) -> Iterator[Row]:
    from rlmemory.ops.compression import _zstd

    handle = archive.extractfile(member)
    if handle is None:
        raise KeyError(member)
    reader = _zstd().ZstdDecompressor().stream_reader(handle)
    text = io.TextIOWrapper(reader, encoding="utf-8")
    for line in text:
        document = json.loads(line, parse_constant=_no_constant)
        if not isinstance(document, dict):
            raise ValueError(f"a row is a JSON {type(document).__name__}, not an object")
        yield {key: _decode_value(value) for key, value in document.items()}


def _verify_archive(source: Path, progress: ProgressCallback | None = None) -> VerifyReport:
    problems: list[str] = []
    counts: dict[str, int] = {}
    version = None
    try:
        with tarfile.open(source, "r") as archive:
            manifest = _read_manifest(archive, source)
            version = _schema_version(manifest.get("schema_version"), problems)
            problems.extend(_manifest_problems(manifest, version))
            if problems:
                return VerifyReport(source, "archive", False, version, counts, problems)
            entries = manifest["tables"]
            for done, (table, entry) in enumerate(entries.items()):
                report_progress(progress, done, len(entries))
                problem = _member_problem(archive, table, entry, counts)
                if problem:
                    problems.append(f"{table}: {problem}")
    except (tarfile.TarError, OSError, EOFError, CorruptStoreError) as error:
        problems.append(str(error))
    report_progress(progress, len(counts), len(counts))
    return VerifyReport(source, "archive", not problems, version, counts, problems)


def _member_problem(
    archive: tarfile.TarFile, table: str, entry: Mapping[str, Any], counts: dict[str, int]
) -> str | None:
    """The first problem of one table's member (checksum, rows), or None; counts its rows."""
    member = entry["member"]
    try:
        handle = archive.extractfile(member)
    except KeyError:
        return f"member {member} is missing"
    if handle is None:
        return f"member {member} is not a file"
    if hashlib.sha256(handle.read()).hexdigest() != entry["sha256"]:
        return "SHA-256 mismatch (member altered or damaged)"
    check = BackupRowCheck(table)
    count = 0
    try:
        for row in _iter_member_rows(archive, member):
            count += 1
            problem = check.problem(row)
            if problem:
                return f"row {count} ({problem})"
    except (ValueError, OSError, EOFError) as error:  # JSON, UTF-8 or zstd errors
        return f"row {count + 1} cannot be read: {error}"
    counts[table] = count
    if count != entry["rows"]:
        return f"{count} rows, manifest says {entry['rows']}"
    return None


# ------------------------------------------------------------------ restore
@contextlib.contextmanager
def _open_rows(source: Path) -> Iterator[tuple[int, dict[str, Iterable[Row]]]]:
    """Schema version and, per table, an iterable of rows of the (verified) backup."""
    kind = backup_kind(source)
    if kind == "archive":
        with tarfile.open(source, "r") as archive:
            manifest = _read_manifest(archive, source)
            read_member = functools.partial(_iter_member_rows, archive)
            tables: dict[str, Iterable[Row]] = {
                table: _Rows(entry["member"], read_member)
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
            tables = {table: _Rows(table, read_table) for table in backup_store.backup_tables()}
            yield backup_store.schema_version, tables


class _Rows:
    """Re-iterable rows of one table of a backup: ``read(name)`` on every iteration
    (``name`` is the archive member or the table of a SQLite copy)."""

    def __init__(self, name: str, read: Callable[[str], Iterable[Row]]) -> None:
        self._name, self._read = name, read

    def __iter__(self) -> Iterator[Row]:
        return iter(self._read(self._name))


def restore(
    path: str | os.PathLike[str],
    target: MemoryStore,
    *,
    replace: bool = False,
    progress: ProgressCallback | None = None,
) -> RestoreReport:
    """Load the backup at ``path`` into ``target`` (any backend).

    ``progress(tables done, tables)`` is called as the tables are verified and loaded.

    The backup is verified first (:func:`verify`): a backup that does not pass changes
    nothing, even with ``replace``, and is a :class:`~rlmemory.errors.CorruptStoreError`
    naming every problem; so is a row the target cannot hold. ``target`` must
    hold no data and no settings unless ``replace`` is true: then every agent in it is
    checkpointed ("auto: before restore"), its data other than versions is deleted and
    the backup's rows are loaded, all in one transaction; the backup's versions are added
    after the target's own (those already present are not duplicated). The settings
    (service loops, API key hashes, :meth:`MemoryStore.save_setting`) are replaced by the
    backup's, which are not versioned; a backup older than schema 4 (or an archive of
    format 1) has no settings, and then the target keeps its own.
    """
    source = Path(path)
    # Progress runs over twice the tables: each is verified, then loaded.
    steps = len(target.backup_tables())
    report = verify(
        source,
        progress=None
        if progress is None
        else lambda done, _: progress(min(done, steps), 2 * steps),
    )
    if report.schema_version is not None and report.schema_version > SCHEMA_VERSION:
        raise SchemaVersionError(str(source), report.schema_version, SCHEMA_VERSION)
    if not report.ok:
        raise CorruptStoreError(
            f"backup {source} failed verification, nothing was changed: "
            f"{'; '.join(report.problems)}",
            str(source),
        )
    existing_agents = target.list_agents()
    if existing_agents and not replace:
        raise ValueError(
            f"{target.location} already holds data for {len(existing_agents)} agent(s) "
            f"({', '.join(existing_agents[:5])}); restore into an empty store, or pass "
            "replace=True (--replace) to replace it"
        )
    if not replace:
        with target.snapshot() as read_table:
            settings = sum(1 for _ in read_table(SETTINGS_TABLE))
        if settings:
            raise ValueError(
                f"{target.location} already holds {settings} setting(s) (service loops, API "
                "keys); restore into an empty store, or pass replace=True (--replace) to "
                "replace them"
            )
    # A backup older than the settings never held any: --replace keeps the target's.
    has_settings = (
        report.schema_version is None or report.schema_version >= TABLE_SINCE_SCHEMA[SETTINGS_TABLE]
    )
    try:
        return _load_backup(
            source, target, existing_agents, progress, steps, replace and has_settings
        )
    except (StoreError, KeyboardInterrupt):
        raise
    except Exception as error:
        # Whatever the backend raised for a row it could not hold: the transaction was
        # rolled back, so the target is as it was.
        raise CorruptStoreError(
            f"backup {source} could not be loaded into {target.location}, nothing was "
            f"changed: {type(error).__name__}: {error}",
            str(source),
        ) from error


def _load_backup(
    source: Path,
    target: MemoryStore,
    existing_agents: list[str],
    progress: ProgressCallback | None,
    steps: int,
    replace_settings: bool,
) -> RestoreReport:
    """Load a verified backup into ``target`` in one transaction (see :func:`restore`);
    ``progress`` runs from ``steps`` to ``2 * steps`` as the tables load; the target's
    settings are deleted first when ``replace_settings``."""
    from rlmemory.ops.versions import checkpoint

    saved: dict[str, int] = {}
    counts: dict[str, int] = {}
    with _open_rows(source) as (_version, tables), target.transaction():
        # A backup without settings (older schema or archive format) keeps the target's.
        replace_settings = replace_settings and SETTINGS_TABLE in tables
        for agent_name in existing_agents:
            saved[agent_name] = checkpoint(
                target, agent_name, f"auto: before restore from {source.name}"
            )
        if existing_agents or replace_settings:
            target.clear_data(keep_versions=True, keep_settings=not replace_settings)
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
