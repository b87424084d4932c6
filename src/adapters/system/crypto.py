"""Credential encryption with `cryptography`'s Fernet (AES-128-CBC + HMAC-SHA256, authenticated).

The Fernet key is derived from `AGENT_STREAM_SECRET_KEY` with HKDF-SHA256, so any string of
enough entropy serves as the secret. Stored values read `v1:<fernet token>`; the version prefix
leaves room for another scheme (or key) later. A value without a known prefix was written before
encryption existed and is handed back as it is.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from application.ports.credentials import CredentialCipher, UndecryptableCredentialError

__all__ = (
    "MIN_SECRET_KEY_LENGTH",
    "VERSION_PREFIX",
    "FernetCredentialCipher",
    "WeakSecretKeyError",
    "load_or_create_key_file",
    "new_secret_key",
)

VERSION_PREFIX = "v1:"
MIN_SECRET_KEY_LENGTH = 16
_HKDF_SALT = b"agent-stream/credential-cipher"
_HKDF_INFO = b"fernet-key/v1"


class WeakSecretKeyError(ValueError):
    """The secret key is too short to protect anything."""


def derive_fernet_key(secret: str) -> bytes:
    """The urlsafe-base64 Fernet key (32 bytes: signing + encryption) derived from `secret`."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))


class FernetCredentialCipher(CredentialCipher):
    def __init__(self, secret: str) -> None:
        if len(secret.strip()) < MIN_SECRET_KEY_LENGTH:
            raise WeakSecretKeyError(f"the secret key must have at least {MIN_SECRET_KEY_LENGTH} characters")
        self._fernet = Fernet(derive_fernet_key(secret.strip()))

    def encrypt(self, plaintext: str) -> str:
        return VERSION_PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(VERSION_PREFIX):
            return stored  # written before encryption existed
        try:
            return self._fernet.decrypt(stored[len(VERSION_PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise UndecryptableCredentialError(
                "a stored credential cannot be decrypted: AGENT_STREAM_SECRET_KEY is not the key it was "
                "encrypted with"
            ) from None


def new_secret_key() -> str:
    """A fresh random secret key (256 bits)."""
    return secrets.token_urlsafe(32)


def load_or_create_key_file(path: Path, wait_seconds: float = 1.0) -> tuple[str, bool]:
    """The secret key kept in `path`, created (mode 0600) with a random key when missing.

    Returns the key and whether this call created the file. Two processes racing to create it
    agree on one key: the file is created exclusively, and the loser reads the winner's.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path, wait_seconds), False
    key = new_secret_key()
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return key, True


def _read_key(path: Path, wait_seconds: float) -> str:
    deadline = time.monotonic() + wait_seconds
    while True:  # another process may be between creating and writing the file
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    raise WeakSecretKeyError(f"the key file {path} is empty")
