"""A stand-in for the OpenAI HTTP API: a real HTTP server on a loopback port.

Pipecat's real OpenAI services (`OpenAILLMService`, `OpenAISTTService`, `OpenAITTSService`, all built
on the `openai` SDK's `AsyncOpenAI`) talk to it in tests and benchmarks: give them `base_url=oa.url`.

In tests::

    with OpenAIStandIn(api_key="sk-test") as oa:       # or: async with OpenAIStandIn() as oa:
        oa.script_reply(text="Goodbye!", tool_calls=[ToolCall("end_call", {})])  # then default_reply
        oa.script_transcript("I'd like to cancel.")    # then default_transcript
        oa.fail("chat", status=500, times=2)           # then normal answers again
        oa.hang("speech")                              # hold every speech until reset()/stop()
        oa.latency("transcriptions", 0.3)              # a provider's own time, before each answer
        oa.pace(PACED)                                 # every service paced like a real one (pacing.py)
        client = openai.AsyncOpenAI(base_url=oa.url, api_key="sk-test")
        ...
        first = await oa.wait_for("chat")             # from async test code, while the agent runs
        assert oa.chat_requests()[0][-1]["content"] == "Hello"

As a process (for benchmarks and manual runs)::

    python -m entrypoints.simulator.standins.openai_api --port 8767 \
        [--latency-llm S --latency-stt S --latency-tts S] [--transcript TEXT] [--reply TEXT] [--api-key KEY]
        [--paced]

Operations (the names used by `fail`, `hang`, `latency` and `RecordedRequest.operation`):
`chat` POST `/v1/chat/completions` (SSE chunks when `stream` is true, else a `chat.completion`),
`transcriptions` POST `/v1/audio/transcriptions` (multipart WAV upload; `json`, `verbose_json` or
`text`), `speech` POST `/v1/audio/speech` (`response_format: "pcm"` only: 16-bit mono 24 kHz PCM that
an energy detector takes for speech, lasting `max(0.4, seconds_per_char * len(input))` seconds).
Anything else answers 404 with an OpenAI-style error body, as does a wrong key 401.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from entrypoints.simulator.standins.openai_answers import (
    SAMPLE_RATE,
    Reply,
    ToolCall,
    chat_answer,
    error_body,
    parse_multipart,
    respond,
    speech_answer,
    transcription_answer,
    wav_seconds,
)
from entrypoints.simulator.standins.pacing import INSTANT, PACED, Pacing
from entrypoints.simulator.standins.server import Receive, Scope, Send, StandInServer, read_request

__all__ = [
    "SAMPLE_RATE",
    "OpenAIStandIn",
    "Operation",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "main",
]

Operation = Literal["chat", "transcriptions", "speech"]

_ROUTES: dict[str, Operation] = {
    "/v1/chat/completions": "chat",
    "/v1/audio/transcriptions": "transcriptions",
    "/v1/audio/speech": "speech",
}

ReplyFn = Callable[[dict[str, Any]], Reply | None]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    operation: Operation
    body: dict[str, Any]  # the JSON body, or the form fields without the file
    at: float  # time.monotonic() on arrival
    audio_seconds: float | None  # transcriptions: the upload's length; speech: the answer's length


@dataclass(slots=True)
class _Forced:
    status: int | None  # None = hang
    times: int | None  # None = for ever


class OpenAIStandIn(StandInServer):
    name = "OpenAI stand-in"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        default_reply: str = "I hear you.",
        default_transcript: str = "Hello, I have a question.",
        seconds_per_char: float = 0.06,
        latencies: Mapping[Operation, float] | None = None,
        pacing: Pacing = INSTANT,
    ) -> None:
        super().__init__(host, port)
        self._api_key = api_key
        self._defaults = (default_reply, default_transcript, seconds_per_char, dict(latencies or {}))
        self._pacing = pacing
        self.reset()

    # -- configuration --------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to what the constructor set: no scripts, failures or records; held requests go (503)."""
        with self._lock:
            self.default_reply, self.default_transcript, self.seconds_per_char, latencies = self._defaults
            self.reply_fn: ReplyFn | None = None  # consulted when no reply is scripted
            self.pacing = self._pacing
            self.chunk_interval = self.pacing.chunk_interval  # seconds between streamed chat chunks
            self.requests: list[RecordedRequest] = []
            self._replies: deque[Reply] = deque()
            self._transcripts: deque[str] = deque()
            self._forced: dict[str, list[_Forced]] = {}
            self._latency: dict[Operation, float] = {**self.pacing.latencies, **latencies}
            old, self._release = self._release, asyncio.Event()
        self._in_loop(old.set)

    def pace(self, pacing: Pacing) -> None:
        """Answer at `pacing` (`PACED`: like real services) until `reset()` (back to the constructor's)."""
        with self._lock:
            self.pacing = pacing
            self.chunk_interval = pacing.chunk_interval
            self._latency.update(pacing.latencies)

    def script_reply(self, text: str | None = None, tool_calls: Iterable[ToolCall] = ()) -> None:
        """Queue the answer to a coming chat request (FIFO; then `reply_fn`, then `default_reply`)."""
        with self._lock:
            self._replies.append(Reply(text, tuple(tool_calls)))

    def script_transcript(self, text: str) -> None:
        """Queue the answer to a coming transcription (FIFO; then `default_transcript`)."""
        with self._lock:
            self._transcripts.append(text)

    def fail(self, operation: Operation, status: int = 500, times: int | None = 1) -> None:
        """Answer the next `times` requests of `operation` (all, when None) with `status`."""
        with self._lock:
            self._forced.setdefault(operation, []).append(_Forced(status, times))

    def hang(self, operation: Operation, times: int | None = None) -> None:
        """Hold the next `times` requests of `operation` (all, when None) until `reset()`/`stop()`."""
        with self._lock:
            self._forced.setdefault(operation, []).append(_Forced(None, times))

    def latency(self, operation: Operation, seconds: float) -> None:
        """Wait `seconds` before answering each request of `operation` (0 for none)."""
        with self._lock:
            self._latency[operation] = seconds

    def requests_for(self, operation: Operation) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.operation == operation]

    def chat_requests(self) -> list[list[dict[str, Any]]]:
        """The `messages` of every chat request, in order of arrival."""
        return [list(r.body.get("messages") or []) for r in self.requests_for("chat")]

    async def wait_for(
        self,
        operation: Operation,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - polls a list another thread appends to
    ) -> RecordedRequest:
        """The `count`-th request of `operation` (1-based), once it has arrived; TimeoutError if not."""
        deadline = time.monotonic() + timeout
        while len(seen := self.requests_for(operation)) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(seen)} {operation} request(s) after {timeout}s, wanted {count}")
            await asyncio.sleep(0.005)
        return seen[count - 1]

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """What an OpenAI client's `base_url` takes."""
        return f"http://{self.host}:{self.port}/v1"

    # -- the ASGI app ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive)
        if request is None:
            return
        method, raw, headers = request.method, request.body, request.headers
        operation = _ROUTES.get(request.path.rstrip("/")) if method == "POST" else None
        if operation is None:
            await respond(send, 404, error_body(404, f"Invalid URL ({method} {request.path})"))
            return
        if not self._authorised(headers):
            await respond(send, 401, error_body(401, "Incorrect API key provided.", "invalid_api_key"))
            return
        try:
            body, audio_seconds = self._parse(operation, headers.get("content-type", ""), raw)
        except ValueError as exc:
            await respond(send, 400, error_body(400, str(exc)))
            return
        with self._lock:
            self.requests.append(RecordedRequest(operation, body, time.monotonic(), audio_seconds))

        forced = self._take_forced(operation)
        if forced is not None and forced.status is None:
            await self._release.wait()
            await respond(send, 503, error_body(503, "The stand-in released a held request."))
            return
        if forced is not None and forced.status is not None:
            await respond(send, forced.status, error_body(forced.status, "The stand-in was told to fail."))
            return

        if operation == "chat":
            reply = self._next_reply(body)
            await self._delay(operation)
            await chat_answer(send, body, reply, lambda: self.chunk_interval)
        elif operation == "transcriptions":
            with self._lock:
                text = self._transcripts.popleft() if self._transcripts else self.default_transcript
            await self._delay(operation)
            await transcription_answer(send, body, text, audio_seconds or 0.0)
        else:
            await self._delay(operation)
            await speech_answer(send, audio_seconds or 0.0, self.pacing)

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self._api_key is None:
            return True
        return secrets.compare_digest(headers.get("authorization", ""), f"Bearer {self._api_key}")

    def _parse(
        self, operation: Operation, content_type: str, raw: bytes
    ) -> tuple[dict[str, Any], float | None]:
        if operation == "transcriptions":
            fields, audio = parse_multipart(content_type, raw)
            if audio is None:
                raise ValueError("'file' is a required property")
            return fields, wav_seconds(audio)
        try:
            body = json.loads(raw)
        except ValueError:
            raise ValueError("We could not parse the JSON body of your request.") from None
        if not isinstance(body, dict):
            raise ValueError("The request body must be a JSON object.")
        if operation == "speech":
            if (body.get("response_format") or "mp3") != "pcm":
                raise ValueError("The stand-in serves response_format 'pcm' only.")
            return body, max(0.4, self.seconds_per_char * len(str(body.get("input") or "")))
        return body, None

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
            reply_fn, default = self.reply_fn, self.default_reply
        return (reply_fn(body) if reply_fn is not None else None) or Reply(default)

    async def _delay(self, operation: Operation) -> None:
        with self._lock:
            seconds = self._latency.get(operation, 0.0)
        if seconds > 0:
            await asyncio.sleep(seconds)


