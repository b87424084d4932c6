"""Liveness and readiness."""

from __future__ import annotations

from dishka.integrations.litestar import FromDishka, inject
from litestar import get
from litestar.response import Response

from application.live_calls import LiveCallRegistry
from application.ports.system import Readiness


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
@inject
async def ready(
    readiness: FromDishka[Readiness], live_calls: FromDishka[LiveCallRegistry]
) -> Response[dict[str, str]]:
    """200 while the database answers and the instance admits calls (503 while it drains)."""
    if not live_calls.draining and await readiness.ready():
        return Response({"status": "ready"})
    return Response({"status": "unavailable"}, status_code=503)
