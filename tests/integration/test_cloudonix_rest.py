"""`HttpxCloudonixSessions` against the Cloudonix stand-in over real HTTP on loopback.

Transfer callbacks travel for real too: the stand-in POSTs them to a loopback server that has the
route shape of `POST /api/v1/telephony/cloudonix/transfer-result/{transfer_id}` and hands them to
`TransferCallbacks.deliver`, on the test's own event loop (as the web app would).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import structlog
import uvicorn

from adapters.cloudonix.rest import HttpxCloudonixSessions, payload_from_form_or_json
from adapters.cloudonix.transfers import TransferCallbacks, TransferResult
from application.ports.live_call import CallControlError, HangupReport, ProviderCallRef
from domain.telephony import SecretStr
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn

DOMAIN = "acme.cloudonix.net"
TOKEN = "cxkey-7f3a9c1e5b2d4f60"
SESSION = "sess-4d2c8e91a7"
CALLER_ID = "+15551230002"
DESTINATION = "+15555550123"
RESULT_PATH = "/api/v1/telephony/cloudonix/transfer-result/"
TIMEOUT = 0.3


# -- fixtures ----------------------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    callbacks: TransferCallbacks


class TransferResultRoute:
    """The callback route's shape: parse the body, `deliver`, 200 for a known id, else 404."""

    def __init__(self, callbacks: TransferCallbacks) -> None:
        self.callbacks = callbacks

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status = 404
        if scope["method"] == "POST" and scope["path"].startswith(RESULT_PATH):
            try:
                payload = payload_from_form_or_json(headers.get("content-type", ""), body)
            except ValueError:
                status = 400
            else:
                status = 200 if self.callbacks.deliver(scope["path"][len(RESULT_PATH) :], payload) else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="session")
def standin() -> Iterator[CloudonixStandIn]:
    with CloudonixStandIn() as server:
        yield server


@pytest.fixture
def cx(standin: CloudonixStandIn) -> Iterator[CloudonixStandIn]:
    standin.reset()
    standin.add_domain(DOMAIN, TOKEN, {SESSION})
    yield standin
    standin.reset()


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    callbacks = TransferCallbacks()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        TransferResultRoute(callbacks),
        interface="asgi3",
        lifespan="off",
        log_config=None,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.005)
    yield Receiver(f"http://127.0.0.1:{port}", callbacks)
    server.should_exit = True
    await task


@pytest.fixture
async def client(cx: CloudonixStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cx.url, trust_env=False) as http:
        yield http


@pytest.fixture
def seen() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def sessions(
    client: httpx.AsyncClient, receiver: Receiver, seen: list[tuple[str, str]]
) -> HttpxCloudonixSessions:
    return HttpxCloudonixSessions(
        client,
        timeout=TIMEOUT,
        public_url=receiver.url + "/",
        retries=3,
        backoff=0.01,
        metrics=lambda operation, status, _seconds: seen.append((operation, status)),
        transfers=receiver.callbacks,
        answer_timeout=2.0,
    )


def ref(session: str = SESSION, token: str = TOKEN, caller_id: str | None = CALLER_ID) -> ProviderCallRef:
    return ProviderCallRef(DOMAIN, session, SecretStr(token), caller_id=caller_id)


# -- validate -------------------------------------------------------------------------------------------


async def test_validate_accepts_a_known_session(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, seen: list[tuple[str, str]]
) -> None:
    assert await sessions.validate(ref()) is True
    [request] = cx.requests_for("validate")
    assert request.method == "GET"
    assert request.path == f"/customers/self/domains/{DOMAIN}/sessions/{SESSION}"
    assert seen == [("validate", "200")]


@pytest.mark.parametrize(
    ("session", "token", "expected_status"),
    [("sess-unknown", TOKEN, "404"), (SESSION, "wrong-token", "401")],
    ids=["unknown-session-404", "wrong-token-401"],
)
async def test_validate_refuses_what_cloudonix_refuses(
    sessions: HttpxCloudonixSessions,
    seen: list[tuple[str, str]],
    session: str,
    token: str,
    expected_status: str,
) -> None:
    assert await sessions.validate(ref(session, token)) is False
    assert seen == [("validate", expected_status)]


