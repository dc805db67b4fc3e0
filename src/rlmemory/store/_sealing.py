"""Encryption at rest shared by both stores: seal texts and payloads, open them again.

:class:`SealedValues` is mixed into the SQL and the file store's operations. It reads
three attributes the store sets when it opens: ``_cipher`` (a
:class:`rlmemory.store.crypto.Cipher` or None), ``_store_key_id`` (the key id recorded in
the store, or None) and ``_encrypt_payloads`` (whether version payloads are sealed too).
"""

from __future__ import annotations

from typing import Any

from rlmemory.store.crypto import Cipher, missing_key_error, reveal_bytes, reveal_text


class SealedValues:
    """Seal and open the texts and version payloads of a store (see the module doc)."""

    location: str
    _cipher: Cipher | None
    _store_key_id: str | None
    _encrypt_payloads: bool

    @property
    def encryption_key_id(self) -> str | None:
        """The id of the key this store encrypts with (None when it does not encrypt)."""
        cipher = self._cipher
        return None if cipher is None else cipher.key_id

    def _adopt_cipher(self, cipher: Cipher) -> None:
        """Seal with ``cipher`` from now on (after re-encrypting the store with it)."""
        self._cipher = cipher
        self._store_key_id = cipher.key_id

    def _seal_text(self, text: str) -> str:
        cipher = self._cipher
        if cipher is not None:
            return cipher.encrypt_text(text)
        if self._store_key_id is not None:
            # Writing in clear into an encrypted store would leak the text: refuse.
            raise missing_key_error(self.location, self._store_key_id)
        return text

    def _open_text(self, value: Any) -> Any:
        """Decrypt an encrypted text; anything else (plain text, None) comes back as is."""
        if not isinstance(value, str):
            return value
        return reveal_text(value, self._cipher, self.location)

    def _seal_payload(self, payload: bytes) -> bytes:
        cipher = self._cipher
        if cipher is None or not self._encrypt_payloads:
            return payload
        return cipher.encrypt_bytes(payload)

    def _open_payload(self, payload: bytes) -> bytes:
        return reveal_bytes(payload, self._cipher, self.location)


__all__ = ["SealedValues"]
