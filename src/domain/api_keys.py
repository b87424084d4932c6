"""API keys: shown once at creation, stored as a SHA-256 hash (they carry 256 bits of entropy,
so a slow password hash buys nothing)."""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "ask_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
