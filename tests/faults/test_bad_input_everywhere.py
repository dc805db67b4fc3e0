"""Hostile arguments get the same answer from every backend, and change nothing when refused.

A hypothesis fuzz over the store contract's write methods (and the reads that take
ids, limits, states or keys): each drawn call runs on a SQLite file, a real PostgreSQL
database and a file store side by side. Either it succeeds on all three with the same
result, or it raises the same exception type on all three and leaves every store's
data as it was. The values are the ones that broke backends apart before the shared
checks of :mod:`rlmemory.store._validation`: NaN, infinities, ``10**400``, ids beyond
64 bits, NUL and lone surrogates, names and states over the byte limits, wrong types,
JSON nested past the depth limit, generators where a sequence is required.

Then pinned one by one: the limits themselves, and that a restore onto PostgreSQL of
rows that break them fails with a typed error naming the row before anything is kept.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlmemory.store import open_store
from rlmemory.store._validation import (
    INT64_MAX,
    MAX_JSON_DEPTH,
    MAX_NAME_BYTES,
    MAX_STATE_BYTES,
)
from rlmemory.store.base import MemoryStore

pytestmark = pytest.mark.postgres

AGENT = "router"


# ------------------------------------------------------------------ the values
def nested(depth: int) -> dict[str, Any]:
    """A mapping nested ``depth`` containers deep."""
    value: dict[str, Any] = {"leaf": 1.0}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def generator_of(*items: Any) -> Callable[[], Iterator[Any]]:
    """A maker of fresh generators: each backend gets its own, unconsumed one."""
    return lambda: (item for item in items)


def constant(value: Any) -> Callable[[], Any]:
    return lambda: value


Maker = tuple[str, Callable[[], Any]]

#: Hostile values for any argument: each is a label (shown by hypothesis) and a maker.
HOSTILE: list[Maker] = [
    ("nan", constant(math.nan)),
    ("inf", constant(math.inf)),
    ("-inf", constant(-math.inf)),
    ("10**400", constant(10**400)),
    ("2**63", constant(2**63)),
    ("-2**70", constant(-(2**70))),
    ("True", constant(True)),
    ("None", constant(None)),
    ("empty str", constant("")),
    ("NUL", constant("a\x00b")),
    ("surrogate", constant("a\ud800b")),
    ("long name", constant("n" * (MAX_NAME_BYTES + 1))),
    ("long non-ASCII name", constant("日" * (MAX_NAME_BYTES // 3 + 1))),
    ("long state", constant("s" * (MAX_STATE_BYTES + 1))),
    ("bytes", constant(b"router")),
    ("list", constant([1.0, 2.0])),
    ("generator", generator_of(1.0, 2.0)),
    ("dict", constant({"a": 1.0})),
    ("too deep", constant(nested(MAX_JSON_DEPTH + 1))),
    ("very deep", constant(nested(5000))),
    ("surrogate key", constant({"\udc80": 1.0})),
    ("nan inside", constant({"a": [1.0, math.nan]})),
    ("set inside", constant({"a": {1, 2}})),
    ("huge int inside", constant({"a": 10**5000})),
    ("np.float32 nan", constant(np.float32("nan"))),
    ("object", constant(object())),
]

VALID_NAMES: list[Maker] = [
    ("router", constant(AGENT)),
    ("name at the limit", constant("é" * (MAX_NAME_BYTES // 2))),
]
VALID_STATES: list[Maker] = [
    ("state s", constant("s")),
    ("empty state", constant("")),
    ("state at the limit", constant("ß" * (MAX_STATE_BYTES // 2))),
]
VALID_NUMBERS: list[Maker] = [
    ("0.5", constant(0.5)),
    ("int 2", constant(2)),
    ("np.float64", constant(np.float64(0.25))),
    ("1e300", constant(1e300)),
]
VALID_JSON: list[Maker] = [
    ("{}", constant({})),
    ("components", constant({"satisfaction": 0.5, "nested": {"list": [1, "two", None]}})),
    ("deep but allowed", constant(nested(MAX_JSON_DEPTH))),
    ("NUL inside JSON", constant({"note": "a\x00b"})),
]
VALID_IDS: list[Maker] = [
    ("id 1", constant(1)),
    ("unknown id", constant(10**9)),
    ("id 0", constant(0)),
    ("int64 max", constant(INT64_MAX)),
]
VALID_TEXTS: list[Maker] = [
    ("text", constant("hello")),
    ("unicode text", constant("naïve 日本語 🤖\n")),
]
VALID_SEQUENCES: list[Maker] = [
    ("list of floats", constant([0.5, 1.0])),
    ("tuple", constant((0.5,))),
    ("ndarray", lambda: np.array([1.0, 2.0])),
]
VALID_ARRAYS: list[Maker] = [
    ("float arrays", lambda: {"A": np.eye(2), "n": np.array([3], dtype=np.int64)}),
    ("float32 array", lambda: {"f": np.array([0.5], dtype=np.float32)}),
    ("uint8 array", lambda: {"u": np.array([7], dtype=np.uint8)}),
]
HOSTILE_ARRAYS: list[Maker] = [
    ("nan array", lambda: {"A": np.array([np.nan])}),
    ("bool array", lambda: {"A": np.array([True])}),
    ("object array", lambda: {"A": np.array([object()])}),
    ("complex array", lambda: {"A": np.array([1j])}),
    ("huge uint64", lambda: {"A": np.array([2**64 - 1], dtype=np.uint64)}),
    ("list value", lambda: {"A": [1.0]}),
    ("long key", lambda: {"k" * (MAX_NAME_BYTES + 1): np.zeros(1)}),
    ("empty key", lambda: {"": np.zeros(1)}),
    ("NUL key", lambda: {"a\x00": np.zeros(1)}),
    ("int key", lambda: {1: np.zeros(1)}),
]


def argument(*valid: list[Maker], hostile: list[Maker] = HOSTILE) -> st.SearchStrategy[Maker]:
    """Half the time a valid value, half the time a hostile one."""
    pool = [maker for group in valid for maker in group]
    return st.one_of(st.sampled_from(pool), st.sampled_from(hostile))


names = argument(VALID_NAMES)
states = argument(VALID_STATES)
numbers = argument(VALID_NUMBERS)
json_values = argument(VALID_JSON, VALID_NUMBERS)
ids = argument(VALID_IDS)
optional_ids = argument(VALID_IDS, [("None", constant(None))])
texts = argument(VALID_TEXTS)
sequences = argument(VALID_SEQUENCES, [("None", constant(None))])
q_tables = st.one_of(
    st.builds(
        lambda state, action, value: (
            f"{{{state[0]}: {{{action[0]}: {value[0]}}}}}",
            lambda: {state[1](): {action[1](): value[1]()}},
        ),
        states,
        names,
        numbers,
    ),
    st.sampled_from(HOSTILE),
)
array_maps = argument(VALID_ARRAYS, hostile=HOSTILE_ARRAYS + HOSTILE)
name_lists = argument(
    [("keys", constant(["A", "n"])), ("key set", constant({"f"}))],
    [("generator of keys", generator_of("A"))],
)
state_lists = argument([("states", constant(["s", ""]))], [("generator", generator_of("s"))])
id_lists = argument([("ids", constant([1])), ("no ids", constant([]))])
version_lists = argument([("versions", constant([1])), ("too big", constant([2**31]))])
step_lists = argument(
    [
        ("steps", lambda: [("a", np.array([0.5, 1.0, 2.0]))]),
        ("int steps", lambda: (("b", np.array([1, 2], dtype=np.int32)),)),
    ],
    hostile=[
        *HOSTILE,
        ("long step key", lambda: [("k" * (MAX_NAME_BYTES + 1), np.ones(1))]),
        ("surrogate step key", lambda: [("\udc80", np.ones(1))]),
        ("nan step", lambda: [("a", np.array([math.nan]))]),
        ("2-D step", lambda: [("a", np.ones((1, 1)))]),
        ("generator of steps", generator_of(("a", np.ones(1)))),
    ],
)
tables = argument([("rewards", constant("rewards")), ("decisions", constant("decisions"))])


#: method -> strategies of its positional arguments (keyword arguments by name).
CALLS: dict[str, tuple[list[st.SearchStrategy[Maker]], dict[str, st.SearchStrategy[Maker]]]] = {
    "save_q_table": ([names, q_tables], {}),
    "save_q_values": ([names, q_tables], {}),
    "get_q_values": ([names, states], {}),
    "save_policy_params": ([names, json_values], {}),
    "save_arrays": ([names, array_maps], {}),
    "get_arrays": ([names, name_lists], {}),
    "delete_arrays": ([names, name_lists], {}),
    "save_agent_reward": ([names, numbers, json_values, optional_ids], {}),
    "get_agent_rewards": ([names, ids], {}),
    "save_agent_interaction": ([names, texts, texts, argument(VALID_TEXTS), optional_ids], {}),
    "set_interaction_feedback": ([ids, texts], {}),
    "mark_feedback_learned": ([id_lists], {}),
    "get_agent_interaction": ([ids], {}),
    "find_agent_interaction": ([names, texts, texts], {}),
    "save_agent_decision": (
        [names, states, names, json_values, json_values],
        {"propensity": argument(VALID_NUMBERS[:1]), "features": sequences},
    ),
    "get_agent_decision": ([ids], {}),
    "iter_agent_decisions": ([names, ids, ids], {}),
    "set_decision_reward": ([ids, json_values], {}),
    "save_version": ([names, argument([("payload", constant(b"\x00snapshot"))]), texts], {}),
    "get_version": ([names, ids], {}),
    "delete_versions": ([names, version_lists], {}),
    "delete_q_states": ([names, state_lists], {}),
    "update_agent_reward": ([ids, numbers, json_values], {}),
    "update_agent_interaction": ([ids], {"request": texts}),
    "delete_agent_interaction": ([ids], {}),
    "delete_agent_reward": ([ids], {}),
    "prune_history": ([names, tables], {"keep_newest": ids}),
    "lock_learner": ([names], {}),
    "append_learner_steps": ([names, step_lists], {}),
    "get_learner_steps": ([names, ids], {}),
    "get_q_table": ([names], {}),
    "get_policy_params": ([names], {}),
    "delete_policy_params": ([names], {}),
    "agent_stats": ([names], {}),
    "count_agent_decisions": ([names], {}),
    "list_versions": ([names], {}),
    "q_state_stats": ([names], {}),
}


# ------------------------------------------------------------- observing stores
def comparable(value: Any) -> Any:
    """``value`` with what legitimately differs between backends (clock times) removed."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return {
            key: comparable(item)
            for key, item in value.items()
            if key
            not in ("timestamp", "created", "last_updated", "last_update", "oldest", "newest")
        }
    if isinstance(value, list | tuple):
        return [comparable(item) for item in value]
    if isinstance(value, Iterator):
        return [comparable(item) for item in value]
    return value


