"""The agent-stream WebSocket routes: thin handlers around the `AgentStream` use case."""

from __future__ import annotations

from typing import Any

import structlog
from dishka.integrations.litestar import FromDishka, inject_websocket
from litestar import WebSocket, websocket
from litestar.params import FromPath

from application.agent_stream import AgentStream, AgentStreamCommand
from application.ports.repositories import StorageError
from domain.close_policy import INTERNAL_ERROR_CLOSE, DatabaseUnavailableError, StreamRefusedError
from domain.stream_request import AgentStreamRequest
from entrypoints.web.socket import LitestarCallSocket

log = structlog.get_logger(__name__)


def _first_values(socket: WebSocket[Any, Any, Any]) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in socket.query_params.multi_items():
        query.setdefault(key, value)
    return query


async def serve_stream(
    socket: WebSocket[Any, Any, Any], stream: AgentStream, agent_uuid: str, provider: str | None
) -> None:
    """Accept first (a close before accept reaches the peer as HTTP 403), then run the call."""
    await socket.accept()
    call_socket = LitestarCallSocket(socket)
    close = INTERNAL_ERROR_CLOSE
    try:
        try:
            request = AgentStreamRequest.parse(agent_uuid, _first_values(socket), path_provider=provider)
        except StreamRefusedError as refusal:  # a hostile URL: refused before anything is stored
            close = stream.refuse(refusal)
            return
        client = socket.client.host if socket.client else "unknown"
        close = await stream.execute(AgentStreamCommand(request=request, client=client), call_socket)
    except StorageError as exc:  # a database fault the use case did not turn into a refusal
        log.warning("stream_storage_failed", detail=str(exc))
        close = DatabaseUnavailableError().close
    except Exception:
        log.exception("stream_crashed")
    finally:
        await call_socket.close(close)


@websocket("/api/v1/agent-stream/{agent_uuid:str}", name="agent_stream")
@inject_websocket
async def agent_stream(
    socket: WebSocket[Any, Any, Any], agent_uuid: FromPath[str], stream: FromDishka[AgentStream]
) -> None:
    await serve_stream(socket, stream, agent_uuid, provider=None)


@websocket("/api/v1/agent-stream/{provider:str}/{agent_uuid:str}", name="agent_stream_provider")
@inject_websocket
async def agent_stream_with_provider(
    socket: WebSocket[Any, Any, Any],
    provider: FromPath[str],
    agent_uuid: FromPath[str],
    stream: FromDishka[AgentStream],
) -> None:
    await serve_stream(socket, stream, agent_uuid, provider=provider)
