"""Argument checks shared by every store backend: one size and range rule for all.

Every backend (SQLite, PostgreSQL, the file store) calls these before it writes or
queries anything, so a bad argument is rejected with the same typed error everywhere,
before it reaches a server, and nothing is half-stored. The limits:

* **Names** — agent names, action names, array keys: non-empty ``str`` of at most
  :data:`MAX_NAME_BYTES` (512) UTF-8 bytes.
* **States** — Q-table state keys and the ``state`` of a decision: ``str`` (may be
  empty) of at most :data:`MAX_STATE_BYTES` (1536) UTF-8 bytes.
* **Texts** (request, response, feedback, notes) and every name or state: no NUL
  character and no unpaired surrogate (PostgreSQL cannot hold NUL, and UTF-8 cannot
  encode a lone surrogate).
* **Integers** — ids, limits, batch sizes, counts: ``int`` (not ``bool``) that fits a
  signed 64-bit column (:data:`INT64_MAX`); version numbers fit PostgreSQL's
  ``INTEGER`` (:data:`MAX_VERSION`).
* **Numbers** that the contract says are finite (rewards, propensities, features,
  Q-values, array entries): finite; an ``int`` too large for a float is refused too.
* **JSON payloads** (reward components, decision ``q_values`` and ``reward``, policy
  parameters): nested at most :data:`MAX_JSON_DEPTH` (32) containers deep, no NaN or
  infinity, no lone surrogate, only types JSON encodes.
* **Sequences** (``features``, ``keys``, ``states``, ``versions``, ``interaction_ids``):
  a list, tuple, set or numpy array — never a generator or iterator, which a retried
  write could not read twice.

Why these byte limits: PostgreSQL refuses a btree index entry over 2,704 bytes (8 KB
pages). The widest index is the primary key of ``q_values``, (agent_name, state,
action): 512 + 1536 + 512 bytes of text, each with a 4-byte length header and
alignment, plus the 8-byte entry header, is at most 2,584 bytes. Every other index
holds one name and at most an 8-byte integer. So no write through this API can hit
the limit on any backend, and data written by it always restores onto PostgreSQL.
Rows restored from an older store that predate these rules are checked by
:func:`check_backup_row` before they are written.

Errors: a wrong type is ``TypeError``; a wrong value (empty, too long, NUL, surrogate,
out of range, not finite, too deep) is ``ValueError``. Both name the argument.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from typing import Any

import numpy as np

from rlmemory.store.crypto import TEXT_PREFIX
from rlmemory.store.rows import BACKUP_COLUMNS

QTable = dict[str, dict[str, float]]

#: Longest agent name, action name or array key, in UTF-8 bytes.
MAX_NAME_BYTES = 512
#: Longest Q-table state key (and decision ``state``), in UTF-8 bytes.
MAX_STATE_BYTES = 1536
#: Largest id, limit or count: a signed 64-bit integer.
INT64_MAX = 2**63 - 1
#: Smallest id a store accepts to look up (and then does not find).
INT64_MIN = -(2**63)
#: Largest version number: PostgreSQL's 4-byte ``INTEGER``.
MAX_VERSION = 2**31 - 1
#: Deepest nesting of lists and mappings in a JSON payload.
MAX_JSON_DEPTH = 32
#: Longest settings namespace or key (``MemoryStore.save_setting``), in characters.
MAX_SETTING_NAME_LENGTH = 200

_SHOWN_CHARACTERS = 40


def shown(value: str) -> str:
    """``repr`` of ``value``, cut short so an error message stays one readable line.

    >>> shown("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (100 characters)"
    """
    if len(value) <= _SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value)} characters)"


def check_storable(value: str, field: str) -> str:
    """Return ``value`` if every backend can store it: no NUL, no lone surrogate.

    >>> check_storable("a\\x00b", "request")
    Traceback (most recent call last):
    ValueError: request contains a NUL character, which cannot be stored
    >>> check_storable("\\ud800", "request")
    Traceback (most recent call last):
    ValueError: request contains a lone surrogate (U+D800 at index 0), which cannot be stored
    """
    if "\x00" in value:
        raise ValueError(f"{field} contains a NUL character, which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(value[error.start])
        raise ValueError(
            f"{field} contains a lone surrogate (U+{code:04X} at index {error.start}), "
            "which cannot be stored"
        ) from None
    return value


def _utf8_length(value: str, field: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        check_storable(value, field)
        raise  # pragma: no cover - check_storable raised


def check_text(value: object, field: str, *, optional: bool = False) -> str | None:
    """Return ``value`` if it is a storable str (or None when ``optional``).

    >>> check_text(3, "request")
    Traceback (most recent call last):
    TypeError: request must be a str, not int
    """
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    return check_storable(value, field)


def check_interaction_text(value: object, field: str, *, optional: bool = False) -> str | None:
    """``value`` if it is a storable str that encryption at rest can tell from a token.

    Interaction texts are the ones a store with a key encrypts; an encrypted text starts
    with :data:`rlmemory.store.crypto.TEXT_PREFIX`, so a plain text starting with it would
    read back as a token to decrypt. Such a text is refused on every store, with or
    without a key, so a store can gain a key later without misreading its old rows.

    >>> check_interaction_text("rlm:enc:v1:hello", "request")
    Traceback (most recent call last):
    ValueError: request starts with 'rlm:enc:v1:', which rlmemory reserves for encrypted texts
    """
    text = check_text(value, field, optional=optional)
    if text is not None and text.startswith(TEXT_PREFIX):
        raise ValueError(
            f"{field} starts with {TEXT_PREFIX!r}, which rlmemory reserves for encrypted texts"
        )
    return text


def check_name(value: object, field: str) -> str:
    """Return ``value`` if it is a non-empty storable str of at most :data:`MAX_NAME_BYTES`.

    >>> check_name("search", "action")
    'search'
    >>> check_name("n" * 600, "action")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: action is 600 UTF-8 bytes long; the limit is 512: 'nnnn...
    """
    if value.__class__ is str and _fits(value, MAX_NAME_BYTES):
        return value  # the common case, without the calls below (learners call this per step)
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{field} must be a non-empty string")
    return _check_length(value, field, MAX_NAME_BYTES)


def check_agent_name(agent_name: object) -> str:
    """Return ``agent_name`` if it is a valid name (see :func:`check_name`), else raise.

    >>> check_agent_name("router")
    'router'
    >>> check_agent_name("")
    Traceback (most recent call last):
    ValueError: agent_name must be a non-empty string
    """
    return check_name(agent_name, "agent_name")


def check_state(value: object, field: str = "state") -> str:
    """Return ``value`` if it is a storable str of at most :data:`MAX_STATE_BYTES` bytes.

    >>> check_state("")
    ''
    """
    if value.__class__ is str and (value == "" or _fits(value, MAX_STATE_BYTES)):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    return _check_length(value, field, MAX_STATE_BYTES)


def check_decision_labels(state: object, selected_action: object) -> tuple[str, str]:
    """The ``state`` (a state key) and ``selected_action`` (a name) of a decision.

    >>> check_decision_labels("code", "")
    Traceback (most recent call last):
    ValueError: selected_action must be a non-empty string
    """
    return check_state(state), check_name(selected_action, "selected_action")


def check_setting_name(value: object, field: str) -> str:
    """Return ``value`` if it is a usable settings namespace or key (non-empty, at most
    :data:`MAX_SETTING_NAME_LENGTH` characters, storable), else ``ValueError``/``TypeError``.

    >>> check_setting_name("", "key")
    Traceback (most recent call last):
    ValueError: key must be a non-empty string of at most 200 characters, got ''
    """
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    if not value or len(value) > MAX_SETTING_NAME_LENGTH or "\x00" in value:
        raise ValueError(
            f"{field} must be a non-empty string of at most {MAX_SETTING_NAME_LENGTH} "
            f"characters, got {value[:60]!r}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} must be valid Unicode text (no lone surrogates)") from None
    return value


def _fits(value: str, limit: int) -> bool:
    """Whether a str is non-empty, free of NUL and surrogates, and at most ``limit`` bytes
    (a fast yes; a no is explained by the slower checks)."""
    if not value or "\x00" in value:
        return False
    try:
        return len(value.encode("utf-8")) <= limit
    except UnicodeEncodeError:
        return False


def _check_length(value: str, field: str, limit: int) -> str:
    check_storable(value, field)
    # Every character is at most 4 bytes: short strings need no encoding to be sure.
    if len(value) * 4 > limit:
        size = _utf8_length(value, field)
        if size > limit:
            raise ValueError(
                f"{field} is {size} UTF-8 bytes long; the limit is {limit}: {shown(value)}"
            )
    return value


def check_integer(value: object, field: str, *, minimum: int, maximum: int = INT64_MAX) -> int:
    """Return ``value`` if it is an int (not bool) in ``[minimum, maximum]``.

    >>> check_integer(2**70, "decision_id", minimum=1)
    Traceback (most recent call last):
    ValueError: decision_id must be at most 9223372036854775807 (a signed 64-bit integer), got 2**70
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{field} must be an int, not {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{field} must be at least {minimum}, got {_big(value)}")
    if value > maximum:
        kind = "a signed 64-bit integer" if maximum == INT64_MAX else "a signed 32-bit integer"
        raise ValueError(f"{field} must be at most {maximum} ({kind}), got {_big(value)}")
    return value


def _big(value: int) -> str:
    if value > 0 and value & (value - 1) == 0:
        return f"2**{value.bit_length() - 1}"
    text = str(value) if value.bit_length() < 200 else f"an integer of {value.bit_length()} bits"
    return text


def check_id(value: object, field: str) -> int:
    """Return ``value`` if it is a row id: an int that fits a signed 64-bit column.

    Ids are never 0 or negative, but such an id is simply not found (``LookupError``
    from the store), like any other id that was never given out.
    """
    return check_integer(value, field, minimum=INT64_MIN)


def check_limit(limit: object, field: str = "limit") -> int:
    """Return ``limit`` if it is a positive int that fits 64 bits.

    >>> check_limit(0)
    Traceback (most recent call last):
    ValueError: limit must be a positive integer, got 0
    """
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer):
        raise TypeError(f"{field} must be an int, not {type(limit).__name__}")
    if limit <= 0:
        raise ValueError(f"{field} must be a positive integer, got {limit}")
    return check_integer(limit, field, minimum=1)


def check_version_number(value: object, field: str = "version") -> int:
    """Return ``value`` if it is a version number that fits PostgreSQL's ``INTEGER``.

    Versions count from 1; a smaller number is simply not found, like an id.
    """
    return check_integer(value, field, minimum=-MAX_VERSION - 1, maximum=MAX_VERSION)


def check_finite(value: object, field: str) -> float:
    """Return ``value`` as a float if it is a finite real number.

    >>> check_finite(float("nan"), "reward")
    Traceback (most recent call last):
    ValueError: reward must be a finite number, got nan
    >>> check_finite(10**400, "reward")
    Traceback (most recent call last):
    ValueError: reward must be a finite number, got an int too large for a float (1329 bits)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{field} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(
            f"{field} must be a finite number, got an int too large for a float "
            f"({int(value).bit_length()} bits)"
        ) from None
    if not math.isfinite(number):
        raise ValueError(f"{field} must be a finite number, got {number}")
    return number


def check_propensity(propensity: object) -> float | None:
    """Return ``propensity`` (None, or a float in (0, 1]).

    >>> check_propensity(0)
    Traceback (most recent call last):
    ValueError: propensity must be in (0, 1], got 0.0
    """
    if propensity is None:
        return None
    value = check_finite(propensity, "propensity")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"propensity must be in (0, 1], got {value}")
    return value


def check_collection(value: object, field: str, contents: str) -> list[Any]:
    """Return the items of a list, tuple, set or numpy array as a list.

    Strings, mappings, generators and other one-shot iterators are ``TypeError``: a
    generator would be consumed by a first attempt and look empty to a retry.

    >>> check_collection((1, 2), "versions", "int")
    [1, 2]
    >>> check_collection(iter([1]), "versions", "int")
    Traceback (most recent call last):
    TypeError: versions must be a list, tuple or set of int, not list_iterator
    """
    if isinstance(value, np.ndarray):
        return value.tolist() if value.ndim else [value.item()]
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence | Set):
        raise TypeError(
            f"{field} must be a list, tuple or set of {contents}, not {type(value).__name__}"
        )
    return list(value)


def check_features(features: object) -> list[float] | None:
    """Return ``features`` (None, or a sequence of finite numbers) as a list of floats.

    >>> check_features((1, 2.5))
    [1.0, 2.5]
    >>> check_features(x for x in [1.0])
    Traceback (most recent call last):
    TypeError: features must be a list, tuple or set of numbers, not generator
    """
    if features is None:
        return None
    if isinstance(features, Set):
        raise TypeError(
            f"features must be an ordered sequence of numbers, not {type(features).__name__}"
        )
    items = check_collection(features, "features", "numbers")
    return [check_finite(value, f"features[{index}]") for index, value in enumerate(items)]


def check_names(values: object, field: str) -> list[str]:
    """The distinct names (array keys, ...) of a collection argument, in first-seen order."""
    names = [check_name(value, f"{field} item") for value in check_collection(values, field, "str")]
    return list(dict.fromkeys(names))


def check_states(states: object, field: str = "states") -> list[str]:
    """The distinct Q-table states of a collection argument, sorted.

    >>> check_states(["b", "a", "b"])
    ['a', 'b']
    """
    items = check_collection(states, field, "str")
    return sorted({check_state(state, f"{field} item") for state in items})


def check_ids(values: object, field: str) -> list[int]:
    """The distinct row ids of a collection argument, sorted."""
    return sorted(
        {check_id(value, f"{field} item") for value in check_collection(values, field, "int")}
    )


def check_version_numbers(values: object, field: str = "versions") -> list[int]:
    """The distinct version numbers of a collection argument, sorted."""
    items = check_collection(values, field, "int")
    return sorted({check_version_number(value, f"{field} item") for value in items})


def check_mapping(value: object, field: str, contents: str = "") -> Mapping[Any, Any]:
    """Return ``value`` if it is a mapping, else a ``TypeError`` naming ``field``.

    >>> check_mapping({"a": 1}, "reward_components")
    {'a': 1}
    >>> check_mapping([1], "arrays", " of name to array")
    Traceback (most recent call last):
    TypeError: arrays must be a mapping of name to array, not list
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{field} must be a mapping{contents}, not {type(value).__name__}")
    return value


def check_q_table(q_table: object, field: str = "q_table") -> QTable:
    """Validate a Q-table ``{state: {action: value}}`` and return a plain-dict copy.

    States must be valid states, actions valid names and values finite numbers. A
    state with no actions carries no information and is dropped, on every backend alike.

    >>> check_q_table({"s": {"a": 1}, "empty": {}})
    {'s': {'a': 1.0}}
    >>> check_q_table({"s": {"a": float("inf")}})
    Traceback (most recent call last):
    ValueError: q_table['s']['a'] must be a finite number, got inf
    """
    if not isinstance(q_table, Mapping):
        raise TypeError(
            f"{field} must be a mapping of state to actions, not {type(q_table).__name__}"
        )
    clean: QTable = {}
    for state, actions in q_table.items():
        if not isinstance(state, str):
            raise TypeError(f"{field} state keys must be str, not {type(state).__name__}")
        if not _fits(state, MAX_STATE_BYTES):
            check_state(state, f"{field} state {shown(state)}")
        if not isinstance(actions, Mapping):
            raise TypeError(
                f"{field}[{shown(state)}] must be a mapping of action to value, "
                f"not {type(actions).__name__}"
            )
        row: dict[str, float] = {}
        for action, value in actions.items():
            if not isinstance(action, str):
                raise TypeError(
                    f"{field}[{shown(state)}] action keys must be str, not {type(action).__name__}"
                )
            if not _fits(action, MAX_NAME_BYTES):
                check_name(action, f"{field}[{shown(state)}] action")
            if value.__class__ is float and math.isfinite(value):
                row[action] = value
            else:
                row[action] = check_finite(value, f"{field}[{shown(state)}][{shown(action)}]")
        if row:
            clean[state] = row
    return clean


def check_reward_row(
    agent_name: object, reward: object, reward_components: object, decision_id: object
) -> tuple[str, float, str, int | None]:
    """The arguments of ``save_agent_reward``, checked in that order; components as JSON.

    One function for every backend, so a call with two bad arguments names the same one
    everywhere.

    >>> check_reward_row("router", float("nan"), None, None)
    Traceback (most recent call last):
    ValueError: reward must be a finite number, got nan
    """
    name = check_agent_name(agent_name)
    value = check_finite(reward, "reward")
    check_mapping(reward_components, "reward_components")
    components = to_json(dict(reward_components), "reward_components")  # type: ignore[call-overload]
    return (
        name,
        value,
        components,
        None if decision_id is None else check_id(decision_id, "decision_id"),
    )


#: numpy dtype kind -> the dtype the stores keep (lossless widening only).
_ARRAY_KINDS = {"f": np.float64, "i": np.int64, "u": np.int64}


def check_array(key: object, value: object) -> tuple[str, np.ndarray]:
    """Return ``(key, array)`` with the array as float64 or int64, or raise.

    ``value`` must be a numpy array or scalar of real numbers: floats of up to 64 bits
    become float64, integers int64 (unsigned ones only if every value fits). NaN and
    infinity are ``ValueError``; other dtypes (bool, complex, object, text) ``TypeError``.

    >>> check_array("n", np.array([1, 2], dtype=np.int32))[1].dtype
    dtype('int64')
    >>> check_array("b", [1.0])
    Traceback (most recent call last):
    TypeError: arrays['b'] must be a numpy array, not list
    """
    key = check_name(key, "arrays key")
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"arrays[{shown(key)}] must be a numpy array, not {type(value).__name__}")
    target = _ARRAY_KINDS.get(value.dtype.kind)
    if target is None or value.dtype.itemsize > 8:
        raise TypeError(
            f"arrays[{shown(key)}] must hold float64 or int64 numbers, not {value.dtype}"
        )
    if value.dtype.kind == "f":
        if not np.isfinite(value).all():
            raise ValueError(
                f"arrays[{shown(key)}] contains NaN or infinity, which cannot be stored"
            )
    elif value.dtype.kind == "u" and value.size and int(value.max()) > INT64_MAX:
        raise ValueError(f"arrays[{shown(key)}] holds values too large for int64")
    return key, value.astype(target, copy=False)


