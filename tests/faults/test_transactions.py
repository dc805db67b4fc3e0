"""A transaction is never lost without a word, on every backend.

Inside ``with store.transaction():`` a caller writes a reward, then makes a call that
fails and swallows its error. Whatever the backend does with that failure, the block
must either commit everything written (the failure cost nothing) or raise
:class:`~rlmemory.errors.TransactionAbortedError` having stored nothing — never exit
normally with everything rolled back, which PostgreSQL did before: it aborts the whole
transaction on a server error and turns the COMMIT into a ROLLBACK.

The failing calls are ones that reached the PostgreSQL server at the time of writing
(an id out of its ``BIGINT`` range, a state key longer than its index allows); on the
other backends, or once arguments are validated before they are sent, they fail (or
succeed) in the client and the transaction must commit. Argument errors
(``ValueError``, ``LookupError``) always leave the transaction usable. That a server
error fails the block with ``TransactionAbortedError`` deterministically is pinned by
``test_timeouts.py`` (a lock timeout inside a transaction).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import pytest

from rlmemory.errors import TransactionAbortedError, UnknownDecisionError

AGENT = "router"

TRIGGERS: dict[str, Callable[[Any], object]] = {
    "id beyond BIGINT": lambda store: store.get_agent_decision(2**70),
    "state key beyond the index limit": lambda store: store.save_q_values(
        AGENT,
        {random.Random(8).randbytes(3000).hex(): {"a": 1.0}},  # incompressible
    ),
}


def rewards(store: Any) -> list[float]:
    return [row["reward"] for row in store.get_agent_rewards(AGENT, limit=100)]


@pytest.mark.parametrize("trigger", list(TRIGGERS))
@pytest.mark.parametrize("failing_call_is_last", [True, False], ids=["last", "middle"])
def test_a_swallowed_failure_inside_a_transaction_is_never_a_silent_loss(
    store: Any, trigger: str, failing_call_is_last: bool
) -> None:
    written = [1.0] if failing_call_is_last else [2.0, 1.0]
    try:
        with store.transaction():
            store.save_agent_reward(AGENT, 1.0, {})
            with contextlib.suppress(Exception):
                TRIGGERS[trigger](store)
            if not failing_call_is_last:
                store.save_agent_reward(AGENT, 2.0, {})
    except TransactionAbortedError as error:
        assert store.location in str(error)
        assert rewards(store) == []
    else:
        assert rewards(store) == written
    # The store stays usable either way.
    store.save_agent_reward(AGENT, 5.0, {})
    assert rewards(store)[0] == 5.0


def test_argument_errors_inside_a_transaction_leave_it_usable(store: Any) -> None:
    with store.transaction():
        decision = store.save_agent_decision(AGENT, "s", "a", {}, None)
        store.save_agent_reward(AGENT, 1.0, {}, decision)
        with pytest.raises(UnknownDecisionError):
            store.save_agent_reward(AGENT, 9.0, {}, decision + 1000)
        with pytest.raises(UnknownDecisionError):
            store.get_agent_decision(decision + 1000)
        with pytest.raises(ValueError):
            store.save_agent_reward(AGENT, float("nan"), {})
        store.save_agent_reward(AGENT, 2.0, {}, decision)
    assert rewards(store) == [2.0, 1.0]
