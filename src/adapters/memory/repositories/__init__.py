"""In-memory implementations of the persistence ports, held to the SQL adapters' contract.

Objects are copied on the way in and out, so a caller never shares state with the store. The
rules a database would enforce are enforced here too: references must exist (`StorageError`),
uniqueness (`DuplicateError`), timezone-aware datetimes, handed back in UTC. `InMemoryStore`
wires one of each over shared state; every method runs without awaiting, so it is atomic.
"""

from adapters.memory.repositories.calls import InMemoryCallRoutes, InMemoryCallSlots
from adapters.memory.repositories.instances import InMemoryInstances
from adapters.memory.repositories.organizations import (
    InMemoryApiKeyRepository,
    InMemoryOrganizationRepository,
)
from adapters.memory.repositories.runs import InMemoryWorkflowRunRepository
from adapters.memory.repositories.store import InMemoryStore
from adapters.memory.repositories.telephony import InMemoryTelephonyConfigRepository
from adapters.memory.repositories.webhooks import InMemoryWebhookOutbox, InMemoryWebhookSecrets
from adapters.memory.repositories.workflows import InMemoryWorkflowRepository

__all__ = (
    "InMemoryApiKeyRepository",
    "InMemoryCallRoutes",
    "InMemoryCallSlots",
    "InMemoryInstances",
    "InMemoryOrganizationRepository",
    "InMemoryStore",
    "InMemoryTelephonyConfigRepository",
    "InMemoryWebhookOutbox",
    "InMemoryWebhookSecrets",
    "InMemoryWorkflowRepository",
    "InMemoryWorkflowRunRepository",
)
