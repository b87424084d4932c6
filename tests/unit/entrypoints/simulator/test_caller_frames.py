"""What `agent-stream call` puts on the wire (the shared codec's `CallerFramer`, fed the simulated
call's identity) is what our own server-side parsers accept from Cloudonix."""

from __future__ import annotations

import json

from adapters.media.g711 import MULAW
from adapters.media.twilio.caller import CallerFramer
from adapters.media.twilio.handshake import check_connected, decode_message, parse_start
from adapters.media.twilio.inbound import parse_inbound
from domain.stream_events import AudioIn, DtmfIn, MarkIn, StopIn
from entrypoints.simulator.caller_options import CallOptions, Identity

AGENT = "9d6093bd-34b6-4ccd-b3c4-25c8520c766a"
URL = f"ws://127.0.0.1:8000/api/v1/agent-stream/{AGENT}?provider=cloudonix&Domain=acme"


def framer(url: str = URL, account_sid: str | None = None) -> CallerFramer:
    return CallerFramer(Identity.for_call(CallOptions(url=url, account_sid=account_sid)).stream_start())


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
