"""Property-based fuzz of the agent-stream endpoint, through the real served app on PostgreSQL.

Random query strings (text with NUL, lone surrogates, control characters, huge values) and random
frame sequences (`connected`/`start` with random values, random JSON, random text and bytes): the
stream never closes 1011, no run is left `running`, and the organisation's one slot is free again
(a normal call passes right after each example). Bounded for CI: a fixed number of examples,
derandomized, no example database.

Each example runs in its own event loop (the app serves from its own thread) and checks the runs
through the REST API, so the test itself holds no database connection.
"""

from __future__ import annotations

import asyncio
import io
import json
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import Tenant, TenantFactory

SESSION = "S-fuzz"
FUZZ_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
FAILURE_EVENTS = ("stream_crashed", "call_crashed", "run_save_failed", "Traceback")

# Any code point, surrogates and controls included (hypothesis leaves surrogates out by default).
any_text = st.text(st.characters(exclude_categories=()), max_size=30)
hostile_text = st.one_of(
    any_text,
    st.sampled_from(["\x00", "a\x00b", "\ud800", "\udfff", "\x1b[2J", "\r\n", " ", ""]),
    st.integers(min_value=300, max_value=20_000).map(lambda n: "9" * n),
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)),
    max_leaves=12,
)


@pytest.fixture
async def fuzz_line(tenants: TenantFactory, cloudonix: CloudonixStandIn) -> Tenant:
    created = await tenants.create(max_concurrent_calls=1)
    cloudonix.add_domain(created.domain, created.token, sessions={SESSION})
    return created


def _encoded(value: str) -> str:
    """Percent-encoding of any text, a lone surrogate as the UTF-8 bytes it would have."""
    return quote(value.encode("utf-8", errors="surrogatepass"), safe="")


async def _check_after(tenant: Tenant, code: int | None) -> None:
    """The example's invariants: no 1011, nothing left running, the slot free."""
    assert code != 1011
    async with httpx.AsyncClient(base_url=tenant.app_url, headers=tenant.auth, timeout=10) as api:
        states: list[str] = []
        for _ in range(100):  # the run's end is stored just after the close
            page = (await api.get(f"/api/v1/agents/{tenant.agent_uuid}/runs", params={"limit": 5})).json()
            states = [run["state"] for run in page["items"]]
            if all(state in ("completed", "failed") for state in states):
                break
            await asyncio.sleep(0.05)
        assert all(state in ("completed", "failed") for state in states), states
    result = await call(tenant.stream_url(), CONNECTED, start_event(SESSION), stop_event())
    assert (result.code, result.reason) == (1000, ""), "the organisation's only slot is not free"


async def _send_all(url: str, messages: list[str | bytes]) -> int | None:
    """Send `messages` (stopping if the server closes); give the server a moment to close, then
    hang up ourselves. Returns the close code the server sent (None when it sent none, or when it
    refused the URL itself with an HTTP 4xx, such as 414 for a URL over 8,000 bytes)."""
    try:
        ws = await connect(url, compression=None, open_timeout=10, max_size=None)
    except InvalidStatus as refused:
        status = refused.response.status_code
    else:
        status = None
    if status is not None:
        assert status in (400, 414, 431), status
        return None
    async with ws:
        try:
            for message in messages:
                await ws.send(message)
            async with asyncio.timeout(1.5):
                async for _ in ws:
                    pass
        except (ConnectionClosed, TimeoutError):
            pass
    return ws.protocol.close_rcvd.code if ws.protocol.close_rcvd is not None else None


def _no_failure_logged(logs: io.StringIO) -> None:
    failures = [line for line in logs.getvalue().splitlines() if any(e in line for e in FAILURE_EVENTS)]
    assert failures == []


# --- random query strings -------------------------------------------------------------------------

QUERY_NAMES = ["Domain", "from", "to", "callId", "CallSid", "provider"]


