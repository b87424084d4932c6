"""SQL implementations of the persistence ports (SQLite via aiosqlite, PostgreSQL via asyncpg).

Each adapter is built from an `async_sessionmaker` and opens one short session and transaction
per method, so no connection is held between calls. Writes are single statements where possible:
on SQLite a transaction that reads first and writes later can fail with "database is locked" when
another connection wrote in between, while one that starts with its write waits for the lock.
SQLAlchemy errors leave an adapter as `StorageError` (`DuplicateError` for a uniqueness rule).
"""

from adapters.sql.repositories.calls import SqlCallRoutes, SqlCallSlots
from adapters.sql.repositories.instances import SqlInstances
from adapters.sql.repositories.organizations import SqlApiKeyRepository, SqlOrganizationRepository
from adapters.sql.repositories.runs import SqlWorkflowRunRepository
from adapters.sql.repositories.telephony import SqlTelephonyConfigRepository
from adapters.sql.repositories.webhooks import SqlWebhookOutbox, SqlWebhookSecrets
from adapters.sql.repositories.workflows import SqlWorkflowRepository

__all__ = (
    "SqlApiKeyRepository",
    "SqlCallRoutes",
    "SqlCallSlots",
    "SqlInstances",
    "SqlOrganizationRepository",
    "SqlTelephonyConfigRepository",
    "SqlWebhookOutbox",
    "SqlWebhookSecrets",
    "SqlWorkflowRepository",
    "SqlWorkflowRunRepository",
)
