"""What the store suite writes and how it looks: tricky values, strategies, observers.

:func:`observe` reads everything the contract lets a reader see, so that a test can say
"nothing changed" with one comparison; :func:`populate` writes one of everything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from rlmemory.store.base import MemoryStore

AGENT = "router"
OTHER = "analyst"
#: A limit larger than any history the suite writes.
EVERYTHING = 1_000_000
#: The settings namespace and the featuriser the suite writes.
NAMESPACE = "ns"
FEATURIZER = "emb:v1"

HYPOTHESIS_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    # Each backend's subclass runs the same test method: different executors on purpose.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)

#: Texts that break naive quoting, escaping, encoding or line splitting.
TRICKY_TEXTS = {
    "quotes": 'it\'s "quoted" and `ticked`',
    "sql_injection": "'; DROP TABLE q_tables;--",
    "backslashes": "C:\\new\\table \\' \\\" \\\\ \\x00 \\u0000",
    "non_ascii": "naïve façade Ünïcödé 日本語 العربية русский",
    "emoji": "🤖🎉 👩‍👩‍👧 🇫🇷 ❤️",
    "newlines": "line1\nline2\r\nline3\rline4\n",
    "line_separators": "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg\x1dh\x1ei",
    "control_chars": "\x01\x07\x1b[31m\x7f",
    "whitespace": "  \t leading and trailing \t ",
    "empty": "",
    "json_like": '{"key": [1, 2, null], "x": "\\"}',
    "format_markers": "%s %(name)s {0} {} ? :param $1 %%",
    "bom": "\ufeffbom",
    "long_ascii_100kB": "x" * 100_000,
    "long_unicode_100kB": "é€🤖\n" * 10_000,
}

#: Texts usable as keys and agent names: non-empty, of reasonable length, path-like.
TRICKY_KEYS = {
    **{name: text for name, text in TRICKY_TEXTS.items() if text and len(text) < 1000},
    "path_parent": "../x",
    "path_absolute": "/etc/passwd",
    "path_nested": "a/b",
    "path_dotdot": "..",
    "path_dot": ".",
    "windows_path": "C:\\Windows\\..\\system32",
    "long_300": "n" * 300,
    "long_non_ascii_510_bytes": "日" * 170,  # just under the 512-byte name limit
}

#: Agent names that naive file-name mappings confuse with one another.
COLLIDING_AGENT_NAMES = [
    "a/b",
    "a_b",
    "a%2Fb",
    "a\\b",
    "a b",
    "Router",
    "router",
    "é",  # precomposed
    "e\u0301",  # decomposed: a different string
    "..",
    ".",
    "../x",
    "/etc/passwd",
    "n" * 300,
    "n" * 299 + "m",
    "日" * 170,
    "日" * 169 + "月",
    "con",
    "NUL",
    "-",
    "~",
]

#: Arrays of every stored kind: dtypes, shapes, extreme and signed-zero values.
ARRAY_SAMPLES = {
    "scalar": np.float64(2.5) * np.ones(()),
    "vector": np.array([0.1, -0.0, 1e-308, 5e-324, np.finfo(np.float64).max]),
    "matrix": np.arange(6, dtype=np.float64).reshape(2, 3) / 7.0,
    "cube": np.linspace(-1.0, 1.0, 24).reshape(2, 3, 4),
    "ints": np.array([np.iinfo(np.int64).min, -1, 0, 1, np.iinfo(np.int64).max], dtype=np.int64),
    "int_matrix": np.arange(12, dtype=np.int64).reshape(3, 4),
    "empty": np.zeros((0,), dtype=np.float64),
    "empty_2d": np.zeros((2, 0), dtype=np.float64),
}

_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
json_text = st.text(
    alphabet=st.characters(blacklist_categories=_SURROGATES, blacklist_characters="\x00"),
    max_size=60,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=12,
)


def text_key(text: str) -> str:
    """The feature-cache key of ``text``: the SHA-256 hex of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cut_to_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits ``limit`` bytes."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def array_fingerprint(array: np.ndarray) -> tuple[str, tuple[int, ...], bytes]:
    """What identifies an array exactly: dtype, shape and bytes."""
    return (array.dtype.str, array.shape, np.ascontiguousarray(array).tobytes())