def check_arrays(arrays: object) -> list[tuple[str, np.ndarray]]:
    """:func:`check_array` for every entry of a ``save_arrays`` argument, sorted by key."""
    check_mapping(arrays, "arrays", " of name to array")
    return sorted(
        (check_array(key, value) for key, value in arrays.items()),  # type: ignore[attr-defined]
        key=lambda item: item[0],
    )


def to_json(payload: Any, field: str) -> str:
    """Encode ``payload`` as compact JSON, rejecting what would not round-trip.

    NaN and infinities, lone surrogates and nesting deeper than
    :data:`MAX_JSON_DEPTH` are a ``ValueError`` naming the field; a value JSON cannot
    encode is a ``TypeError`` naming its type.

    >>> to_json({"a": 1.5}, "reward_components")
    '{"a":1.5}'
    >>> to_json({"a": {1, 2}}, "reward_components")
    Traceback (most recent call last):
    TypeError: reward_components contains a value of type set, which JSON cannot encode
    >>> nested = {}
    >>> for _ in range(40):
    ...     nested = {"x": nested}
    >>> to_json(nested, "reward_components")
    Traceback (most recent call last):
    ValueError: reward_components is nested more than 32 levels deep, which cannot be stored
    """
    _check_json_tree(payload, field)
    try:
        return json.dumps(
            payload, allow_nan=False, ensure_ascii=False, separators=(",", ":"), default=_reject
        )
    except _Unencodable as error:
        raise TypeError(
            f"{field} contains a value of type {error.type_name}, which JSON cannot encode"
        ) from None
    except TypeError as error:  # keys of a type JSON refuses (tuples, ...)
        raise TypeError(f"{field} cannot be encoded as JSON: {error}") from None
    except ValueError as error:
        if "compliant" in str(error):
            raise ValueError(f"{field} contains NaN or infinity, which cannot be stored") from None
        raise ValueError(f"{field} cannot be stored: {error}") from None


