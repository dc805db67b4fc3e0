"""State extraction: a request becomes a bounded state key and a fixed-length vector.

Two extractors produce :class:`~rlmemory.types.Observation` objects:

:class:`OfflineStateExtractor` (no model, no network)
    *State key* ``"<intent>:<length>:<code|text>"``, from a bounded set (24 keys with
    the default intents, listed by :attr:`~OfflineStateExtractor.states`):

    * intent — the intent whose keywords occur most often in the request
      (``search``, ``analysis``, ``coding``; ties go to the one listed first), or
      ``other`` when none occurs. Keywords are whole words; a keyword ending in ``*``
      matches any word starting with it (``analy*`` matches "analyse", "analysis").
    * length — ``short`` (≤ 8 words), ``medium`` (≤ 30 words) or ``long``.
    * ``code`` when the request carries code (a fenced block, a line starting with
      ``def``/``class``/``import``/``return``/…, a line ending in ``;``/``{``/``}``,
      or a call such as ``sort(items)``), else ``text``.

    *Vector* of :attr:`~OfflineStateExtractor.dimension` floats (default 64): the
    first ``dimension - signals`` entries are signed hashed word counts, scaled to
    unit length; the hash is BLAKE2b (stable across processes and machines, unlike
    Python's salted ``hash``). The last entries repeat the state: one-hot intent,
    one-hot length, the code flag, and a constant 1 (a bias term for linear learners).
    :attr:`~OfflineStateExtractor.feature_names` names every entry.

:class:`LLMStateExtractor` (any LangChain chat model, extra ``llm``)
    Asks the model to classify the request into a bounded label set the user
    chooses; the label replaces the keyword intent in the state key (and in the
    vector, when it is one of the offline intents). An answer outside the set, or a
    model error, falls back to the offline extractor; errors are logged.

>>> extractor = OfflineStateExtractor()
>>> observation = extractor.extract("Search for papers about reinforcement learning")
>>> observation.state
'search:short:text'
>>> observation.features.shape
(64,)
>>> extractor.extract("Fix this: ```def f(x): return x +```").state
'coding:short:code'
>>> len(extractor.states)
24
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from rlmemory.features.hashing import stable_hash
from rlmemory.types import Observation

logger = logging.getLogger(__name__)


def _keywords(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Keywords per intent. A trailing ``*`` matches any word with that prefix.
DEFAULT_INTENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "search": _keywords(
        """search* find finding look lookup locate who where when information info news
        latest documentation docs article* paper* source* reference* wiki* google browse
        retrieve"""
    ),
    "analysis": _keywords(
        """analy* compare comparison statistic* stats mean average median variance
        deviation trend* correlat* summari* evaluate assess* distribution percent* growth
        forecast* chart metric* data dataset numbers total sum min max"""
    ),
    "coding": _keywords(
        """code coding fix function python script bug* debug* implement* refactor* compil*
        program* class method exception traceback regex sql javascript java rust api
        syntax snippet loop variable unittest pytest"""
    ),
}
#: The intent of a request in which no keyword occurs.
OTHER_INTENT = "other"
#: Length buckets: (name, largest word count), the last one unbounded.
LENGTH_BUCKETS: tuple[tuple[str, int | None], ...] = (("short", 8), ("medium", 30), ("long", None))
#: The labels :class:`LLMStateExtractor` asks the model for by default.
DEFAULT_LABELS: tuple[str, ...] = ("search", "analysis", "coding", "other")

_WORD = re.compile(r"[a-z0-9_]+")
_CODE_PATTERNS = (
    re.compile(r"```"),
    re.compile(
        r"^\s*(?:def|class|import|from\s+\S+\s+import|return|function|const|let|var|"
        r"#include|public|private|SELECT|print)\b",
        re.MULTILINE,
    ),
    re.compile(r"[;{}]\s*$", re.MULTILINE),
    re.compile(r"\b[A-Za-z_][A-Za-z0-9_.]*\([^()\n]*\)"),
)


@dataclass(frozen=True)
class RequestSignals:
    """What the offline extractor reads from a request before encoding it."""

    intent: str
    length: str
    has_code: bool
    words: tuple[str, ...]

    @property
    def state(self) -> str:
        """The state key ``"<intent>:<length>:<code|text>"``."""
        return f"{self.intent}:{self.length}:{'code' if self.has_code else 'text'}"


def _check_request(request: object) -> str:
    if not isinstance(request, str):
        raise TypeError(f"request must be a str, not {type(request).__name__}")
    return request


class OfflineStateExtractor:
    """Keyword intent, length bucket and code flag as a state; hashed words as a vector.

    ``dimension`` is the vector length (at least the number of state signals + 1);
    ``intent_keywords`` replaces the default intents and their keywords (intent names
    must not contain ``:`` and must not be ``other``).

    >>> OfflineStateExtractor(dimension=16).extract("hello").features.shape
    (16,)
    """

    def __init__(
        self,
        dimension: int = 64,
        *,
        intent_keywords: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        keywords = DEFAULT_INTENT_KEYWORDS if intent_keywords is None else intent_keywords
        self._exact: dict[str, list[int]] = {}
        self._prefixes: list[tuple[str, int]] = []
        self._intents = self._compile_keywords(keywords)
        self._intents_of_word = lru_cache(maxsize=65536)(self._match_keywords)
        self._lengths = tuple(name for name, _ in LENGTH_BUCKETS)
        signal_count = len(self._intents) + len(self._lengths) + 2
        if isinstance(dimension, bool) or not isinstance(dimension, int):
            raise TypeError(f"dimension must be an int, not {type(dimension).__name__}")
        if dimension <= signal_count:
            raise ValueError(
                f"dimension must be greater than the {signal_count} state signals "
                f"(intents, lengths, code flag, bias), got {dimension}"
            )
        self._dimension = dimension
        self._hashed = dimension - signal_count

    def _compile_keywords(self, keywords: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
        if not isinstance(keywords, Mapping) or not keywords:
            raise ValueError("intent_keywords must be a non-empty mapping of intent to keywords")
        intents: list[str] = []
        for index, (intent, words) in enumerate(keywords.items()):
            if not isinstance(intent, str) or not intent or ":" in intent or intent == OTHER_INTENT:
                raise ValueError(
                    f"intent names must be non-empty strings without ':' and not "
                    f"{OTHER_INTENT!r}, got {intent!r}"
                )
            if isinstance(words, str) or not isinstance(words, Sequence):
                raise TypeError(f"keywords of intent {intent!r} must be a sequence of str")
            for word in words:
                if not isinstance(word, str) or not word.strip("*"):
                    raise ValueError(f"keywords of intent {intent!r} must be non-empty strings")
                word = word.lower()
                if word.endswith("*"):
                    self._prefixes.append((word[:-1], index))
                else:
                    self._exact.setdefault(word, []).append(index)
            intents.append(intent)
        return (*intents, OTHER_INTENT)

    @property
    def dimension(self) -> int:
        """Length of every feature vector."""
        return self._dimension

    @property
    def intents(self) -> tuple[str, ...]:
        """The intents, ``other`` last."""
        return self._intents

    @property
    def states(self) -> list[str]:
        """Every state key this extractor can produce, sorted."""
        return sorted(
            RequestSignals(intent, length, has_code, ()).state
            for intent in self._intents
            for length in self._lengths
            for has_code in (False, True)
        )

    @property
    def feature_names(self) -> list[str]:
        """A name for each entry of the vector."""
        return [
            *(f"word_hash[{slot}]" for slot in range(self._hashed)),
            *(f"intent={intent}" for intent in self._intents),
            *(f"length={length}" for length in self._lengths),
            "has_code",
            "bias",
        ]

    def signals(self, request: str) -> RequestSignals:
        """Read intent, length bucket, code flag and words from ``request``."""
        _check_request(request)
        words = tuple(_WORD.findall(request.lower()))
        return RequestSignals(
            intent=self._intent(words),
            length=self._length(len(words)),
            has_code=any(pattern.search(request) for pattern in _CODE_PATTERNS),
            words=words,
        )

    def _intent(self, words: Sequence[str]) -> str:
        hits = [0] * (len(self._intents) - 1)
        for word in words:
            for index in self._intents_of_word(word):
                hits[index] += 1
        best = max(hits)
        return self._intents[hits.index(best)] if best > 0 else OTHER_INTENT

    def _match_keywords(self, word: str) -> tuple[int, ...]:
        """Indices of the intents ``word`` is a keyword of (once per keyword matched)."""
        exact = self._exact.get(word, [])
        return (*exact, *(index for prefix, index in self._prefixes if word.startswith(prefix)))

    @staticmethod
    def _length(word_count: int) -> str:
        for name, largest in LENGTH_BUCKETS:
            if largest is None or word_count <= largest:
                return name
        raise AssertionError("the last length bucket is unbounded")  # pragma: no cover

    def observe(self, signals: RequestSignals) -> Observation:
        """Encode ``signals`` as an :class:`Observation` (state key and vector)."""
        if signals.intent not in self._intents:
            raise ValueError(
                f"unknown intent {signals.intent!r}; known: {', '.join(self._intents)}"
            )
        vector = np.zeros(self._dimension, dtype=np.float64)
        for word in signals.words:
            code = stable_hash(word)
            vector[code % self._hashed] += 1.0 if code >> 63 else -1.0
        norm = float(np.linalg.norm(vector[: self._hashed]))
        if norm > 0:
            vector[: self._hashed] /= norm
        offset = self._hashed
        vector[offset + self._intents.index(signals.intent)] = 1.0
        offset += len(self._intents)
        vector[offset + self._lengths.index(signals.length)] = 1.0
        offset += len(self._lengths)
        vector[offset] = 1.0 if signals.has_code else 0.0
        vector[offset + 1] = 1.0
        return Observation(state=signals.state, features=vector)

    def extract(self, request: str, history: Sequence[Any] | None = None) -> Observation:
        """The observation of ``request``. ``history`` is accepted and not used."""
        return self.observe(self.signals(request))

    async def aextract(self, request: str, history: Sequence[Any] | None = None) -> Observation:
        """Async form of :meth:`extract` (no I/O happens)."""
        return self.extract(request, history)


def _normalise_labels(labels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(labels, str) or not isinstance(labels, Sequence) or not labels:
        raise ValueError("labels must be a non-empty sequence of strings")
    clean: list[str] = []
    for label in labels:
        if not isinstance(label, str):
            raise TypeError(f"labels must be strings, not {type(label).__name__}")
        name = " ".join(label.lower().split())
        if not name or ":" in name:
            raise ValueError(f"labels must be non-empty and contain no ':', got {label!r}")
        if name in clean:
            raise ValueError(f"label {label!r} appears twice")
        clean.append(name)
    return tuple(clean)


def _message_text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return " ".join(parts)
    return str(content)


def parse_label(answer: str, labels: Sequence[str]) -> str | None:
    """The label ``answer`` names, or ``None`` when it names none or several.

    Case, whitespace, quotes and punctuation are ignored; an answer that contains
    exactly one label among other words (``"Label: coding."``) names that label.

    >>> parse_label("  Coding. ", ["search", "coding"])
    'coding'
    >>> parse_label("search or coding", ["search", "coding"]) is None
    True
    """
    text = " ".join(re.sub(r"[^\w\s-]", " ", answer.lower()).split())
    if text in labels:
        return text
    named = [
        label for label in labels if re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", text)
    ]
    return named[0] if len(named) == 1 else None


class LLMStateExtractor:
    """A LangChain chat model classifies each request into one of ``labels``.

    The state key is ``"<label>:<length>:<code|text>"`` (length and code flag from
    the offline extractor), so states stay bounded whatever the model says. Answers
    are cached per request text (``cache_size`` most recent). An answer outside
    ``labels`` or any exception from the model falls back to ``fallback`` (an
    :class:`OfflineStateExtractor`, default one), with a ``logging`` warning.

    >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
    >>> extractor = LLMStateExtractor(FakeListChatModel(responses=["Analysis"]))
    >>> extractor.extract("How did sales move last year?").state
    'analysis:short:text'
    """

    def __init__(
        self,
        model: Any,
        labels: Sequence[str] = DEFAULT_LABELS,
        fallback: OfflineStateExtractor | None = None,
        *,
        cache_size: int = 10_000,
    ) -> None:
        try:
            from langchain_core.messages import HumanMessage, SystemMessage
        except ImportError as error:  # pragma: no cover - langchain-core is a test dependency
            raise ImportError(
                "LLMStateExtractor needs langchain-core: pip install 'rlmemory[llm]'"
            ) from error
        if model is None:
            raise ValueError(
                "model must be a LangChain chat model; use OfflineStateExtractor without one"
            )
        if fallback is None:
            fallback = OfflineStateExtractor()
        if not isinstance(fallback, OfflineStateExtractor):
            raise TypeError(
                f"fallback must be an OfflineStateExtractor, not {type(fallback).__name__}"
            )
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be a non-negative int, got {cache_size!r}")
        self.model = model
        self.labels = _normalise_labels(labels)
        self.fallback = fallback
        self._cache_size = cache_size
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()
        self._system_message = SystemMessage(
            content=(
                "You route user requests to specialised assistants. Classify the request "
                f"into exactly one of these labels: {', '.join(self.labels)}. "
                "Answer with the label only."
            )
        )
        self._human_message = HumanMessage

    @property
    def dimension(self) -> int:
        """Length of every feature vector (the fallback's)."""
        return self.fallback.dimension

    @property
    def states(self) -> list[str]:
        """Every state key this extractor can produce (labels and fallback), sorted."""
        labelled = {
            RequestSignals(label, length, has_code, ()).state
            for label in self.labels
            for length, _ in LENGTH_BUCKETS
            for has_code in (False, True)
        }
        return sorted(labelled | set(self.fallback.states))

    def extract(self, request: str, history: Sequence[Any] | None = None) -> Observation:
        """The observation of ``request``, classified by the model (once per text)."""
        signals = self.fallback.signals(request)
        found, label = self._cached(request)
        if not found:
            try:
                answer = self.model.invoke(self._messages(request))
            except Exception as error:
                return self._after_error(error, signals)
            label = self._remember(request, answer)
        return self._observe(signals, label)

    async def aextract(self, request: str, history: Sequence[Any] | None = None) -> Observation:
        """Async form of :meth:`extract`, awaiting the model's ``ainvoke``."""
        signals = self.fallback.signals(request)
        found, label = self._cached(request)
        if not found:
            try:
                answer = await self.model.ainvoke(self._messages(request))
            except Exception as error:
                return self._after_error(error, signals)
            label = self._remember(request, answer)
        return self._observe(signals, label)

    def _messages(self, request: str) -> list[Any]:
        return [self._system_message, self._human_message(content=request)]

    def _cached(self, request: str) -> tuple[bool, str | None]:
        with self._lock:
            if request in self._cache:
                self._cache.move_to_end(request)
                return True, self._cache[request]
        return False, None

    def _remember(self, request: str, answer: Any) -> str | None:
        text = _message_text(answer)
        label = parse_label(text, self.labels)
        if label is None:
            logger.warning(
                "state model answered %r, which is not one of %s; using the offline intent",
                text[:200],
                ", ".join(self.labels),
            )
        if self._cache_size:
            with self._lock:
                self._cache[request] = label
                self._cache.move_to_end(request)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return label

    def _after_error(self, error: Exception, signals: RequestSignals) -> Observation:
        logger.warning(
            "state model failed (%s: %s); using the offline extractor",
            type(error).__name__,
            error,
        )
        return self.fallback.observe(signals)

    def _observe(self, signals: RequestSignals, label: str | None) -> Observation:
        if label is None:
            return self.fallback.observe(signals)
        if label in self.fallback.intents:
            return self.fallback.observe(replace(signals, intent=label))
        observation = self.fallback.observe(signals)
        return Observation(
            state=replace(signals, intent=label).state, features=observation.features
        )


def make_state_extractor(
    model: Any = None, **options: Any
) -> OfflineStateExtractor | LLMStateExtractor:
    """An :class:`OfflineStateExtractor` when ``model`` is None, else an
    :class:`LLMStateExtractor` around ``model``; ``options`` go to the constructor.

    >>> type(make_state_extractor(None)).__name__
    'OfflineStateExtractor'
    """
    if model is None:
        return OfflineStateExtractor(**options)
    return LLMStateExtractor(model, **options)
