"""Readiness of the in-memory store: always ready."""

from __future__ import annotations

from application.ports.system import Readiness


class InMemoryReadiness(Readiness):
    async def ready(self) -> bool:
        return True
