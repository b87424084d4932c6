"""Encryption of provider credentials at rest (telephony bearer tokens)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol

from application.ports.repositories import StorageError


class UndecryptableCredentialError(StorageError):
    """A stored credential cannot be decrypted: the secret key is not the one that encrypted it."""


class CredentialCipher(Protocol):
    """Turns a credential into the text a store keeps, and back.

    `encrypt` output is versioned (`"v1:..."`), so the scheme can change without a migration;
    `decrypt` hands back text written before encryption existed (no version prefix) unchanged.
    Neither method logs, nor puts the credential in an exception message.
    """

    @abstractmethod
    def encrypt(self, plaintext: str) -> str: ...

    @abstractmethod
    def decrypt(self, stored: str) -> str:
        """Raises `UndecryptableCredentialError` when the text was encrypted with another key."""
