"""Typed errors raised by rlmemory.

Validation problems in arguments are plain ``ValueError`` / ``TypeError`` naming the
field; unknown ids are ``LookupError``. Problems with the store itself (a corrupt file,
a schema written by a newer rlmemory, a wrong encryption key) share one family,
:class:`StoreError`, whose message always names the path or URL involved.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every problem with the store itself.

    ``location`` is the path or URL (password removed) of the store concerned.
    """

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location


class CorruptStoreError(StoreError):
    """A database file or a JSON file of the store cannot be read as written."""


class NotAStoreError(StoreError):
    """The location holds something else than an rlmemory store; nothing was written to it."""


class ReadOnlyStoreError(StoreError):
    """The store can be read but not written (read-only media or permissions)."""


class SchemaVersionError(StoreError):
    """The store was written by a newer rlmemory than the one reading it."""

    def __init__(self, location: str, found: int, supported: int) -> None:
        super().__init__(
            f"{location} has schema version {found}, but this rlmemory supports up to "
            f"version {supported}; upgrade rlmemory to open it",
            location,
        )
        self.found = found
        self.supported = supported


class StoreBusyError(StoreError):
    """Another process held the store locked for longer than the configured timeout."""


class TransactionAbortedError(StoreError):
    """A store call inside ``transaction()`` failed because of the database or the files
    (not because of its arguments), so the whole transaction was rolled back.

    Raised by the block's end even when the caller caught the first error, so that a
    transaction is never lost without a word; calls made in the block after the failure
    raise it at once.
    """


class EncryptionKeyError(StoreError):
    """The encryption key is missing, malformed, or not the key the data was written with."""


class UnknownDecisionError(LookupError):
    """No decision with this id exists for this store."""

    def __init__(self, decision_id: object) -> None:
        super().__init__(f"no decision with id {decision_id!r}")
        self.decision_id = decision_id


class UnknownInteractionError(LookupError):
    """No interaction with this id exists for this store."""

    def __init__(self, interaction_id: object) -> None:
        super().__init__(f"no interaction with id {interaction_id!r}")
        self.interaction_id = interaction_id


class UnknownRewardError(LookupError):
    """No reward with this id exists in this store.

    >>> str(UnknownRewardError(7))
    'no reward with id 7'
    """

    def __init__(self, reward_id: object) -> None:
        super().__init__(f"no reward with id {reward_id!r}")
        self.reward_id = reward_id