def observe(store: MemoryStore) -> Any:
    """Everything a reader of the contract can see, for before/after comparisons."""
    seen: dict[str, Any] = {}
    for agent in store.list_agents():
        seen[agent] = {
            "q_table": store.get_q_table(agent),
            "policy": store.get_policy_params(agent),
            "arrays": store.get_arrays(agent),
            "rewards": store.get_agent_rewards(agent, limit=1000),
            "interactions": store.get_agent_interactions(agent, limit=1000),
            "decisions": store.get_agent_decisions(agent, limit=1000),
            "versions": store.list_versions(agent),
        }
    return comparable(seen)


def outcome(store: MemoryStore, method: str, args: list[Maker], kwargs: dict[str, Maker]) -> Any:
    """``("ok", result)`` or ``("error", exception type)`` of one call with fresh values."""
    try:
        result = getattr(store, method)(
            *(make() for _, make in args), **{key: make() for key, (_, make) in kwargs.items()}
        )
    except Exception as error:  # the type is what is compared
        return ("error", type(error), str(error))
    return ("ok", comparable(result))


def populate(store: MemoryStore) -> None:
    """A decision, interaction, reward and version with id 1 for the id-taking methods."""
    decision_id = store.save_agent_decision(AGENT, "s", "a", {"a": 0.5}, None, propensity=1.0)
    store.save_agent_interaction(AGENT, "hello", "hi", "great", decision_id)
    store.save_agent_reward(AGENT, 0.5, {"satisfaction": 0.5}, decision_id)
    store.save_version(AGENT, b"snapshot", "first")
    store.save_q_values(AGENT, {"s": {"a": 0.5}})


