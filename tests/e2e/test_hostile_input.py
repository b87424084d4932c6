"""Hostile input through the real endpoint on PostgreSQL: never 1011, never a run left `running`,
never a leaked slot, never a raw NUL/surrogate stored, and what a caller can make us store is bounded.

Every tenant here may hold one call at a time (`max_concurrent_calls=1`), so a slot leaked by a
refusal would make the next call of `_line_is_free` fail with 1008 "Concurrent call limit reached".
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from adapters.media.twilio.handshake import MAX_CUSTOM_PARAMETERS, MAX_CUSTOM_VALUE_CHARS
from domain.workflow_run import RunState
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from entrypoints.web.protocols import REQUEST_TIMEOUT
from tests.caller import CONNECTED, Caller, call, start_event, stop_event
from tests.e2e.conftest import Tenant, TenantFactory

DEEP_LIST = "[" * 1000 + "]" * 1000
FAILURE_EVENTS = ("stream_crashed", "call_crashed", "run_save_failed", "request_crashed", "Traceback")


@pytest.fixture(autouse=True)
def no_server_failure(captured_logs: io.StringIO) -> Iterator[None]:
    """Bad input is never a server failure: no crash, no failed store, no traceback in the logs."""
    yield
    failures = [
        line for line in captured_logs.getvalue().splitlines() if any(e in line for e in FAILURE_EVENTS)
    ]
    assert failures == []


@pytest.fixture
async def line(tenants: TenantFactory, cloudonix: CloudonixStandIn) -> Tenant:
    """A tenant whose organisation may hold one call at a time."""
    created = await tenants.create(max_concurrent_calls=1)
    cloudonix.add_domain(created.domain, created.token)
    return created


def _raw_url(tenant: Tenant, query: str, path: str | None = None) -> str:
    """A stream URL with a query string exactly as given (already percent-encoded)."""
    base = tenant.app_url.replace("http://", "ws://")
    return f"{base}/api/v1/agent-stream/{path or tenant.agent_uuid}?{query}"


async def _nothing_running(tenant: Tenant) -> list[Any]:
    runs = await tenant.all_runs()
    for _ in range(40):  # a refused handshake stores its run's end just after the close
        if all(run.state.terminal for run in runs):
            break
        await asyncio.sleep(0.05)
        runs = await tenant.all_runs()
    assert [run.name for run in runs if not run.state.terminal] == []
    return runs


async def _line_is_free(tenant: Tenant, cloudonix: CloudonixStandIn) -> None:
    """A normal call passes right after: the refused stream left no slot taken, no run running."""
    session = f"S-{uuid.uuid4().hex[:8]}"
    cloudonix.add_session(tenant.domain, session)
    before = {run.name for run in await tenant.all_runs()}
    result = await call(tenant.stream_url(), CONNECTED, start_event(session), stop_event())
    assert (result.code, result.reason) == (1000, "")
    runs = await _nothing_running(tenant)
    [new] = [run for run in runs if run.name not in before]
    assert new.state is RunState.COMPLETED


# --- the query string and the path: 1008 naming the parameter, no run minted -----------------------


@pytest.mark.parametrize("name", ["Domain", "from", "to", "callId", "CallSid", "provider"])
@pytest.mark.parametrize("encoded", ["%00", "ab%00cd", "%01", "a%0Ab", "%7F", "%C2%9B"])
async def test_a_control_character_in_a_query_value_is_refused_1008_naming_it(
    line: Tenant, cloudonix: CloudonixStandIn, name: str, encoded: str
):
    defaults = {
        "provider": "cloudonix",
        "Domain": line.domain,
        "callId": "c-1",
        "from": "+1555",
        "to": "+1666",
    }
    defaults.pop("callId" if name == "CallSid" else name, None)
    query = "&".join(f"{k}={v}" for k, v in defaults.items()) + f"&{name}={encoded}"
    result = await call(_raw_url(line, query), CONNECTED, start_event("S-q"))
    assert (result.code, result.reason) == (1008, f"Invalid query parameter: {name}")
    assert await line.all_runs() == []  # refused before a run is minted
    await _line_is_free(line, cloudonix)


async def test_an_over_long_query_value_is_refused_1008(line: Tenant, cloudonix: CloudonixStandIn):
    result = await call(line.stream_url(**{"from": "1" * 5000}), CONNECTED, start_event("S-long"))
    assert (result.code, result.reason) == (1008, "Invalid query parameter: from")
    assert await line.all_runs() == []
    await _line_is_free(line, cloudonix)


async def test_a_lone_surrogate_in_the_query_arrives_replaced_and_is_never_a_server_failure(
    line: Tenant, cloudonix: CloudonixStandIn
):
    # %ED%A0%80 is the UTF-8 shape of U+D800, invalid UTF-8: it is decoded to U+FFFD, storable.
    result = await call(
        _raw_url(line, f"provider=cloudonix&Domain={line.domain}&from=%ED%A0%80&callId=%ED%A0%80"),
        CONNECTED,
        start_event("S-sur"),
        stop_event(),
    )
    assert result.code == 4400  # the session is unknown to the stand-in; the run was stored
    [run] = await _nothing_running(line)
    assert run.initial_context["caller_number"] == "\ufffd" * 3
    await _line_is_free(line, cloudonix)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("cloud%00nix/{uuid}", "Invalid path parameter: provider"),
        ("cloudonix/%00", "Workflow not found"),
        ("%00", "Workflow not found"),
        ("cloudonix/{uuid}%00", "Workflow not found"),
    ],
)
async def test_a_control_character_in_the_path_is_refused_1008(
    line: Tenant, cloudonix: CloudonixStandIn, path: str, reason: str
):
    query = f"Domain={line.domain}" + ("" if "/" in path else "&provider=cloudonix")
    url = _raw_url(line, query, path=path.format(uuid=line.agent_uuid))
    result = await call(url, CONNECTED, start_event("S-p"))
    assert (result.code, result.reason) == (1008, reason)
    assert await line.all_runs() == []
    await _line_is_free(line, cloudonix)


# --- the handshake frames: 4400 with the spec's reason ----------------------------------------------


def _start_with(**start: Any) -> dict[str, Any]:
    message = start_event("S-h")
    message["start"].update(start)
    return message


def _media_format(**fields: Any) -> dict[str, Any]:
    return _start_with(mediaFormat={"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1} | fields)


def _deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


HANDSHAKES: list[tuple[str, list[dict[str, Any] | str], str]] = [
    ("deep connected", [DEEP_LIST], "Invalid JSON in handshake message"),
    ("deep start", [CONNECTED, DEEP_LIST], "Invalid JSON in handshake message"),
    (
        "customParameters 5,000 deep",
        [
            CONNECTED,
            json.dumps(_start_with(customParameters={})).replace(
                '"customParameters": {}', '"customParameters": ' + _deep_object(5000)
            ),
        ],
        "Invalid JSON in handshake message",
    ),
    (
        "customParameters 100 deep",
        [
            CONNECTED,
            json.dumps(_start_with(customParameters={})).replace(
                '"customParameters": {}', '"customParameters": ' + _deep_object(100)
            ),
        ],
        "Invalid JSON in handshake message",
    ),
    (
        "a 5,000-digit number",
        [CONNECTED, '{"event": "start", "n": ' + "9" * 5000 + "}"],
        "Invalid JSON in handshake message",
    ),
    (
        "sampleRate of 5,000 digits",
        [CONNECTED, _media_format(sampleRate="9" * 5000)],
        "Unsupported media format: sampleRate 9999999999999999",
    ),
    (
        "channels of 5,000 digits",
        [CONNECTED, _media_format(channels="1" * 5000)],
        "Unsupported media format: channels 11111111",
    ),
    (
        "sampleRate superscript",
        [CONNECTED, _media_format(sampleRate="\u00b2")],
        "Unsupported media format: sampleRate \u00b2",
    ),
    (
        "encoding surrogate",
        [CONNECTED, _media_format(encoding="\ud800")],
        "Unsupported media format: encoding ?",
    ),
    (
        "encoding NUL",
        [CONNECTED, _media_format(encoding="audio/x-mulaw\x00")],
        "Unsupported media format: encoding audio/x-mulaw?",
    ),
    (
        "encoding object",
        [CONNECTED, _media_format(encoding={"a": [1]})],
        "Unsupported media format: encoding dict",
    ),
    *[
        (f"{field} {label}", [CONNECTED, _start_with(**{field: value})], "Missing stream identifiers")
        for field in ("session", "streamSid", "callSid")
        for label, value in (
            ("surrogate", "\ud800"),
            ("NUL", "S\x00"),
            ("control", "S\x1b[2J"),
            ("long", "S" * 300),
        )
    ],
    *[
        (
            f"accountSid {label}",
            [CONNECTED, _start_with(accountSid=value)],
            "Missing Cloudonix domain in start message",
        )
        for label, value in (("surrogate", "\udfff"), ("NUL", "acme\x00"), ("long", "a" * 300))
    ],
    (
        "a start of 200 KiB",
        [CONNECTED, _start_with(customParameters={"big": "x" * 200 * 1024})],
        "Handshake message too large",
    ),
]


@pytest.mark.parametrize(
    ("messages", "reason"), [(m, r) for _, m, r in HANDSHAKES], ids=[i for i, _, _ in HANDSHAKES]
)
async def test_a_hostile_handshake_closes_4400_with_a_reason(
    line: Tenant, cloudonix: CloudonixStandIn, messages: list[dict[str, Any] | str], reason: str
):
    cloudonix.add_session(line.domain, "S-h")
    result = await call(line.stream_url(), *messages)
    assert (result.code, result.reason) == (4400, reason)
    [run] = await _nothing_running(line)
    assert (run.state, run.close_code, run.close_reason) == (RunState.FAILED, 4400, reason)
    await _line_is_free(line, cloudonix)


async def test_a_hostile_url_domain_in_start_is_refused(line: Tenant, cloudonix: CloudonixStandIn):
    """Without a Domain on the URL, `accountSid` names the domain: a hostile one is not echoed."""
    result = await call(
        line.stream_url(Domain=None), CONNECTED, _start_with(accountSid="\ud800.cloudonix.net")
    )
    assert (result.code, result.reason) == (4400, "Missing Cloudonix domain in start message")
    await _nothing_running(line)
    await _line_is_free(line, cloudonix)


# --- customParameters: cleaned and bounded, the call goes on ------------------------------------------


async def test_unclean_custom_parameters_are_dropped_and_the_call_goes_on(
    line: Tenant, cloudonix: CloudonixStandIn, captured_logs
):
    cloudonix.add_session(line.domain, "S-cp")
    custom = {
        "crm": "42",
        "note": "line one\nline two\ttab",
        "nul_value": "a\x00b",
        "nul\x00key": "v",
        "surrogate_value": "\ud800",
        "surrogate\udc00key": "v",
        "escape": "\x1b[31m",
        "nested": {"a": {"b": 1}},
        "list": [1, 2],
        "number": 7,
        "flag": True,
        "empty": "",
        "k" * 65: "key too long",
        "long_value": "v" * (MAX_CUSTOM_VALUE_CHARS + 1),
        "max_value": "v" * MAX_CUSTOM_VALUE_CHARS,
    }
    result = await call(
        line.stream_url(), CONNECTED, _start_with(session="S-cp", customParameters=custom), stop_event()
    )
    assert (result.code, result.reason) == (1000, "")
    [run] = await _nothing_running(line)
    assert run.state is RunState.COMPLETED
    stored = {k: v for k, v in run.initial_context.items() if k in custom}
    assert stored == {
        "crm": "42",
        "note": "line one\nline two\ttab",
        "number": "7",
        "flag": "True",
        "empty": "",
        "max_value": "v" * MAX_CUSTOM_VALUE_CHARS,
    }
    [warning] = [
        json.loads(line_)
        for line_ in captured_logs.getvalue().splitlines()
        if "custom_parameters_dropped" in line_
    ]
    assert (warning["kept"], warning["dropped"]) == (6, 9)
    assert "a\\u0000b" not in captured_logs.getvalue() and "key too long" not in captured_logs.getvalue()
    await _line_is_free(line, cloudonix)


async def test_custom_parameters_are_bounded_in_number_and_size(line: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.add_session(line.domain, "S-many")
    custom = {
        f"cp{i:03}": "x" * MAX_CUSTOM_VALUE_CHARS for i in range(100)
    }  # ~110 KB, under the message limit
    result = await call(
        line.stream_url(), CONNECTED, _start_with(session="S-many", customParameters=custom), stop_event()
    )
    assert (result.code, result.reason) == (1000, "")
    [run] = await _nothing_running(line)
    kept = [k for k in run.initial_context if k.startswith("cp")]
    assert kept == [f"cp{i:03}" for i in range(MAX_CUSTOM_PARAMETERS)]  # the first 64, in order
    assert len(json.dumps(run.initial_context)) < 100_000


async def test_a_start_of_4_mib_is_refused_by_the_websocket_size_limit(
    line: Tenant, cloudonix: CloudonixStandIn
):
    """Over the 1 MiB message limit (uvicorn_config), the WebSocket layer closes 1009 'message too big'
    before any of it is parsed; the run ends, the slot is free."""
    cloudonix.add_session(line.domain, "S-4m")
    custom = {f"cp{i}": "x" * 1000 for i in range(4 * 1024)}
    result = await call(line.stream_url(), CONNECTED, _start_with(session="S-4m", customParameters=custom))
    assert result.code == 1009
    run = await line.ended_run(within=5)  # the close may come before the run is even minted
    assert run.state is RunState.FAILED
    assert not any(k.startswith("cp") for k in run.initial_context)
    await _line_is_free(line, cloudonix)


# --- media frames during the call: counted bad frames, never a crash ---------------------------------


async def test_hostile_media_frames_are_counted_and_the_call_goes_on(
    line: Tenant, cloudonix: CloudonixStandIn
):
    cloudonix.add_session(line.domain, "S-media")
    payload = base64.b64encode(b"\xff" * 160).decode()
    hostile: list[str | bytes] = [
        DEEP_LIST,
        '{"event": "media", "media": ' + _deep_object(5000) + "}",
        '{"event": "media", "media": {"payload": "\\ud800"}}',
        '{"event": "media", "streamSid": "MZ\\u0000", "media": {"payload": "' + payload + '"}}',
        '{"event": "\\ud800"}',
        '{"event": "dtmf", "dtmf": {"digit": "\\ud800"}}',
        '{"event": "media", "n": ' + "9" * 5000 + "}",
        "x" * (100 * 1024),
        b"\x00\x01\x02",
        '{"event": "start", "start": {}}',
    ]
    async with connect(line.stream_url(), compression=None) as ws:
        caller = Caller(ws)
        await caller.send(CONNECTED)
        await caller.send(_start_with(session="S-media"))
        for message in hostile:
            await ws.send(message)
        await ws.send('{"event": "mark", "mark": {"name": "\\u0000\\ud800"}}')  # valid, not ours: ignored
        await caller.send({"event": "media", "streamSid": "MZ-e2e", "media": {"payload": payload}})
        await caller.send(stop_event())
        result = await caller.wait_closed()
    assert (result.code, result.reason) == (1000, "")
    [run] = await _nothing_running(line)
    assert run.state is RunState.COMPLETED
    assert sum(run.logs["media"]["bad_frames"].values()) == len(hostile)
    await _line_is_free(line, cloudonix)


# --- HTTP hygiene: every request is answered or closed within a bound --------------------------------


async def _exchange(app_url: str, raw: bytes, within: float = 5.0) -> bytes:
    """Send `raw` on a fresh TCP connection; everything the server sends until it closes."""
    host, port = app_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(within):
            return await reader.read()  # until EOF: the server must close
    finally:
        writer.close()


def _upgrade(target: str) -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("size", [8_100, 9_000, 100_000])
async def test_an_over_long_url_is_answered_414_and_closed(line: Tenant, app_url: str, size: int):
    target = f"/api/v1/agent-stream/{line.agent_uuid}?Domain={line.domain}&pad=" + "x" * size
    for raw in (_upgrade(target), f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()):
        answer = await _exchange(app_url, raw)
        assert answer.startswith(b"HTTP/1.1 414 "), answer[:80]
    assert await line.all_runs() == []


async def test_too_many_or_too_large_header_fields_are_answered_431(app_url: str):
    many = "".join(f"X-H{i}: v\r\n" for i in range(200))
    large = f"X-Big: {'v' * 9000}\r\n"
    for headers in (many, large):
        answer = await _exchange(app_url, f"GET /health HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]


async def test_a_websocket_request_websockets_cannot_parse_is_answered_or_closed(app_url: str, line: Tenant):
    """httptools accepts it, websockets refuses it: before, nothing was sent and the socket stayed open."""
    raw = _upgrade(f"/api/v1/agent-stream/{line.agent_uuid}").replace(
        b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer = await _exchange(app_url, raw)
    assert not answer.startswith(b"HTTP/1.1 101")


async def test_unfinished_requests_are_closed_within_the_bound_and_calls_go_on(
    line: Tenant, cloudonix: CloudonixStandIn, app_url: str
):
    """Idle TCP, a head that stops half-way, a body that stops half-way: each is answered 408 or
    closed within REQUEST_TIMEOUT (+ margin), while a WebSocket call open all along goes on."""
    cloudonix.add_session(line.domain, "S-long")
    idle = _exchange(app_url, b"", within=REQUEST_TIMEOUT + 10)
    half_head = _exchange(
        app_url, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", within=REQUEST_TIMEOUT + 10
    )
    half_body = _exchange(
        app_url,
        b"POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"name":',
        within=REQUEST_TIMEOUT + 10,
    )
    payload = base64.b64encode(b"\xff" * 160).decode()
    async with connect(line.stream_url(), compression=None) as ws:
        caller = Caller(ws)
        await caller.send(CONNECTED)
        await caller.send(_start_with(session="S-long"))
        answers = await asyncio.gather(idle, half_head, half_body)
        assert answers[0] == b""
        assert answers[1].startswith(b"HTTP/1.1 408 "), answers[1][:80]
        assert not answers[2].startswith(b"HTTP/1.1 2")
        await caller.send({"event": "media", "streamSid": "MZ-e2e", "media": {"payload": payload}})
        await caller.send(stop_event())
        result = await caller.wait_closed()
    assert (result.code, result.reason) == (1000, "")
    [run] = await _nothing_running(line)
    assert run.state is RunState.COMPLETED


# --- the REST API: deep JSON is a 4xx naming the field, never a 500 -----------------------------------


def _deep(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


AGENT_BODIES = [
    ("definition 100,000 deep", '{"name": "x", "definition": ' + _deep(100_000) + "}", 422, "definition"),
    (
        "a definition key 100,000 deep",
        '{"name": "x", "definition": {"engine": "linetest", "x": ' + _deep(100_000) + "}}",
        422,
        "definition",
    ),
    (
        "template variables 100,000 deep",
        '{"name": "x", "definition": {"engine": "linetest"}, "template_context_variables": '
        + _deep(100_000)
        + "}",
        422,
        "template_context_variables",
    ),
    (
        "definition 500 deep",
        '{"name": "x", "definition": {"engine": "linetest", "x": ' + _deep(500) + "}}",
        422,
        "definition",
    ),
    (
        "engine 900 deep",
        '{"name": "x", "definition": {"engine": ' + "[" * 900 + "]" * 900 + "}}",
        422,
        "definition",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "field"), [b[1:] for b in AGENT_BODIES], ids=[b[0] for b in AGENT_BODIES]
)
async def test_deep_json_in_an_agent_body_is_a_4xx_naming_the_field(
    api: httpx.AsyncClient, tenant: Tenant, body: str, status: int, field: str
):
    headers = {**tenant.auth, "content-type": "application/json"}
    created = await api.post(
        "/api/v1/agents", json={"name": "ok", "definition": {"engine": "linetest"}}, headers=tenant.auth
    )
    assert created.status_code == 201
    for response in (
        await api.post("/api/v1/agents", content=body, headers=headers),
        await api.patch(f"/api/v1/agents/{created.json()['uuid']}", content=body, headers=headers),
    ):
        assert response.status_code == status, response.text
        detail = response.json()["detail"]
        assert f"{field}: must not be nested deeper than 32 levels" in detail
    agents = (await api.get("/api/v1/agents", headers=tenant.auth)).json()
    assert sorted(agent["name"] for agent in agents) == ["front desk", "ok"]  # nothing new, nothing changed


async def test_deep_json_in_other_bodies_is_a_422(api: httpx.AsyncClient, tenant: Tenant):
    headers = {**tenant.auth, "content-type": "application/json"}
    for body in ("[" * 100_000 + "]" * 100_000, _deep(100_000)):
        for path in ("/api/v1/runs/1/transfer", "/api/v1/telephony-configurations"):
            response = await api.post(path, content=body, headers=headers)
            assert response.status_code == 422, response.text
            assert "must not be nested deeper than 32 levels" in response.json()["detail"]
