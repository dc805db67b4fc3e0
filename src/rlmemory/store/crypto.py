"""AES-GCM encryption of stored texts and payloads, and where the key comes from.

A store given a key encrypts request, response and feedback texts (and optionally
every payload) before writing them, and decrypts them on read. Encrypted values
describe themselves, so plain and encrypted values can live side by side (a store that
was encrypted later, or a key rotation half done) and a wrong key is detected:

* text:  ``rlm:enc:v1:<key id>:<urlsafe base64 of nonce + ciphertext + tag>``
* bytes: ``b"RLMENC\\x01"`` + key id (8 ASCII hex) + nonce + ciphertext + tag

The key id is a short fingerprint of the key (not the key). AES-GCM's tag makes a wrong
key or a tampered value an :class:`~rlmemory.errors.EncryptionKeyError` naming the
store, never garbage.

Keys are 32 random bytes, written as urlsafe base64. They are looked for, in order:
``encryption_key=`` (bytes, base64 text, or a path to a key file), the environment
variable ``RLMEMORY_KEY``, ``key_file=``, then the environment variable
``RLMEMORY_KEY_FILE``.

>>> key = generate_key()
>>> cipher = Cipher(key, location="memory.db")
>>> token = cipher.encrypt_text("my card is 4111")
>>> token.startswith("rlm:enc:v1:" + cipher.key_id + ":")
True
>>> cipher.decrypt_text(token)
'my card is 4111'
>>> Cipher(generate_key(), location="memory.db").decrypt_text(token)  # doctest: +ELLIPSIS
Traceback (most recent call last):
rlmemory.errors.EncryptionKeyError: memory.db: value was encrypted with key ..., not with ...
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlmemory.errors import EncryptionKeyError

ENV_KEY = "RLMEMORY_KEY"
ENV_KEY_FILE = "RLMEMORY_KEY_FILE"
TEXT_PREFIX = "rlm:enc:v1:"
BYTES_MAGIC = b"RLMENC\x01"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_CHARS = 8

KeyInput = bytes | str | os.PathLike[str]


def generate_key() -> str:
    """A new random 256-bit key as urlsafe base64 text (what ``RLMEMORY_KEY`` holds).

    >>> len(parse_key(generate_key()))
    32
    """
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def parse_key(key: bytes | str, source: str = "encryption_key") -> bytes:
    """Return the 32 raw key bytes of ``key`` (raw bytes or urlsafe base64), or raise.

    ``source`` names where the key came from, for the error message.

    >>> parse_key("too short")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rlmemory.errors.EncryptionKeyError: encryption_key is not urlsafe base64 of 32 bytes: ...
    >>> parse_key("c2hvcnQ=")
    Traceback (most recent call last):
    rlmemory.errors.EncryptionKeyError: encryption_key decodes to 5 bytes; an AES-256 key is ...
    """
    if isinstance(key, bytes | bytearray):
        raw = bytes(key)
        if len(raw) == KEY_BYTES:
            return raw
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise EncryptionKeyError(
                f"{source} must be {KEY_BYTES} raw bytes or urlsafe base64 of them, "
                f"got {len(raw)} bytes"
            ) from None
    elif isinstance(key, str):
        text = key
    else:
        raise EncryptionKeyError(f"{source} must be bytes or str, not {type(key).__name__}")
    text = text.strip()
    if not text:
        raise EncryptionKeyError(f"{source} is empty; an AES-256 key is {KEY_BYTES} bytes")
    try:
        padded = text + "=" * (-len(text) % 4)
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as error:
        raise EncryptionKeyError(
            f"{source} is not urlsafe base64 of {KEY_BYTES} bytes: {error}"
        ) from None
    if len(raw) != KEY_BYTES:
        raise EncryptionKeyError(
            f"{source} decodes to {len(raw)} bytes; an AES-256 key is {KEY_BYTES} bytes "
            "(create one with `rlmemory keys new PATH`)"
        )
    return raw


def key_id(key: bytes) -> str:
    """A short public fingerprint of a raw key, stored beside each encrypted value.

    >>> key_id(bytes(32))
    '6fed874b'
    """
    return hashlib.sha256(b"rlmemory-key-id:" + key).hexdigest()[:KEY_ID_CHARS]


def new_key_file(path: str | os.PathLike[str]) -> Path:
    """Create a key file holding a new key, readable by its owner only (mode 0600).

    An existing file is never overwritten (``FileExistsError``): it may hold the only
    copy of the key that decrypts a store.

    >>> import tempfile, os, stat
    >>> path = new_key_file(os.path.join(tempfile.mkdtemp(), "rlmemory.key"))
    >>> oct(stat.S_IMODE(path.stat().st_mode))
    '0o600'
    >>> len(read_key_file(path))
    32
    """
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(target, flags, 0o600)
    except FileExistsError:
        raise FileExistsError(
            f"{target} already exists; refusing to overwrite a key file"
        ) from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(generate_key() + "\n")
    os.chmod(target, 0o600)  # the umask cannot widen it, but a pre-set ACL might
    return target


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """Return the raw key in a key file; refuse a file others can read.

    A missing file, a file readable by group or others (on POSIX), or a file that does
    not hold a key is an :class:`~rlmemory.errors.EncryptionKeyError`.
    """
    source = Path(path)
    try:
        mode = source.stat().st_mode
        text = source.read_text(encoding="ascii")
    except FileNotFoundError:
        raise EncryptionKeyError(f"key file {source} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EncryptionKeyError(f"key file {source} cannot be read: {error}") from None
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise EncryptionKeyError(
            f"key file {source} is readable by other users (mode "
            f"{oct(stat.S_IMODE(mode))}); run `chmod 600 {source}`"
        )
    return parse_key(text, f"key file {source}")


def resolve_key(
    encryption_key: KeyInput | None = None,
    *,
    key_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> bytes | None:
    """Find the key: argument, then ``$RLMEMORY_KEY``, ``key_file``, ``$RLMEMORY_KEY_FILE``.

    Returns the raw key, or ``None`` when no source gives one (the store is then
    unencrypted). A source that is present but empty or malformed is an
    :class:`~rlmemory.errors.EncryptionKeyError`, never skipped.

    >>> resolve_key(environ={}) is None
    True
    >>> key = generate_key()
    >>> resolve_key(environ={"RLMEMORY_KEY": key}) == parse_key(key)
    True
    """
    env = os.environ if environ is None else environ
    if encryption_key is not None:
        if isinstance(encryption_key, os.PathLike):
            return read_key_file(encryption_key)
        return parse_key(encryption_key, "encryption_key")
    if ENV_KEY in env:
        return parse_key(_present(env[ENV_KEY], f"${ENV_KEY}"), f"${ENV_KEY}")
    if key_file is not None:
        return read_key_file(_present(os.fspath(key_file), "key_file"))
    if ENV_KEY_FILE in env:
        return read_key_file(_present(env[ENV_KEY_FILE], f"${ENV_KEY_FILE}"))
    return None


def _present(value: str, source: str) -> str:
    """``value`` unless it is empty: a key source that is set but empty is a mistake.

    Treating ``RLMEMORY_KEY=""`` as "no key" would create or write an unencrypted store
    where the user asked for encryption.

    >>> _present("", "$RLMEMORY_KEY")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rlmemory.errors.EncryptionKeyError: $RLMEMORY_KEY is set but empty; ...
    """
    if not value.strip():
        raise EncryptionKeyError(
            f"{source} is set but empty; give a key (`rlmemory keys new PATH` creates one) "
            "or unset it to use the store unencrypted"
        )
    return value


def is_encrypted_text(value: object) -> bool:
    """Whether ``value`` is a text written by :meth:`Cipher.encrypt_text`.

    >>> is_encrypted_text("hello"), is_encrypted_text("rlm:enc:v1:0011aabb:AAAA")
    (False, True)
    """
    return isinstance(value, str) and value.startswith(TEXT_PREFIX)


def is_encrypted_bytes(value: object) -> bool:
    """Whether ``value`` is a payload written by :meth:`Cipher.encrypt_bytes`."""
    return isinstance(value, bytes | bytearray | memoryview) and bytes(value[:7]) == BYTES_MAGIC


def encrypted_key_id(value: str | bytes) -> str | None:
    """The key id an encrypted value was written with, or ``None`` for a plain value.

    >>> encrypted_key_id("rlm:enc:v1:0011aabb:AAAA"), encrypted_key_id("plain")
    ('0011aabb', None)
    """
    if is_encrypted_text(value):
        return str(value)[len(TEXT_PREFIX) : len(TEXT_PREFIX) + KEY_ID_CHARS]
    if not isinstance(value, str) and is_encrypted_bytes(value):
        start = len(BYTES_MAGIC)
        return bytes(value[start : start + KEY_ID_CHARS]).decode("ascii", "replace")
    return None


class Cipher:
    """Encrypts with one key and decrypts with it or any of ``previous_keys``.

    ``location`` (a path or URL) is put in every error message. Previous keys let a
    store be read while a rotation is under way; new values always use ``key``.
    """

    def __init__(
        self,
        key: bytes | str,
        *,
        location: str = "store",
        previous_keys: Sequence[bytes | str] = (),
    ) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "encryption needs the 'cryptography' package (a dependency of rlmemory): "
                "pip install cryptography"
            ) from error
        raw = parse_key(key)
        self.location = location
        self.key_id = key_id(raw)
        self._encrypting = AESGCM(raw)
        self._by_id: dict[str, Any] = {self.key_id: self._encrypting}
        for old in previous_keys:
            old_raw = parse_key(old, "previous key")
            self._by_id.setdefault(key_id(old_raw), AESGCM(old_raw))

    def __repr__(self) -> str:
        return f"Cipher(key_id={self.key_id!r}, location={self.location!r})"

    # ------------------------------------------------------------------ texts
    def encrypt_text(self, text: str) -> str:
        """Encrypt ``text`` into a self-describing ASCII token."""
        if not isinstance(text, str):
            raise TypeError(f"encrypt_text needs a str, not {type(text).__name__}")
        header = f"{TEXT_PREFIX}{self.key_id}:"
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._encrypting.encrypt(nonce, text.encode("utf-8"), header.encode("ascii"))
        return header + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt_text(self, token: str) -> str:
        """Decrypt a token from :meth:`encrypt_text`; a plain text is returned unchanged."""
        if not is_encrypted_text(token):
            return token
        kid = token[len(TEXT_PREFIX) : len(TEXT_PREFIX) + KEY_ID_CHARS]
        header_length = len(TEXT_PREFIX) + KEY_ID_CHARS + 1
        try:
            blob = base64.urlsafe_b64decode(token[header_length:].encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise self._damaged(kid) from None
        plain = self._open(kid, blob, token[:header_length].encode("ascii"))
        return plain.decode("utf-8")

    # ------------------------------------------------------------------ bytes
    def encrypt_bytes(self, data: bytes) -> bytes:
        """Encrypt a binary payload (``BYTES_MAGIC`` + key id + nonce + ciphertext)."""
        header = BYTES_MAGIC + self.key_id.encode("ascii")
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + self._encrypting.encrypt(nonce, bytes(data), header)

    def decrypt_bytes(self, blob: bytes) -> bytes:
        """Decrypt a payload from :meth:`encrypt_bytes`; plain bytes are returned unchanged."""
        if not is_encrypted_bytes(blob):
            return bytes(blob)
        blob = bytes(blob)
        header_length = len(BYTES_MAGIC) + KEY_ID_CHARS
        kid = blob[len(BYTES_MAGIC) : header_length].decode("ascii", "replace")
        return self._open(kid, blob[header_length:], blob[:header_length])

    # ---------------------------------------------------------------- helpers
    def can_decrypt(self, value: str | bytes) -> bool:
        """Whether one of this cipher's keys has the id ``value`` was written with."""
        kid = encrypted_key_id(value)
        return kid is None or kid in self._by_id

    def _open(self, kid: str, blob: bytes, associated: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        aead = self._by_id.get(kid)
        if aead is None:
            raise EncryptionKeyError(
                f"{self.location}: value was encrypted with key {kid}, not with the key "
                f"given ({self.key_id}); give the key it was written with",
                self.location,
            )
        if len(blob) < NONCE_BYTES + 16:
            raise self._damaged(kid)
        try:
            return bytes(aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated))
        except InvalidTag:
            raise self._damaged(kid) from None

    def _damaged(self, kid: str) -> EncryptionKeyError:
        return EncryptionKeyError(
            f"{self.location}: an encrypted value (key {kid}) failed authentication; it was "
            "altered or damaged, or written with another key of the same id",
            self.location,
        )


