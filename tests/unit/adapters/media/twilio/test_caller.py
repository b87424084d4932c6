"""The caller's side of the wire format round-trips through the server's side: what a simulated
Cloudonix sends decodes back to the values it was built from."""

from __future__ import annotations

import json

import pytest

from adapters.media.g711 import ALAW, MULAW
from adapters.media.twilio.caller import (
    CallerFramer,
    connected_message,
    dtmf_message,
    mark_message,
    media_message,
    start_message,
    stop_message,
    to_text,
)
from adapters.media.twilio.handshake import TwilioHandshakeReader, check_connected, parse_start
from adapters.media.twilio.inbound import DTMF_DIGITS, parse_inbound
from domain.stream_events import AudioIn, DtmfIn, MarkIn, MediaFormat, StopIn, StreamStart

SID = "MZ0123456789abcdef"
ULAW_FRAME = bytes(range(96, 256))  # 160 codes, 20 ms

STARTS = [
    StreamStart(
        stream_sid=SID,
        call_sid="CA-1",
        session="S-1",
        account_sid="acme",
        caller_number="+15555550100",
        called_number="+15555550199",
        context="inbound",
        tracks=("inbound",),
    ),
    StreamStart(  # nothing optional: the domain comes from the URL, µ-law 8 kHz by default
        stream_sid=SID, call_sid="CA-2", session="S-2", account_sid=None
    ),
    StreamStart(
        stream_sid=SID,
        call_sid="CA-3",
        session="S-3",
        account_sid="acme.cloudonix.net",
        media_format=MediaFormat("alaw", 8000, 1),
        caller_number="alice",
        called_number="+15555550199",
        context="outbound-api",
        tracks=("inbound", "outbound"),
        custom_parameters={"crm_id": "42", "note": "line one\nline two"},
    ),
]


@pytest.mark.parametrize("start", STARTS, ids=["inbound", "minimal", "alaw outbound-api"])
def test_start_round_trips_to_the_same_stream_start(start: StreamStart) -> None:
    assert parse_start(start_message(start)) == start
    assert TwilioHandshakeReader().read_start(to_text(start_message(start))) == start


def test_connected_passes_the_handshake() -> None:
    check_connected(connected_message())
    TwilioHandshakeReader().read_connected(to_text(connected_message()))


@pytest.mark.parametrize("codec", [MULAW, ALAW], ids=["mulaw", "alaw"])
def test_media_round_trips_to_the_decoded_payload(codec) -> None:
    message = to_text(media_message(SID, ULAW_FRAME, sequence_number="3", chunk=2, timestamp_ms=20))
    assert parse_inbound(message, SID, codec) == AudioIn(codec.decode(ULAW_FRAME))


@pytest.mark.parametrize("digit", sorted(DTMF_DIGITS))
def test_every_dtmf_digit_round_trips(digit: str) -> None:
    assert parse_inbound(to_text(dtmf_message(SID, digit)), SID, MULAW) == DtmfIn(digit)


@pytest.mark.parametrize("name", ["greeting", 'say "hi"\n', "\u00e9t\u00e9"])
def test_mark_round_trips(name: str) -> None:
    assert parse_inbound(to_text(mark_message(SID, name, sequence_number="7")), SID, MULAW) == MarkIn(name)


def test_stop_round_trips_with_or_without_its_body() -> None:
    bare = stop_message(SID)
    full = stop_message(SID, sequence_number="9", account_sid="acme", call_sid="CA-1", session="S-1")
    assert bare == {"event": "stop", "streamSid": SID, "stop": {}}
    assert full["stop"] == {"accountSid": "acme", "callSid": "CA-1", "session": "S-1"}
    for message in (bare, full):
        assert isinstance(parse_inbound(to_text(message), SID, MULAW), StopIn)


def test_optional_parts_are_sent_only_when_given() -> None:
    assert media_message(SID, b"\xff", track=None) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": "/w=="},
    }
    assert dtmf_message(SID, "1", track=None)["dtmf"] == {"digit": "1"}
    assert "accountSid" not in start_message(STARTS[1])["start"]
    assert "sequenceNumber" not in start_message(STARTS[0], sequence_number=None)


def test_the_framer_sends_a_whole_call_the_server_decodes() -> None:
    start = STARTS[0]
    framer = CallerFramer(start)
    reader = TwilioHandshakeReader()
    reader.read_connected(framer.connected())
    assert reader.read_start(framer.start()) == start
    assert parse_inbound(framer.media(ULAW_FRAME), SID, MULAW) == AudioIn(MULAW.decode(ULAW_FRAME))
    assert parse_inbound(framer.dtmf("#"), SID, MULAW) == DtmfIn("#")
    assert parse_inbound(framer.mark("echo"), SID, MULAW) == MarkIn("echo")
    assert isinstance(parse_inbound(framer.stop(), SID, MULAW), StopIn)


def test_the_framer_counts_like_cloudonix() -> None:
    framer = CallerFramer(STARTS[0])
    assert "sequenceNumber" not in json.loads(framer.connected())
    messages = [json.loads(m) for m in (framer.start(), framer.media(ULAW_FRAME), framer.media(ULAW_FRAME))]
    messages += [json.loads(framer.dtmf("5")), json.loads(framer.mark("m")), json.loads(framer.stop())]
    assert [m["sequenceNumber"] for m in messages] == ["1", "2", "3", "4", "5", "6"]
    assert [m["media"]["chunk"] for m in messages[1:3]] == ["1", "2"]
    assert [m["media"]["timestamp"] for m in messages[1:3]] == ["0", "20"]
    assert messages[-1]["stop"] == {"accountSid": "acme", "callSid": "CA-1", "session": "S-1"}
    assert messages[3]["dtmf"] == {"track": "inbound_track", "digit": "5"}
