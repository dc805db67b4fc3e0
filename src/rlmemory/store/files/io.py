"""Crash-safe file primitives of the file store: atomic replace, durable appends, JSON Lines.

Nothing here knows what the files mean. The rules it implements:

* :func:`atomic_write` writes a temporary file in the same folder, fsyncs it, renames it
  over the target and fsyncs the folder, so a crash leaves the old or the new file.
* :func:`append_bytes` appends with one ``write`` and an fsync. A crash during an append
  can leave a final line without its newline; readers ignore such a torn line unless it
  is a complete JSON object, and :func:`repair_torn_tail` removes it before the next
  append.
* :func:`iter_records_backward` reads JSON Lines newest first in blocks from the end, so
  reading the last few records of a long history does not read the whole file.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "history.jsonl"
>>> append_bytes(path, encode_line({"id": 1}))
>>> append_bytes(path, encode_line({"id": 2}))
>>> with open(path, "ab") as torn:  # what a crash in the middle of an append leaves
...     _ = torn.write(b'{"id": 3, "tex')
>>> [record["id"] for _, record in iter_records_backward(path)]
[2, 1]
>>> repair_torn_tail(path) == path.stat().st_size
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from rlmemory.errors import CorruptStoreError

_BLOCK_SIZE = 1 << 16
#: Opened files are never followed through a link (the store's tree holds none; see
#: :mod:`rlmemory.store.files.guard`): a link that appears anyway fails to open instead
#: of leading outside.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_SLUG_LENGTH = 40
_HASH_LENGTH = 20
_UNSAFE_CHARACTERS = re.compile(r"[^a-z0-9_]+")
#: Every agent folder name matches this: no dot, no slash, ASCII, at most 61 characters.
SAFE_NAME = re.compile(rf"^[a-z0-9_]{{1,{_SLUG_LENGTH}}}-[0-9a-f]{{{_HASH_LENGTH}}}$")


def safe_dirname(name: str) -> str:
    """Map an arbitrary string to a folder name that is safe on every filesystem.

    A readable slug (lowercase ASCII letters, digits and ``_``, at most 40 characters)
    followed by a hash of the exact name, so names that differ only in case, in
    characters the slug drops, or after the 40th character never collide, and no name
    can climb out of its parent folder.

    >>> safe_dirname("Search Agent")
    'search_agent-428d0d93708eb8c4fff5'
    >>> safe_dirname("../x").startswith("x-")
    True
    >>> safe_dirname("..").startswith("agent-")
    True
    >>> safe_dirname("A") != safe_dirname("a")
    True
    """
    slug = _UNSAFE_CHARACTERS.sub("_", name.lower()).strip("_")[:_SLUG_LENGTH] or "agent"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{slug}-{digest[:_HASH_LENGTH]}"


def encode_line(record: Any) -> bytes:
    """One JSON Lines record: compact JSON, UTF-8, ending in a newline."""
    return (
        json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
    ).encode("utf-8")


def encode_document(mapping: dict[str, Any]) -> bytes:
    """A JSON object written one top-level key per line, for people and ``diff``.

    >>> print(encode_document({"s1": {"a": 1.0}, "s2": {"b": 2.0}}).decode(), end="")
    {
    "s1": {"a": 1.0},
    "s2": {"b": 2.0}
    }
    """
    if not mapping:
        return b"{}\n"
    lines = [
        json.dumps(key, ensure_ascii=False) + ": " + json.dumps(value, ensure_ascii=False)
        for key, value in mapping.items()
    ]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


class NonFiniteNumber(ValueError):
    """A JSON text holds ``NaN``, ``Infinity`` or ``-Infinity``, which the store never writes."""


def _refuse_constant(name: str) -> Any:
    raise NonFiniteNumber(name)


def loads_strict(data: bytes | str) -> Any:
    """``json.loads`` that refuses ``NaN`` and ``Infinity`` (Python's JSON accepts them).

    >>> loads_strict('{"reward": NaN}')
    Traceback (most recent call last):
    rlmemory.store.files.io.NonFiniteNumber: NaN
    """
    return json.loads(data, parse_constant=_refuse_constant)


def line_number(path: Path, offset: int) -> int:
    """The 1-based line of ``path`` that starts at byte ``offset`` (for error messages)."""
    newlines = 0
    with open(path, "rb") as handle:
        while offset > 0:
            block = handle.read(min(_BLOCK_SIZE, offset))
            if not block:
                break
            newlines += block.count(b"\n")
            offset -= len(block)
    return newlines + 1


def non_finite_error(path: Path, line: int, constant: object) -> CorruptStoreError:
    return CorruptStoreError(
        f"{path} line {line} holds {constant}, which is not a number the store keeps "
        "(edited by hand?)",
        str(path),
    )


def read_document(path: Path) -> dict[str, Any] | None:
    """Return the JSON object stored in ``path``, ``None`` if the file does not exist.

    A file that is not a JSON object (truncated, edited badly), or that holds ``NaN`` or
    ``Infinity``, is a :class:`~rlmemory.errors.CorruptStoreError` naming the path.
    """
    try:
        with open(path, "rb", opener=open_nofollow) as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    try:
        document = loads_strict(data)
    except NonFiniteNumber as error:
        found = data.find(str(error).encode())
        raise non_finite_error(path, data.count(b"\n", 0, max(found, 0)) + 1, error) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise CorruptStoreError(f"{path} is not valid JSON: {error}", str(path)) from None
    if not isinstance(document, dict):
        raise CorruptStoreError(f"{path} does not hold a JSON object", str(path))
    return document


def open_nofollow(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that refuses to follow a link at ``path``."""
    return os.open(path, flags | NOFOLLOW, 0o644)


def fsync_dir(path: Path) -> None:
    """Make the creation, renaming or removal of entries in ``path`` durable."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:  # pragma: no cover - platforms that cannot open folders (Windows)
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover - filesystems that refuse to fsync a folder
        pass
    finally:
        os.close(descriptor)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` by a file holding ``data``; a crash leaves the old or the new file.

    The data is always fsynced before the rename; with ``durable=False`` the fsync of the
    folder (which makes the rename durable) is left to the caller (a transaction's commit).
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, 0o644)
    try:
        try:
            _write_all(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        fsync_dir(path.parent)


def append_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Append ``data`` with one ``write``; fsync it (and the folder if the file is new)."""
    created = not path.exists()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW, 0o644)
    try:
        _write_all(descriptor, data)
        if durable:
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if durable and created:
        fsync_dir(path.parent)


