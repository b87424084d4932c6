"""The media phase, server -> provider: exact outbound shapes (protocol.md §2)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from adapters.media.g711 import ALAW, MULAW
from adapters.media.twilio.inbound import parse_inbound
from adapters.media.twilio.outbound import OutboundFramer
from domain.stream_events import AudioIn

SID = "MZ0123456789abcdef"
ULAW_FRAME = bytes(range(96, 256))  # 160 codes, 20 ms
PCM_FRAME = np.linspace(-20000, 20000, 160).astype("<i2").tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_outbound_media_shape() -> None:
    framer = OutboundFramer(SID, MULAW)
    text = framer.media(PCM_FRAME)
    assert json.loads(text) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": b64(MULAW.encode(PCM_FRAME))},
    }
    assert "sequenceNumber" not in text
    assert " " not in text


def test_outbound_media_payload_shape() -> None:
    framer = OutboundFramer(SID, MULAW)
    assert json.loads(framer.media_payload(ULAW_FRAME))["media"] == {"payload": b64(ULAW_FRAME)}


def test_outbound_mark_and_clear_shapes() -> None:
    framer = OutboundFramer(SID, MULAW)
    assert json.loads(framer.mark("greeting-end")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "greeting-end"},
    }
    assert json.loads(framer.clear()) == {"event": "clear", "streamSid": SID}


def test_outbound_escapes_stream_sid_and_mark_names() -> None:
    sid = 'we"ird\\sid\u00e9'
    framer = OutboundFramer(sid, ALAW)
    assert json.loads(framer.media(PCM_FRAME))["streamSid"] == sid
    assert json.loads(framer.mark('say "hi"\n'))["mark"]["name"] == 'say "hi"\n'
    assert json.loads(framer.clear())["streamSid"] == sid


def test_outbound_refuses_empty_and_odd_frames() -> None:
    framer = OutboundFramer(SID, MULAW)
    with pytest.raises(ValueError, match="empty"):
        framer.media(b"")
    with pytest.raises(ValueError, match="empty"):
        framer.media_payload(b"")
    with pytest.raises(ValueError, match="even byte count"):
        framer.media(b"\x00\x00\x00")


def test_outbound_media_parses_back_as_inbound_audio() -> None:
    framer = OutboundFramer(SID, MULAW)
    echoed = parse_inbound(framer.media(PCM_FRAME), SID, MULAW)
    assert echoed == AudioIn(MULAW.decode(MULAW.encode(PCM_FRAME)))
