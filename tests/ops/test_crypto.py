"""AES-GCM text and payload encryption, key parsing and key sources."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from rlmemory.errors import EncryptionKeyError, StoreError
from rlmemory.ops.crypto import (
    Cipher,
    encrypted_key_id,
    generate_key,
    is_encrypted_bytes,
    is_encrypted_text,
    new_key_file,
    parse_key,
    read_key_file,
    resolve_key,
    reveal_bytes,
    reveal_text,
)


def test_text_round_trips_byte_exact_including_unicode_and_empty():
    cipher = Cipher(generate_key(), location="memory.db")
    for text in ["", "plain ascii", "émoji 🚀 and 中文", "x" * 100_000, "rlm:enc:v0:not-ours"]:
        assert cipher.decrypt_text(cipher.encrypt_text(text)) == text


def test_ciphertext_hides_the_secret_and_is_recognisable():
    cipher = Cipher(generate_key())
    token = cipher.encrypt_text("secret-4111-1111")
    assert "secret" not in token and "4111" not in token
    assert is_encrypted_text(token)
    assert encrypted_key_id(token) == cipher.key_id
    assert not is_encrypted_text("secret-4111-1111")


def test_same_text_encrypts_differently_each_time():
    cipher = Cipher(generate_key())
    assert cipher.encrypt_text("same") != cipher.encrypt_text("same")


def test_wrong_key_raises_error_naming_location_never_garbage():
    token = Cipher(generate_key(), location="a.db").encrypt_text("hello")
    other = Cipher(generate_key(), location="/data/memory.db")
    with pytest.raises(EncryptionKeyError, match=r"/data/memory\.db") as caught:
        other.decrypt_text(token)
    assert isinstance(caught.value, StoreError)
    assert caught.value.location == "/data/memory.db"


def test_tampered_ciphertext_fails_authentication():
    cipher = Cipher(generate_key(), location="memory.db")
    token = cipher.encrypt_text("pay 10 dollars")
    head, body = token.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-20] ^= 0x01
    tampered = head + ":" + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(EncryptionKeyError, match="failed authentication"):
        cipher.decrypt_text(tampered)


def test_swapping_the_key_id_in_a_token_is_detected():
    first_key, second_key = generate_key(), generate_key()
    first, second = Cipher(first_key), Cipher(second_key)
    forged = first.encrypt_text("hello").replace(first.key_id, second.key_id, 1)
    holder_of_both = Cipher(second_key, previous_keys=[first_key])
    with pytest.raises(EncryptionKeyError, match="failed authentication"):
        holder_of_both.decrypt_text(forged)


def test_truncated_token_is_an_error_not_an_exception_leak():
    cipher = Cipher(generate_key())
    token = cipher.encrypt_text("hello")
    with pytest.raises(EncryptionKeyError):
        cipher.decrypt_text(token[:30])
    with pytest.raises(EncryptionKeyError):
        cipher.decrypt_text(token[:-3] + "!!!")


def test_plain_text_passes_through_decrypt():
    cipher = Cipher(generate_key())
    assert cipher.decrypt_text("written before encryption was on") == (
        "written before encryption was on"
    )


def test_previous_keys_decrypt_old_values_while_new_values_use_the_new_key():
    old_key, new_key = generate_key(), generate_key()
    old_token = Cipher(old_key).encrypt_text("old")
    rotating = Cipher(new_key, previous_keys=[old_key])
    assert rotating.decrypt_text(old_token) == "old"
    assert encrypted_key_id(rotating.encrypt_text("new")) == rotating.key_id
    assert rotating.can_decrypt(old_token)
    assert not Cipher(new_key).can_decrypt(old_token)


def test_bytes_round_trip_and_wrong_key():
    cipher = Cipher(generate_key(), location="files://x")
    blob = cipher.encrypt_bytes(b"\x00\x01payload")
    assert is_encrypted_bytes(blob) and b"payload" not in blob
    assert cipher.decrypt_bytes(blob) == b"\x00\x01payload"
    assert cipher.decrypt_bytes(b"plain") == b"plain"
    with pytest.raises(EncryptionKeyError, match="files://x"):
        Cipher(generate_key(), location="files://x").decrypt_bytes(blob)


def test_reveal_without_key_refuses_encrypted_values():
    token = Cipher(generate_key()).encrypt_text("secret")
    with pytest.raises(EncryptionKeyError, match="no key was given"):
        reveal_text(token, None, "memory.db")
    with pytest.raises(EncryptionKeyError, match="no key was given"):
        reveal_bytes(Cipher(generate_key()).encrypt_bytes(b"x"), None, "memory.db")
    assert reveal_text(None, None, "memory.db") is None
    assert reveal_text("plain", None, "memory.db") == "plain"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "is empty"),
        ("not base64 at all!", "not urlsafe base64"),
        (base64.urlsafe_b64encode(b"k" * 16).decode(), "decodes to 16 bytes"),
        (b"\xff" * 7, "got 7 bytes"),
        (12345, "must be bytes or str"),
    ],
)
def test_malformed_key_says_what_is_wrong(key, message):
    with pytest.raises(EncryptionKeyError, match=message):
        parse_key(key)


def test_key_accepted_as_raw_bytes_base64_text_and_unpadded_base64():
    raw = os.urandom(32)
    text = base64.urlsafe_b64encode(raw).decode()
    assert parse_key(raw) == raw
    assert parse_key(text) == raw
    assert parse_key(text.rstrip("=")) == raw
    assert parse_key(text.encode()) == raw


def test_new_key_file_has_mode_0600_and_is_never_overwritten(tmp_path):
    path = new_key_file(tmp_path / "rl.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_key_file(path)
    with pytest.raises(FileExistsError):
        new_key_file(path)
    assert read_key_file(path) == key


def test_key_file_readable_by_others_is_refused(tmp_path):
    path = new_key_file(tmp_path / "rl.key")
    path.chmod(0o644)
    with pytest.raises(EncryptionKeyError, match="chmod 600"):
        read_key_file(path)


def test_missing_key_file_is_a_clear_error(tmp_path):
    with pytest.raises(EncryptionKeyError, match="does not exist"):
        read_key_file(tmp_path / "nope.key")


def test_key_sources_in_order_argument_env_keyfile_env_keyfile(tmp_path):
    arg, env_key = generate_key(), generate_key()
    file_key = read_key_file(new_key_file(tmp_path / "a.key"))
    env_file = new_key_file(tmp_path / "b.key")
    env = {"RLMEMORY_KEY": env_key, "RLMEMORY_KEY_FILE": str(env_file)}
    assert resolve_key(arg, key_file=tmp_path / "a.key", environ=env) == parse_key(arg)
    assert resolve_key(key_file=tmp_path / "a.key", environ=env) == parse_key(env_key)
    only_files = {"RLMEMORY_KEY_FILE": str(env_file)}
    assert resolve_key(key_file=tmp_path / "a.key", environ=only_files) == file_key
    assert resolve_key(environ=only_files) == read_key_file(env_file)
    assert resolve_key(environ={}) is None
    assert resolve_key(tmp_path / "a.key", environ={}) == file_key


def test_malformed_env_key_is_an_error_not_silently_unencrypted():
    with pytest.raises(EncryptionKeyError, match=r"\$RLMEMORY_KEY"):
        resolve_key(environ={"RLMEMORY_KEY": "short"})


@pytest.mark.parametrize("variable", ["RLMEMORY_KEY", "RLMEMORY_KEY_FILE"])
def test_a_key_variable_set_but_empty_is_an_error_not_an_unencrypted_store(
    variable, tmp_path, monkeypatch
):
    from rlmemory.store import open_store

    with pytest.raises(EncryptionKeyError, match=rf"\${variable} is set but empty"):
        resolve_key(environ={variable: ""})
    monkeypatch.setenv(variable, "")
    for location in (str(tmp_path / "memory.db"), "files://" + str(tmp_path / "memory")):
        with pytest.raises(EncryptionKeyError, match="set but empty"):
            open_store(location)
    assert not (tmp_path / "memory.db").exists()


def test_an_empty_key_argument_or_key_file_is_an_error(tmp_path):
    with pytest.raises(EncryptionKeyError, match="encryption_key is empty"):
        resolve_key("", environ={})
    empty = tmp_path / "empty.key"
    empty.write_text("")
    empty.chmod(0o600)
    with pytest.raises(EncryptionKeyError, match="is empty"):
        resolve_key(key_file=empty, environ={})