def grow_with_hole(path: Path, size: int) -> None:
    """Grow ``path`` to ``size`` bytes without writing them: a hole, read as NUL bytes.

    The file system stores no data for a hole, so skipping a million ids of an id index
    costs nothing on disk. A file already that long is left as it is.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | NOFOLLOW, 0o644)
    try:
        if os.fstat(descriptor).st_size < size:
            os.ftruncate(descriptor, size)
    finally:
        os.close(descriptor)


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to disk, if the file exists."""
    try:
        descriptor = os.open(path, os.O_RDONLY | NOFOLLOW)
    except FileNotFoundError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_all(files: Sequence[Path], folders: Sequence[Path]) -> None:
    """fsync several files and folders at once: the disk can serve them in one flush."""
    jobs = [(fsync_file, path) for path in files] + [(fsync_dir, path) for path in folders]
    if len(jobs) <= 1:
        for job, path in jobs:
            job(path)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        for future in [pool.submit(job, path) for job, path in jobs]:
            future.result()


def _parses_as_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def _last_newline_end(handle: BinaryIO, size: int) -> int:
    """Offset just past the last newline before ``size`` (0 if there is none)."""
    position = size
    while position > 0:
        start = max(0, position - _BLOCK_SIZE)
        handle.seek(start)
        block = handle.read(position - start)
        found = block.rfind(b"\n")
        if found >= 0:
            return start + found + 1
        position = start
    return 0


def _complete_end(handle: BinaryIO, size: int) -> tuple[int, bool]:
    """Where the complete lines of an open JSON Lines file end, and whether a final line
    without newline is complete (a JSON object: then it ends at ``size``)."""
    if size == 0:
        return 0, False
    handle.seek(size - 1)
    if handle.read(1) == b"\n":
        return size, False
    start = _last_newline_end(handle, size)
    handle.seek(start)
    if _parses_as_object(handle.read(size - start)):
        return size, True
    return start, False


