"""The management API's one error table: domain and application errors -> HTTP status + JSON.

Every error answer is `{"detail": "..."}` (validation failures add `errors`), never a stack
trace. Anything not in the table is logged and answered 500 with a generic detail.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap
from msgspec import UNSET

from application.authentication import NotAuthenticatedError
from application.live_calls import CallNotLiveError
from application.management import ConfigurationExistsError, InvalidInputError, NotFoundError
from application.ports.call_control import HolderUnavailableError
from application.ports.credentials import UndecryptableCredentialError
from application.ports.repositories import DuplicateError, StorageError
from application.stream_url import NoConfigurationError
from domain.agents import InvalidDefinitionError
from entrypoints.web.api.schemas import ErrorBody

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ErrorRule:
    status: int
    detail: Callable[[Exception], str]


def _own_message(exc: Exception) -> str:
    return str(exc)


def _definition_message(exc: Exception) -> str:
    field = getattr(exc, "field", "")
    return str(exc) if field == "definition" else f"definition.{exc}"


def _not_found(exc: Exception) -> str:
    what = str(exc) or "object"
    return f"{what[:1].upper()}{what[1:]} not found"


# Most specific first: the first rule whose type the error is an instance of applies.
ERROR_TABLE: tuple[tuple[type[Exception], ErrorRule], ...] = (
    (NotAuthenticatedError, ErrorRule(HTTP_401_UNAUTHORIZED, _own_message)),
    (NoConfigurationError, ErrorRule(HTTP_404_NOT_FOUND, _own_message)),
    (NotFoundError, ErrorRule(HTTP_404_NOT_FOUND, _not_found)),
    (
        CallNotLiveError,
        ErrorRule(HTTP_409_CONFLICT, lambda _: "The run has no live call"),
    ),
    (
        HolderUnavailableError,
        ErrorRule(
            HTTP_503_SERVICE_UNAVAILABLE,
            lambda _: "The instance holding this call did not answer; try again",
        ),
    ),
    (ConfigurationExistsError, ErrorRule(HTTP_409_CONFLICT, _own_message)),
    (DuplicateError, ErrorRule(HTTP_409_CONFLICT, lambda _: "It exists already")),
    (InvalidDefinitionError, ErrorRule(HTTP_422_UNPROCESSABLE_ENTITY, _definition_message)),
    (InvalidInputError, ErrorRule(HTTP_422_UNPROCESSABLE_ENTITY, _own_message)),
    (
        UndecryptableCredentialError,
        ErrorRule(
            HTTP_500_INTERNAL_SERVER_ERROR,
            lambda _: "A stored credential cannot be decrypted with the configured secret key",
        ),
    ),
    (
        StorageError,
        ErrorRule(HTTP_503_SERVICE_UNAVAILABLE, lambda _: "The database is not available; try again"),
    ),
)


def rule_for(exc: Exception) -> ErrorRule | None:
    for kind, rule in ERROR_TABLE:
        if isinstance(exc, kind):
            return rule
    return None


def _json(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> Response[ErrorBody]:
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _headers_for(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": 'Bearer realm="agent-stream"'} if status == HTTP_401_UNAUTHORIZED else None


def handle_application_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    rule = rule_for(exc)
    if rule is None:
        return handle_unexpected(request, exc)
    if rule.status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.error("request_failed", status=rule.status, error=type(exc).__name__, route=_route_name(request))
    return _json(rule.status, ErrorBody(detail=rule.detail(exc)), _headers_for(rule.status))


def handle_validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    """Every validation failure (of the JSON body, a query or a path parameter) is a 422 whose
    detail names each offending field; a body that is not JSON at all is a 400 (`handle_http_error`)."""
    items = [item for item in exc.extra if isinstance(item, dict)] if isinstance(exc.extra, list) else []
    errors = [_field_error(item) for item in items] or _missing_parameter(str(exc.detail))
    if errors:
        detail = "Invalid request: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    else:
        detail = str(exc.detail)
    return _json(HTTP_422_UNPROCESSABLE_ENTITY, ErrorBody(detail=detail, errors=errors or UNSET))


_BODY_KEY = "data"  # Litestar's name for the body itself
_FIELD_MESSAGE = re.compile(r"Object (?P<what>missing required|contains unknown) field `(?P<name>[^`]+)`")
_MISSING_PARAMETER = re.compile(r"Missing required (?P<source>\w+) parameter '(?P<name>[^']+)'")


def _field_error(item: dict[str, Any]) -> dict[str, str]:
    """`{"field", "message", "source"}` from one of Litestar's entries, the field as a dotted path
    from the body's top (`definition`, `name`), the message saying what is wrong with it."""
    key = str(item.get("key") or "")
    source = str(item.get("source") or "body")
    message = str(item.get("message") or "invalid value")
    parent = "" if key == _BODY_KEY and source == "body" else key
    if match := _FIELD_MESSAGE.fullmatch(message):
        field = f"{parent}.{match['name']}" if parent else match["name"]
        text = "is required" if match["what"] == "missing required" else "is not a field one can send"
        return {"field": field, "message": text, "source": source}
    if key == _BODY_KEY and source == "body":
        if message == f"'{_BODY_KEY}'":  # no body at all
            return {"field": "body", "message": "a JSON object is required", "source": source}
        return {"field": "body", "message": _plain(message), "source": source}
    return {"field": key or "body", "message": _plain(message), "source": source}


