"""The values of a media stream's events, as the provider's wire format decodes them.

`StreamStart` holds the identifiers of the `start` event (the wire format itself, JSON and its
limits, is `adapters.media.twilio`'s); `AudioIn`, `DtmfIn`, `MarkIn` and `StopIn` are the events of
the media phase, provider-neutral.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# the provider's encoding names -> ours (the run's `logs.stream` shows the provider's)
ENCODINGS = {"audio/x-mulaw": "mulaw", "audio/x-alaw": "alaw"}
SUPPORTED_SAMPLE_RATES = frozenset({8000})  # what this service plays; any other rate is refused
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


@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str = "mulaw"  # "mulaw" or "alaw"
    sample_rate: int = 8000
    channels: int = 1

    def to_dict(self) -> dict[str, Any]:
        name = next(k for k, v in ENCODINGS.items() if v == self.encoding)
        return {"encoding": name, "sampleRate": self.sample_rate, "channels": self.channels}


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
    dropped_parameters: int = 0  # customParameters entries not kept (unclean, over-long, too many)

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


# Events of the media phase, provider-neutral ------------------------------------------------


@dataclass(slots=True)  # not frozen: built 50 times a second per call, and frozen init is slower
class AudioIn:
    pcm: bytes  # 16-bit little-endian PCM, 8 kHz mono
    position: float | None = None  # seconds on the provider's stream clock, when asked for and given


@dataclass(frozen=True, slots=True)
class DtmfIn:
    digit: str


@dataclass(frozen=True, slots=True)
class MarkIn:
    name: str


@dataclass(frozen=True, slots=True)
class StopIn:
    """The caller's side ended the stream (a `stop` event or the socket closing)."""


InboundEvent = AudioIn | DtmfIn | MarkIn | StopIn
