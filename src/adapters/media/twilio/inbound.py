"""The media phase of a Twilio-compatible stream (Cloudonix uses it too), provider -> server.

`parse_inbound` turns one WebSocket message of the media phase (after `connected` and `start`) into
the domain's `AudioIn`/`DtmfIn`/`MarkIn`/`StopIn`, into a `BadFrame` saying why it was refused, or
into `None` for a message that is valid but carries nothing (an empty `media` payload, which Ref
skips too). A bad frame is counted and skipped by the caller; it never ends the call (design.md,
"Traps").

Decisions (see `BadFrame` for every kind):
- Size is checked before parsing: a message of more than `MAX_MESSAGE_CHARS` (64 KiB) characters
  is `too_large`. A binary WebSocket frame is `binary`, whatever its size (the framing is text only).
- `streamSid` is optional on inbound messages; present and different from ours, the message is
  `foreign_stream` and is dropped whatever its event.
- `odd_payload` fires when the decoded payload length is not a multiple of the codec's
  `sample_width`. For the G.711 codecs (1 byte per sample) every length is valid, so it never fires
  for Cloudonix/Twilio µ-law; it fires for the 16-bit `pcm16` passthrough codec only.
- An empty `media.payload` is skipped (`None`), not an error: the provider may send it, Ref skips it.
- DTMF digits are `0-9`, `*`, `#`, `A-D` (lower-case `a-d` accepted and upper-cased; an integer 0-9
  accepted like its string). Anything else is `invalid_dtmf`.
- A `connected` or `start` in the media phase is `unexpected_event`; any other unknown or
  missing `event` is `unknown_event`. A known event whose body is missing or mistyped (no
  `media.payload` string, no `mark.name` string, `dtmf` not an object) is `invalid_field`.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from adapters.media.g711 import Codec
from domain.stream_events import AudioIn, DtmfIn, InboundEvent, MarkIn, StopIn

__all__ = [
    "DTMF_DIGITS",
    "MAX_MESSAGE_CHARS",
    "BadFrame",
    "BadFrameKind",
    "load_message",
    "parse_inbound",
]

MAX_MESSAGE_CHARS: Final = 64 * 1024
FRAME_SECONDS: Final = 0.02  # one `chunk` of a provider's media
DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")

BadFrameKind = Literal[
    "binary",  # a binary WebSocket frame: the framing is UTF-8 text only
    "too_large",  # more than MAX_MESSAGE_CHARS characters (checked before parsing)
    "invalid_json",  # not JSON (or nested deeper than the parser allows)
    "not_object",  # JSON, but not an object
    "foreign_stream",  # a `streamSid` that is not ours
    "unknown_event",  # `event` missing, not a string, or not one we know
    "unexpected_event",  # `connected`/`start` again in the media phase
    "invalid_field",  # a known event whose body is missing or mistyped
    "invalid_base64",  # `media.payload` is not strict base64
    "odd_payload",  # payload length not a multiple of the codec's sample width (16-bit PCM only)
    "invalid_dtmf",  # a digit outside 0-9 * # A-D
]


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A refused inbound message: `kind` for counting, `detail` short and safe to log (never the
    payload or the message itself)."""

    kind: BadFrameKind
    detail: str = ""


_DECODER: Final = json.JSONDecoder()
_JSON_WHITESPACE: Final = " \t\n\r"
_STOP: Final = StopIn()
_DTMF_NORMALISED: Final[dict[Any, str]] = {
    **{d: d for d in DTMF_DIGITS},
    **{d.lower(): d for d in "ABCD"},
    **{n: str(n) for n in range(10)},
}


