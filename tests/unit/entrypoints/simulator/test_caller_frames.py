"""What `agent-stream call` puts on the wire is what our own server-side parsers accept from
Cloudonix, and what it prints never holds the agent UUID."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from adapters.media.frames import parse_inbound
from adapters.media.g711 import MULAW
from application.ports.calls import AudioIn, DtmfIn, MarkIn, StopIn
from domain.stream_events import check_connected, decode_message, parse_start
from entrypoints.cli import main
from entrypoints.simulator.caller_session import (
    CallOptions,
    CallUsageError,
    Console,
    Framer,
    Identity,
    Phase,
    mask_url,
)

AGENT = "9d6093bd-34b6-4ccd-b3c4-25c8520c766a"
URL = f"ws://127.0.0.1:8000/api/v1/agent-stream/{AGENT}?provider=cloudonix&Domain=acme"


def framer(url: str = URL, account_sid: str | None = None) -> Framer:
    return Framer(Identity.for_call(CallOptions(url=url, account_sid=account_sid)))


def test_connected_and_start_pass_the_servers_handshake_parsers() -> None:
    f = framer(URL + "&callId=call-7&from=%2B15550001111&to=%2B15550002222")
    check_connected(decode_message(f.connected()))
    start = parse_start(decode_message(f.start()))
    assert start.account_sid == "acme"
    assert start.call_sid == "call-7"
    assert (start.caller_number, start.called_number) == ("+15550001111", "+15550002222")
    assert (start.media_format.encoding, start.media_format.sample_rate) == ("mulaw", 8000)
    assert start.stream_sid == f.ids.stream_sid
    assert len(start.session) == 32 and start.session != framer().ids.session  # fresh per call


def test_account_sid_comes_from_the_flag_then_the_domain_then_demo() -> None:
    assert framer(account_sid="other").ids.account_sid == "other"
    assert framer().ids.account_sid == "acme"
    assert framer(f"ws://h/api/v1/agent-stream/{AGENT}").ids.account_sid == "demo"


def test_media_dtmf_mark_and_stop_pass_the_servers_frame_parser() -> None:
    f = framer()
    check_connected(decode_message(f.connected()))
    parse_start(decode_message(f.start()))
    ulaw = MULAW.encode(bytes(range(0, 256)) * 2)[:160]
    sid = f.ids.stream_sid
    assert parse_inbound(f.media(ulaw), sid, MULAW) == AudioIn(MULAW.decode(ulaw))
    assert parse_inbound(f.dtmf("#"), sid, MULAW) == DtmfIn("#")
    assert parse_inbound(f.mark("greeting"), sid, MULAW) == MarkIn("greeting")
    assert isinstance(parse_inbound(f.stop(), sid, MULAW), StopIn)


def test_counters_are_strings_that_count_like_twilios() -> None:
    f = framer()
    messages = [json.loads(m) for m in (f.start(), f.media(b"\xff" * 160), f.media(b"\xff" * 160))]
    assert [m["sequenceNumber"] for m in messages] == ["1", "2", "3"]
    assert [m["media"]["chunk"] for m in messages[1:]] == ["1", "2"]
    assert [m["media"]["timestamp"] for m in messages[1:]] == ["0", "20"]


def test_the_agent_uuid_is_masked_wherever_it_appears() -> None:
    masked = mask_url(URL)
    assert AGENT not in masked
    assert masked == "ws://127.0.0.1:8000/api/v1/agent-stream/9d60****?provider=cloudonix&Domain=acme"
    path_form = mask_url(f"wss://a.example/api/v1/agent-stream/cloudonix/{AGENT}?Domain=x")
    assert path_form == "wss://a.example/api/v1/agent-stream/cloudonix/9d60****?Domain=x"
    not_a_uuid = mask_url("ws://h/api/v1/agent-stream/some-secret-name")
    assert "some-secret-name" not in not_a_uuid
    assert "user:pw" not in mask_url(f"ws://user:pw@h:1/api/v1/agent-stream/{AGENT}")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (CallOptions(url=f"http://127.0.0.1:8000/api/v1/agent-stream/{AGENT}"), "must be a WebSocket URL"),
        (CallOptions(url="127.0.0.1:8000"), "must be a WebSocket URL"),
        (CallOptions(url=URL, seconds=0), "--seconds must be a positive number"),
        (CallOptions(url=URL, dtmf="12x"), "--dtmf takes 0-9"),
        (CallOptions(url=URL, record=Path("/no/such/dir/out.wav")), "no such directory"),
    ],
)
def test_unusable_options_are_refused(options: CallOptions, message: str) -> None:
    with pytest.raises(CallUsageError, match=message):
        options.check()


def test_the_command_refuses_a_non_websocket_url_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["call", "--url", f"https://example.com/api/v1/agent-stream/{AGENT}"])
    err = capsys.readouterr().err
    assert status == 2
    assert "must be a WebSocket URL (ws:// or wss://)" in err
    assert AGENT not in err


def test_a_terminal_gets_one_redrawn_progress_line() -> None:
    out = io.StringIO()
    console = Console(out, tty=True)
    console.progress(1.0, 0.5, -20.0, Phase.WAITING)
    console.progress(1.02, 0.5, -20.0, Phase.WAITING)  # within 100 ms: not redrawn
    console.progress(1.2, 0.7, -96.0, Phase.SPEAKING)
    console.event(1.3, "mark 'x' received")
    text = out.getvalue()
    assert text.count("\r\x1b[K") == 3  # two draws, one erase before the event line
    assert "VU [#############.......]  -20 dBFS" in text
    assert text.endswith("[  1.30 s] mark 'x' received\n")


def test_a_pipe_gets_plain_periodic_progress_lines() -> None:
    out = io.StringIO()
    console = Console(out, tty=False, plain_every=2.0)
    for k in range(250):  # 5 s of 20 ms ticks
        console.progress(k * 0.02, 0.0, -96.0, Phase.IDLE)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "\r" not in out.getvalue()
    assert lines[0] == "[  0.00 s] progress: heard 0.0 s of agent audio, level -96 dBFS, listening"
