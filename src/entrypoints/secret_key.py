"""The key-file policy: which secret encrypts the provider credentials stored in the database."""

from __future__ import annotations

from pathlib import Path

import structlog
from sqlalchemy.engine import make_url

from adapters.system.crypto import (
    FernetCredentialCipher,
    WeakSecretKeyError,
    load_or_create_key_file,
    new_secret_key,
)
from application.ports.credentials import CredentialCipher
from entrypoints.settings import Settings, SettingsError

log = structlog.get_logger(__name__)
SECRET_KEY_VARIABLE = "AGENT_STREAM_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret


def secret_key_file(database_url: str) -> Path | None:
    """Where the embedded SQLite database keeps its generated secret key: beside the database file,
    same name, `.key` (`./agent-stream.db` -> `./agent-stream.key`); `None` for an in-memory one."""
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).with_suffix(".key")


def credential_cipher(settings: Settings) -> CredentialCipher:
    """The cipher of stored provider credentials, keyed by `AGENT_STREAM_SECRET_KEY`.

    Without the variable, the embedded SQLite database uses a key file beside it, created (0600)
    on first use, and says so in a warning; any other database refuses to start.
    """
    secret = settings.secret_key
    if secret is None:
        if not settings.embedded_database:
            raise SettingsError(
                f"{SECRET_KEY_VARIABLE} must be set: it encrypts the provider credentials stored in "
                "the database (make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        path = secret_key_file(settings.database_url)
        if path is None:
            secret = new_secret_key()
            log.warning("secret_key_ephemeral", reason=f"{SECRET_KEY_VARIABLE} unset, in-memory database")
        else:
            secret, created = load_or_create_key_file(path)
            log.warning(
                "secret_key_from_file",
                key_file=str(path),
                created=created,
                reason=f"{SECRET_KEY_VARIABLE} unset; set it in production",
            )
    try:
        return FernetCredentialCipher(secret)
    except WeakSecretKeyError as exc:
        raise SettingsError(f"{SECRET_KEY_VARIABLE}: {exc}") from None
