"""The `connected` and `start` events of Twilio-compatible media streams (Cloudonix uses them).

Parsing is strict about what the handshake needs and lenient about everything else
(protocol.md §1: counters may be strings or numbers, `sequenceNumber` is optional).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from domain.close_policy import (
    ExpectedConnectedEventError,
    ExpectedStartEventError,
    InvalidJsonError,
    MissingStartDomainError,
    MissingStartMetadataError,
    MissingStreamIdentifiersError,
    UnsupportedMediaFormatError,
)

ENCODINGS = {"audio/x-mulaw": "mulaw", "audio/x-alaw": "alaw"}
SUPPORTED_SAMPLE_RATES = frozenset({8000})
# initial_context keys a provider's customParameters may never overwrite
RESERVED_CONTEXT_KEYS = frozenset(
    {
        "caller_number",
        "called_number",
        "direction",
        "provider",
        "cloudonix_context",
        "runtime_configuration",
        "call_id",
        "domain",
    }
)


def decode_message(text: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJsonError(detail=type(exc).__name__) from None
    if not isinstance(message, dict):
        raise InvalidJsonError(detail="not a JSON object")
    return message


def check_connected(message: dict[str, Any]) -> None:
    if message.get("event") != "connected":
        raise ExpectedConnectedEventError(detail=f"got event {str(message.get('event'))[:32]!r}")


@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str = "mulaw"  # "mulaw" or "alaw"
    sample_rate: int = 8000
    channels: int = 1

    @classmethod
    def parse(cls, raw: object) -> MediaFormat:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise UnsupportedMediaFormatError("mediaFormat is not an object")
        encoding_name = raw.get("encoding", "audio/x-mulaw")
        encoding = ENCODINGS.get(str(encoding_name).lower())
        if encoding is None:
            raise UnsupportedMediaFormatError(f"encoding {str(encoding_name)[:40]}")
        rate = _as_int(raw.get("sampleRate", 8000))
        if rate not in SUPPORTED_SAMPLE_RATES:
            raise UnsupportedMediaFormatError(f"sampleRate {str(raw.get('sampleRate'))[:16]}")
        channels = _as_int(raw.get("channels", 1))
        if channels != 1:
            raise UnsupportedMediaFormatError(f"channels {str(raw.get('channels'))[:8]}")
        return cls(encoding=encoding, sample_rate=rate, channels=channels)

    def to_dict(self) -> dict[str, Any]:
        name = next(k for k, v in ENCODINGS.items() if v == self.encoding)
        return {"encoding": name, "sampleRate": self.sample_rate, "channels": self.channels}


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class StreamStart:
    """The identifiers of the `start` event. `session` is the Cloudonix REST key for the call."""

    stream_sid: str
    call_sid: str
    session: str
    account_sid: str | None
    media_format: MediaFormat = field(default_factory=MediaFormat)
    caller_number: str | None = None
    called_number: str | None = None
    context: str | None = None
    tracks: tuple[str, ...] = ()
    custom_parameters: dict[str, str] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return "outbound" if self.context == "outbound-api" else "inbound"

    def to_log(self) -> dict[str, Any]:
        """The identifiers recorded on the run's `logs.stream` (no phone numbers)."""
        return {
            "streamSid": self.stream_sid,
            "callSid": self.call_sid,
            "session": self.session,
            "accountSid": self.account_sid,
            "context": self.context,
            "tracks": list(self.tracks),
            "mediaFormat": self.media_format.to_dict(),
        }


def parse_start(message: dict[str, Any]) -> StreamStart:
    """Validate the second handshake message; raises the matching 4400 refusal."""
    if message.get("event") != "start":
        raise ExpectedStartEventError(detail=f"got event {str(message.get('event'))[:32]!r}")
    start = message.get("start")
    if not isinstance(start, dict):
        raise MissingStartMetadataError()
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
    custom = start.get("customParameters")
    return StreamStart(
        stream_sid=stream_sid,
        call_sid=call_sid,
        session=session,
        account_sid=account_sid,
        media_format=MediaFormat.parse(start.get("mediaFormat")),
        caller_number=_text(start.get("from")),
        called_number=_text(start.get("to")),
        context=_text(start.get("context")),
        tracks=tuple(str(t) for t in tracks) if isinstance(tracks, list) else (),
        custom_parameters=(
            {str(k): str(v) for k, v in custom.items() if v is not None} if isinstance(custom, dict) else {}
        ),
    )