def step_fingerprints(store: MemoryStore, agent: str) -> list[tuple[int, str, bytes]]:
    """The agent's learner steps as ``(id, key, float64 bytes)``, comparable with ``==``."""
    return [
        (step.id, step.key, np.asarray(step.values, dtype="<f8").tobytes())
        for step in store.get_learner_steps(agent)
    ]


def observe(store: MemoryStore) -> dict[str, Any]:
    """Everything the contract lets a reader see, for before/after comparisons."""
    agents = store.list_agents()
    observed: dict[str, Any] = {
        "agents": agents,
        "settings": store.list_settings(NAMESPACE),
        "feature_vectors": store.count_feature_vectors(FEATURIZER),
    }
    for agent in sorted({*agents, AGENT, OTHER}):
        observed[agent] = {
            "q_table": store.get_q_table(agent),
            "policy_params": store.get_policy_params(agent),
            "arrays": {
                key: array_fingerprint(value) for key, value in store.get_arrays(agent).items()
            },
            "steps": step_fingerprints(store, agent),
            "rewards": store.get_agent_rewards(agent, limit=EVERYTHING),
            "interactions": store.get_agent_interactions(agent, limit=EVERYTHING),
            "unlearned": store.get_unlearned_feedback(agent, limit=EVERYTHING),
            "decisions": store.get_agent_decisions(agent, limit=EVERYTHING),
            "stats": store.agent_stats(agent),
            "decision_count": store.count_agent_decisions(agent),
            "versions": store.list_versions(agent),
            "q_states": sorted(store.q_state_stats(agent), key=lambda row: row["state"]),
        }
    return observed


@dataclass
class Populated:
    """The ids :func:`populate` wrote, for tests that refer to stored rows."""

    interaction_ids: list[int]
    decision_ids: list[int]
    reward_ids: list[int]
    step_ids: list[int]
    version: int


def populate(store: MemoryStore) -> Populated:
    """Write one of everything for AGENT and a little for OTHER."""
    store.save_q_table(AGENT, {"greeting": {"search": 0.5, "code": -1.25}, "bug": {"code": 2.0}})
    store.save_q_table(OTHER, {"s": {"a": 1.0}})
    store.save_policy_params(AGENT, {"weights": [[0.1, 0.2], [0.3, 0.4]], "lr": 0.01})
    store.save_arrays(
        AGENT, {"A": np.eye(3), "b": np.arange(3, dtype=np.float64), "n": np.array([7])}
    )
    step_ids = store.append_learner_steps(AGENT, [("search", np.array([1.0, 0.5]))])
    reward_ids = [
        store.save_agent_reward(AGENT, 1.0, {"success": 1.0}),
        store.save_agent_reward(AGENT, -0.5, {"latency": -0.5, "note": "slow"}),
        store.save_agent_reward(OTHER, 0.25, {}),
    ]
    interaction_ids = [
        store.save_agent_interaction(AGENT, "hello", "hi there"),
        store.save_agent_interaction(AGENT, "fix my bug", "done", feedback="great"),
        store.save_agent_interaction(OTHER, "analyse", "ok", feedback="meh"),
    ]
    decision_ids = [
        store.save_agent_decision(AGENT, "greeting", "search", {"search": 0.5, "code": -1.25}, 1.0),
        store.save_agent_decision(
            AGENT, "bug", "code", {"code": 2.0}, None, propensity=0.9, features=[1.0, 0.0]
        ),
        store.save_agent_decision(OTHER, "s", "a", {"a": 1.0}, {"score": 0.25}),
    ]
    version = store.save_version(AGENT, b"\x00payload\xff", "populated")
    store.save_setting(NAMESPACE, "k", {"kept": True})
    store.save_feature_vectors(FEATURIZER, {text_key("hello"): np.array([0.5, -1.0])})
    return Populated(interaction_ids, decision_ids, reward_ids, step_ids, version)


def assert_same_arrays(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Same keys, and per key the same dtype, shape, values and signs of zero."""
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype, key
        assert actual[key].shape == value.shape, key
        assert np.array_equal(actual[key], value), key
        assert np.array_equal(np.signbit(actual[key]), np.signbit(value)), key


def assert_history_order(rows: list[dict[str, Any]], expected_ids: list[int]) -> None:
    """The rows' ids are exactly ``expected_ids``, in that order."""
    assert [row["id"] for row in rows] == expected_ids
