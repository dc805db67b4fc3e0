"""The feature cache in the SQL store: vectors of expensive featurisers, by text hash.

:class:`SqlFeatureCache` is a part of :class:`rlmemory.store.sql.MemoryDatabase` standing
on the connection alone (``feature_cache`` holds no agent's data and nothing encrypted).
The hooks receive checked arguments (:class:`rlmemory.store.base.MemoryStore`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from rlmemory.store._feature_cache import decode_vector
from rlmemory.store.sql import schema
from rlmemory.store.sql.connection import SqlConnection, matching

_CACHE = schema.feature_cache


class SqlFeatureCache(SqlConnection):
    """Feature-cache hooks of MemoryDatabase (see :class:`rlmemory.store.base.MemoryStore`)."""

    def _save_feature_vectors(self, featurizer: str, vectors: list[tuple[str, np.ndarray]]) -> None:
        def work(cursor: Any) -> None:
            now = time.time()
            for key, vector in vectors:
                self._execute(
                    cursor,
                    "feature_cache_insert",
                    self._insert_unless_cached,
                    featurizer=featurizer,
                    text_sha256=key,
                    vector=vector.astype("<f8").tobytes(),
                    created=now,
                )

        self._run(work)

    def _insert_unless_cached(self) -> sa.ClauseElement:
        """INSERT … ON CONFLICT DO NOTHING into ``feature_cache``: a cached key keeps its
        vector and its age."""
        insert = postgresql.insert if self._dialect_name == "postgresql" else sqlite.insert
        return insert(_CACHE).on_conflict_do_nothing()

    def _get_feature_vectors(self, featurizer: str, keys: list[str]) -> dict[str, np.ndarray]:
        def read(cursor: Any) -> list[Any]:
            rows = []
            for key in keys:
                rows.extend(
                    self._execute(
                        cursor,
                        "feature_cache_get",
                        lambda: sa.select(_CACHE.c.text_sha256, _CACHE.c.vector).where(
                            matching(_CACHE, "featurizer", "text_sha256")
                        ),
                        featurizer=featurizer,
                        text_sha256=key,
                    ).fetchall()
                )
            return rows

        rows = self._run(read, write=False, atomic=False)
        return {key: decode_vector(data) for key, data in rows}

    def _count_feature_vectors(self, featurizer: str) -> int:
        ((count,),) = self._read(
            "feature_cache_count",
            lambda: sa.select(sa.func.count()).where(matching(_CACHE, "featurizer")),
            featurizer=featurizer,
        )
        return int(count)

    def _prune_feature_vectors(self, featurizer: str, keep: int) -> int:
        def work(cursor: Any) -> int:
            doomed = [
                row[0]
                for row in self._execute(
                    cursor,
                    "feature_cache_oldest",
                    lambda: (
                        sa.select(_CACHE.c.text_sha256)
                        .where(matching(_CACHE, "featurizer"))
                        .order_by(_CACHE.c.created.desc(), _CACHE.c.text_sha256.desc())
                        .offset(sa.bindparam("keep"))
                    ),
                    featurizer=featurizer,
                    keep=keep,
                ).fetchall()
            ]
            for key in doomed:
                self._execute(
                    cursor,
                    "feature_cache_delete",
                    lambda: sa.delete(_CACHE).where(matching(_CACHE, "featurizer", "text_sha256")),
                    featurizer=featurizer,
                    text_sha256=key,
                )
            return len(doomed)

        return self._run(work)


__all__ = ["SqlFeatureCache"]
