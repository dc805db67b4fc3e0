"""A seeded stream of demo requests of three kinds: docs search, statistics, code to run.

Request ``i`` of a stream depends only on ``(seed, i)``, so a resumed demo continues
the same stream where the previous run stopped.

>>> [request.kind for request in demo_requests(4, seed=1)] == [
...     request.kind for request in demo_requests(2, seed=1)
... ] + [request.kind for request in demo_requests(2, seed=1, start=2)]
True
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["KINDS", "DemoRequest", "demo_requests"]

#: Request kinds and the sub-agent that can serve each.
KINDS = {"search": "search_agent", "statistics": "analysis_agent", "code": "coding_agent"}

_SEARCH_TOPICS = (
    "context managers",
    "the with statement",
    "exception handling with try and except",
    "operator precedence",
    "augmented assignment",
    "boolean operations",
    "slicing",
    "dictionary displays",
    "floating point literals",
    "the global statement",
    "nonlocal names",
    "decorators",
    "generator expressions",
    "lambda expressions",
    "coroutine functions",
    "the import system",
    "the assert statement",
    "string formatting",
    "comparisons of sequences",
    "class definitions",
    "the del statement",
    "the raise statement",
    "yield expressions",
    "conditional expressions",
    "unary arithmetic operations",
    "identifiers and keywords",
    "shifting operations",
    "the pass statement",
    "await expressions",
    "the return statement",
)
_SEARCH_TEMPLATES = (
    "Search the docs for {}",
    "Where is {} documented?",
    "Look up {} in the Python reference",
    "Find documentation on {}",
    "Explain {}",
)

_STATISTICS_TEMPLATES = (
    "Summarise these measurements: {}",
    "What are the average and spread of {}?",
    "Give me summary statistics for {}",
    "Median and deviation of the values {} please",
    "Analyse this data: {}",
)

_SNIPPETS = (
    "print(sum(i * i for i in range(10)))",
    "print(sorted('banana'))",
    "import math; print(math.factorial(12))",
    "print(2 ** 100)",
    "print('-'.join(reversed('abc')))",
    "print(len(set('mississippi')))",
    "print({k: ord(k) for k in 'ab'})",
    "import itertools; print(list(itertools.permutations('xyz'))[:2])",
    "print(bin(255), hex(255))",
    "print(divmod(17, 5))",
    "import json; print(json.dumps({'ok': True}))",
    "print(max('apple', 'pear', key=len))",
    "import statistics; print(statistics.median([4, 1, 7]))",
    "print(int('ff', 16))",
    "print(1 / 0)",
    "import textwrap; print(textwrap.shorten('hello wonderful world', 12))",
    "print(list(zip('ab', 'cd')))",
    "print(round(22 / 7, 3))",
)
_CODE_TEMPLATES = (
    "Run `{}`",
    "What does `{}` print?",
    "Execute this Python: `{}`",
    "Please run the snippet `{}` and show the output",
)


@dataclass(frozen=True)
class DemoRequest:
    """One generated request: its text and its kind (a key of :data:`KINDS`)."""

    kind: str
    text: str


def demo_requests(count: int, seed: int = 0, start: int = 0) -> list[DemoRequest]:
    """Requests ``start`` .. ``start + count - 1`` of the stream for ``seed``."""
    if count < 0 or start < 0:
        raise ValueError(f"count and start must be >= 0, got count={count}, start={start}")
    return list(_stream(count, seed, start))


def _stream(count: int, seed: int, start: int) -> Iterator[DemoRequest]:
    kinds = list(KINDS)
    for index in range(start, start + count):
        rng = np.random.default_rng([seed, index])
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "search":
            text = _pick(rng, _SEARCH_TEMPLATES).format(_pick(rng, _SEARCH_TOPICS))
        elif kind == "statistics":
            size = int(rng.integers(3, 9))
            values = np.round(rng.normal(50.0, 15.0, size), int(rng.integers(0, 2)))
            numbers = ", ".join(f"{value:g}" for value in values)
            text = _pick(rng, _STATISTICS_TEMPLATES).format(numbers)
        else:
            text = _pick(rng, _CODE_TEMPLATES).format(_pick(rng, _SNIPPETS))
        yield DemoRequest(kind=kind, text=text)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]
