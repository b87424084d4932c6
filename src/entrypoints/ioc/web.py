"""The objects of one HTTP request."""

from __future__ import annotations

from dishka import Provider, Scope, from_context, provide
from litestar import Request

from application.authentication import Authenticate, Caller
from entrypoints.web.api.auth import api_key_of


class HttpProvider(Provider):
    """Objects of one HTTP request: the request itself and the organisation its API key names."""

    scope = Scope.REQUEST
    request = from_context(provides=Request, scope=Scope.REQUEST)

    @provide
    async def provide_caller(self, request: Request, authenticate: Authenticate) -> Caller:  # type: ignore[type-arg]
        """Raises `NotAuthenticatedError` (401) without a valid `Authorization: Bearer` API key."""
        return await authenticate.execute(api_key_of(request.headers.get("authorization")))