@pytest.fixture
def three_stores(tmp_path: Path, postgres_store_url: str) -> Iterator[dict[str, MemoryStore]]:
    stores = {
        "sqlite": open_store(str(tmp_path / "memory.db")),
        "postgresql": open_store(postgres_store_url),
        "files": open_store("files://" + str(tmp_path / "memory")),
    }
    for store in stores.values():
        populate(store)
    yield stores
    for store in stores.values():
        store.close()


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, list[Maker], dict[str, Maker]]:
    method = draw(st.sampled_from(sorted(CALLS)))
    positional, keywords = CALLS[method]
    args = [draw(strategy) for strategy in positional]
    kwargs = {key: draw(strategy) for key, strategy in keywords.items()}
    return method, args, kwargs


# ---------------------------------------------------------------------- the fuzz
#: Examples per run: small enough for the suite; ``RLMEMORY_FUZZ_EXAMPLES=3000`` for a soak.
FUZZ_EXAMPLES = int(os.environ.get("RLMEMORY_FUZZ_EXAMPLES", "150"))


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=calls())
def test_every_backend_gives_the_same_answer_and_a_refusal_changes_nothing(
    three_stores: dict[str, MemoryStore], call: tuple[str, list[Maker], dict[str, Maker]]
) -> None:
    method, args, kwargs = call
    before = {backend: observe(store) for backend, store in three_stores.items()}
    results = {
        backend: outcome(store, method, args, kwargs) for backend, store in three_stores.items()
    }
    shown_call = f"{method}({', '.join(label for label, _ in args)}, " + ", ".join(
        f"{key}={label}" for key, (label, _) in kwargs.items()
    )
    kinds = {backend: result[:2] for backend, result in results.items()}
    # Equality, not repr: the order of a mapping's keys is not part of the contract.
    assert kinds["sqlite"] == kinds["postgresql"] == kinds["files"], f"{shown_call}): {results}"
    after = {backend: observe(store) for backend, store in three_stores.items()}
    if results["sqlite"][0] == "error":
        for backend in three_stores:
            assert after[backend] == before[backend], f"{shown_call}) changed {backend}"
        assert issubclass(results["sqlite"][1], TypeError | ValueError | LookupError)
    assert after["sqlite"] == after["postgresql"] == after["files"], shown_call


