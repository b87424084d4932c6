"""Liveness and readiness."""

from __future__ import annotations

from dishka.integrations.litestar import FromDishka, inject
from litestar import get
from litestar.response import Response

from adapters.system.prometheus import PrometheusMetrics
from application.admission import Load
from application.live_calls import LiveCallRegistry
from application.ports.system import Readiness


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
@inject
async def ready(
    readiness: FromDishka[Readiness], live_calls: FromDishka[LiveCallRegistry], load: FromDishka[Load]
) -> Response[dict[str, str]]:
    """200 while the database answers and the instance admits calls (503 while it drains or is
    saturated, so a load balancer sends calls elsewhere)."""
    if not live_calls.draining and not load.busy and await readiness.ready():
        return Response({"status": "ready"})
    return Response({"status": "unavailable"}, status_code=503)


@get("/metrics", media_type="text/plain; version=0.0.4", include_in_schema=False)  # Litestar adds the charset
@inject
async def metrics(exporter: FromDishka[PrometheusMetrics]) -> bytes:
    """Prometheus text exposition: live calls, ended streams by close code, handshake time,
    provider requests, bad frames, event-loop lag."""
    return exporter.exposition()
