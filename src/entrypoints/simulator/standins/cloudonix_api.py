"""A stand-in for the Cloudonix REST API: a real HTTP server on a loopback port (protocol.md §4, §5).

It ships with the product because `agent-stream demo` runs it in-process, so a first call works
offline; the tests use it to drive the real httpx client.

In tests::

    with CloudonixStandIn() as cx:                 # or: async with CloudonixStandIn() as cx:
        cx.add_domain("acme.cloudonix.net", token="T", sessions={"s-1"})
        cx.respond_with("hangup", 500, times=2)    # then normal answers again
        cx.hang("validate")                        # hold every validate until reset()/stop()
        cx.slow("validate", 0.3, times=1)          # answer the next one normally, 0.3 s late
        client = httpx.AsyncClient(base_url=cx.url)
        ...
        assert cx.hangups == [("acme.cloudonix.net", "s-1")]

As a process (for the demo)::

    python -m entrypoints.simulator.standins.cloudonix_api --port 8765 --token T --domain acme \
        [--session S ...]

Without `--session`, any session is valid for the domain until it is hung up.

Operations (the names used by `respond_with`, `hang`, `slow` and `RecordedRequest.operation`):
`validate` GET, `hangup` DELETE on `/customers/self/domains/{d}/sessions/{s}` (also `/domains/{d}/…`),
`dial` POST `/calls/{d}/application`, `move` POST `/calls/{d}/sessions/{s}/application`.

A `dial` answers `{"token": …}` at once, then (as Cloudonix would) POSTs a `ringing` session status to
the body's `callback` and, `callback_delay` seconds later, the `transfer_outcome`: a conference
`participant-join` to the `statusCallback` of the `<Conference>` in the CXML, or a failure status
(`busy`, …) to `callback`; `None` sends nothing more. `callback_format` is `json`, `list` (a
one-element JSON list) or `form`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from domain.telephony import normalize_cloudonix_domain
from entrypoints.simulator.standins.server import Receive, Scope, Send, StandInServer, read_request

__all__ = [
    "CallbackFormat",
    "CallbackRecord",
    "CloudonixStandIn",
    "DialRecord",
    "MoveRecord",
    "Operation",
    "RecordedRequest",
    "main",
]

Operation = Literal["validate", "hangup", "dial", "move"]
CallbackFormat = Literal["json", "list", "form"]

_SESSION = re.compile(r"^/(?:customers/self/)?domains/(?P<domain>[^/]+)/sessions/(?P<session>[^/]+)/?$")
_DIAL = re.compile(r"^/calls/(?P<domain>[^/]+)/application/?$")
_MOVE = re.compile(r"^/calls/(?P<domain>[^/]+)/sessions/(?P<session>[^/]+)/application/?$")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    operation: str  # validate | hangup | dial | move | unknown
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any  # the parsed JSON body, or None
    at: float = field(default_factory=time.monotonic)  # when it arrived (`time.monotonic()`)


@dataclass(frozen=True, slots=True)
class DialRecord:
    """What a `POST /calls/{d}/application` asked for."""

    domain: str
    token: str  # the new leg's session token
    destination: str
    caller_id: str | None
    callback: str | None
    status_callback: str | None  # from the <Conference> of the CXML
    conference: str | None
    cxml: str


@dataclass(frozen=True, slots=True)
class MoveRecord:
    domain: str
    session: str
    conference: str | None
    cxml: str


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    url: str
    payload: dict[str, Any]
    format: str
    status: int | None  # the receiver's HTTP status, None when it could not be reached
    error: str | None = None


@dataclass(slots=True)
class _Forced:
    status: int | None  # None = hang (or, with `delay`, answer normally once it has passed)
    times: int | None  # None = for ever
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float | None = None


class CloudonixStandIn(StandInServer):
    name = "Cloudonix stand-in"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        accept_any_session: bool = False,
        accept_any_domain: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.accept_any_session = accept_any_session
        # a domain never added is served too, under any bearer token: the demo's configurations
        # made through the REST API or the CLI then validate, hang up and transfer like `demo`'s own
        self.accept_any_domain = accept_any_domain
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = 0  # bumped by reset(): callbacks of an earlier test are dropped
        self.reset()

    # -- configuration --------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything a test set or saw, and let held (`hang`) requests go."""
        with self._lock:
            self.tokens: dict[str, str] = {}  # domain -> expected bearer token
            self.sessions: dict[str, set[str]] = {}  # domain -> valid session tokens
            self.requests: list[RecordedRequest] = []
            self.hangups: list[tuple[str, str]] = []  # (domain, session) of every DELETE that ended one
            self.dials: list[DialRecord] = []
            self.moves: list[MoveRecord] = []
            self.callbacks: list[CallbackRecord] = []
            self.validate_status: int | None = None  # force every validate's status
            self.hangup_status = 204
            self.move_status = 200
            self.transfer_outcome: str | None = "participant-join"
            self.callback_delay = 0.05
            self.callback_format: CallbackFormat = "json"
            self.require_caller_id = True
            self._forced: dict[str, list[_Forced]] = {}
            old, self._release = self._release, asyncio.Event()
            self._generation += 1
        self._in_loop(old.set)
        self._in_loop(self._cancel_callbacks)

    def add_domain(self, domain: str, token: str, sessions: Iterable[str] = ()) -> None:
        key = _key(domain)
        self.tokens[key] = token
        self.sessions.setdefault(key, set()).update(sessions)

    def add_session(self, domain: str, session: str) -> None:
        self.sessions.setdefault(_key(domain), set()).add(session)

    def respond_with(
        self,
        operation: Operation,
        status: int,
        times: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests of `operation` (all, when None) with `status`."""
        with self._lock:
            self._forced.setdefault(operation, []).append(_Forced(status, times, body, headers or {}))

    def hang(self, operation: Operation, times: int | None = None) -> None:
        """Hold the next `times` requests of `operation` (all, when None) until `reset()`/`stop()`."""
        with self._lock:
            self._forced.setdefault(operation, []).append(_Forced(None, times))

    def slow(self, operation: Operation, seconds: float, times: int | None = None) -> None:
        """Answer the next `times` requests of `operation` (all, when None) as usual, but only
        after `seconds` (sooner if `reset()`/`stop()` let held requests go)."""
        with self._lock:
            self._forced.setdefault(operation, []).append(_Forced(None, times, delay=seconds))

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if r.operation == operation]

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
            self._http = http
            try:
                yield
            finally:
                self._cancel_callbacks()

    def _cancel_callbacks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # -- the ASGI app ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive)
        if request is None:
            return
        method, path, headers, body = request.method, request.path, request.headers, request.body
        operation, params = _route(method, path)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        self.requests.append(RecordedRequest(operation, method, path, headers, body, parsed))

        forced = self._take_forced(operation)
        if forced is not None and forced.delay is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), forced.delay)
            forced = None
        if forced is not None and forced.status is None:
            await self._release.wait()
            await _respond(send, 503, {"error": "released"})
            return
        if forced is not None and forced.status is not None:
            await _respond(send, forced.status, forced.body, forced.headers)
            return

        status, answer = self._handle(operation, params, headers, parsed)
        await _respond(send, status, answer)

    def _handle(
        self, operation: str, params: dict[str, str], headers: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        if operation == "unknown":
            return 404, {"error": "not found"}
        domain = _key(params["domain"])
        if not self._authorised(domain, headers):
            return 401, {"error": "unauthorized"}
        if operation == "validate":
            if self.validate_status is not None:
                return self.validate_status, {"token": params["session"]}
            if self._known(domain, params["session"]):
                return 200, {"token": params["session"], "domain": domain, "status": "connected"}
            return 404, {"error": "session not found"}
        if operation == "hangup":
            return self._hang_up(domain, params["session"])
        if operation == "dial":
            return self._dial(domain, body)
        return self._move(domain, params["session"], body)

    def _authorised(self, domain: str, headers: dict[str, str]) -> bool:
        expected = self.tokens.get(domain)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        if expected is None:
            return self.accept_any_domain
        return token == expected

    def _known(self, domain: str, session: str) -> bool:
        if session in self.sessions.get(domain, set()):
            return True
        return self.accept_any_session and (domain, session) not in self.hangups

    def _hang_up(self, domain: str, session: str) -> tuple[int, Any]:
        if not self._known(domain, session):
            return 404, {"error": "session not found"}
        self.sessions.get(domain, set()).discard(session)
        self.hangups.append((domain, session))
        return self.hangup_status, None

    def _dial(self, domain: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("destination") or not body.get("cxml"):
            return 400, {"error": "destination and cxml are required"}
        if self.require_caller_id and not body.get("caller-id"):
            return 400, {"error": "caller-id is required"}
        try:
            conference = _conference(body["cxml"])
        except ET.ParseError:
            return 400, {"error": "cxml is not well-formed"}
        token = f"leg-{uuid.uuid4().hex[:16]}"
        record = DialRecord(
            domain=domain,
            token=token,
            destination=body["destination"],
            caller_id=body.get("caller-id"),
            callback=body.get("callback"),
            status_callback=conference.get("statusCallback") if conference is not None else None,
            conference=conference.text if conference is not None else None,
            cxml=body["cxml"],
        )
        self.dials.append(record)
        self.add_session(domain, token)
        task = asyncio.get_running_loop().create_task(
            self._call_back(
                record, self.transfer_outcome, self.callback_delay, self.callback_format, self._generation
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        answer = {"token": token, "domainId": 1, "subscriberId": 1, "direction": "outbound-api"}
        return 200, answer

    def _move(self, domain: str, session: str, body: Any) -> tuple[int, Any]:
        if not self._known(domain, session):
            return 404, {"error": "session not found"}
        if not isinstance(body, dict) or not isinstance(body.get("cxml"), str):
            return 400, {"error": "cxml is required"}
        try:
            conference = _conference(body["cxml"])
        except ET.ParseError:
            return 400, {"error": "cxml is not well-formed"}
        name = conference.text if conference is not None else None
        self.moves.append(MoveRecord(domain, session, name, body["cxml"]))
        return self.move_status, {"token": session}

    async def _call_back(
        self, dial: DialRecord, outcome: str | None, delay: float, fmt: CallbackFormat, generation: int
    ) -> None:
        common = {"Session": dial.token, "token": dial.token, "Domain": dial.domain}
        if dial.callback:
            await self._post(dial.callback, {**common, "status": "ringing"}, fmt, generation)
        await asyncio.sleep(delay)
        if outcome is None:
            return
        if outcome == "participant-join":
            url = dial.status_callback or dial.callback
            payload = {
                **common,
                "StatusCallbackEvent": "participant-join",
                "FriendlyName": dial.conference or "",
                "ConferenceSid": f"conf-{dial.token}",
                "CallSid": f"call-{dial.token}",
            }
        else:
            url, payload = dial.callback, {**common, "status": outcome}
        if url:
            await self._post(url, payload, fmt, generation)

    async def _post(self, url: str, payload: dict[str, Any], fmt: CallbackFormat, generation: int) -> None:
        if self._http is None:
            return  # stopped
        if generation != self._generation:
            return
        try:
            if fmt == "form":
                response = await self._http.post(url, data=payload)
            else:
                document: Any = [payload] if fmt == "list" else payload
                response = await self._http.post(
                    url, content=json.dumps(document), headers={"Content-Type": "application/json"}
                )
            record = CallbackRecord(url, payload, fmt, response.status_code)
        except httpx.HTTPError as exc:
            record = CallbackRecord(url, payload, fmt, None, type(exc).__name__)
        if generation == self._generation:
            self.callbacks.append(record)


def _key(domain: str) -> str:
    return normalize_cloudonix_domain(domain) or domain


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    if (m := _SESSION.match(path)) and method in ("GET", "DELETE"):
        return ("validate" if method == "GET" else "hangup"), m.groupdict()
    if (m := _DIAL.match(path)) and method == "POST":
        return "dial", m.groupdict()
    if (m := _MOVE.match(path)) and method == "POST":
        return "move", m.groupdict()
    return "unknown", {}


def _conference(cxml: str) -> ET.Element | None:
    return next(ET.fromstring(cxml).iter("Conference"), None)  # noqa: S314 - CXML from our own server, on loopback


async def _respond(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    content = b"" if body is None or status == 204 else json.dumps(body).encode()
    raw_headers = [(b"content-length", str(len(content)).encode())]
    if content:
        raw_headers.append((b"content-type", b"application/json"))
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})


def main(argv: list[str] | None = None) -> None:
    parser = CloudonixStandIn.command_line("A local stand-in for the Cloudonix REST API.", port=8765)
    parser.add_argument("--token", required=True, help="the bearer token the domain expects")
    parser.add_argument("--domain", required=True, help="the Cloudonix domain (normalised like ours)")
    parser.add_argument("--session", action="append", default=[], help="a valid session (repeatable)")
    parser.add_argument("--callback-delay", type=float, default=1.0, help="seconds before a transfer answers")
    parser.add_argument(
        "--transfer-outcome", default="participant-join", help="participant-join, or busy, noanswer, ..."
    )
    parser.add_argument("--allow-missing-caller-id", action="store_true", help="dial without caller-id")
    args = parser.parse_args(argv)
    standin = CloudonixStandIn(args.host, args.port, accept_any_session=not args.session)
    standin.add_domain(args.domain, args.token, args.session)
    standin.callback_delay = args.callback_delay
    standin.transfer_outcome = args.transfer_outcome
    standin.require_caller_id = not args.allow_missing_caller_id
    standin.serve_forever()


if __name__ == "__main__":
    main()
