"""The media phase, provider -> server: every inbound event, every bad-frame kind."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from adapters.media.g711 import ALAW, MULAW, PCM16
from adapters.media.twilio.inbound import MAX_MESSAGE_CHARS, BadFrame, load_message, parse_inbound
from domain.stream_events import AudioIn, DtmfIn, MarkIn, StopIn

SID = "MZ0123456789abcdef"
ULAW_FRAME = bytes(range(96, 256))  # 160 codes, 20 ms
PCM_FRAME = np.linspace(-20000, 20000, 160).astype("<i2").tobytes()


def media(payload: str, **extra: Any) -> str:
    """A media message the way Twilio/Cloudonix send it (string counters, top-level streamSid)."""
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": "4",
            "streamSid": SID,
            "media": {"track": "inbound", "chunk": "2", "timestamp": "40", "payload": payload},
            **extra,
        }
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- good inbound events --------------------------------------------------------------------


def test_media_is_decoded_to_pcm() -> None:
    event = parse_inbound(media(b64(ULAW_FRAME)), SID, MULAW)
    assert event == AudioIn(MULAW.decode(ULAW_FRAME))
    assert isinstance(event, AudioIn)
    assert len(event.pcm) == 320


def test_media_with_alaw_codec() -> None:
    assert parse_inbound(media(b64(ULAW_FRAME)), SID, ALAW) == AudioIn(ALAW.decode(ULAW_FRAME))


def test_media_of_any_g711_length_is_fine() -> None:
    for size in (1, 80, 159, 161, 480):
        event = parse_inbound(media(b64(bytes(size))), SID, MULAW)
        assert isinstance(event, AudioIn)
        assert len(event.pcm) == 2 * size


def test_media_without_stream_sid_or_counters_is_accepted() -> None:
    message = json.dumps({"event": "media", "media": {"payload": b64(ULAW_FRAME)}})
    assert parse_inbound(message, SID, MULAW) == AudioIn(MULAW.decode(ULAW_FRAME))


def test_numeric_counters_and_extra_keys_are_accepted() -> None:
    message = json.dumps(
        {
            "event": "media",
            "sequenceNumber": 4,
            "streamSid": SID,
            "media": {"chunk": 2, "timestamp": 40, "payload": b64(ULAW_FRAME), "extra": [1]},
            "unknown": {"x": None},
        }
    )
    assert isinstance(parse_inbound(message, SID, MULAW), AudioIn)


def test_empty_payload_is_skipped_not_an_event() -> None:
    assert parse_inbound(media(""), SID, MULAW) is None


def test_whitespace_around_the_json_is_accepted() -> None:
    message = "  \n" + media(b64(ULAW_FRAME)) + " \r\n\t"
    assert parse_inbound(message, SID, MULAW) == AudioIn(MULAW.decode(ULAW_FRAME))


@pytest.mark.parametrize(
    ("digit", "expected"),
    [("0", "0"), ("9", "9"), ("*", "*"), ("#", "#"), ("A", "A"), ("d", "D"), (5, "5")],
)
def test_dtmf(digit: object, expected: str) -> None:
    message = json.dumps(
        {
            "event": "dtmf",
            "sequenceNumber": "5",
            "streamSid": SID,
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
    )
    assert parse_inbound(message, SID, MULAW) == DtmfIn(expected)


def test_cloudonix_minimal_dtmf() -> None:
    assert parse_inbound('{"event":"dtmf","dtmf":{"digit":"5"}}', SID, MULAW) == DtmfIn("5")


def test_mark_echo() -> None:
    message = json.dumps(
        {"event": "mark", "sequenceNumber": "9", "streamSid": SID, "mark": {"name": "greeting-end"}}
    )
    assert parse_inbound(message, SID, MULAW) == MarkIn("greeting-end")


@pytest.mark.parametrize(
    "stop",
    [
        {
            "event": "stop",
            "sequenceNumber": "5",
            "streamSid": SID,
            "stop": {"accountSid": "AC1", "callSid": "CA1"},
        },
        {"event": "stop", "streamSid": SID, "stop": {"session": "s", "callSid": "c"}},
        {"event": "stop"},
    ],
)
def test_stop(stop: dict[str, Any]) -> None:
    assert parse_inbound(json.dumps(stop), SID, MULAW) == StopIn()


# -- bad frames: every kind ------------------------------------------------------------------


def kind(message: str | bytes, codec: Any = MULAW) -> str:
    result = parse_inbound(message, SID, codec)
    assert isinstance(result, BadFrame), result
    return result.kind


def test_binary_frame() -> None:
    assert kind(media(b64(ULAW_FRAME)).encode()) == "binary"
    assert kind(b"\x00\x01") == "binary"


def test_too_large_is_checked_before_parsing() -> None:
    padding = "x" * MAX_MESSAGE_CHARS
    assert kind('{"event":"media","pad":"' + padding + '"}') == "too_large"
    assert kind("[" * (MAX_MESSAGE_CHARS + 1)) == "too_large"  # never reaches the parser


def test_just_under_the_size_limit_is_parsed() -> None:
    head = '{"event":"stop","pad":"'
    message = head + "x" * (MAX_MESSAGE_CHARS - len(head) - 2) + '"}'
    assert len(message) == MAX_MESSAGE_CHARS
    assert parse_inbound(message, SID, MULAW) == StopIn()


@pytest.mark.parametrize(
    "message",
    [
        "",
        "   ",
        "not json",
        '{"event": "media"',
        '{"event": "stop"} {"event": "stop"}',
        '{"event": "stop"}x',
        "{'event': 'stop'}",
        "[" * 50_000,  # nested too deep for the parser: RecursionError, still a bad frame
    ],
)
def test_invalid_json(message: str) -> None:
    assert kind(message) == "invalid_json"


@pytest.mark.parametrize("message", ["[]", '"media"', "42", "null", "true", '[{"event":"stop"}]'])
def test_not_object(message: str) -> None:
    assert kind(message) == "not_object"


def test_foreign_stream_is_dropped_whatever_the_event() -> None:
    assert kind(media(b64(ULAW_FRAME), streamSid="MZother")) == "foreign_stream"
    assert kind(json.dumps({"event": "stop", "streamSid": "MZother"})) == "foreign_stream"
    assert kind(json.dumps({"event": "dtmf", "streamSid": 17, "dtmf": {"digit": "1"}})) == "foreign_stream"


@pytest.mark.parametrize(
    "message",
    [
        '{"event": "transcription"}',
        '{"event": null}',
        '{"event": 3}',
        '{"event": ["media"]}',
        '{"media": {"payload": "AAAA"}}',
        '{"event": "MEDIA", "media": {"payload": "AAAA"}}',
    ],
)
def test_unknown_event(message: str) -> None:
    assert kind(message) == "unknown_event"


@pytest.mark.parametrize(
    "message",
    [
        '{"event": "connected", "protocol": "Call", "version": "1.0.0"}',
        json.dumps({"event": "start", "streamSid": SID, "start": {"streamSid": SID}}),
    ],
)
def test_handshake_events_again_are_unexpected(message: str) -> None:
    assert kind(message) == "unexpected_event"


@pytest.mark.parametrize(
    "message",
    [
        '{"event": "media"}',
        '{"event": "media", "media": "AAAA"}',
        '{"event": "media", "media": {}}',
        '{"event": "media", "media": {"payload": null}}',
        '{"event": "media", "media": {"payload": 12}}',
        '{"event": "dtmf"}',
        '{"event": "dtmf", "dtmf": "1"}',
        '{"event": "mark"}',
        '{"event": "mark", "mark": {}}',
        '{"event": "mark", "mark": {"name": 3}}',
        '{"event": "mark", "mark": "m"}',
    ],
)
def test_invalid_field(message: str) -> None:
    assert kind(message) == "invalid_field"


@pytest.mark.parametrize(
    "payload",
    [
        "AAA",  # bad length
        "A===",  # bad padding
        "AA AA",  # whitespace
        "AAAA\n",  # newline (strict mode)
        "AA=A",  # padding inside
        "AA*A",  # not in the alphabet
        "AAAé",  # non-ASCII
        "-_-_",  # URL-safe alphabet is not ours
    ],
)
def test_invalid_base64(payload: str) -> None:
    assert kind(media(payload)) == "invalid_base64"


def test_odd_payload_applies_to_16_bit_pcm_only() -> None:
    assert kind(media(b64(b"\x01\x02\x03")), PCM16) == "odd_payload"
    assert parse_inbound(media(b64(b"\x01\x02")), SID, PCM16) == AudioIn(b"\x01\x02")
    assert isinstance(parse_inbound(media(b64(b"\x01\x02\x03")), SID, MULAW), AudioIn)


@pytest.mark.parametrize("digit", ["E", "e", "10", "", " ", "**", None, True, 10, -1, 1.0, ["1"], {"d": 1}])
def test_invalid_dtmf(digit: object) -> None:
    assert kind(json.dumps({"event": "dtmf", "dtmf": {"digit": digit}})) == "invalid_dtmf"


def test_dtmf_without_digit_is_invalid_dtmf() -> None:
    assert kind('{"event": "dtmf", "dtmf": {}}') == "invalid_dtmf"


def test_bad_frame_detail_never_carries_the_payload() -> None:
    secret = "c2VjcmV0"
    result = parse_inbound(media(secret + "A"), SID, MULAW)
    assert isinstance(result, BadFrame)
    assert secret not in result.detail


def test_load_message_gives_an_object_or_a_bad_frame() -> None:
    assert load_message('{"event": "connected"}') == {"event": "connected"}
    assert load_message(b"{}") == BadFrame("binary", "2 bytes")
    assert isinstance(load_message("[1]"), BadFrame)


@pytest.mark.parametrize(
    "message",
    [
        '{"a": 1}',
        ' {"a": [1, 2.5, "x", null, true]} ',
        '{"a": "\\u00e9\\n"}',
        '{"a": NaN}',
        '{"a": 1, "a": 2}',
        '{"event": "media", "media": {"payload": "AAAA"}}\n',
    ],
)
def test_load_message_agrees_with_json_loads(message: str) -> None:
    loaded = load_message(message)
    expected = json.loads(message)
    assert json.dumps(loaded) == json.dumps(expected)


@pytest.mark.parametrize(
    ("media_fields", "position"),
    [
        ({"timestamp": "1240", "chunk": "3"}, 1.24),
        ({"timestamp": 60}, 0.06),
        ({"chunk": "3"}, 0.04),  # chunks count from 1, 20 ms each
        ({"timestamp": "soon", "chunk": "2"}, 0.02),
        ({"timestamp": "-5"}, None),
        ({}, None),
        ({"timestamp": True}, None),
    ],
)
def test_a_recorded_call_gets_each_frame_s_position(media_fields: dict[str, object], position: float | None):
    message = json.dumps(
        {"event": "media", "streamSid": SID, "media": {**media_fields, "payload": b64(ULAW_FRAME)}}
    )
    event = parse_inbound(message, SID, MULAW, positions=True)
    assert isinstance(event, AudioIn)
    assert event.position == (pytest.approx(position) if position is not None else None)
    plain = parse_inbound(message, SID, MULAW)
    assert isinstance(plain, AudioIn) and plain.position is None  # not asked for: not read