@st.composite
def query_strings(draw: st.DrawFn, tenant: Tenant) -> str:
    params: dict[str, str] = {"provider": "cloudonix", "Domain": tenant.domain}
    for name in draw(st.lists(st.sampled_from([*QUERY_NAMES, "other"]), unique=True, max_size=4)):
        params[name] = draw(hostile_text)
    raw = draw(st.sampled_from(["", "&%00=%00", "&%ED%A0%80", "&&&", "&Domain"]))
    return "&".join(f"{_encoded(k)}={_encoded(v)}" for k, v in params.items()) + raw


def test_random_query_strings_never_close_1011_nor_leak(fuzz_line: Tenant, captured_logs: io.StringIO):
    base = fuzz_line.app_url.replace("http://", "ws://") + f"/api/v1/agent-stream/{fuzz_line.agent_uuid}"

    @FUZZ_SETTINGS
    @given(query=query_strings(fuzz_line))
    def example(query: str) -> None:
        async def run() -> None:
            code = await _send_all(
                f"{base}?{query}",
                [json.dumps(CONNECTED), json.dumps(start_event(SESSION)), json.dumps(stop_event())],
            )
            await _check_after(fuzz_line, code)

        asyncio.run(run())

    example()
    _no_failure_logged(captured_logs)


# --- random frame sequences -----------------------------------------------------------------------


@st.composite
def starts(draw: st.DrawFn) -> str:
    """A valid-ish `start`: the normal one with a few fields replaced by random values."""
    message = start_event(SESSION)
    start = message["start"]
    fields = ["session", "streamSid", "callSid", "accountSid", "from", "to", "context", "tracks"]
    for name in draw(st.lists(st.sampled_from(fields), unique=True, max_size=3)):
        start[name] = draw(json_values)
    if draw(st.booleans()):
        fmt = start["mediaFormat"]
        fmt[draw(st.sampled_from(["encoding", "sampleRate", "channels"]))] = draw(json_values)
    start["customParameters"] = draw(st.dictionaries(any_text, json_values, max_size=6))
    return json.dumps(message)  # ensure_ascii: a lone surrogate travels as a "\ud800" escape


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


junk = st.one_of(
    json_values.map(json.dumps),
    any_text.map(lambda t: t.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")),
    st.binary(max_size=64),
    st.integers(min_value=900, max_value=6000).map(_nested),
    st.just('{"event": "media", "media": {"payload": "\\ud800"}}'),
    st.just('{"event": "media", "n": ' + "9" * 5000 + "}"),
)
frame_sequences = st.tuples(
    st.one_of(st.just(json.dumps(CONNECTED)), st.just(json.dumps(CONNECTED)), junk),
    st.one_of(starts(), starts(), junk),
    st.lists(junk, max_size=4),
    st.booleans(),  # end with `stop`
)


def test_random_frame_sequences_never_close_1011_nor_leak(fuzz_line: Tenant, captured_logs: io.StringIO):
    url = fuzz_line.stream_url()

    @FUZZ_SETTINGS
    @given(sequence=frame_sequences)
    def example(sequence: tuple[str | bytes, str | bytes, list[str | bytes], bool]) -> None:
        connected, start, rest, stop = sequence
        messages: list[str | bytes] = [connected, start, *rest]
        if stop:
            messages.append(json.dumps(stop_event()))

        async def run() -> None:
            await _check_after(fuzz_line, await _send_all(url, messages))

        asyncio.run(run())

    example()
    _no_failure_logged(captured_logs)


def test_the_fuzz_can_see_a_leaked_slot(fuzz_line: Tenant, cloudonix: CloudonixStandIn):
    """The invariant check itself fails when the slot is taken (here: by a call still going)."""

    async def run() -> None:
        async with connect(fuzz_line.stream_url(), compression=None) as ws:
            await ws.send(json.dumps(CONNECTED))
            await ws.send(json.dumps(start_event(SESSION)))
            await asyncio.sleep(0.3)
            with pytest.raises(AssertionError):
                await _check_after(fuzz_line, 1000)

    asyncio.run(run())
