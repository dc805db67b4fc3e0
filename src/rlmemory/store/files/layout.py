"""The names and fixed sizes of the file store's folder: where each kind of data lives.

The lowest module of :mod:`rlmemory.store.files` next to :mod:`~rlmemory.store.files.io`:
it imports nothing from the store. ``docs/store-files.md`` ("Layout") shows the tree.

>>> index_path(Path("/store"), "rewards").as_posix()
'/store/index/rewards.jsonl'
>>> HISTORY_FILE["decisions"]
'decisions.jsonl'
"""

from __future__ import annotations

from pathlib import Path

#: ``meta.json``'s ``format``: what marks a folder as an rlmemory file store.
FORMAT_NAME = "rlmemory-files"

# ------------------------------------------------------------------ top level
META_FILE = "meta.json"
LOCK_FILE = ".lock"
#: Every namespaced setting (``save_setting``) in one document ``{namespace: {key: {...}}}``.
SETTINGS_FILE = "settings.json"
AGENTS_FOLDER = "agents"
INDEX_FOLDER = "index"
#: ``feature_cache/<featuriser folder>/<sha256 of the text>.json``: one cached vector each.
FEATURE_CACHE_FOLDER = "feature_cache"
#: ``snapshots/<id>/``: hard links of the files a running :meth:`snapshot` reads, and
#: ``snapshots/<id>.lock``, held while it runs (see :mod:`rlmemory.store.files.snapshot`).
SNAPSHOTS_FOLDER = "snapshots"

# ------------------------------------------------------------- in the index folder
#: The last learner-step id handed out (ids are store-wide, like SQL's).
STEPS_COUNTER_FILE = "learner_steps.json"
#: Each id-index line is padded to this width, so the line of id ``n`` is at ``(n-1)*W``.
INDEX_LINE_WIDTH = 128

# ----------------------------------------------------------- in an agent's folder
AGENT_FILE = "agent.json"
Q_TABLE_FILE = "q_table.json"
Q_UPDATES_FILE = "q_table.updates.jsonl"
POLICY_FILE = "policy_params.json"
ARRAYS_FILE = "arrays.json"
ARRAYS_UPDATES_FILE = "arrays.updates.jsonl"
STEPS_FILE = "steps.jsonl"
VERSIONS_FILE = "versions.jsonl"
VERSIONS_DATA_FILE = "versions.data.jsonl"
REWARDS_FILE = "rewards.jsonl"
INTERACTIONS_FILE = "interactions.jsonl"
DECISIONS_FILE = "decisions.jsonl"

#: History table short name (:data:`rlmemory.store.rows.HISTORY_TABLES`) -> its file.
HISTORY_FILE = {
    "rewards": REWARDS_FILE,
    "interactions": INTERACTIONS_FILE,
    "decisions": DECISIONS_FILE,
}
HISTORY_FILES = tuple(HISTORY_FILE.values())
#: The files of an agent that only grow by appends (until rewritten whole).
APPEND_FILES = (Q_UPDATES_FILE, ARRAYS_UPDATES_FILE, *HISTORY_FILES)
#: The learned tables: their files' modification times are their "last updated".
TABLE_FILES = (Q_TABLE_FILE, Q_UPDATES_FILE, POLICY_FILE, ARRAYS_FILE, ARRAYS_UPDATES_FILE)
#: Every file of an agent a backup reads.
BACKED_UP_FILES = (
    *TABLE_FILES,
    STEPS_FILE,
    VERSIONS_FILE,
    VERSIONS_DATA_FILE,
    *HISTORY_FILES,
)
#: The files of :data:`BACKED_UP_FILES` that are appended to (the rest are replaced whole).
APPENDED_BACKUP_FILES = (*APPEND_FILES, STEPS_FILE, VERSIONS_FILE, VERSIONS_DATA_FILE)


def index_path(base: Path, table: str) -> Path:
    """The id index of history ``table`` (``rewards``, ``interactions``, ``decisions``)."""
    return base / INDEX_FOLDER / f"{table}.jsonl"
