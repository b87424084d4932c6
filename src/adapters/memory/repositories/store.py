"""`InMemoryStore`: the in-memory adapters wired together over shared state."""

from __future__ import annotations

from adapters.memory.repositories.calls import InMemoryCallRoutes, InMemoryCallSlots
from adapters.memory.repositories.instances import InMemoryInstances
from adapters.memory.repositories.organizations import (
    InMemoryApiKeyRepository,
    InMemoryOrganizationRepository,
)
from adapters.memory.repositories.runs import InMemoryWorkflowRunRepository
from adapters.memory.repositories.telephony import InMemoryTelephonyConfigRepository
from adapters.memory.repositories.webhooks import InMemoryWebhookSecrets
from adapters.memory.repositories.workflows import InMemoryWorkflowRepository


class InMemoryStore:
    """One adapter per port over shared state, as one database would hold it."""

    def __init__(self) -> None:
        self.organizations = InMemoryOrganizationRepository()
        self.workflows = InMemoryWorkflowRepository(self.organizations)
        self.telephony_configs = InMemoryTelephonyConfigRepository(self.organizations)
        self.runs = InMemoryWorkflowRunRepository(self.workflows)
        self.routes = InMemoryCallRoutes(self.organizations, self.workflows, self.runs)
        self.slots = InMemoryCallSlots(self.organizations)
        self.api_keys = InMemoryApiKeyRepository(self.organizations)
        self.instances = InMemoryInstances(self.runs, self.slots)
        self.webhooks = self.runs.outbox
        self.webhook_secrets = InMemoryWebhookSecrets()
