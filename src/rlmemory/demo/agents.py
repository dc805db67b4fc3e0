"""Three offline sub-agents that do real work and fail genuinely on what they cannot serve.

Each has the seed's sub-agent form, ``async execute(request, db) -> dict`` with
``success``, ``response``, ``error`` (on failure) and ``tool_calls``.

>>> import asyncio
>>> asyncio.run(StatisticsAgent().execute("Summarise 3, 5 and 10", None))["response"]
'n=3 mean=6 median=5 stdev=3.606 min=3 max=10'
>>> asyncio.run(StatisticsAgent().execute("Find docs on the with statement", None))["error"]
'no list of at least 3 numbers in the request'
"""

from __future__ import annotations

import asyncio
import math
import re
import statistics
import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any

__all__ = ["DocsSearchAgent", "PythonRunnerAgent", "StatisticsAgent", "demo_sub_agents"]

_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words that phrase a request rather than say what to look for.
SEARCH_STOPWORDS = _word_set(
    """
    the and for are was were what where when which who how why does did can could
    would should will about into from this that these those there their them
    then than have has had not but any all some each our your you its it's please
    show tell give find search look lookup docs doc documentation documented reference
    python explain explained describe described mean means meaning
    """
)


def _failure(error: str, *tool_calls: str, response: str = "") -> dict[str, Any]:
    """A failed task's result; ``tool_calls`` only when a tool ran."""
    result: dict[str, Any] = {"success": False, "response": response, "error": error}
    if tool_calls:
        result["tool_calls"] = list(tool_calls)
    return result


#: Weight of a query word found in a topic's name, relative to one occurrence in its text.
TITLE_BONUS = 3.0


class DocsSearchAgent:
    """Full-text search over the Python documentation topics shipped with Python.

    A topic matches when it contains every query word (the request's words minus the
    phrasing words in :data:`SEARCH_STOPWORDS`; a plural also matches its singular);
    matches are ranked by tf-idf, with a bonus for query words in the topic's
    name. No match, or no query word, is a failed task.

    >>> import asyncio
    >>> result = asyncio.run(DocsSearchAgent().execute("Find docs on context managers", None))
    >>> result["success"], result["topics"][0]
    (True, 'context-managers')
    """

    def __init__(self, topics: Mapping[str, str] | None = None, max_results: int = 3) -> None:
        if topics is None:
            from pydoc_data.topics import topics as python_topics

            topics = python_topics
        self.topics = dict(topics)
        self.max_results = max_results
        self._postings: dict[str, dict[str, int]] = {}
        for topic, text in self.topics.items():
            for word, count in Counter(_WORD.findall(text.lower())).items():
                self._postings.setdefault(word, {})[topic] = count

    def query_terms(self, request: str) -> list[str]:
        """The words of ``request`` that are searched for, in order, without repeats."""
        words = [word for word in _WORD.findall(request.lower()) if word not in SEARCH_STOPWORDS]
        return list(dict.fromkeys(words))

    def search(self, request: str) -> list[tuple[str, float]]:
        """Topics containing every query word of ``request``, best first, with scores."""
        terms = self.query_terms(request)
        if not terms:
            return []
        per_term = [self._topic_counts(term) for term in terms]
        matching = set(per_term[0]).intersection(*per_term[1:])
        total = len(self.topics)
        scores = {}
        for topic in matching:
            title_words = set(topic.split("-"))
            score = 0.0
            for term, counts in zip(terms, per_term, strict=True):
                idf = math.log(1.0 + total / len(counts))
                score += (1.0 + math.log(counts[topic])) * idf
                if title_words & {term, term.removesuffix("s")}:
                    score += TITLE_BONUS * idf
            scores[topic] = score
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: self.max_results]

    def _topic_counts(self, term: str) -> dict[str, int]:
        variants = {term, term + "s"}
        if term.endswith("s") and len(term) > 3:
            variants.add(term[:-1])
        merged: dict[str, int] = {}
        for variant in variants:
            for topic, count in self._postings.get(variant, {}).items():
                merged[topic] = merged.get(topic, 0) + count
        return merged

    async def execute(self, request: str, db: Any = None) -> dict[str, Any]:
        terms = self.query_terms(request)
        if not terms:
            return _failure("no search words in the request")
        hits = self.search(request)
        if not hits:
            return _failure(f"no documentation topic mentions all of: {', '.join(terms)}", "search")
        best = hits[0][0]
        listing = ", ".join(f"{topic} ({score:.2f})" for topic, score in hits)
        return {
            "success": True,
            "response": f"Found in: {listing}\n{self._excerpt(best, terms)}",
            "topics": [topic for topic, _ in hits],
            "tool_calls": ["search"],
        }

    def _excerpt(self, topic: str, terms: list[str]) -> str:
        for line in self.topics[topic].splitlines():
            if any(term in line.lower() for term in terms) and len(line.strip()) > 20:
                return line.strip()[:300]
        return self.topics[topic].strip()[:300]


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LIST_SEPARATOR = re.compile(r"\s*(?:,|;|\band\b|\s)\s*")


