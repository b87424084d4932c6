"""The handshake of a Twilio-compatible media stream (Cloudonix uses it): `connected`, then `start`.

`TwilioHandshakeReader` is the application's `HandshakeReader`: each message is decoded here and
refused with the domain's close-policy error (4400) that says why.

Parsing is strict about what the handshake needs and lenient about everything else
(protocol.md §1: counters may be strings or numbers, `sequenceNumber` is optional).

Hostile input (issue 10): a handshake message over `MAX_HANDSHAKE_CHARS`, nested deeper than
`MAX_JSON_DEPTH` or not JSON at all is refused 4400; so is an identifier (`streamSid`, `callSid`,
`session`, `accountSid`) that holds a NUL, a lone surrogate or a control character or is longer
than `MAX_IDENTIFIER_CHARS`, and a `mediaFormat` number that is not a short decimal. What is only
informative (`from`, `to`, `context`, `tracks`) is dropped when it is not clean. `customParameters`
(free-form, stored in the run's `initial_context`) keeps at most `MAX_CUSTOM_PARAMETERS` clean
entries with keys of at most `MAX_CUSTOM_KEY_CHARS` and values of at most `MAX_CUSTOM_VALUE_CHARS`
characters; the rest is dropped and counted in `StreamStart.dropped_parameters`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from domain.close_policy import (
    ExpectedConnectedEventError,
    ExpectedStartEventError,
    HandshakeMessageTooLargeError,
    InvalidJsonError,
    MissingStartDomainError,
    MissingStartMetadataError,
    MissingStreamIdentifiersError,
    UnsupportedMediaFormatError,
)
from domain.phone_numbers import restore_plus
from domain.stream_events import ENCODINGS, SUPPORTED_SAMPLE_RATES, MediaFormat, StreamStart
from domain.untrusted_text import is_clean, shown

__all__ = [
    "MAX_CUSTOM_KEY_CHARS",
    "MAX_CUSTOM_PARAMETERS",
    "MAX_CUSTOM_VALUE_CHARS",
    "MAX_HANDSHAKE_CHARS",
    "MAX_IDENTIFIER_CHARS",
    "MAX_JSON_DEPTH",
    "MAX_TRACKS",
    "TwilioHandshakeReader",
    "check_connected",
    "decode_message",
    "parse_media_format",
    "parse_start",
]

MAX_HANDSHAKE_CHARS: Final = 128 * 1024  # a real `start` is well under 2 KiB
MAX_JSON_DEPTH: Final = 32  # a real `start` is 3 deep
MAX_IDENTIFIER_CHARS: Final = 256
MAX_CUSTOM_PARAMETERS: Final = 64
MAX_CUSTOM_KEY_CHARS: Final = 64
MAX_CUSTOM_VALUE_CHARS: Final = 1024
MAX_TRACKS: Final = 4


class TwilioHandshakeReader:
    """The `HandshakeReader` of Twilio-compatible media streams: one text (or bytes) message in,
    a value or the 4400 refusal that says why out."""

    def read_connected(self, message: str | bytes) -> None:
        check_connected(decode_message(message))

    def read_start(self, message: str | bytes) -> StreamStart:
        return parse_start(decode_message(message))


def decode_message(text: str | bytes) -> dict[str, Any]:
    """One handshake message -> its JSON object, within `MAX_HANDSHAKE_CHARS` and `MAX_JSON_DEPTH`."""
    if len(text) > MAX_HANDSHAKE_CHARS:
        raise HandshakeMessageTooLargeError(detail=f"{len(text)} characters")
    try:
        message = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # ValueError includes a number of more than 4,300 digits (Python's int limit)
        raise InvalidJsonError(detail=type(exc).__name__) from None
    if not isinstance(message, dict):
        raise InvalidJsonError(detail="not a JSON object")
    if _deeper_than(message, MAX_JSON_DEPTH):
        raise InvalidJsonError(detail=f"nested deeper than {MAX_JSON_DEPTH}")
    return message


def _deeper_than(value: object, limit: int) -> bool:
    """Whether `value` nests lists/objects more than `limit` deep (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def check_connected(message: dict[str, Any]) -> None:
    if message.get("event") != "connected":
        raise ExpectedConnectedEventError(detail=f"got event {str(message.get('event'))[:32]!r}")


def parse_media_format(raw: object) -> MediaFormat:
    """`start.mediaFormat` (absent: µ-law 8 kHz mono); anything this service cannot play is refused."""
    if raw is None:
        return MediaFormat()
    if not isinstance(raw, dict):
        raise UnsupportedMediaFormatError("mediaFormat is not an object")
    encoding_name = raw.get("encoding", "audio/x-mulaw")
    encoding = ENCODINGS.get(encoding_name.lower()) if isinstance(encoding_name, str) else None
    if encoding is None:
        raise UnsupportedMediaFormatError(f"encoding {shown(encoding_name, 40)}")
    rate = _as_int(raw.get("sampleRate", 8000))
    if rate not in SUPPORTED_SAMPLE_RATES:
        raise UnsupportedMediaFormatError(f"sampleRate {shown(raw.get('sampleRate'), 16)}")
    channels = _as_int(raw.get("channels", 1))
    if channels != 1:
        raise UnsupportedMediaFormatError(f"channels {shown(raw.get('channels'), 8)}")
    return MediaFormat(encoding=encoding, sample_rate=rate, channels=channels)


def _as_int(value: object) -> int | None:
    """An integer, or a string of at most 9 ASCII digits (never `int()` of 5,000 digits, nor of
    digits `isdigit` accepts and `int` does not, such as "²")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = value.strip()
        if 0 < len(digits) <= 9 and digits.isascii() and digits.isdigit():
            return int(digits)
    return None


def _text(value: object, limit: int = MAX_IDENTIFIER_CHARS) -> str | None:
    """A non-blank clean string (or an integer as one) of at most `limit` characters, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a JSON integer has at most 4,300 digits: str() accepts it
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if len(text) <= limit and is_clean(text):
            return text
    return None


def _unclean(value: object) -> bool:
    """Present but not usable as an identifier: not blank, and not a clean short text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return False
    return _text(value) is None


def _custom_parameters(raw: object) -> tuple[dict[str, str], int]:
    """The entries of `customParameters` that may be stored, and how many were dropped."""
    if not isinstance(raw, dict):
        return {}, 0
    kept: dict[str, str] = {}
    dropped = 0
    for key, value in raw.items():
        if value is None:
            continue  # an absent value, not a dropped one
        text = _custom_value(value)
        key_ok = 0 < len(key) <= MAX_CUSTOM_KEY_CHARS and is_clean(key)
        if text is None or not key_ok or len(kept) >= MAX_CUSTOM_PARAMETERS:
            dropped += 1
        else:
            kept[key] = text
    return kept, dropped


def _custom_value(value: object) -> str | None:
    """A scalar as text (tab and newlines allowed), or None: nested lists/objects, NUL, lone
    surrogates, other control characters and over-long values are not kept."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bool, int, float)):
        text = str(value)  # a JSON integer has at most 4,300 digits: str() accepts it
    else:
        return None
    if len(text) > MAX_CUSTOM_VALUE_CHARS or not is_clean(text, multiline=True):
        return None
    return text


def parse_start(message: dict[str, Any]) -> StreamStart:
    """Validate the second handshake message; raises the matching 4400 refusal."""
    if message.get("event") != "start":
        raise ExpectedStartEventError(detail=f"got event {str(message.get('event'))[:32]!r}")
    start = message.get("start")
    if not isinstance(start, dict):
        raise MissingStartMetadataError()
    for name, value in (
        ("start.streamSid", start.get("streamSid")),
        ("streamSid", message.get("streamSid")),
        ("start.callSid", start.get("callSid")),
        ("start.session", start.get("session")),
    ):
        if _unclean(value):  # never fall back to another identifier when one is hostile
            raise MissingStreamIdentifiersError(detail=f"{name} is not a clean short text")
    stream_sid = _text(start.get("streamSid")) or _text(message.get("streamSid"))
    call_sid = _text(start.get("callSid"))
    session = _text(start.get("session")) or call_sid
    if not stream_sid or not call_sid or not session:
        raise MissingStreamIdentifiersError()
    account_sid: str | None = None
    if "accountSid" in start:
        account_sid = _text(start.get("accountSid"))
        if account_sid is None:
            raise MissingStartDomainError()
    tracks = start.get("tracks")
    custom, dropped = _custom_parameters(start.get("customParameters"))
    return StreamStart(
        stream_sid=stream_sid,
        call_sid=call_sid,
        session=session,
        account_sid=account_sid,
        media_format=parse_media_format(start.get("mediaFormat")),
        caller_number=_phone(start.get("from")),
        called_number=_phone(start.get("to")),
        context=_text(start.get("context")),
        tracks=tuple(t for t in map(_track, tracks[:MAX_TRACKS]) if t) if isinstance(tracks, list) else (),
        custom_parameters=custom,
        dropped_parameters=dropped,
    )


def _phone(value: object) -> str | None:
    """`from`/`to`: clean text, with the `+` of a number relayed from a URL as `" 1555…"` put back."""
    return _text(restore_plus(value) if isinstance(value, str) else value)


def _track(value: object) -> str | None:
    return _text(value, 32) if isinstance(value, str) else None
