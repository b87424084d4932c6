"""What the caller is told (`agent-stream call`'s options), who it says it is in `start`, and
the stream URL masked wherever it is shown: the agent UUID in it authorises the call."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit, urlunsplit

from domain.stream_events import StreamStart

DEFAULT_SECONDS: Final = 24.0
DEFAULT_FROM: Final = "+15555550100"
DEFAULT_TO: Final = "+15555550199"

__all__ = [
    "DEFAULT_SECONDS",
    "CallOptions",
    "CallUsageError",
    "Identity",
    "mask_text",
    "mask_url",
]


class CallUsageError(ValueError):
    """The command's input cannot be used (bad URL, unreadable WAV): said in one line."""


_UUIDISH = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def _mask(secret: str) -> str:
    return secret[:4] + "****" if len(secret) > 8 else "****"


def mask_url(url: str) -> str:
    """The URL with the agent UUID (and anything UUID-like) masked: it authorises the stream."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if "agent-stream" in segments and segments[-1]:
        segments[-1] = _mask(segments[-1])
    path = _UUIDISH.sub(lambda m: _mask(m.group(0)), "/".join(segments))
    query = _UUIDISH.sub(lambda m: _mask(m.group(0)), parts.query)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def _first(query: dict[str, list[str]], *names: str) -> str | None:
    for name in names:
        values = query.get(name)
        if values and values[0].strip():
            return values[0].strip()
    return None


@dataclass(frozen=True, slots=True)
class CallOptions:
    url: str
    wav: Path | None = None
    record: Path | None = None
    dtmf: str = ""
    seconds: float = DEFAULT_SECONDS
    account_sid: str | None = None

    def check(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise CallUsageError(
                "--url must be a WebSocket URL (ws:// or wss://), "
                "e.g. ws://127.0.0.1:8000/api/v1/agent-stream/AGENT_UUID?provider=cloudonix&Domain=demo"
            )
        if not self.seconds > 0:
            raise CallUsageError("--seconds must be a positive number")
        bad = sorted({d for d in self.dtmf.upper() if d not in "0123456789*#ABCD"})
        if bad:
            raise CallUsageError(f"--dtmf takes 0-9, *, #, A-D (not {''.join(bad)!r})")
        if self.record is not None and not self.record.parent.is_dir():
            raise CallUsageError(f"--record: no such directory {self.record.parent}")


@dataclass(frozen=True, slots=True)
class Identity:
    """The identifiers of the simulated call, as Cloudonix would fill `start`."""

    stream_sid: str
    call_sid: str
    session: str
    account_sid: str
    caller: str
    called: str

    @classmethod
    def for_call(cls, options: CallOptions) -> Identity:
        query = parse_qs(urlsplit(options.url).query)
        return cls(
            stream_sid="MZ" + secrets.token_hex(16),
            call_sid=_first(query, "callId", "CallSid") or "CA" + secrets.token_hex(16),
            session=secrets.token_hex(16),
            account_sid=options.account_sid or _first(query, "Domain") or "demo",
            caller=_first(query, "from") or DEFAULT_FROM,
            called=_first(query, "to") or DEFAULT_TO,
        )

    def stream_start(self) -> StreamStart:
        """The `start` event's values, as the shared codec frames them."""
        return StreamStart(
            self.stream_sid,
            self.call_sid,
            self.session,
            self.account_sid,
            caller_number=self.caller,
            called_number=self.called,
            context="inbound",
            tracks=("inbound",),
        )


def mask_text(text: str) -> str:
    """Any UUID-like run in `text` masked (library messages may quote the URL)."""
    return _UUIDISH.sub(lambda m: _mask(m.group(0)), text)