def _check_json_tree(payload: Any, field: str) -> None:
    """Depth, surrogates and non-finite floats of a JSON payload, without recursion."""
    pending: list[tuple[Any, int]] = [(payload, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_json_text(value, field)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{field} contains NaN or infinity, which cannot be stored")
        elif isinstance(value, Mapping | list | tuple):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(
                    f"{field} is nested more than {MAX_JSON_DEPTH} levels deep, "
                    "which cannot be stored"
                )
            if isinstance(value, Mapping):
                for key in value:
                    if isinstance(key, str):
                        _check_json_text(key, field)
                    elif isinstance(key, float) and not math.isfinite(key):
                        raise ValueError(
                            f"{field} has a NaN or infinite key, which cannot be stored"
                        )
                pending.extend((item, depth + 1) for item in value.values())
            else:
                pending.extend((item, depth + 1) for item in value)


def _check_json_text(value: str, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} contains a lone surrogate, which cannot be stored") from None


class _Unencodable(Exception):
    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


def _reject(value: Any) -> Any:
    if isinstance(value, np.floating | np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise _Unencodable(type(value).__name__)


def _optional_version(value: object) -> object:
    return None if value is None else check_version_number(value)


#: Columns of the backup tables with a rule beyond "text is storable", per table.
_BACKUP_COLUMN_RULES: dict[str, tuple[tuple[str, Any], ...]] = {
    "q_values": (
        ("state", check_state),
        ("action", lambda value: check_name(value, "action")),
    ),
    "learner_arrays": (("key", lambda value: check_name(value, "key")),),
    "learner_steps": (("key", lambda value: check_name(value, "key")),),
    "agent_decisions": (("version", _optional_version),),
    "agent_versions": (("version", check_version_number),),
    "rlmemory_settings": (
        ("namespace", lambda value: check_setting_name(value, "namespace")),
        ("key", lambda value: check_setting_name(value, "key")),
    ),
}


def check_backup_row(table: str, row: Mapping[str, Any]) -> None:
    """Refuse a row being restored into ``table`` that breaks today's rules.

    Stores written before these rules existed (or edited by hand) may hold an agent
    name longer than :data:`MAX_NAME_BYTES`, a NUL in a text, a version number beyond
    PostgreSQL's ``INTEGER``: PostgreSQL would refuse such a row half-way through a
    restore. The error names the table, the row and the rule, and comes before the row
    is written (the restore's transaction then writes nothing).

    >>> check_backup_row("q_values", {"agent_name": "a", "state": "s", "action": "x" * 600})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: cannot restore q_values row (agent_name='a', state='s'): action is 600 UTF-8 ...
    >>> check_backup_row("q_agents", {"agent_name": "a", "colour": "red"})
    Traceback (most recent call last):
    ValueError: cannot restore q_agents row (agent_name='a'): no columns ['colour']
    """
    known = BACKUP_COLUMNS.get(table)
    unknown = sorted(set(row) - set(known)) if known is not None else []
    if unknown:
        raise ValueError(f"cannot restore {table} row {_row_label(row)}: no columns {unknown}")
    try:
        if "agent_name" in row:
            check_agent_name(row["agent_name"])
        for column, check in _BACKUP_COLUMN_RULES.get(table, ()):
            if column in row:
                check(row[column])
        for column, value in row.items():
            if isinstance(value, str):
                check_storable(value, column)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot restore {table} row {_row_label(row)}: {error}") from None


def checked_backup_rows(
    table: str, rows: Iterable[Mapping[str, Any]]
) -> Iterator[Mapping[str, Any]]:
    """``rows`` as given, each passed through :func:`check_backup_row` as it is read."""
    for row in rows:
        check_backup_row(table, row)
        yield row


def _row_label(row: Mapping[str, Any]) -> str:
    if row.get("id") is not None:
        return f"id={row['id']!r}"
    parts = [
        f"{column}={shown(row[column]) if isinstance(row[column], str) else repr(row[column])}"
        for column in ("agent_name", "state", "key", "version")
        if column in row
    ]
    return "(" + ", ".join(parts) + ")"


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_JSON_DEPTH",
    "MAX_NAME_BYTES",
    "MAX_SETTING_NAME_LENGTH",
    "MAX_STATE_BYTES",
    "MAX_VERSION",
    "check_agent_name",
    "check_array",
    "check_arrays",
    "check_backup_row",
    "check_collection",
    "check_decision_labels",
    "check_features",
    "check_finite",
    "check_id",
    "check_ids",
    "check_integer",
    "check_interaction_text",
    "check_limit",
    "check_mapping",
    "check_name",
    "check_names",
    "check_propensity",
    "check_q_table",
    "check_reward_row",
    "check_setting_name",
    "check_state",
    "check_states",
    "check_storable",
    "check_text",
    "check_version_number",
    "check_version_numbers",
    "checked_backup_rows",
    "shown",
    "to_json",
]