# ----------------------------------------------------------- the limits, pinned
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.get_agent_decision(2**70), "decision_id"),
        (lambda s: s.get_agent_interaction(2**63), "interaction_id"),
        (lambda s: s.get_agent_rewards(AGENT, limit=2**64), "limit"),
        (lambda s: s.get_version(AGENT, 2**31), "version"),
        (lambda s: s.save_agent_reward(AGENT, 10**400, {}), "reward"),
        (lambda s: s.save_agent_reward("n" * (MAX_NAME_BYTES + 1), 1.0, {}), "agent_name"),
        (lambda s: s.save_q_values(AGENT, {"k" * (MAX_STATE_BYTES + 1): {"a": 1.0}}), "state"),
        (lambda s: s.save_q_values(AGENT, {"s": {"a" * (MAX_NAME_BYTES + 1): 1.0}}), "action"),
        (lambda s: s.save_agent_interaction(AGENT, "a\ud800", "b"), "request"),
        (lambda s: s.set_interaction_feedback(1, "\udfff"), "feedback"),
        (lambda s: s.save_agent_reward(AGENT, 1.0, nested(MAX_JSON_DEPTH + 1)), "32 levels"),
        (lambda s: s.save_agent_reward(AGENT, 1.0, nested(100_000)), "32 levels"),
        (lambda s: s.save_agent_decision(AGENT, "s", "a", {}, None, features=[1e400]), "features"),
    ],
)
def test_values_beyond_a_limit_are_a_value_error_naming_the_argument(
    make_store: Any, call: Callable[[MemoryStore], Any], field: str
) -> None:
    store = make_store()
    populate(store)
    before = observe(store)
    with pytest.raises(ValueError, match=field):
        call(store)
    assert observe(store) == before


def test_a_generator_is_the_same_type_error_on_every_backend(make_store: Any) -> None:
    store = make_store()
    populate(store)
    before = observe(store)
    for call in (
        lambda: store.save_agent_decision(
            AGENT, "s", "a", {}, None, features=(x for x in [1.0, 2.0])
        ),
        lambda: store.get_arrays(AGENT, iter(["A"])),
        lambda: store.delete_q_states(AGENT, (s for s in ["s"])),
        lambda: store.mark_feedback_learned(i for i in [1]),
        lambda: store.delete_versions(AGENT, iter([1])),
    ):
        with pytest.raises(TypeError, match="list, tuple or set"):
            call()
    assert observe(store) == before


