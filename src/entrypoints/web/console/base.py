"""What every console page shares: its session, its forms' CSRF check, its templates and headers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

from dishka import AsyncContainer
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.plugins.htmx import ClientRedirect, HTMXRequest, HTMXTemplate
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_403_FORBIDDEN, HTTP_404_NOT_FOUND

from application.ports.api_keys import ApiKeyRepository
from application.ports.credentials import CredentialCipher
from entrypoints.settings import Settings
from entrypoints.web.console.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    ConsoleSession,
    SessionCookies,
    SignInRequiredError,
    check_csrf,
)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SIGN_IN = "/console/sign-in"
MAX_ID = 2**63 - 1

AgentUuid = Annotated[UUID, Parameter(description="The agent's UUID.")]
RunId = Annotated[int, Parameter(ge=1, le=MAX_ID, description="The run's id.")]
ConfigId = Annotated[int, Parameter(ge=1, le=MAX_ID, description="The configuration's id.")]

# No inline script or style anywhere: htmx is told not to add its indicator <style> (meta config).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


async def security_headers(response: Response[Any]) -> Response[Any]:
    """`after_request` of the console's pages."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def session_cookies(request: Request[Any, Any, Any]) -> SessionCookies:
    container: AsyncContainer = request.app.state.dishka_container
    settings = await container.get(Settings)
    return SessionCookies(
        await container.get(CredentialCipher),
        await container.get(ApiKeyRepository),
        secure=urlsplit(settings.public_url).scheme == "https",
    )


async def signed_in(request: Request[Any, Any, Any]) -> ConsoleSession:
    """The request's session; `SignInRequiredError` (a redirect to the sign-in form) without one."""
    return await (await session_cookies(request)).session_of(request)


async def checked_form(request: Request[Any, Any, Any], session: ConsoleSession) -> dict[str, str]:
    """The posted form, once its CSRF token (field or htmx header) matches the session's."""
    form = await request.form()
    values = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    check_csrf(session, values.pop(CSRF_FIELD, None) or request.headers.get(CSRF_HEADER))
    return values


def page(name: str, session: ConsoleSession | None, status_code: int = 200, **context: Any) -> Template:
    return HTMXTemplate(
        template_name=name,
        context={"session": session, "csrf_field": CSRF_FIELD, **context},
        status_code=status_code,
    )


def go(request: Request[Any, Any, Any], path: str, cookies: list[Cookie] | None = None) -> Response[Any]:
    """After a form: back to `path` (303), or `HX-Redirect` for an htmx request."""
    if isinstance(request, HTMXRequest) and request.htmx:
        return ClientRedirect(redirect_to=path)
    return Redirect(path, status_code=HTTP_303_SEE_OTHER, cookies=cookies)


def sign_in_required(request: Request[Any, Any, Any], _: SignInRequiredError) -> Response[Any]:
    return go(request, SIGN_IN)


def not_found(_: Request[Any, Any, Any], __: Exception) -> Response[Any]:
    response = page("not_found.html", None, HTTP_404_NOT_FOUND)
    return response


def csrf_refused(_: Request[Any, Any, Any], __: Exception) -> Response[Any]:
    return Response(
        "The form was refused: it did not carry this session's CSRF token. Reload the page and try again.",
        status_code=HTTP_403_FORBIDDEN,
        media_type="text/plain",
        headers=SECURITY_HEADERS,
    )
