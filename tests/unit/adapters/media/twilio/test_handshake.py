import pytest

from adapters.media.twilio.handshake import check_connected, decode_message, parse_start
from domain import close_policy as cp
from domain.stream_events import MediaFormat


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


# --- hostile input (issue 10) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1000 + "]" * 1000,
        '{"a":' * 5000 + "1" + "}" * 5000,
        '{"a":' * 40 + "1" + "}" * 40,
        '{"n": ' + "9" * 5000 + "}",
    ],
    ids=["list 1000 deep", "object 5000 deep", "object 40 deep", "5000 digits"],
)
def test_deep_or_absurd_json_is_invalid_json(text):
    with pytest.raises(cp.InvalidJsonError):
        decode_message(text)


def test_an_over_long_handshake_message_is_refused_before_parsing():
    with pytest.raises(cp.HandshakeMessageTooLargeError):
        decode_message('{"event": "start", "pad": "' + "x" * 200_000 + '"}')


@pytest.mark.parametrize("field", ["session", "streamSid", "callSid"])
@pytest.mark.parametrize("value", ["\ud800", "S\x00", "S\x07", "S" * 257, 10**300])
def test_a_hostile_identifier_is_refused_never_replaced(field, value):
    with pytest.raises(cp.MissingStreamIdentifiersError):
        parse_start(start_event(**{field: value}))


@pytest.mark.parametrize("value", ["\udfff", "acme\x00", "a" * 257])
def test_a_hostile_account_sid_is_refused(value):
    with pytest.raises(cp.MissingStartDomainError):
        parse_start(start_event(accountSid=value))


@pytest.mark.parametrize(
    ("media_format", "reason"),
    [
        ({"sampleRate": "9" * 5000}, "Unsupported media format: sampleRate 9999999999999999"),
        ({"sampleRate": "\u00b2"}, "Unsupported media format: sampleRate \u00b2"),
        (
            {"sampleRate": "\u0668\u0660\u0660\u0660"},
            "Unsupported media format: sampleRate \u0668\u0660\u0660\u0660",
        ),
        ({"channels": "1" * 5000}, "Unsupported media format: channels 11111111"),
        ({"encoding": "\ud800"}, "Unsupported media format: encoding ?"),
        ({"encoding": "x\x00"}, "Unsupported media format: encoding x?"),
        ({"encoding": ["audio/x-mulaw"]}, "Unsupported media format: encoding list"),
    ],
)
def test_a_hostile_media_format_is_refused_with_a_safe_reason(media_format, reason):
    fields = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1} | media_format
    with pytest.raises(cp.UnsupportedMediaFormatError) as refused:
        parse_start(start_event(mediaFormat=fields))
    assert refused.value.close.reason == reason
    refused.value.close.reason.encode("utf-8")  # always sendable


def test_informative_fields_that_are_not_clean_are_dropped():
    start = parse_start(
        start_event(
            **{"from": "+1\x00", "to": "\ud800", "context": "x" * 300, "tracks": ["in\x00", "inbound", 5]}
        )
    )
    assert (start.caller_number, start.called_number, start.context, start.tracks) == (
        None,
        None,
        None,
        ("inbound",),
    )


def test_custom_parameters_are_cleaned_and_bounded():
    custom = {f"k{i:03}": f"v{i}" for i in range(100)} | {"bad\x00": "x", "nul": "\x00"}
    start = parse_start(start_event(customParameters=custom))
    assert list(start.custom_parameters) == [f"k{i:03}" for i in range(64)]
    assert start.dropped_parameters == 100 - 64 + 2


def test_a_number_relayed_with_its_plus_decoded_to_a_space_gets_it_back():
    start = parse_start(start_event(**{"from": " 15555550100", "to": " 15555550199"}))
    assert (start.caller_number, start.called_number) == ("+15555550100", "+15555550199")


def test_other_numbers_in_start_are_kept_as_given():
    start = parse_start(start_event(**{"from": "15555550100", "to": "alice"}))
    assert (start.caller_number, start.called_number) == ("15555550100", "alice")
