"""The one framer of what the caller sends: Cloudonix -> server messages (Twilio Media Streams
framing, protocol.md §1), as Cloudonix frames them."""

from __future__ import annotations

import base64
import json
from typing import Any

from entrypoints.simulator.caller_audio import FRAME_SECONDS, RATE
from entrypoints.simulator.caller_options import Identity

__all__ = ["CallerFramer"]


class CallerFramer:
    """Cloudonix -> server messages: Twilio framing, string `sequenceNumber` counter."""

    def __init__(self, ids: Identity) -> None:
        self.ids = ids
        self._sequence = 0
        self._chunk = 0

    def _message(self, event: str, body: dict[str, Any]) -> str:
        """One numbered message of the stream: `event`, `sequenceNumber`, `streamSid`, then the
        event's own object under its name."""
        self._sequence += 1
        return json.dumps(
            {
                "event": event,
                "sequenceNumber": str(self._sequence),
                "streamSid": self.ids.stream_sid,
                event: body,
            }
        )

    @staticmethod
    def connected() -> str:
        return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(self) -> str:
        ids = self.ids
        return self._message(
            "start",
            {
                "streamSid": ids.stream_sid,
                "callSid": ids.call_sid,
                "session": ids.session,
                "accountSid": ids.account_sid,
                "from": ids.caller,
                "to": ids.called,
                "context": "inbound",
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
                "customParameters": {},
            },
        )

    def media(self, ulaw: bytes) -> str:
        self._chunk += 1
        return self._message(
            "media",
            {
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str(round((self._chunk - 1) * FRAME_SECONDS * 1000)),
                "payload": base64.b64encode(ulaw).decode("ascii"),
            },
        )

    def dtmf(self, digit: str) -> str:
        return self._message("dtmf", {"track": "inbound_track", "digit": digit})

    def mark(self, name: str) -> str:
        return self._message("mark", {"name": name})

    def stop(self) -> str:
        ids = self.ids
        return self._message(
            "stop", {"accountSid": ids.account_sid, "callSid": ids.call_sid, "session": ids.session}
        )