async def test_validate_is_false_on_a_server_error_and_not_retried(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn
) -> None:
    cx.respond_with("validate", 500)
    assert await sessions.validate(ref()) is False
    assert len(cx.requests_for("validate")) == 1


async def test_validate_gives_up_at_the_timeout(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, seen: list[tuple[str, str]]
) -> None:
    cx.hang("validate")
    started = time.monotonic()
    assert await sessions.validate(ref()) is False
    assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + 0.5
    assert seen == [("validate", "timeout")]


async def test_validate_is_false_when_cloudonix_is_unreachable(seen: list[tuple[str, str]]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{closed_port}") as http:
        adapter = HttpxCloudonixSessions(
            http, timeout=TIMEOUT, public_url="http://x", metrics=lambda *a: seen.append(a[:2])
        )
        assert await adapter.validate(ref()) is False
    assert seen == [("validate", "ConnectError")]


# -- hang-up --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 204])
async def test_hang_up_ends_the_session(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, status: int
) -> None:
    cx.hangup_status = status
    assert await sessions.hang_up(ref()) == HangupReport(hung_up=True, attempts=1, last_status=status)
    [request] = cx.requests_for("hangup")
    assert request.method == "DELETE"
    assert request.path == f"/customers/self/domains/{DOMAIN}/sessions/{SESSION}"
    assert cx.hangups == [(DOMAIN, SESSION)]
    assert await sessions.validate(ref()) is False  # the session is gone now


async def test_hang_up_of_a_call_already_gone_succeeds(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, seen: list[tuple[str, str]]
) -> None:
    await sessions.hang_up(ref("sess-gone"))
    assert seen == [("hangup", "404")]
    assert len(cx.requests_for("hangup")) == 1


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_hang_up_retries_a_transient_failure(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, seen: list[tuple[str, str]], status: int
) -> None:
    cx.respond_with("hangup", status, times=1, headers={"Retry-After": "0"})
    assert await sessions.hang_up(ref()) == HangupReport(hung_up=True, attempts=2, last_status=204)
    assert len(cx.requests_for("hangup")) == 2
    assert cx.hangups == [(DOMAIN, SESSION)]
    assert seen == [("hangup", str(status)), ("hangup", "204")]


async def test_hang_up_retries_after_a_timeout(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, seen: list[tuple[str, str]]
) -> None:
    cx.hang("hangup", times=1)
    await sessions.hang_up(ref())
    assert len(cx.requests_for("hangup")) == 2
    assert cx.hangups == [(DOMAIN, SESSION)]
    assert seen == [("hangup", "timeout"), ("hangup", "204")]


@pytest.mark.parametrize("retries", [1, 3])
async def test_hang_up_fails_after_exactly_retries_attempts(
    client: httpx.AsyncClient, cx: CloudonixStandIn, retries: int
) -> None:
    adapter = HttpxCloudonixSessions(
        client, timeout=TIMEOUT, public_url="http://x", retries=retries, backoff=0.01
    )
    cx.respond_with("hangup", 500)
    with pytest.raises(CallControlError) as failure:
        await adapter.hang_up(ref())
    assert len(cx.requests_for("hangup")) == retries
    assert failure.value.report == HangupReport(hung_up=False, attempts=retries, last_status=500)
    assert TOKEN not in str(failure.value)
    assert SESSION not in str(failure.value)


async def test_hang_up_gives_up_after_repeated_timeouts_within_its_bound(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn
) -> None:
    cx.hang("hangup")
    started = time.monotonic()
    with pytest.raises(CallControlError) as failure:
        await sessions.hang_up(ref())
    assert len(cx.requests_for("hangup")) == 3
    assert failure.value.report == HangupReport(hung_up=False, attempts=3, last_status=None, error="timeout")
    assert time.monotonic() - started < 3 * TIMEOUT + 0.5


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_hang_up_fails_at_once_on_a_client_error(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, status: int
) -> None:
    cx.respond_with("hangup", status)
    with pytest.raises(CallControlError, match=str(status)) as failure:
        await sessions.hang_up(ref())
    assert len(cx.requests_for("hangup")) == 1
    assert failure.value.report == HangupReport(hung_up=False, attempts=1, last_status=status)


async def test_a_hang_up_to_a_closed_port_reports_it_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{closed_port}") as http:
        adapter = HttpxCloudonixSessions(http, timeout=TIMEOUT, public_url="http://x", backoff=0.01)
        with pytest.raises(CallControlError) as failure:
            await adapter.hang_up(ref())
    assert failure.value.report == HangupReport(hung_up=False, attempts=3, last_status=None, error="refused")


# -- transfer -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("callback_format", ["json", "list", "form"])
async def test_transfer_dials_waits_for_the_join_and_moves_the_caller(
    sessions: HttpxCloudonixSessions,
    cx: CloudonixStandIn,
    receiver: Receiver,
    seen: list[tuple[str, str]],
    callback_format: Any,
) -> None:
    cx.callback_format = callback_format
    await sessions.transfer(ref(), DESTINATION)

    conference = f"transfer-{SESSION}"
    [dial] = cx.dials
    [dial_request] = cx.requests_for("dial")
    assert dial_request.path == f"/calls/{DOMAIN}/application"
    assert dial.destination == DESTINATION
    assert dial.caller_id == CALLER_ID
    assert dial_request.json["timeout"] == 2
    assert dial.callback is not None
    assert dial.callback.startswith(receiver.url + RESULT_PATH)
    transfer_id = dial.callback.removeprefix(receiver.url + RESULT_PATH)
    assert len(transfer_id) == 32
    assert int(transfer_id, 16) >= 0
    assert dial.status_callback == dial.callback
    assert dial.conference == conference
    document = ET.fromstring(dial.cxml)  # noqa: S314 - our own output
    assert document.findtext("Say") == "Connecting your call."
    conference_element = document.find("Dial/Conference")
    assert conference_element is not None
    assert conference_element.attrib == {
        "endConferenceOnExit": "true",
        "statusCallback": dial.callback,
        "statusCallbackEvent": "join",
        "holdMusic": "false",
    }

    [move] = cx.moves
    assert (move.domain, move.session, move.conference) == (DOMAIN, SESSION, conference)
    assert cx.requests_for("move")[0].path == f"/calls/{DOMAIN}/sessions/{SESSION}/application"
    moved = ET.fromstring(move.cxml)  # noqa: S314 - our own output
    assert [child.tag for child in moved] == ["Dial", "Hangup"]
    moved_conference = moved.find("Dial/Conference")
    assert moved_conference is not None
    assert moved_conference.attrib == {"endConferenceOnExit": "true", "beep": "false", "holdMusic": "false"}

    await _eventually(lambda: len(cx.callbacks) == 2)  # the stand-in records a callback once answered
    assert [
        (c.payload.get("status"), c.payload.get("StatusCallbackEvent"), c.status) for c in cx.callbacks
    ] == [
        ("ringing", None, 200),
        (None, "participant-join", 200),
    ]
    assert all(c.format == callback_format for c in cx.callbacks)
    assert cx.hangups == []  # no DELETE follows a transfer
    assert seen == [("transfer", "200"), ("transfer", "200")]
    assert receiver.callbacks.pending() == 0
    late = await _post_json(dial.callback, {"StatusCallbackEvent": "participant-leave"})
    assert late == 200  # a finished transfer still acknowledges late callbacks


async def test_transfer_accepts_202_for_the_move(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn
) -> None:
    cx.move_status = 202
    await sessions.transfer(ref(), "sip:desk@example.com")
    assert len(cx.moves) == 1


@pytest.mark.parametrize("status", ["busy", "noanswer", "failed"])
async def test_transfer_fails_when_the_destination_does_not_take_the_call(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, receiver: Receiver, status: str
) -> None:
    cx.transfer_outcome = status
    with pytest.raises(CallControlError, match=status):
        await sessions.transfer(ref(), DESTINATION)
    assert cx.moves == []
    assert cx.requests_for("move") == []
    assert receiver.callbacks.pending() == 0


async def test_transfer_times_out_and_drops_the_destination_leg(
    client: httpx.AsyncClient, cx: CloudonixStandIn, receiver: Receiver
) -> None:
    adapter = HttpxCloudonixSessions(
        client, timeout=TIMEOUT, public_url=receiver.url, transfers=receiver.callbacks, answer_timeout=0.3
    )
    cx.transfer_outcome = None  # rings, never answers
    started = time.monotonic()
    with pytest.raises(CallControlError, match="not answered"):
        await adapter.transfer(ref(), DESTINATION)
    assert time.monotonic() - started < 0.3 + TIMEOUT + 0.3
    [dial] = cx.dials
    assert cx.hangups == [(DOMAIN, dial.token)]
    assert cx.moves == []
    assert receiver.callbacks.pending() == 0
    assert dial.callback is not None
    assert await _post_json(dial.callback, {"StatusCallbackEvent": "participant-join"}) == 200


@pytest.mark.parametrize(
    "setup",
    [
        lambda cx: cx.respond_with("dial", 500),
        lambda cx: cx.respond_with("dial", 200, body={"domainId": 1}),  # no token
        lambda cx: cx.respond_with("dial", 201, body={"token": "leg-x"}),  # only 200 counts
        lambda cx: cx.hang("dial"),
    ],
    ids=["500", "no-token", "201", "timeout"],
)
async def test_transfer_fails_when_cloudonix_does_not_dial(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, receiver: Receiver, setup: Any
) -> None:
    setup(cx)
    with pytest.raises(CallControlError, match="dial"):
        await sessions.transfer(ref(), DESTINATION)
    assert len(cx.requests_for("dial")) == 1  # creating a call is never retried
    assert cx.requests_for("move") == []
    assert receiver.callbacks.pending() == 0


async def test_transfer_without_a_caller_id_is_refused_by_cloudonix(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn
) -> None:
    with pytest.raises(CallControlError, match="400"):
        await sessions.transfer(ref(caller_id=None), DESTINATION)
    [request] = cx.requests_for("dial")
    assert "caller-id" not in request.json


async def test_transfer_fails_and_drops_the_leg_when_the_caller_cannot_be_moved(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn
) -> None:
    cx.respond_with("move", 500)
    with pytest.raises(CallControlError, match="move"):
        await sessions.transfer(ref(), DESTINATION)
    [dial] = cx.dials
    assert len(cx.requests_for("move")) == 1
    assert cx.hangups == [(DOMAIN, dial.token)]


async def test_transfer_needs_a_callback_registry(client: httpx.AsyncClient, cx: CloudonixStandIn) -> None:
    adapter = HttpxCloudonixSessions(client, timeout=TIMEOUT, public_url="http://x")
    with pytest.raises(CallControlError):
        await adapter.transfer(ref(), DESTINATION)
    assert cx.requests == []


async def test_transfer_escapes_awkward_values_in_the_cxml(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn
) -> None:
    awkward = "sess-a&b<c>\"d'e"
    cx.add_session(DOMAIN, awkward)
    await sessions.transfer(ref(awkward), DESTINATION)
    [dial] = cx.dials
    [move] = cx.moves
    assert dial.conference == move.conference == f"transfer-{awkward}"
    assert move.session == awkward


# -- what goes over the wire and into the logs ---------------------------------------------------------------


async def test_every_request_carries_the_token_only_in_the_authorization_header(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn
) -> None:
    await sessions.validate(ref())
    await sessions.transfer(ref(), DESTINATION)
    await sessions.hang_up(ref())
    assert {r.operation for r in cx.requests} == {"validate", "dial", "move", "hangup"}
    for request in cx.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["content-type"] == "application/json"
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert TOKEN not in json.dumps(others)
        assert TOKEN not in request.path
        assert TOKEN.encode() not in request.body


async def test_the_adapter_never_logs_the_token_the_session_or_its_urls(
    sessions: HttpxCloudonixSessions, cx: CloudonixStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        assert await sessions.validate(ref("sess-unknown")) is False
        cx.hang("validate", times=1)
        assert await sessions.validate(ref()) is False
        cx.respond_with("hangup", 500, times=1)
        cx.respond_with("hangup", 400, times=1)
        with pytest.raises(CallControlError):
            await sessions.hang_up(ref())
        cx.transfer_outcome = "busy"
        with pytest.raises(CallControlError):
            await sessions.transfer(ref(), DESTINATION)
        cx.transfer_outcome = "participant-join"
        await sessions.transfer(ref(), DESTINATION)
        await sessions.hang_up(ref())
    transfer_ids = [d.callback.rsplit("/", 1)[-1] for d in cx.dials if d.callback]
    ours = [r.getMessage() + repr(r.__dict__) for r in caplog.records if r.name.startswith("adapters")]
    text = repr(events) + "\n".join(ours)
    assert {"session_validation_failed", "hangup_retrying", "hangup_refused", "transfer_failed"} <= {
        e["event"] for e in events
    }
    for secret in [TOKEN, SESSION, "sess-unknown", "/sessions/", "/calls/", DESTINATION, *transfer_ids]:
        assert secret not in text
    assert "***0123" in text  # the destination appears masked


# -- callback payloads and the registry -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (
            "application/json",
            b'{"StatusCallbackEvent": "participant-join"}',
            {"StatusCallbackEvent": "participant-join"},
        ),
        ("application/json; charset=utf-8", b'[{"status": "busy"}]', [{"status": "busy"}]),
        (
            "application/x-www-form-urlencoded",
            b"status=noanswer&Session=leg-1",
            {"status": "noanswer", "Session": "leg-1"},
        ),
        ("", b"StatusCallbackEvent=participant-join", {"StatusCallbackEvent": "participant-join"}),
        ("text/plain", b' {"status": "ringing"}', {"status": "ringing"}),
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="status"\r\n\r\nbusy\r\n--XyZ--\r\n',
            {"status": "busy"},
        ),
    ],
    ids=["json-object", "json-list", "form", "form-without-type", "json-without-type", "multipart"],
)
def test_callback_bodies_are_parsed(content_type: str, body: bytes, expected: object) -> None:
    assert payload_from_form_or_json(content_type, body) == expected


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b"{not json"), ("application/json", b'"busy"'), ("application/json", b"\xff\xfe")],
)
def test_malformed_callback_bodies_are_rejected(content_type: str, body: bytes) -> None:
    with pytest.raises(ValueError, match=r".+"):
        payload_from_form_or_json(content_type, body)