class StatisticsAgent:
    """Summary statistics (count, mean, median, stdev, min, max) of a list of numbers.

    The request must contain a list of at least ``minimum`` numbers separated by
    commas, semicolons, "and" or spaces; otherwise the task fails.
    """

    def __init__(self, minimum: int = 3) -> None:
        self.minimum = minimum

    def numbers(self, request: str) -> list[float]:
        """The longest list of numbers in ``request`` (empty when shorter than ``minimum``)."""
        best: list[float] = []
        current: list[float] = []
        previous_end = None
        for match in _NUMBER.finditer(request):
            gap = request[previous_end : match.start()] if previous_end is not None else None
            if gap is not None and _LIST_SEPARATOR.fullmatch(gap):
                current.append(float(match.group()))
            else:
                current = [float(match.group())]
            previous_end = match.end()
            if len(current) > len(best):
                best = list(current)
        return best if len(best) >= self.minimum else []

    async def execute(self, request: str, db: Any = None) -> dict[str, Any]:
        values = self.numbers(request)
        if not values:
            return _failure(f"no list of at least {self.minimum} numbers in the request")
        summary = {
            "n": len(values),
            "mean": statistics.fmean(values),
            "median": statistics.median(values),
            "stdev": statistics.stdev(values),
            "min": min(values),
            "max": max(values),
        }
        response = " ".join(f"{key}={value:.4g}" for key, value in summary.items())
        return {
            "success": True,
            "response": response,
            "statistics": summary,
            "tool_calls": ["statistics.fmean", "statistics.median", "statistics.stdev"],
        }


_FENCED = re.compile(r"```(?:python|py)?\s*\n?(.*?)```", re.DOTALL)
_INLINE = re.compile(r"`([^`]+)`")


class PythonRunnerAgent:
    """Runs the Python code given in backticks in a fresh interpreter, with a timeout.

    The snippet runs as ``python -I -S -c CODE`` (isolated, no site-packages) and its
    standard output is the response. No code in backticks, a non-zero exit status or
    the timeout is a failed task. This isolates the snippet from the environment but
    is not a sandbox: run only code you would run yourself.

    >>> import asyncio
    >>> asyncio.run(PythonRunnerAgent().execute("Run `print(6 * 7)`", None))["response"]
    '42'
    """

    def __init__(self, timeout: float = 5.0, max_output: int = 2000) -> None:
        self.timeout = timeout
        self.max_output = max_output

    @staticmethod
    def code(request: str) -> str | None:
        """The snippet in triple or single backticks, or None."""
        match = _FENCED.search(request) or _INLINE.search(request)
        if match is None or not match.group(1).strip():
            return None
        return match.group(1)

    async def execute(self, request: str, db: Any = None) -> dict[str, Any]:
        code = self.code(request)
        if code is None:
            return _failure("no code in backticks in the request")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            "-c",
            code,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            return _failure(f"snippet ran longer than {self.timeout:g} s", "python")
        output = stdout.decode(errors="replace").strip()[: self.max_output]
        if process.returncode != 0:
            lines = stderr.decode(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit status {process.returncode}"
            return _failure(reason, "python", response=output)
        return {"success": True, "response": output, "tool_calls": ["python"]}


def demo_sub_agents(snippet_timeout: float = 5.0) -> dict[str, Any]:
    """The demo's sub-agents under the seed's names: search, analysis and coding."""
    return {
        "search_agent": DocsSearchAgent(),
        "analysis_agent": StatisticsAgent(),
        "coding_agent": PythonRunnerAgent(timeout=snippet_timeout),
    }
