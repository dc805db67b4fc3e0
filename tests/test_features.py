"""State extraction: bounded offline states, stable vectors, LLM labels with fallback."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage

from rlmemory.features import (
    LLMStateExtractor,
    OfflineStateExtractor,
    make_state_extractor,
    parse_label,
)

offline = OfflineStateExtractor()


class FailingChatModel(FakeListChatModel):
    """A LangChain chat model whose provider is down."""

    def _call(self, *args, **kwargs):
        raise ConnectionError("provider unreachable")


class FlakyChatModel(FakeListChatModel):
    """Fails on its first call, then answers from ``responses``."""

    failed: bool = False

    def _call(self, *args, **kwargs):
        if not self.failed:
            self.failed = True
            raise TimeoutError("first call times out")
        return super()._call(*args, **kwargs)


@pytest.mark.parametrize(
    ("request_text", "intent"),
    [
        ("Search for information about solar panels", "search"),
        ("Find the latest news on the election", "search"),
        ("Compute the mean and median of 3, 5, 9", "analysis"),
        ("Analyse the trend in our quarterly growth", "analysis"),
        ("Write a Python function that parses dates", "coding"),
        ("Debug this script, it raises an exception", "coding"),
        ("Good morning!", "other"),
    ],
)
def test_intent_comes_from_keywords(request_text, intent):
    assert offline.signals(request_text).intent == intent


@pytest.mark.parametrize(
    ("request_text", "length"),
    [("one two three", "short"), (" ".join(["word"] * 20), "medium"), ("w " * 31, "long")],
)
def test_length_bucket_counts_words(request_text, length):
    assert offline.signals(request_text).length == length


@pytest.mark.parametrize(
    "request_text",
    [
        "why does this fail? ```x = 1```",
        "def area(r):\n    return 3.14 * r * r",
        "what is wrong with sorted(items, key=len)",
        "int main() {\n  return 0;\n}",
        "import numpy as np",
    ],
)
def test_requests_carrying_code_are_flagged(request_text):
    assert offline.signals(request_text).has_code
    assert offline.extract(request_text).state.endswith(":code")


@pytest.mark.parametrize(
    "request_text",
    ["Search for papers (recent ones) about RL", "What is the capital of France?", ""],
)
def test_prose_is_not_flagged_as_code(request_text):
    assert not offline.signals(request_text).has_code


def test_the_state_set_is_bounded_and_listed():
    states = offline.states
    assert len(states) == 4 * 3 * 2
    assert "coding:medium:code" in states
    assert states == sorted(set(states))


@settings(max_examples=300, deadline=None)
@given(request_text=st.text(max_size=300))
def test_every_request_maps_into_the_listed_states(request_text):
    observation = offline.extract(request_text)
    assert observation.state in offline.states
    assert observation.features.shape == (offline.dimension,)
    assert np.all(np.isfinite(observation.features))


def test_vector_layout_repeats_the_state_signals():
    extractor = OfflineStateExtractor(dimension=32)
    observation = extractor.extract("Fix this bug: ```print(x)```")
    named = dict(zip(extractor.feature_names, observation.features, strict=True))
    assert len(extractor.feature_names) == 32
    assert named["intent=coding"] == 1.0
    assert named["intent=search"] == 0.0
    assert named["length=short"] == 1.0
    assert named["has_code"] == 1.0
    assert named["bias"] == 1.0
    hashed = observation.features[: 32 - 9]
    assert np.linalg.norm(hashed) == pytest.approx(1.0)


def test_different_words_give_different_vectors_and_equal_texts_equal_ones():
    first = offline.extract("search for solar panels").features
    assert np.array_equal(first, offline.extract("search for solar panels").features)
    assert not np.array_equal(first, offline.extract("search for jazz history").features)


def test_vectors_are_the_same_in_processes_with_different_hash_seeds():
    script = (
        "from rlmemory.features import OfflineStateExtractor;"
        "print(OfflineStateExtractor().extract('Find papers on protein folding').features.tolist())"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        env["PYTHONPATH"] = os.pathsep.join([os.path.abspath("src"), env.get("PYTHONPATH", "")])
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    here = OfflineStateExtractor().extract("Find papers on protein folding").features.tolist()
    assert outputs == {f"{here}\n"}


def test_dimension_is_configurable_and_checked():
    assert OfflineStateExtractor(dimension=128).extract("hi").features.shape == (128,)
    with pytest.raises(ValueError, match="greater than the 9 state signals"):
        OfflineStateExtractor(dimension=9)
    with pytest.raises(TypeError, match="dimension"):
        OfflineStateExtractor(dimension=64.0)


def test_custom_intents_replace_the_default_ones():
    extractor = OfflineStateExtractor(
        intent_keywords={"billing": ["invoice", "charge*"], "support": ["help"]}
    )
    assert extractor.extract("Why was I charged twice?").state == "billing:short:text"
    assert extractor.extract("help me").state == "support:short:text"
    assert extractor.intents == ("billing", "support", "other")
    assert len(extractor.states) == 3 * 3 * 2


@pytest.mark.parametrize(
    "keywords",
    [{}, {"other": ["x"]}, {"a:b": ["x"]}, {"billing": [""]}, {"billing": ["*"]}],
)
def test_bad_intent_keywords_are_rejected(keywords):
    with pytest.raises(ValueError):
        OfflineStateExtractor(intent_keywords=keywords)


@pytest.mark.parametrize(
    "extractor", [offline, LLMStateExtractor(FakeListChatModel(responses=["x"]))]
)
def test_a_request_that_is_not_a_string_is_a_type_error(extractor):
    with pytest.raises(TypeError, match="request must be a str"):
        extractor.extract(42)
    with pytest.raises(TypeError, match="request must be a str"):
        asyncio.run(extractor.aextract(None))


def test_async_extraction_equals_sync_extraction():
    sync = offline.extract("compare these numbers: 4, 8, 15")
    from_async = asyncio.run(offline.aextract("compare these numbers: 4, 8, 15"))
    assert sync.state == from_async.state
    assert np.array_equal(sync.features, from_async.features)


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("coding", "coding"),
        ("  Coding.\n", "coding"),
        ("SEARCH", "search"),
        ('"analysis"', "analysis"),
        ("Label: analysis", "analysis"),
        ("search or coding", None),
        ("shopping", None),
        ("", None),
    ],
)
def test_model_answers_are_parsed_robustly(answer, label):
    assert parse_label(answer, ("search", "analysis", "coding", "other")) == label


def test_the_model_label_replaces_the_keyword_intent():
    extractor = LLMStateExtractor(FakeListChatModel(responses=[" Analysis. "]))
    observation = extractor.extract("Search for the numbers behind the trend")
    assert observation.state == "analysis:short:text"
    named = dict(zip(offline.feature_names, observation.features, strict=True))
    assert named["intent=analysis"] == 1.0
    assert named["intent=search"] == 0.0


def test_answers_are_cached_per_request_text():
    model = FakeListChatModel(responses=["coding", "search", "analysis"])
    extractor = LLMStateExtractor(model)
    assert extractor.extract("first request").state.startswith("coding:")
    assert extractor.extract("first request").state.startswith("coding:")
    assert extractor.extract("second request").state.startswith("search:")
    assert model.i == 2


def test_an_answer_outside_the_labels_falls_back_to_the_offline_intent(caplog):
    extractor = LLMStateExtractor(FakeListChatModel(responses=["I think it's about cooking"]))
    request_text = "Write a Python function that sorts a list"
    with caplog.at_level(logging.WARNING, logger="rlmemory.features"):
        observation = extractor.extract(request_text)
    assert observation.state == offline.extract(request_text).state
    assert "not one of search, analysis, coding, other" in caplog.text


def test_a_model_error_falls_back_to_the_offline_extractor_and_is_logged(caplog):
    extractor = LLMStateExtractor(FailingChatModel(responses=["coding"]))
    request_text = "Find sources on jazz history"
    with caplog.at_level(logging.WARNING, logger="rlmemory.features"):
        observation = extractor.extract(request_text)
        from_async = asyncio.run(extractor.aextract(request_text))
    expected = offline.extract(request_text)
    assert observation.state == from_async.state == expected.state
    assert np.array_equal(observation.features, expected.features)
    assert caplog.text.count("ConnectionError: provider unreachable") == 2


def test_a_model_error_is_not_cached():
    extractor = LLMStateExtractor(FlakyChatModel(responses=["analysis"]))
    assert extractor.extract("hello there").state == "other:short:text"
    assert extractor.extract("hello there").state == "analysis:short:text"


def test_async_extraction_asks_the_model_asynchronously():
    model = GenericFakeChatModel(messages=iter([AIMessage(content="search")]))
    extractor = LLMStateExtractor(model)
    observation = asyncio.run(extractor.aextract("how tall is the Eiffel tower"))
    assert observation.state == "search:short:text"


def test_user_labels_bound_the_states_and_keep_the_vector_dimension():
    extractor = LLMStateExtractor(
        FakeListChatModel(responses=["Refund"]), labels=["Billing", "refund", "other"]
    )
    observation = extractor.extract("I want my money back")
    assert observation.state == "refund:short:text"
    assert observation.state in extractor.states
    assert set(offline.states) <= set(extractor.states)
    assert len(extractor.states) == len(
        set(offline.states)
        | {
            f"{label}:{length}:{kind}"
            for label in ("billing", "refund", "other")
            for length in ("short", "medium", "long")
            for kind in ("code", "text")
        }
    )
    assert observation.features.shape == (extractor.dimension,) == (64,)


@pytest.mark.parametrize("labels", [[], ["a", "A"], ["a:b"], ["  "], "search"])
def test_bad_labels_are_rejected(labels):
    with pytest.raises(ValueError):
        LLMStateExtractor(FakeListChatModel(responses=["a"]), labels=labels)


def test_the_cache_keeps_only_the_most_recent_requests():
    model = FakeListChatModel(responses=["coding", "search", "analysis"])
    extractor = LLMStateExtractor(model, cache_size=1)
    extractor.extract("first")
    extractor.extract("second")
    assert extractor.extract("first").state.startswith("analysis:")


def test_make_state_extractor_picks_by_model():
    assert isinstance(make_state_extractor(None), OfflineStateExtractor)
    assert make_state_extractor(None, dimension=32).dimension == 32
    model = FakeListChatModel(responses=["coding"])
    extractor = make_state_extractor(model, labels=["coding", "other"])
    assert isinstance(extractor, LLMStateExtractor)
    assert extractor.labels == ("coding", "other")
