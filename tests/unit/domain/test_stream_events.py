import pytest

from domain import close_policy as cp
from domain.stream_events import MediaFormat, check_connected, decode_message, parse_start


def start_event(**start):
    body = {
        "streamSid": "MZ1",
        "callSid": "CA1",
        "session": "S1",
        "accountSid": "acme",
        "from": "+15555550100",
        "to": "+15555550199",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    body.update(start)
    return {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": "MZ1",
        "start": {k: v for k, v in body.items() if v is not ...},
    }


def test_start_gives_the_identifiers():
    start = parse_start(start_event(customParameters={"crm": "42", "none": None}))
    assert (start.stream_sid, start.call_sid, start.session, start.account_sid) == (
        "MZ1",
        "CA1",
        "S1",
        "acme",
    )
    assert start.media_format == MediaFormat("mulaw", 8000, 1)
    assert start.custom_parameters == {"crm": "42"}
    assert start.direction == "inbound"


def test_stream_sid_falls_back_to_the_top_level_one():
    assert parse_start(start_event(streamSid=...)).stream_sid == "MZ1"


def test_session_falls_back_to_call_sid():
    assert parse_start(start_event(session=...)).session == "CA1"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"event": "media"}, cp.ExpectedStartEventError),
        ({"event": "start", "start": "x"}, cp.MissingStartMetadataError),
        ({**start_event(streamSid=...), "streamSid": None}, cp.MissingStreamIdentifiersError),
        (start_event(callSid=...), cp.MissingStreamIdentifiersError),
        (start_event(accountSid=""), cp.MissingStartDomainError),
        (start_event(accountSid=None), cp.MissingStartDomainError),
        (
            start_event(mediaFormat={"encoding": "audio/opus", "sampleRate": 48000}),
            cp.UnsupportedMediaFormatError,
        ),
        (
            start_event(mediaFormat={"encoding": "audio/x-mulaw", "sampleRate": 16000}),
            cp.UnsupportedMediaFormatError,
        ),
    ],
)
def test_bad_start_events_are_4400(message, error):
    with pytest.raises(error) as info:
        parse_start(message)
    assert info.value.close.code == 4400


def test_alaw_is_accepted():
    assert (
        parse_start(
            start_event(mediaFormat={"encoding": "audio/x-alaw", "sampleRate": "8000"})
        ).media_format.encoding
        == "alaw"
    )


def test_connected_and_json_checks():
    check_connected({"event": "connected", "protocol": "Call"})
    with pytest.raises(cp.ExpectedConnectedEventError):
        check_connected({"event": "start"})
    with pytest.raises(cp.InvalidJsonError):
        decode_message("{nope")
    with pytest.raises(cp.InvalidJsonError):
        decode_message("[1, 2]")
