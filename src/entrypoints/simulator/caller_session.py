"""`agent-stream call`: the Cloudonix side of a call, over a real WebSocket (protocol.md §1-§2).

It frames the call exactly as Cloudonix does (Twilio Media Streams framing): `connected`, `start`
(a fresh session token, `accountSid` = the domain, µ-law 8 kHz mono), then one `media` message of
20 ms every 20 ms on a drift-free clock for the whole call (the caller's speech, else µ-law silence),
`dtmf` digits, and finally `stop`. What the agent sends back is what the caller hears:

- `media` is decoded and recorded on the caller's timeline: audio that arrives while earlier audio is
  still playing is queued behind it, and a gap in the stream becomes silence, so the WAV sounds like
  the caller's ear (every byte the agent sent is kept, in arrival order, `clear` included);
- `mark` is echoed back when the audio queued before it would have finished playing, and at once
  for every pending mark when a `clear` arrives (what Twilio does; protocol.md §1.5);

The caller takes turns like a person: it waits for the agent's greeting to end (0.8 s of quiet after
the agent spoke; 3 s if the agent says nothing; 15 s at most), says its phrase (the WAV, or the
built-in test phrase), waits for the echo to end, then presses the `--dtmf` digits one a second,
and hangs up (`stop`) after `--seconds`, or earlier when the agent closes the socket. A caller does
not hang up on the agent mid-sentence: when the agent is still talking at `--seconds` (say, the
greeting replayed by `*`), the call goes on until it is quiet (at most 30 s more).

The last line says how the call ended, from what the server did: "you hung up" (the caller's `stop`,
or `#`: the agent hung up at the caller's request), "hung up by the agent", "hung up by an operator",
"transferred to ***0123" (the close reason carries the masked destination), or the close code.

The stream URL authorises the call, so it is never printed in full: the agent UUID is masked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from adapters.media.g711 import MULAW
from adapters.media.twilio.caller import CallerFramer
from entrypoints.simulator.caller_audio import FRAME_SAMPLES, FRAME_SECONDS, RATE, ULAW_SILENCE
from entrypoints.simulator.caller_console import Console, describe_ending
from entrypoints.simulator.caller_ear import EarRecording, MarkEchoes
from entrypoints.simulator.caller_options import CallOptions, Identity, mask_url
from entrypoints.simulator.caller_script import EPSILON, CallerScript, Phase

MAX_MESSAGE_BYTES: Final = 1 << 20
MAX_EXTENSION_SECONDS: Final = 30.0  # past --seconds, the call waits at most this long for the agent
# websockets >= 15 honours HTTP(S)_PROXY and takes `proxy=`; uvicorn[standard] allows >= 13
_CONNECT_TAKES_PROXY: Final = "proxy" in inspect.signature(connect.__init__).parameters

__all__ = ["CallOutcome", "CallSession"]


@dataclass
class CallOutcome:
    close_code: int | None
    close_reason: str
    closed_by_agent: bool
    stopped_by_caller: bool

    @property
    def exit_status(self) -> int:
        if self.closed_by_agent:
            return 0 if self.close_code == 1000 else 1
        return 0 if self.stopped_by_caller and self.close_code in (1000, None) else 1


class CallSession:
    """One call: a sender on the 20 ms clock (media, marks, digits, stop) and a receiver."""

    def __init__(self, options: CallOptions, speech_ulaw: bytes, speech_name: str, console: Console) -> None:
        self.options = options
        self.ids = Identity.for_call(options)
        self.framer = CallerFramer(self.ids.stream_start())
        self.speech = speech_ulaw
        self.speech_name = speech_name
        self.console = console
        self.ear = EarRecording()
        self.marks = MarkEchoes()
        self.script = CallerScript(speech_seconds=len(speech_ulaw) / RATE, digits=options.dtmf.upper())
        self.hangup = asyncio.Event()  # Ctrl-C
        self._t0 = 0.0
        self._start_sent_at = 0.0
        self._first_media_at: float | None = None
        self._counts = {"media": 0, "mark": 0, "clear": 0, "other": 0}
        self._echo_now: list[str] = []
        self._extended = False  # the call went past --seconds while the agent spoke
        self._voiced_until: float | None = None  # as `ear.voiced_until`, but cut where a `clear` cut

    def _now(self) -> float:
        return asyncio.get_running_loop().time() - self._t0

    async def run(self) -> CallOutcome:
        url = self.options.url
        host = urlsplit(url).hostname or ""
        options: dict[str, Any] = {}
        if host in ("127.0.0.1", "localhost", "::1") and _CONNECT_TAKES_PROXY:
            options["proxy"] = None  # never send loopback traffic through an HTTP(S)_PROXY
        self.console.event(0.0, f"calling {mask_url(url)}")
        async with connect(
            url,
            compression=None,
            open_timeout=10,
            close_timeout=5,
            max_size=MAX_MESSAGE_BYTES,
            ping_interval=None,
            **options,
            user_agent_header="agent-stream-call",
        ) as ws:
            self._t0 = asyncio.get_running_loop().time()
            receiver = asyncio.create_task(self._receive(ws), name="call-receiver")
            stopped = False
            try:
                stopped = await self._send(ws, receiver)
            finally:
                if not receiver.done():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(receiver), 2.0)
                if not receiver.done():
                    await ws.close(1000, "caller hung up")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(receiver, 5.0)
                if not receiver.done():
                    receiver.cancel()
        end = self._now()
        self.ear.finish(end)
        protocol = ws.protocol
        by_agent = protocol.close_rcvd is not None and (
            bool(protocol.close_rcvd_then_sent) or protocol.close_sent is None
        )
        code = ws.close_code
        reason = ws.close_reason or ""
        if by_agent:
            who = "closed by the agent"
        elif protocol.close_sent is not None:
            who = "closed by the caller"
        else:
            who = "connection lost"
        self.console.done()
        self.console.event(end, f"{who}: code {code}" + (f", reason {reason!r}" if reason else ""))
        self.console.event(end, "call ended: " + describe_ending(code, reason, stopped, by_agent))
        return CallOutcome(code, reason, by_agent, stopped)

    async def _send(self, ws: ClientConnection, receiver: asyncio.Task[None]) -> bool:
        """The 20 ms clock. Returns True when the caller sent `stop`."""
        loop = asyncio.get_running_loop()
        try:
            await ws.send(self.framer.connected())
            self.console.event(self._now(), "connected sent")
            await ws.send(self.framer.start())
            self._start_sent_at = self._now()
            self.console.event(
                self._start_sent_at,
                f"start sent (accountSid {self.ids.account_sid}, session {self.ids.session[:8]}..., "
                "audio/x-mulaw 8000 Hz mono)",
            )
            origin = loop.time()
            cursor = 0
            frame = 0
            while not receiver.done():
                delay = origin + frame * FRAME_SECONDS - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if receiver.done():
                    break
                now = self._now()
                if self.hangup.is_set() or (now >= self.options.seconds and not self._agent_talking(now)):
                    await ws.send(self.framer.stop())
                    why = "Ctrl-C" if self.hangup.is_set() else "after --seconds"
                    if self._extended and not self.hangup.is_set():
                        why += ", once the agent was quiet"
                    self.console.event(now, f"stop sent ({why})")
                    return True
                was = self.script.phase
                digits = self.script.step(now, self.ear.voiced_until)
                if self.script.phase is not was:
                    self._announce(now, was)
                if self.script.phase is Phase.SPEAKING and cursor < len(self.speech):
                    chunk = self.speech[cursor : cursor + FRAME_SAMPLES]
                    cursor += FRAME_SAMPLES
                    chunk += ULAW_SILENCE * (FRAME_SAMPLES - len(chunk))
                else:
                    chunk = ULAW_SILENCE * FRAME_SAMPLES
                await ws.send(self.framer.media(chunk))
                for name in [*self._echo_now, *self.marks.due(now)]:
                    await ws.send(self.framer.mark(name))
                    self.console.event(now, f"mark {name!r} echoed")
                self._echo_now.clear()
                for digit in digits:
                    await ws.send(self.framer.dtmf(digit))
                    self.console.event(now, f"dtmf {digit} sent")
                self.console.progress(
                    now, self.ear.received_seconds, self.ear.level_dbfs(now), self.script.phase
                )
                frame += 1
        except ConnectionClosed:
            pass
        return False

    def _agent_talking(self, now: float) -> bool:
        """Past `--seconds`: True while the agent is still speaking (not yet quiet for the
        script's pause), for at most `MAX_EXTENSION_SECONDS`; announced once."""
        voiced_until = self._voiced_until
        talking = voiced_until is not None and now - voiced_until < self.script.quiet - EPSILON
        if not talking or now >= self.options.seconds + MAX_EXTENSION_SECONDS:
            return False
        if not self._extended:
            self._extended = True
            self.console.event(now, "the agent is still speaking: hanging up once it is quiet")
        return True

    def _announce(self, now: float, was: Phase) -> None:
        phase = self.script.phase
        if was is Phase.WAITING:
            self.console.event(now, f"speaking: {self.speech_name} ({len(self.speech) / RATE:.1f} s)")
        if was in (Phase.WAITING, Phase.SPEAKING) and phase not in (Phase.WAITING, Phase.SPEAKING):
            self.console.event(now, "done speaking; listening")

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                self._handle(message)
        except ConnectionClosed:
            pass

    def _handle(self, message: str | bytes) -> None:
        now = self._now()
        try:
            obj = json.loads(message)
        except ValueError:
            obj = None
        event = obj.get("event") if isinstance(obj, dict) else None
        if event == "media":
            payload = obj.get("media", {}).get("payload", "") if isinstance(obj, dict) else ""
            try:
                ulaw = base64.b64decode(payload, validate=True)
            except ValueError:
                self._other(now, "media with a payload that is not base64")
                return
            if not ulaw:
                return
            self._counts["media"] += 1
            if self._first_media_at is None:
                self._first_media_at = now
                ms = (now - self._start_sent_at) * 1000
                self.console.event(now, f"first media received, {ms:.0f} ms after start")
            before = self.ear.voiced_until
            self.ear.add(now, MULAW.decode(ulaw))
            if self.ear.voiced_until != before:
                self._voiced_until = self.ear.voiced_until
            self.marks.audio(now, len(ulaw) / RATE)
        elif event == "mark":
            mark = obj.get("mark") if isinstance(obj, dict) else None
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                self._other(now, "mark without a name")
                return
            self._counts["mark"] += 1
            self.marks.mark(now, name)
            self.console.event(now, f"mark {name!r} received")
        elif event == "clear":
            self._counts["clear"] += 1
            pending = self.marks.clear(now)
            if self._voiced_until is not None and self._voiced_until > now:
                self._voiced_until = now  # what was cut is not heard: the agent stopped talking now
            self._echo_now.extend(pending)
            self.console.event(
                now, "clear received" + (f" ({len(pending)} marks pending)" if pending else "")
            )
        else:
            self._other(now, f"unexpected message (event {str(event)[:24]!r})")

    def _other(self, now: float, text: str) -> None:
        self._counts["other"] += 1
        if self._counts["other"] <= 5:
            self.console.event(now, text)

    def summary(self) -> str:
        c = self._counts
        return (
            f"received {c['media']} media messages ({self.ear.received_seconds:.1f} s of audio), "
            f"{c['mark']} marks, {c['clear']} clears" + (f", {c['other']} other" if c["other"] else "")
        )