@pytest.mark.parametrize(
    ("payloads", "expected"),
    [
        (
            [{"status": "ringing"}, [{"StatusCallbackEvent": "participant-join", "Session": "leg-1"}]],
            TransferResult(answered=True, status="participant-join", session="leg-1"),
        ),
        ([{"status": "processing"}, {"status": "BUSY"}], TransferResult(answered=False, status="busy")),
        ([[{"status": "congestion"}]], TransferResult(answered=False, status="congestion")),
    ],
    ids=["join-after-ringing", "busy", "list-congestion"],
)
async def test_the_registry_resolves_on_the_first_decisive_callback(
    payloads: list[Any], expected: TransferResult
) -> None:
    registry = TransferCallbacks()
    answered = registry.expect("t-1")
    for payload in payloads:
        assert registry.deliver("t-1", payload) is True
    assert await asyncio.wait_for(answered, 1) == expected
    assert registry.deliver("t-1", {"status": "completed"}) is True  # late, still known
    assert registry.deliver("t-unknown", {"status": "busy"}) is False


async def test_the_registry_accepts_callbacks_from_another_thread() -> None:
    registry = TransferCallbacks()
    answered = registry.expect("t-2")
    known = await asyncio.to_thread(registry.deliver, "t-2", {"StatusCallbackEvent": "participant-join"})
    assert known is True
    assert (await asyncio.wait_for(answered, 1)).answered is True


async def test_the_callback_route_answers_404_for_an_unknown_transfer(receiver: Receiver) -> None:
    assert await _post_json(f"{receiver.url}{RESULT_PATH}{'0' * 32}", {"status": "busy"}) == 404


async def _eventually(condition: Callable[[], bool], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def _post_json(url: str, payload: object) -> int:
    async with httpx.AsyncClient(trust_env=False) as http:
        return (await http.post(url, json=payload)).status_code
