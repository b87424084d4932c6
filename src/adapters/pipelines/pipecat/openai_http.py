"""Requests to OpenAI-compatible servers straight over the shared httpx client.

Pipecat's OpenAI services go through the `openai` SDK, whose request building (a typed transform
of every parameter, hashing the SDK's long `Literal` types each time) and response parsing cost
more CPU than the HTTP exchange itself: profiled at 30 calls, a fifth of the server's time went to
the three requests of each turn. The services below keep Pipecat's behaviour and send the same
requests (the endpoints interfaces.md names), built and read here:

- `POST {base_url}/chat/completions`, streamed (server-sent events), each chunk validated into the
  SDK's `ChatCompletionChunk` by pydantic (compiled), as Pipecat reads it;
- `POST {base_url}/audio/transcriptions`, the utterance as a WAV upload;
- `POST {base_url}/audio/speech`, `response_format: pcm`, read as it streams.

Every request is retried once, as the SDK would with `max_retries=1`: on a connection error, a
time-out, or a 408, 409, 429 or 5xx answer, before any of the answer was used.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from openai import NotGiven, Omit
from openai.types.chat import ChatCompletionChunk
from pipecat.utils.types import NotGiven as PipecatNotGiven

RETRIES = 1
RETRIED_STATUSES = frozenset({408, 409, 429})


class ServiceRequestError(Exception):
    """An OpenAI-compatible server refused or failed a request (after the retry)."""

    def __init__(self, operation: str, status: int | None, detail: str) -> None:
        super().__init__(f"{operation} failed ({status or 'no answer'}): {detail[:200]}")
        self.status = status


def _retried(status: int) -> bool:
    return status in RETRIED_STATUSES or status >= 500


def request_body(params: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of SDK-style parameters: unset ones left out, `extra_body` merged in."""
    unset = (NotGiven, Omit, PipecatNotGiven, type(None))
    body = {k: v for k, v in params.items() if not isinstance(v, unset)}
    body.pop("extra_headers", None)
    body.pop("extra_query", None)
    body.update(body.pop("extra_body", None) or {})
    return body


class OpenAIHttp:
    """One server's endpoints (`base_url`, bearer `key`) over a shared client."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, key: str) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {key}"}

    @contextlib.asynccontextmanager
    async def stream(self, operation: str, path: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """The answer to `POST path`, open for streaming; a 2xx answer or `ServiceRequestError`."""
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            request = self._client.build_request(
                "POST", self._base_url + path, headers=self._headers, **kwargs
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TransportError as exc:  # connection errors and time-outs
                if last:
                    raise ServiceRequestError(operation, None, type(exc).__name__) from exc
                continue
            try:
                if response.is_success:
                    yield response
                    return
                detail = (await response.aread()).decode("utf-8", "replace")
            finally:
                await response.aclose()
            if last or not _retried(response.status_code):
                raise ServiceRequestError(operation, response.status_code, detail)

    async def post(self, operation: str, path: str, **kwargs: Any) -> httpx.Response:
        """`POST path`, read whole; a 2xx answer or `ServiceRequestError`."""
        async with self.stream(operation, path, **kwargs) as response:
            await response.aread()
            return response


async def chat_chunks(http: OpenAIHttp, params: Mapping[str, Any]) -> AsyncIterator[ChatCompletionChunk]:
    """The streamed chat completion's chunks, as the SDK's `AsyncStream` would yield them."""
    async with http.stream("llm", "/chat/completions", json=request_body(params)) as response:
        async for line in response.aiter_lines():
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