def main(argv: list[str] | None = None) -> None:
    parser = OpenAIStandIn.command_line("A local stand-in for the OpenAI HTTP API.", port=8767)
    parser.add_argument("--api-key", default=None, help="require this bearer key (any key when absent)")
    parser.add_argument("--latency-llm", type=float, default=None, help="seconds before each chat answer")
    parser.add_argument("--latency-stt", type=float, default=None, help="seconds before each transcript")
    parser.add_argument("--latency-tts", type=float, default=None, help="seconds before each speech answer")
    parser.add_argument("--transcript", default="Hello, I have a question.", help="every transcript")
    parser.add_argument("--reply", default="I hear you.", help="every chat reply")
    parser.add_argument("--seconds-per-char", type=float, default=0.06, help="speech length per character")
    parser.add_argument("--paced", action="store_true", help="answer like real services (pacing.PACED)")
    args = parser.parse_args(argv)
    latencies = {"chat": args.latency_llm, "transcriptions": args.latency_stt, "speech": args.latency_tts}
    standin = OpenAIStandIn(
        args.host,
        args.port,
        api_key=args.api_key,
        default_reply=args.reply,
        default_transcript=args.transcript,
        seconds_per_char=args.seconds_per_char,
        latencies={k: v for k, v in latencies.items() if v is not None},  # type: ignore[misc]
        pacing=PACED if args.paced else INSTANT,
    )
    standin.serve_forever()


if __name__ == "__main__":
    main()
