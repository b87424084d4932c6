"""Liveness and readiness."""

from __future__ import annotations

from dishka.integrations.litestar import FromDishka, inject
from litestar import get
from litestar.response import Response

from application.ports.system import Readiness


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
@inject
async def ready(readiness: FromDishka[Readiness]) -> Response[dict[str, str]]:
    if await readiness.ready():
        return Response({"status": "ready"})
    return Response({"status": "unavailable"}, status_code=503)
