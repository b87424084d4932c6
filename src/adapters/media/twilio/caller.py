"""The provider's side of a Twilio-compatible media stream: what Cloudonix sends (protocol.md §1).

Built from the domain's values, so that what a simulated caller sends is what the server's side of
this package decodes back (`handshake.parse_start`, `inbound.parse_inbound`). Two layers:

- One builder per message, each returning the message as a dict (a test may alter it to send a
  hostile variant; `to_text` gives its JSON text): `connected_message()`, `start_message(start)`,
  `media_message(stream_sid, payload)`, `dtmf_message(stream_sid, digit)`,
  `mark_message(stream_sid, name)`, `stop_message(stream_sid)`. Optional parts (`sequenceNumber`,
  the media counters, the `stop` body) are only sent when given.
- `CallerFramer`: one call's messages as JSON text, counting like Cloudonix: `sequenceNumber` a
  string from "1" (`connected` has none), and per `media` a string `chunk` from "1" and a string
  `timestamp` in milliseconds (20 ms a frame). It is what `agent-stream call` sends:

      framer = CallerFramer(StreamStart(stream_sid, call_sid, session, account_sid,
                                        caller_number=..., called_number=...,
                                        context="inbound", tracks=("inbound",)))
      framer.connected(); framer.start(); framer.media(ulaw_20ms); framer.dtmf("5")
      framer.mark("echo"); framer.stop()
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

from domain.stream_events import StreamStart

__all__ = [
    "FRAME_SECONDS",
    "CallerFramer",
    "connected_message",
    "dtmf_message",
    "mark_message",
    "media_message",
    "start_message",
    "stop_message",
    "to_text",
]

FRAME_SECONDS: Final = 0.02  # one `media` message carries 20 ms of audio


def to_text(message: dict[str, Any]) -> str:
    """A built message as the JSON text sent on the WebSocket."""
    return json.dumps(message)


def connected_message() -> dict[str, Any]:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def start_message(start: StreamStart, *, sequence_number: str | None = "1") -> dict[str, Any]:
    """The `start` message carrying `start`'s identifiers. What is `None` in `start` is not sent
    (no `accountSid`: the server takes the domain from the URL); `tracks`, `mediaFormat` and
    `customParameters` always are. `dropped_parameters` is the server's count, never sent."""
    body: dict[str, Any] = {
        "streamSid": start.stream_sid,
        "callSid": start.call_sid,
        "session": start.session,
    }
    optional = {
        "accountSid": start.account_sid,
        "from": start.caller_number,
        "to": start.called_number,
        "context": start.context,
    }
    body.update((key, value) for key, value in optional.items() if value is not None)
    body["tracks"] = list(start.tracks)
    body["mediaFormat"] = start.media_format.to_dict()
    body["customParameters"] = dict(start.custom_parameters)
    return _message("start", sequence_number, start.stream_sid, body)


def media_message(
    stream_sid: str,
    payload: bytes,
    *,
    sequence_number: str | None = None,
    chunk: int | None = None,
    timestamp_ms: int | None = None,
    track: str | None = "inbound",
) -> dict[str, Any]:
    """A `media` message: `payload` is audio already encoded with the stream's codec (µ-law or
    A-law bytes), sent as base64. The counters are sent as strings, as Cloudonix does."""
    body: dict[str, Any] = {}
    if track is not None:
        body["track"] = track
    if chunk is not None:
        body["chunk"] = str(chunk)
    if timestamp_ms is not None:
        body["timestamp"] = str(timestamp_ms)
    body["payload"] = base64.b64encode(payload).decode("ascii")
    return _message("media", sequence_number, stream_sid, body)


def dtmf_message(
    stream_sid: str, digit: str, *, sequence_number: str | None = None, track: str | None = "inbound_track"
) -> dict[str, Any]:
    body: dict[str, Any] = {"track": track} if track is not None else {}
    body["digit"] = digit
    return _message("dtmf", sequence_number, stream_sid, body)


def mark_message(stream_sid: str, name: str, *, sequence_number: str | None = None) -> dict[str, Any]:
    """A `mark` echoed back to the server: the audio queued before it has played."""
    return _message("mark", sequence_number, stream_sid, {"name": name})


def stop_message(
    stream_sid: str,
    *,
    sequence_number: str | None = None,
    account_sid: str | None = None,
    call_sid: str | None = None,
    session: str | None = None,
) -> dict[str, Any]:
    """The caller hung up. The `stop` body holds the identifiers given (the server reads none)."""
    ids = {"accountSid": account_sid, "callSid": call_sid, "session": session}
    return _message("stop", sequence_number, stream_sid, {k: v for k, v in ids.items() if v is not None})


def _message(event: str, sequence: str | None, stream_sid: str, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"event": event}
    if sequence is not None:
        message["sequenceNumber"] = sequence
    message["streamSid"] = stream_sid
    message[event] = body
    return message


class CallerFramer:
    """One call's messages, Cloudonix -> server, as JSON text with Cloudonix's counters."""

    def __init__(self, start: StreamStart, frame_seconds: float = FRAME_SECONDS) -> None:
        self.ids: Final = start  # the identifiers every message carries
        self._frame_seconds = frame_seconds
        self._sequence = 0
        self._chunk = 0

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def connected(self) -> str:
        return to_text(connected_message())

    def start(self) -> str:
        return to_text(start_message(self.ids, sequence_number=self._next()))

    def media(self, payload: bytes) -> str:
        """One frame of encoded audio (160 µ-law bytes for 20 ms at 8 kHz)."""
        self._chunk += 1
        return to_text(
            media_message(
                self.ids.stream_sid,
                payload,
                sequence_number=self._next(),
                chunk=self._chunk,
                timestamp_ms=round((self._chunk - 1) * self._frame_seconds * 1000),
            )
        )

    def dtmf(self, digit: str) -> str:
        return to_text(dtmf_message(self.ids.stream_sid, digit, sequence_number=self._next()))

    def mark(self, name: str) -> str:
        return to_text(mark_message(self.ids.stream_sid, name, sequence_number=self._next()))

    def stop(self) -> str:
        ids = self.ids
        return to_text(
            stop_message(
                ids.stream_sid,
                sequence_number=self._next(),
                account_sid=ids.account_sid,
                call_sid=ids.call_sid,
                session=ids.session,
            )
        )
