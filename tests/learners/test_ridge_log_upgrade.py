"""A store of schema 2 (statistics rewritten on every update, no step log) upgrades to 3.

On every backend: a LinUCB learner writes its statistics the way rlmemory wrote them
before the step log (one ``f"{action}/ridge"`` array per action, nothing else), the
store is turned back into schema 2 (SQL: ``learner_steps`` dropped and the version set
to 2; files: the header says 2), and reopening it upgrades it; the learner loads the
old statistics bit for bit and keeps learning into the log.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.learners._ridge import RidgeArms, state_key
from rlmemory.learners.bandits import LinUCBAgent
from rlmemory.store.base import SCHEMA_VERSION

ACTIONS = ["search", "code"]


def _downgrade_to_v2(make_store: Any) -> None:
    if make_store.backend == "files":
        meta_path = Path(make_store.location.removeprefix("files://")) / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta_path.write_text(json.dumps({**meta, "schema_version": 2}))
        return
    statements = [
        "DROP TABLE learner_steps",
        "UPDATE rlmemory_meta SET value = '2' WHERE key = 'schema_version'",
    ]
    if make_store.backend == "sqlite":
        connection = sqlite3.connect(make_store.sqlite_path)
        for statement in statements:
            connection.execute(statement)
        connection.commit()
        connection.close()
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(make_store.location).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
        for statement in statements:
            connection.execute(statement)


def test_statistics_of_a_schema_2_store_load_after_the_upgrade(make_store: Any) -> None:
    arms = RidgeArms(3, 1.0)
    for _ in ACTIONS:
        arms.add_action()
    rng = np.random.default_rng(4)
    for _ in range(6):
        arms.update(int(rng.integers(2)), rng.normal(size=3), float(rng.random()))
    with make_store() as store:
        store.save_arrays("router", {state_key(a): arms.state_of(k) for k, a in enumerate(ACTIONS)})
    _downgrade_to_v2(make_store)
    with make_store() as store:
        assert store.schema_version == SCHEMA_VERSION
        learner = LinUCBAgent("router", store, ACTIONS)
        for k, action in enumerate(ACTIONS):
            assert learner.statistics()[action]["A_inv"].tobytes() == arms.A_inv[k].tobytes()
        learner.update([1.0, 0.0, 1.0], "code", 1.0)
        arms.update(1, np.array([1.0, 0.0, 1.0]), 1.0)
        assert [step.key for step in store.get_learner_steps("router")] == ["code"]
    with make_store() as store:
        reopened = LinUCBAgent("router", store, ACTIONS)
        assert reopened.statistics()["code"]["A_inv"].tobytes() == arms.A_inv[1].tobytes()
