"""Requests to OpenAI-compatible servers, sent by aiohttp on one shared session.

Pipecat's OpenAI services go through the `openai` SDK, whose request building (a typed transform
of every parameter, hashing the SDK's long `Literal` types each time), response parsing and httpx
transport cost more CPU than the HTTP exchange itself: profiled at 30-40 calls, first the SDK and
then httpx's stack (httpcore, h11, anyio) were a sixth of the server's time, for the three
requests of each turn. aiohttp (which Pipecat itself uses) parses HTTP in C. The services keep
Pipecat's behaviour and send the same requests (the endpoints interfaces.md names):

- `POST {base_url}/chat/completions`, streamed (server-sent events), each chunk validated into the
  SDK's `ChatCompletionChunk` by pydantic (compiled), as Pipecat reads it;
- `POST {base_url}/audio/transcriptions`, the utterance as a WAV upload;
- `POST {base_url}/audio/speech`, `response_format: pcm`, read as it streams.

Every request is retried once, as the SDK would with `max_retries=1`: on a connection error, a
time-out, or a 408, 409, 429 or 5xx answer, before any of the answer was used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
from openai import NotGiven, Omit
from openai.types.chat import ChatCompletionChunk
from pipecat.utils.types import NotGiven as PipecatNotGiven

RETRIES = 1
RETRIED_STATUSES = frozenset({408, 409, 429})
REQUEST_TIMEOUT = 15.0  # seconds to connect, and between two reads of an answer


class ServiceRequestError(Exception):
    """An OpenAI-compatible server refused or failed a request (after the retry)."""

    def __init__(self, operation: str, status: int | None, detail: str) -> None:
        super().__init__(f"{operation} failed ({status or 'no answer'}): {detail[:200]}")
        self.status = status


def _retried(status: int) -> bool:
    return status in RETRIED_STATUSES or status >= 500


def new_session(timeout: float = REQUEST_TIMEOUT) -> aiohttp.ClientSession:
    """The session every call's requests share (one connection pool); build it in the running loop."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
        connector=aiohttp.TCPConnector(limit=512),
    )


def request_body(params: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of SDK-style parameters: unset ones left out, `extra_body` merged in."""
    unset = (NotGiven, Omit, PipecatNotGiven, type(None))
    body = {k: v for k, v in params.items() if not isinstance(v, unset)}
    body.pop("extra_headers", None)
    body.pop("extra_query", None)
    body.update(body.pop("extra_body", None) or {})
    return body


class OpenAIHttp:
    """One server's endpoints (`base_url`, bearer `key`) over a shared session (`session()`, asked
    at each request: a session belongs to the event loop it was made in)."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], base_url: str, key: str) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {key}"}

    @contextlib.asynccontextmanager
    async def stream(
        self,
        operation: str,
        path: str,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        file: tuple[str, bytes, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The answer to `POST path` (a JSON body, or a form with one file), open for streaming:
        a 2xx answer, or `ServiceRequestError`."""
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            data = None
            if form is not None or file is not None:  # built anew for each attempt
                data = aiohttp.FormData(dict(form or {}))
                if file is not None:
                    name, content, content_type = file
                    data.add_field("file", content, filename=name, content_type=content_type)
            try:
                response = await self._session().post(
                    self._base_url + path, json=json, data=data, headers=self._headers
                )
            except (aiohttp.ClientError, TimeoutError) as exc:  # connection errors, time-outs
                if last:
                    raise ServiceRequestError(operation, None, type(exc).__name__) from exc
                continue
            try:
                if response.ok:
                    yield response
                    return
                detail = (await response.read()).decode("utf-8", "replace")
            finally:
                response.release()
            if last or not _retried(response.status):
                raise ServiceRequestError(operation, response.status, detail)

    async def post(self, operation: str, path: str, **kwargs: Any) -> bytes:
        """The body of the answer to `POST path` (as `stream` takes it), read whole."""
        async with self.stream(operation, path, **kwargs) as response:
            return await response.read()


async def pieces(response: aiohttp.ClientResponse, size: int) -> AsyncIterator[bytes]:
    """The answer's body (16-bit samples) as it arrives: whatever whole samples have come, at most
    `size` bytes a piece. Nothing waits for a fixed amount of audio: a TTS's first bytes are played
    as soon as they arrive (an odd byte waits for its sample's other half)."""
    pending = b""
    async for data in response.content.iter_chunked(size):
        pending += data
        whole = len(pending) & ~1
        if whole:
            yield pending[:whole]
            pending = pending[whole:]
    if pending:
        yield pending


async def chat_chunks(http: OpenAIHttp, params: Mapping[str, Any]) -> AsyncIterator[ChatCompletionChunk]:
    """The streamed chat completion's chunks, as the SDK's `AsyncStream` would yield them."""
    async with http.stream("llm", "/chat/completions", json=request_body(params)) as response:
        async for raw in response.content:  # one line at a time
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:"):
                continue  # blank separators, comments, `event:` lines
            data = line[5:].strip()
            if data == "[DONE]":
                return
            yield _chunk(json.loads(data))


def _chunk(raw: dict[str, Any]) -> ChatCompletionChunk:
    """Validated like the SDK's own models; fields some compatible servers leave out get the
    values OpenAI would send."""
    raw.setdefault("id", "")
    raw.setdefault("created", 0)
    raw.setdefault("model", "")
    raw.setdefault("object", "chat.completion.chunk")
    for i, choice in enumerate(raw.get("choices") or []):
        choice.setdefault("index", i)
        choice.setdefault("delta", {})
    return ChatCompletionChunk.model_validate(raw)


async def close_quietly(session: aiohttp.ClientSession | None) -> None:
    if session is not None and not session.closed:
        with contextlib.suppress(Exception):
            await session.close()
        await asyncio.sleep(0)  # lets the connector's transports close (aiohttp's advice)