def complete_end(path: Path) -> int | None:
    """The size of ``path`` without a torn final line (None if missing); changes nothing.

    What readers read of the file, and what :func:`repair_torn_tail` keeps: bytes below
    this offset are never rewritten in place by the store (appends go after them, a
    rollback truncates only what its transaction appended).
    """
    try:
        with open(path, "rb", opener=open_nofollow) as handle:
            return _complete_end(handle, os.fstat(handle.fileno()).st_size)[0]
    except FileNotFoundError:
        return None


def repair_torn_tail(path: Path) -> int | None:
    """Make a JSON Lines file end with a newline; return its size (None if missing).

    A final line without newline is what a crash during an append leaves. If it is a
    complete JSON object (a line edited by hand, or an append cut just before its
    newline) the newline is added; otherwise the torn bytes, never acknowledged to
    anyone, are cut off.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return 0
    with open(path, "r+b", opener=open_nofollow) as handle:
        end, unterminated = _complete_end(handle, size)
        if end == size and not unterminated:
            return size
        if unterminated:
            handle.seek(size)
            handle.write(b"\n")
            size += 1
        else:
            handle.truncate(end)
            size = end
        handle.flush()
        os.fsync(handle.fileno())
    return size


def repair_fixed_width(path: Path, width: int) -> int:
    """Cut a torn last record off a file of ``width``-byte records; return its size."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    whole = size - size % width
    if whole != size:
        with open(path, "r+b", opener=open_nofollow) as handle:
            handle.truncate(whole)
            handle.flush()
            os.fsync(handle.fileno())
    return whole


def decode_line(line: bytes, path: Path, offset: int, final: bool) -> dict[str, Any] | None:
    """Parse one line; ``None`` for blank lines and for a torn final line."""
    if not line.strip():
        return None
    try:
        record = loads_strict(line)
    except NonFiniteNumber as error:
        raise non_finite_error(path, line_number(path, offset), error) from None
    except (ValueError, UnicodeDecodeError):
        record = None
    if isinstance(record, dict):
        return record
    if final:
        return None
    raise CorruptStoreError(
        f"{path} has a malformed JSON line at byte offset {offset} "
        f"(line {line_number(path, offset)})",
        str(path),
    )


def iter_records_forward(
    path: Path, end: int | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(offset, record)`` oldest first, reading at most ``end`` bytes.

    A missing file yields nothing. A malformed line followed by other lines raises
    :class:`~rlmemory.errors.CorruptStoreError`; a malformed final line without
    newline is a torn append and is skipped.
    """
    try:
        handle = open(path, "rb", opener=open_nofollow)  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return
    with handle:
        offset = 0
        for line in handle:
            if end is not None and offset >= end:
                return
            final = not line.endswith(b"\n")
            record = decode_line(line, path, offset, final)
            if record is not None:
                yield offset, record
            offset += len(line)


def iter_records_backward(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(offset, record)`` newest first, reading blocks from the end of the file."""
    try:
        handle = open(path, "rb", opener=open_nofollow)  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return
    with handle:
        position = handle.seek(0, os.SEEK_END)
        pending: list[bytes] = []  # blocks without newline, newest first
        final = True
        while position > 0:
            start = max(0, position - _BLOCK_SIZE)
            handle.seek(start)
            block = handle.read(position - start)
            position = start
            if b"\n" not in block and start > 0:
                pending.append(block)
                continue
            buffer = block + b"".join(reversed(pending))
            lines = buffer.split(b"\n")
            line_end = start + len(buffer)
            # lines[0] may continue in the previous block, unless the file starts here
            complete = lines[1:] if start > 0 else lines
            for line in reversed(complete):
                line_start = line_end - len(line)
                record = decode_line(line, path, line_start, final)
                final = False
                if record is not None:
                    yield line_start, record
                line_end = line_start - 1
            pending = [lines[0]] if start > 0 else []
