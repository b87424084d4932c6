"""A fix for Litestar's automatic OPTIONS answers.

When one path has handlers for several methods (GET and POST of `/api/v1/agents`), Litestar 2.x
builds the path's route more than once while registering them, and the OPTIONS handler it keeps
belongs to an earlier build: its `Allow` header lists only some of the path's methods. This
`before_send` hook rewrites the header of an automatic OPTIONS answer from the final routes.
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope


async def complete_allow_header(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    headers = MutableScopeHeaders.from_message(message)
    if "allow" not in headers:
        return
    paths: Any = getattr(scope.get("route_handler"), "paths", ())
    for route in scope["app"].routes:
        if isinstance(route, HTTPRoute) and route.path in paths:
            headers["allow"] = ", ".join(sorted(route.methods))
            return