def _missing_parameter(detail: str) -> list[dict[str, str]]:
    if match := _MISSING_PARAMETER.match(detail):
        return [{"field": match["name"], "message": "is required", "source": match["source"]}]
    return []


def _plain(message: str) -> str:
    """msgspec's `Expected `int`, got `str`` without the backticks: `expected int, got str`."""
    text = message.replace("`", "")
    return text[:1].lower() + text[1:]


def handle_http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    headers = {k: v for k, v in (exc.headers or {}).items()}
    headers.update(_headers_for(exc.status_code) or {})
    return _json(exc.status_code, ErrorBody(detail=str(exc.detail)), headers or None)


def _route_name(request: Request[Any, Any, Any]) -> str | None:
    """The handler's name: the path itself may hold an agent UUID, which is never logged."""
    return getattr(request.scope.get("route_handler"), "handler_name", None)


MAX_BODY_DEPTH = 32  # as application.management.MAX_JSON_DEPTH
_SCANNED_BYTES = 1024 * 1024
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def handle_recursion_error(request: Request[Any, Any, Any], exc: RecursionError) -> Response[ErrorBody]:
    """A JSON body nested past the decoder's recursion limit is the client's mistake (422, naming
    the top-level field that holds the nesting, as any refused value); any other RecursionError is
    ours (500)."""
    if not _raised_by_the_body_decoder(exc):
        return handle_unexpected(request, exc)
    body = getattr(request, "_body", None)  # Litestar's cache of the body it failed to decode
    field = _deep_field(body, MAX_BODY_DEPTH) if isinstance(body, bytes) else None
    where = f"{field}: " if field else "the JSON body "
    detail = f"Invalid request: {where}must not be nested deeper than {MAX_BODY_DEPTH} levels"
    return _json(HTTP_422_UNPROCESSABLE_ENTITY, ErrorBody(detail=detail))


def _raised_by_the_body_decoder(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].name == "decode_json" and "litestar" in frames[-1].filename


def _deep_field(body: bytes, limit: int) -> str | None:
    """The top-level key under which `body` first nests deeper than `limit` (a byte scan that
    stops there, over at most the first MiB), if it is a plain field name."""
    depth, in_string, escaped = 0, False, False
    start, candidate, key = 0, b"", b""
    for index, byte in enumerate(body[:_SCANNED_BYTES]):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
                candidate = body[start:index] if depth == 1 else candidate
        elif byte == 0x22:
            in_string, start = True, index + 1
        elif byte == 0x3A and depth == 1:  # colon: the string before it was a top-level key
            key = candidate
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                name = key.decode("ascii", errors="replace")
                return name if _FIELD_NAME.fullmatch(name) else None
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return None


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.error("request_crashed", error=type(exc).__name__, route=_route_name(request), exc_info=exc)
    return _json(HTTP_500_INTERNAL_SERVER_ERROR, ErrorBody(detail="Internal server error"))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationException: handle_validation_error,
    HTTPException: handle_http_error,
    **{kind: handle_application_error for kind, _ in ERROR_TABLE},
    RecursionError: handle_recursion_error,
    Exception: handle_unexpected,
}


# -- OpenAPI descriptions of the error answers ----------------------------------------------------


def _spec(description: str, detail: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=ErrorBody,
        description=description,
        generate_examples=False,
        examples=[Example(summary=description, value={"detail": detail})],
    )


BAD_REQUEST = {HTTP_400_BAD_REQUEST: _spec("The body is not JSON", "JSON is malformed: ...")}
UNAUTHORIZED = {
    HTTP_401_UNAUTHORIZED: _spec(
        "No API key, or one no organisation owns", "an API key is required: Authorization: Bearer <api key>"
    )
}
NOT_FOUND = {HTTP_404_NOT_FOUND: _spec("Not found in the key's organisation", "Agent not found")}
UNKNOWN_TRANSFER = {HTTP_404_NOT_FOUND: _spec("No transfer is waiting under this id", "Transfer not found")}
CONFLICT_EXISTS = {
    HTTP_409_CONFLICT: _spec(
        "The organisation has a configuration of this domain already",
        "a Cloudonix configuration for acme.cloudonix.net exists already in this organisation",
    )
}
CONFLICT_NOT_LIVE = {
    HTTP_409_CONFLICT: _spec(
        "The run has no live call (it ended, or never started)", "The run has no live call"
    )
}
UNPROCESSABLE = {
    HTTP_422_UNPROCESSABLE_ENTITY: _spec(
        "A value is not acceptable, or a required one is missing; the detail names the field",
        "definition.engine: unknown engine 'x'",
    )
}
UNAVAILABLE = {
    HTTP_503_SERVICE_UNAVAILABLE: _spec("The database is not available", "The database is not available")
}
HOLDER_UNAVAILABLE = {
    HTTP_503_SERVICE_UNAVAILABLE: _spec(
        "The database is not available, or the instance holding the call did not answer",
        "The instance holding this call did not answer; try again",
    )
}


def responses(*groups: dict[int, ResponseSpec]) -> dict[int, ResponseSpec]:
    merged: dict[int, ResponseSpec] = {}
    # any parameter or body may fail validation (422); a group may say more of 503
    for group in (BAD_REQUEST, UNAUTHORIZED, UNPROCESSABLE, UNAVAILABLE, *groups):
        merged.update(group)
    return merged
