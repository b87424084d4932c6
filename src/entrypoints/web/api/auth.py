"""API-key authentication of the management routes: `Authorization: Bearer <api key>`.

The organisation is resolved through the DI container (`Caller`, REQUEST scope, see
`entrypoints.ioc.web.HttpProvider`). The guard resolves it before Litestar reads the request's
parameters and body, so a request without a valid key gets 401 whatever else is wrong with it;
handlers then take `FromDishka[Caller]` (the same, cached object).
"""

from __future__ import annotations

from typing import Any

from dishka import AsyncContainer
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from application.authentication import Caller

BEARER_SCHEME = "BearerAuth"
SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]


def api_key_of(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header (scheme case-insensitive), else `None`."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: raises `NotAuthenticatedError` (401) unless the key names an organisation.

    Litestar's automatic OPTIONS answers (the `Allow` header) need no key: they hold no data.
    """
    if connection.scope.get("method") == "OPTIONS":
        return
    container: AsyncContainer = connection.state.dishka_container
    await container.get(Caller)
