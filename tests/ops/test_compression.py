"""zstandard compression of payloads with a magic header, decoded transparently."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlmemory.ops.compression import (
    MAGIC,
    TEXT_PREFIX,
    compress_bytes,
    compress_json,
    decompress_bytes,
    decompress_json,
    is_compressed,
    pack_text,
    unpack_text,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(st.binary(max_size=5000))
def test_bytes_round_trip(data):
    assert decompress_bytes(compress_bytes(data)) == data


@given(json_values)
def test_json_round_trip_is_exact(value):
    assert decompress_json(compress_json(value)) == value


def test_plain_payload_is_returned_unchanged():
    plain = json.dumps({"q": 1}).encode()
    assert not is_compressed(plain)
    assert decompress_bytes(plain) == plain
    assert decompress_json(plain) == {"q": 1}


def test_large_q_table_shrinks():
    q_table = {f"state-{i}": {"search": 0.1 * i, "code": 1.0} for i in range(2000)}
    raw = json.dumps(q_table).encode()
    packed = compress_json(q_table)
    assert packed.startswith(MAGIC)
    assert len(packed) < len(raw) / 3


def test_damaged_frame_is_a_value_error():
    packed = compress_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="damaged"):
        decompress_bytes(packed[:-4])


def test_nan_refused_before_compression():
    with pytest.raises(ValueError, match="NaN"):
        compress_json({"a": float("nan")})


@pytest.mark.parametrize("level", [0.5, 23, -8, True])
def test_bad_level_is_rejected(level):
    with pytest.raises(ValueError, match="level"):
        compress_bytes(b"x", level)


def test_pack_text_only_compresses_long_texts_that_shrink():
    short = '{"a": 1}'
    assert pack_text(short) == short
    long_text = json.dumps({f"s{i}": {"a": 0.5} for i in range(2000)})
    packed = pack_text(long_text)
    assert packed.startswith(TEXT_PREFIX) and len(packed) < len(long_text) / 3
    assert unpack_text(packed) == long_text
    assert unpack_text(short) == short


def test_pack_text_keeps_incompressible_text_plain():
    import base64
    import os

    noise = base64.b64encode(os.urandom(8000)).decode()
    assert pack_text(noise) == noise


def test_damaged_packed_text_is_a_value_error():
    with pytest.raises(ValueError, match="damaged"):
        unpack_text(TEXT_PREFIX + "!!!")
