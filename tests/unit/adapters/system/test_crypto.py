"""Credential encryption: Fernet under a key derived from AGENT_STREAM_SECRET_KEY, and the key file."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.system.crypto import (
    VERSION_PREFIX,
    FernetCredentialCipher,
    WeakSecretKeyError,
    load_or_create_key_file,
    new_secret_key,
)
from application.ports.credentials import UndecryptableCredentialError
from application.ports.repositories import StorageError

SECRET = "unit-test-secret-key-0123456789"
TOKEN = "XI1234567890abcdefABCDEF"


def test_encrypts_to_a_versioned_text_without_the_token():
    stored = FernetCredentialCipher(SECRET).encrypt(TOKEN)

    assert stored.startswith(VERSION_PREFIX)
    assert TOKEN not in stored
    assert TOKEN[2:12] not in stored
    stored.encode("ascii")  # fits any text column


@given(st.text(min_size=0, max_size=300))
def test_decrypt_inverts_encrypt(plaintext: str):
    cipher = FernetCredentialCipher(SECRET)

    assert cipher.decrypt(cipher.encrypt(plaintext)) == plaintext


def test_each_encryption_differs_but_any_instance_with_the_secret_decrypts():
    first, second = (
        FernetCredentialCipher(SECRET).encrypt(TOKEN),
        FernetCredentialCipher(SECRET).encrypt(TOKEN),
    )

    assert first != second  # random IV
    assert FernetCredentialCipher(f"  {SECRET}  ").decrypt(first) == TOKEN  # surrounding blanks ignored
    assert FernetCredentialCipher(SECRET).decrypt(second) == TOKEN


def test_another_secret_cannot_decrypt_and_says_which_variable_to_check():
    stored = FernetCredentialCipher(SECRET).encrypt(TOKEN)

    with pytest.raises(UndecryptableCredentialError) as raised:
        FernetCredentialCipher("another-secret-key-9876543210").decrypt(stored)

    assert isinstance(raised.value, StorageError)
    assert "AGENT_STREAM_SECRET_KEY" in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert raised.value.__cause__ is None


def test_a_tampered_ciphertext_is_refused():
    stored = FernetCredentialCipher(SECRET).encrypt(TOKEN)
    tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]

    with pytest.raises(UndecryptableCredentialError):
        FernetCredentialCipher(SECRET).decrypt(tampered)


def test_text_without_the_version_prefix_is_legacy_plaintext():
    assert FernetCredentialCipher(SECRET).decrypt(TOKEN) == TOKEN
    assert FernetCredentialCipher(SECRET).decrypt("") == ""


@pytest.mark.parametrize("secret", ["", "short", " " * 40, "fifteen-chars!!"])
def test_a_short_secret_is_refused(secret: str):
    with pytest.raises(WeakSecretKeyError):
        FernetCredentialCipher(secret)


def test_new_secret_keys_are_random_and_usable():
    keys = {new_secret_key() for _ in range(20)}

    assert len(keys) == 20
    FernetCredentialCipher(keys.pop())


def test_the_key_file_is_created_private_once_then_reused(tmp_path: Path):
    path = tmp_path / "agent-stream.key"

    key, created = load_or_create_key_file(path)
    again, created_again = load_or_create_key_file(path)

    assert (created, created_again) == (True, False)
    assert again == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == key
    FernetCredentialCipher(key)


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path):
    path = tmp_path / "agent-stream.key"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: load_or_create_key_file(path), range(16)))

    assert len({key for key, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_an_empty_key_file_is_refused(tmp_path: Path):
    path = tmp_path / "agent-stream.key"
    path.write_text("")

    with pytest.raises(WeakSecretKeyError):
        load_or_create_key_file(path, wait_seconds=0.05)
