"""DictFeaturizer: feature dictionaries hash to the same vector everywhere, bad input is refused."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from rlmemory.features import DictFeaturizer, stable_hash

CONTEXT = [{"user": {"type": "anonymous", "age": 31, "tags": ["new", "eu"]}}, {"hour": 9.5}]


def test_strings_hash_namespace_key_value_and_numbers_keep_their_value() -> None:
    featurizer = DictFeaturizer(dimension=1024)
    vector = featurizer({"user": {"type": "anonymous", "age": 31}})
    assert vector[0] == 1.0
    assert vector[1 + stable_hash("user^type=anonymous") % 1023] == 1.0
    assert vector[1 + stable_hash("user^age") % 1023] == 31.0
    assert vector.sum() == 33.0


def test_order_of_keys_and_of_documents_does_not_change_the_vector() -> None:
    featurizer = DictFeaturizer()
    reordered = [{"hour": 9.5}, {"user": {"tags": ["new", "eu"], "age": 31, "type": "anonymous"}}]
    assert np.array_equal(featurizer(CONTEXT), featurizer(reordered))


def test_the_same_features_give_the_same_vector_in_another_process(subprocess_env: dict) -> None:
    code = (
        "import json, sys; from rlmemory.features import DictFeaturizer; "
        "print(json.dumps(DictFeaturizer()(json.loads(sys.argv[1])).tolist()))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, json.dumps(CONTEXT)],
        env=subprocess_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(output) == DictFeaturizer()(CONTEXT).tolist()


def test_none_and_empty_features_give_the_bias_only() -> None:
    expected = [1.0] + [0.0] * 7
    assert DictFeaturizer(8)(None).tolist() == expected
    assert DictFeaturizer(8)([]).tolist() == expected
    assert DictFeaturizer(8)({"skipped": None}).tolist() == expected


@pytest.mark.parametrize(
    ("features", "named"),
    [
        ({"x": math.nan}, "finite"),
        ({"x": {"y": math.inf}}, "finite"),
        ({1: "a"}, "strings"),
        ("text", "dictionary"),
        ([1, 2], "dictionaries"),
        ({"x": b"bytes"}, "unsupported"),
    ],
)
def test_bad_features_are_a_value_error_saying_what_is_wrong(features: object, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        DictFeaturizer()(features)  # type: ignore[arg-type]


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    deep: dict = {"leaf": 1}
    for _ in range(40):
        deep = {"n": deep}
    with pytest.raises(ValueError, match="nested deeper"):
        DictFeaturizer()(deep)


def test_dimension_must_be_at_least_two() -> None:
    with pytest.raises(ValueError, match="dimension"):
        DictFeaturizer(1)
    assert DictFeaturizer(16).dimension == 16 and DictFeaturizer(16).name == "dict-hash-16"