def test_names_and_states_at_the_limit_fit_every_index_of_every_backend(make_store: Any) -> None:
    """The longest name, state and action together, in the widest index (q_values' key),
    with incompressible 4-byte characters: PostgreSQL stores it like the others."""
    rng = np.random.default_rng(7)

    def incompressible(limit: int) -> str:
        return "".join(chr(int(code)) for code in rng.integers(0x10000, 0x10FFFF, limit // 4))

    agent, state, action = (incompressible(n) for n in (MAX_NAME_BYTES, MAX_STATE_BYTES, 512))
    store = make_store()
    store.save_q_values(agent, {state: {action: 1.0}})
    store.save_arrays(agent, {action: np.ones(1)})
    store.save_version(agent, b"v", "note")
    decision_id = store.save_agent_decision(agent, state, action, {action: 1.0}, None)
    assert store.get_q_values(agent, state) == {action: 1.0}
    assert store.get_agent_decision(decision_id)["state"] == state


def test_restoring_rows_beyond_the_limits_is_refused_naming_the_row_and_keeps_nothing(
    tmp_path: Path, postgres_store_url: str
) -> None:
    """An older SQLite store may hold an agent name over today's limit (written before the
    rule, or by hand). Restoring it onto PostgreSQL is a ValueError naming the table and
    the row, raised before PostgreSQL sees the row; the target keeps what it had.
    PostgreSQL is the target because its index limit is what the rule protects."""
    source = open_store(str(tmp_path / "old.db"))
    populate(source)
    long_name = "x" * 3000
    assert source.sqlite_path is not None
    source.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "old.db") as raw:
        raw.execute(
            "INSERT INTO agent_rewards (agent_name, reward, reward_components, timestamp) "
            "VALUES (?, 0.5, '{}', 1.0)",
            (long_name,),
        )
    source = open_store(str(tmp_path / "old.db"))
    target = open_store(postgres_store_url)
    target.save_agent_reward("kept", 1.0, {})
    before = observe(target)
    with (
        source.snapshot() as read_table,
        pytest.raises(ValueError) as caught,
        target.transaction(),
    ):
        target.clear_data()
        for table in source.backup_tables():
            target.load_rows(table, read_table(table))
    message = str(caught.value)
    assert "agent_rewards" in message and "id=2" in message and "agent_name" in message
    assert observe(target) == before
    source.close()
    target.close()


# ------------------------------------------------------ the coordinator and rewards
class _Echo:
    """A sub-agent that answers every request (and counts how often it was asked)."""

    def __init__(self) -> None:
        self.calls = 0

    async def execute(self, request: str, db: Any) -> dict[str, Any]:
        self.calls += 1
        return {"success": True, "response": f"echo: {request}"}


@pytest.mark.parametrize("rl_agent_type", ["q_learning", "linucb"])
@pytest.mark.parametrize(
    ("request_value", "error"),
    [
        (42, TypeError),
        (b"bytes", TypeError),
        (None, TypeError),
        ("lone \ud800 surrogate", ValueError),
        ("nul \x00 inside", ValueError),
        ("rlm:enc:v1:looks encrypted", ValueError),
    ],
)
def test_process_request_refuses_a_bad_request_before_anything_runs_or_is_written(
    make_store: Any, rl_agent_type: str, request_value: Any, error: type[Exception]
) -> None:
    import asyncio

    from rlmemory.coordinator import create_rl_agent_architecture

    store = make_store()
    sub_agents = {"echo": _Echo(), "other": _Echo()}
    coordinator = asyncio.run(
        create_rl_agent_architecture(None, store, sub_agents, rl_agent_type, name="router")
    )
    asyncio.run(coordinator.process_request("a fine request"))
    before = observe(store)
    with pytest.raises(error, match="request"):
        asyncio.run(coordinator.process_request(request_value))
    assert observe(store) == before
    assert sum(agent.calls for agent in sub_agents.values()) == 1
    asyncio.run(coordinator.process_request("still works"))
    assert len(store.get_agent_decisions("router", limit=10)) == 2


def test_reward_system_and_coordinator_call_10_to_the_400_a_value_error_naming_the_field(
    make_store: Any,
) -> None:
    import asyncio

    from rlmemory.coordinator import create_rl_agent_architecture
    from rlmemory.rewards import RewardSystem

    store = make_store()
    rewards = RewardSystem(store)
    for feedback, metrics, field in [
        (10**400, {}, "feedback"),
        ({"rating": 10**400}, {}, "rating"),
        (None, {"response_time": 10**400}, "response_time"),
        (None, {"tool_calls": -(10**400)}, "tool_calls"),
    ]:
        with pytest.raises(ValueError, match=field):
            rewards.calculate_reward("router", feedback, metrics)
    with pytest.raises(ValueError, match="weights"):
        RewardSystem(store, {"efficiency": 10**400})
    coordinator = asyncio.run(
        create_rl_agent_architecture(None, store, {"echo": _Echo()}, "q_learning", name="router")
    )
    decision_id = asyncio.run(coordinator.process_request("hello"))["decision_id"]
    before = observe(store)
    with pytest.raises(ValueError, match="value"):
        asyncio.run(coordinator.reward(decision_id, 10**400))
    with pytest.raises(ValueError, match="feedback"):
        asyncio.run(coordinator.update_from_feedback("hello", "echo: hello", 10**400))
    with pytest.raises(ValueError, match="feedback"):
        asyncio.run(coordinator.update_from_feedback("hello", "echo: hello", "bad \ud800"))
    assert observe(store) == before


@pytest.mark.parametrize(
    "learner_name", ["LinUCBAgent", "ThompsonSamplingAgent", "EpsilonGreedyAgent"]
)
def test_extreme_features_are_refused_before_the_learned_state_is_touched(
    make_store: Any, learner_name: str
) -> None:
    from rlmemory.learners import bandits

    store = make_store()
    learner = getattr(bandits, learner_name)("router", store, ["a", "b"], seed=3)
    learner.update([0.5, 1.0], "a", 0.5)
    stored = {key: value.copy() for key, value in store.get_arrays("router").items()}
    for features in ([1e300, 1.0], [math.inf, 1.0], [math.nan, 0.0], [-1e101, 0.0]):
        for method, extra in (
            ("select_action", ()),
            ("action_probabilities", ()),
            ("update", ("b", 1.0)),
        ):
            with pytest.raises(ValueError, match="features"):
                getattr(learner, method)(features, *extra)
    # Within the limit but with a reward that overflows the statistics: refused, undone.
    with pytest.raises(ValueError, match="overflow"):
        learner.update([1e100, 1e100], "b", 1e300)
    assert {key: value.tobytes() for key, value in store.get_arrays("router").items()} == {
        key: value.tobytes() for key, value in stored.items()
    }
    # The largest allowed features give a choice with a proper probability, never
    # numpy's "high <= 0".
    probabilities = learner.action_probabilities([1e100, -1e100])
    assert math.isclose(sum(probabilities.values()), 1.0)
    assert learner.select_action([1e100, -1e100]) in ("a", "b")
    learner.update([1e100, -1e100], "b", 1.0)
    assert all(np.isfinite(value).all() for value in store.get_arrays("router").values())


def test_learners_refuse_action_names_their_store_could_not_hold(make_store: Any) -> None:
    """An action name is a store key (a Q-table action; a bandit's "<action>/ridge" array
    key): one too long is refused when the learner is built, not at its first save."""
    from rlmemory.learners.bandits import LinUCBAgent
    from rlmemory.learners.qlearning import QLearningAgent

    store = make_store()
    longest_bandit_action = "a" * (MAX_NAME_BYTES - len("/ridge"))
    LinUCBAgent("router", store, [longest_bandit_action]).update([1.0], longest_bandit_action, 1.0)
    with pytest.raises(ValueError, match="suffix is 513 UTF-8 bytes"):
        LinUCBAgent("other", store, [longest_bandit_action + "a"])
    with pytest.raises(ValueError, match="action name is 513 UTF-8 bytes"):
        QLearningAgent("q", None, store, None, None, ["b" * (MAX_NAME_BYTES + 1)])
    assert store.list_agents() == ["router"]