def load_message(message: str | bytes) -> dict[str, Any] | BadFrame:
    """One text message -> its JSON object, or `binary` / `too_large` / `invalid_json` /
    `not_object`. (The handshake's own loader, `handshake.decode_message`, refuses instead.)"""
    if not isinstance(message, str):
        return BadFrame("binary", f"{len(message)} bytes")
    if len(message) > MAX_MESSAGE_CHARS:
        return BadFrame("too_large", f"{len(message)} characters")
    try:
        # `raw_decode` skips `json.loads`'s two whitespace regex matches (~1 µs of ~3 µs per frame);
        # anything unusual (leading whitespace, an error) goes through `json.loads` for its exact rules.
        obj, end = _DECODER.raw_decode(message)
        if end != len(message) and message[end:].strip(_JSON_WHITESPACE):
            return BadFrame("invalid_json", f"extra data at {end}")
    except ValueError:
        try:
            obj = json.loads(message)
        except (ValueError, RecursionError) as exc:
            return BadFrame("invalid_json", type(exc).__name__)
    except RecursionError:
        return BadFrame("invalid_json", "RecursionError")
    if type(obj) is not dict:
        return BadFrame("not_object", type(obj).__name__)
    return obj


def media_position(media: dict[str, Any]) -> float | None:
    """Seconds from the stream's start of a `media` body: its `timestamp` (ms, a string or a
    number), else its `chunk` (from 1, 20 ms each); `None` when neither is a usable number.
    (`sequenceNumber` is not used: it counts marks and DTMF too, so its gaps are not lost audio.)"""
    for key, scale, first in (("timestamp", 0.001, 0), ("chunk", FRAME_SECONDS, 1)):
        raw = media.get(key)
        if isinstance(raw, str | int) and not isinstance(raw, bool):
            try:
                value = int(raw)
            except ValueError:
                continue
            if first <= value < 10**10:
                return (value - first) * scale
    return None


def parse_inbound(
    message: str | bytes, stream_sid: str, codec: Codec, *, positions: bool = False
) -> InboundEvent | BadFrame | None:
    """One media-phase message -> an inbound event, a `BadFrame`, or `None` (valid, nothing to do:
    an empty media payload). With `positions` (a recorded call), `AudioIn.position` is the frame's
    place on the provider's stream clock: `media.timestamp` (ms), else `media.chunk` (20 ms each)."""
    obj = load_message(message)
    if isinstance(obj, BadFrame):
        return obj
    sid = obj.get("streamSid")
    if sid is not None and sid != stream_sid:
        return BadFrame("foreign_stream")
    event = obj.get("event")
    if event == "media":
        media = obj.get("media")
        if type(media) is not dict:
            return BadFrame("invalid_field", "media")
        payload = media.get("payload")
        if type(payload) is not str:
            return BadFrame("invalid_field", "media.payload")
        if not payload:
            return None
        try:
            raw = binascii.a2b_base64(payload, strict_mode=True)
        except ValueError:  # binascii.Error, or non-ASCII characters
            return BadFrame("invalid_base64", f"{len(payload)} characters")
        if len(raw) % codec.sample_width:
            return BadFrame("odd_payload", f"{len(raw)} bytes")
        if positions:
            return AudioIn(codec.decode(raw), media_position(media))
        return AudioIn(codec.decode(raw))
    if event == "dtmf":
        body = obj.get("dtmf")
        if type(body) is not dict:
            return BadFrame("invalid_field", "dtmf")
        raw_digit = body.get("digit")
        digit = _DTMF_NORMALISED.get(raw_digit) if type(raw_digit) in (str, int) else None
        if digit is None:
            return BadFrame("invalid_dtmf")
        return DtmfIn(digit)
    if event == "mark":
        body = obj.get("mark")
        name = body.get("name") if type(body) is dict else None
        if type(name) is not str:
            return BadFrame("invalid_field", "mark.name")
        return MarkIn(name)
    if event == "stop":
        return _STOP
    if event in ("connected", "start"):
        return BadFrame("unexpected_event", event)
    if isinstance(event, str):
        name = event[:32]
        return BadFrame("unknown_event", name if name.isprintable() else "non-printable")
    return BadFrame("unknown_event", type(event).__name__)
