"""The media phase of a Twilio-compatible stream, server -> provider (protocol.md §2).

`OutboundFramer` builds the exact shapes of protocol.md §2 (top-level `streamSid`, no
`sequenceNumber`) from string templates prepared once per call, so a 20 ms media frame costs one
encode, one base64 and a string concatenation, with no `json.dumps`.
"""

from __future__ import annotations

import binascii
import json
from typing import Final

from adapters.media.g711 import BytesLike, Codec

__all__ = ["OutboundFramer"]


class OutboundFramer:
    """Server -> provider messages of one stream (protocol.md §2), from templates built once.

    `media` takes 16-bit PCM (normally one 20 ms frame, 320 bytes) and encodes it with the call's
    codec; `media_payload` takes bytes already encoded. Neither accepts an empty frame: the
    reference never sends empty media.
    """

    __slots__ = ("_clear", "_encode", "_mark_head", "_media_head", "codec", "stream_sid")

    def __init__(self, stream_sid: str, codec: Codec) -> None:
        self.stream_sid: Final = stream_sid
        self.codec: Final = codec
        self._encode = codec.encode
        sid = json.dumps(stream_sid)
        self._media_head = '{"event":"media","streamSid":' + sid + ',"media":{"payload":"'
        self._mark_head = '{"event":"mark","streamSid":' + sid + ',"mark":{"name":'
        self._clear = '{"event":"clear","streamSid":' + sid + "}"

    def media(self, pcm: BytesLike) -> str:
        """A `media` message carrying `pcm` (16-bit LE) encoded with the call's codec."""
        if not pcm:
            raise ValueError("an empty media frame is never sent")
        return (
            self._media_head + binascii.b2a_base64(self._encode(pcm), newline=False).decode("ascii") + '"}}'
        )

    def media_payload(self, payload: BytesLike) -> str:
        """A `media` message carrying an already-encoded payload."""
        if not payload:
            raise ValueError("an empty media frame is never sent")
        return self._media_head + binascii.b2a_base64(payload, newline=False).decode("ascii") + '"}}'

    def mark(self, name: str) -> str:
        return self._mark_head + json.dumps(name) + "}}"

    def clear(self) -> str:
        return self._clear