def reveal_text(value: str | None, cipher: Cipher | None, location: str) -> str | None:
    """Decrypt ``value`` if it is encrypted; raise if it is and there is no key.

    Stores call this on every text they read, so a store opened without its key fails
    clearly on the first encrypted value instead of returning ciphertext as if it were
    the request.

    >>> reveal_text("plain", None, "memory.db")
    'plain'
    >>> reveal_text("rlm:enc:v1:0011aabb:AAAA", None, "memory.db")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rlmemory.errors.EncryptionKeyError: memory.db holds encrypted text (key 0011aabb) and no key ...
    """
    if value is None or not is_encrypted_text(value):
        return value
    if cipher is None:
        raise missing_key_error(location, encrypted_key_id(value))
    return cipher.decrypt_text(value)


def reveal_bytes(value: bytes, cipher: Cipher | None, location: str) -> bytes:
    """Decrypt a binary payload if it is encrypted; raise if it is and there is no key."""
    if not is_encrypted_bytes(value):
        return bytes(value)
    if cipher is None:
        raise missing_key_error(location, encrypted_key_id(value))
    return cipher.decrypt_bytes(value)


def missing_key_error(location: str, kid: str | None) -> EncryptionKeyError:
    """The error for encrypted data read without a key."""
    return EncryptionKeyError(
        f"{location} holds encrypted text (key {kid}) and no key was given; pass "
        f"encryption_key=, or set ${ENV_KEY} or ${ENV_KEY_FILE}",
        location,
    )
