"""Real-time outbound pacing of one call's audio, with playback tracking.

The agent queues PCM (any length) and marks; one pacing task per call slices the audio into 20 ms
frames and sends each at its real-time slot from the event loop's monotonic clock, at most
`max_lead` (100 ms) ahead of the moment it will play, so the provider never holds more than a few
frames and a `clear` stops the agent almost at once (protocol.md §2 "Pacing", design.md "Traps").

The schedule: frame k of an utterance plays at `t0 + 20 ms * k` and is sent no earlier than
`t0 + 20 ms * k - max_lead`. `t0` is "now" when audio is queued after the previous audio has
finished playing; audio queued while earlier audio is still playing continues the same schedule, so
there is neither a gap nor extra lead. `clear()` drops everything queued, resets the schedule and has
the task send the provider's `clear` before anything else.

Playback tracking: every sent frame occupies a slot on the *output timeline*, measured in seconds of
audio: `queued_seconds()` is where the next queued audio will start, `played_seconds()` how far the
caller has heard (estimated from the clock when the provider does not echo marks, corrected by
`on_mark_echo` when it does). Audio dropped by `clear()` never enters the timeline: after a clear the
timeline continues from the point where playback was cut, so a pipeline that notes
`queued_seconds()` before queuing an utterance knows how much of it was heard at a barge-in:
`clear()` returns that point.

Cost: audio is encoded with the call's codec when it is queued (one numpy call for a whole chunk),
so a frame costs a slice, a base64 and a string concatenation. There is no task per frame: the one
task per call sleeps on one future + one `loop.call_at` timer per wake-up, and a wake-up sends every
frame that is due. To wake less often it lets the provider's buffer run down to `min_lead` before
topping it up to `max_lead`: with the defaults (60 ms / 100 ms) it wakes every 60 ms and sends three
frames, a third of the event-loop work of one wake-up per frame (an asyncio wake-up costs ~10 µs on
the target machine, more than the frame itself). `min_lead=max_lead` sends one frame per 20 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

from adapters.media.g711 import BytesLike
from adapters.media.twilio.outbound import OutboundFramer

__all__ = ["FRAME_BYTES", "FRAME_SAMPLES", "FRAME_SECONDS", "OutboundPacer"]

SAMPLE_RATE: Final = 8000
FRAME_SECONDS: Final = 0.02
FRAME_SAMPLES: Final = 160
FRAME_BYTES: Final = 2 * FRAME_SAMPLES  # 20 ms of 16-bit PCM at 8 kHz
_MAX_UNECHOED_MARKS: Final = 256
_EPSILON: Final = 1e-7  # seconds: float noise in the accumulated schedule


@dataclass(slots=True, frozen=True)
class _SentMark:
    name: str
    position: float  # output timeline, seconds: where the audio before the mark ends


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class OutboundPacer:
    """Paces one call's outbound audio; independent of the socket type.

    `send(text) -> bool` sends one text message and returns `False` once the socket is gone: the
    pacer then stops quietly, dropping what is queued. `framer` builds the messages and brings the
    call's codec. A frame is sent no earlier than `max_lead` before it plays; the task wakes when the
    provider is down to `min_lead` of audio. Build it inside the running event loop; start it with
    `async with pacer:` (or `start()`/`aclose()`), or await `run()` in the call's task group.
    """

    def __init__(
        self,
        send: Callable[[str], Awaitable[bool]],
        framer: OutboundFramer,
        *,
        max_lead: float = 0.1,
        min_lead: float = 0.06,
    ) -> None:
        if not FRAME_SECONDS <= max_lead <= 2.0:
            raise ValueError("max_lead must be between one frame (0.02 s) and 2 s")
        if not FRAME_SECONDS <= min_lead <= max_lead:
            raise ValueError("min_lead must be between one frame (0.02 s) and max_lead")
        self._send = send
        self._framer = framer
        self._codec = framer.codec
        self._max_lead = max_lead
        self._min_lead = min_lead
        self._frame_size = FRAME_SAMPLES * self._codec.sample_width  # encoded bytes per frame
        self._bytes_per_second = SAMPLE_RATE * self._codec.sample_width
        self._silence = self._codec.silence(FRAME_SAMPLES)
        self._loop = asyncio.get_running_loop()
        self._buf = bytearray()  # queued *encoded* audio not yet sent, from timeline position `_sent`
        self._marks: deque[tuple[int, str]] = deque()  # (encoded byte offset in the segment, name)
        self._segment_start = 0.0  # output timeline position of the current segment's first frame
        self._sent = 0  # encoded bytes sent in the current segment (whole frames)
        self._play_end = self._loop.time()  # loop time at which the sent audio will have played
        self._unheard: deque[_SentMark] = deque()
        self._unechoed: deque[_SentMark] = deque(maxlen=_MAX_UNECHOED_MARKS)
        self._heard_mark: str | None = None
        self._confirmed: tuple[float, float] | None = None  # (timeline position, loop time)
        self._clear_pending = False
        self._closed = False
        self._wake_on_audio = False
        self._waiter: asyncio.Future[None] | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._tap: Callable[[bytes, float], None] | None = None
        self._on_cut: Callable[[float], None] | None = None
        self.frames_sent = 0

    def record(self, tap: Callable[[bytes, float], None], on_cut: Callable[[float], None]) -> None:
        """Hand every frame sent to `tap(frame, plays_at)` (encoded, with the loop time it starts
        playing) and every `clear` to `on_cut(at)`: what a recording of the call needs."""
        self._tap = tap
        self._on_cut = on_cut

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the socket refused a message or the pacer was closed."""
        return self._closed

    def start(self) -> None:
        """Run the pacing task in the background (use `aclose()` to stop it)."""
        if self._task is None:
            self._task = self._loop.create_task(self.run(), name="outbound-pacer")

    async def aclose(self) -> None:
        """Stop at once: nothing more is sent (what is queued is dropped, see `drain`)."""
        self._shut()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- producer side -------------------------------------------------------------------------

    def play(self, pcm: BytesLike) -> None:
        """Queue 16-bit little-endian PCM at 8 kHz, any length (even byte count)."""
        if len(pcm) & 1:
            raise ValueError(f"16-bit PCM must have an even byte count, got {len(pcm)}")
        if self._closed or not pcm:
            return
        self._buf += self._codec.encode(pcm)
        if self._wake_on_audio:
            self._wake()

    def play_encoded(self, payload: BytesLike) -> None:
        """Queue audio already in the call's codec (e.g. a stored µ-law prompt), any whole samples."""
        if len(payload) % self._codec.sample_width:
            raise ValueError(f"{len(payload)} bytes is not a whole number of {self._codec.name} samples")
        if self._closed or not payload:
            return
        self._buf += payload
        if self._wake_on_audio:
            self._wake()

    def mark(self, name: str) -> None:
        """Queue a mark after the audio queued so far; it is sent once that audio has been sent.

        A partial frame before it is completed with silence so the mark falls on a frame boundary.
        """
        if self._closed:
            return
        partial = len(self._buf) % self._frame_size
        if partial:
            self._buf += self._silence[partial:]
        self._marks.append((self._sent + len(self._buf), name))
        if self._wake_on_audio:
            self._wake()

    def clear(self) -> float:
        """Barge-in: drop all queued audio and marks at once, reset the clock and send the
        provider a `clear` ahead of anything else. Returns the timeline position where the caller's
        playback was cut (`played_seconds()` now)."""
        heard = self.played_seconds()
        self._settle_heard(heard)
        self._unheard.clear()
        self._unechoed.clear()  # their echoes, sent at once by the provider on `clear`, mean nothing
        self._confirmed = None
        self._buf = bytearray()
        self._marks.clear()
        self._segment_start = heard
        self._sent = 0
        self._play_end = self._loop.time()
        if self._on_cut is not None:
            self._on_cut(self._play_end)
        if not self._closed:
            self._clear_pending = True
            self._wake()
        return heard

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - a bool, not an exception
        """Wait until everything queued has been sent and has finished playing (before a hang-up
        that must not cut the goodbye). `False` on time-out or when the socket closed first."""
        loop = self._loop
        try:
            async with asyncio.timeout(timeout):
                while not self._closed:
                    if self._buf or self._marks or self._clear_pending:
                        fut = loop.create_future()
                        self._idle_waiters.append(fut)
                        await fut
                        continue
                    remaining = self._play_end - loop.time()
                    if remaining <= 0:
                        return True
                    await asyncio.sleep(remaining)
        except TimeoutError:
            return False
        return False

    # -- playback tracking ---------------------------------------------------------------------

    def queued_seconds(self) -> float:
        """Timeline position where audio queued now would start (end of all queued audio)."""
        return self._segment_start + (self._sent + len(self._buf)) / self._bytes_per_second

    def sent_seconds(self) -> float:
        """Timeline position up to which audio has been handed to the socket."""
        return self._segment_start + self._sent / self._bytes_per_second

    def buffered_seconds(self) -> float:
        """Audio sent but not yet played: what the provider holds now (at most `max_lead` plus the
        frame sent last)."""
        ahead = self._play_end - self._loop.time()
        return ahead if ahead > 0.0 else 0.0

    def played_seconds(self) -> float:
        """Timeline position the caller has heard up to, by now.

        From the clock: everything sent, less what is still buffered at the provider. When the
        provider echoes marks, the last echo is authoritative: playback is at least at that mark and
        at most that mark plus the time elapsed since its echo.
        """
        now = self._loop.time()
        estimate = self._segment_start + self._sent / self._bytes_per_second
        ahead = self._play_end - now
        if ahead > 0.0:
            estimate -= ahead
        confirmed = self._confirmed
        if confirmed is not None:
            position, at = confirmed
            bound = position + (now - at)
            estimate = min(estimate, bound)
            estimate = max(estimate, position)
        return estimate

    def heard_until(self) -> str | None:
        """Name of the last mark the caller has heard (by echo or by the clock), if any."""
        self._settle_heard(self.played_seconds())
        return self._heard_mark

    def on_mark_echo(self, name: str) -> bool:
        """The provider echoed mark `name`: playback has reached it. `False` for a mark that is
        unknown, already echoed, or was cancelled by `clear()`."""
        unechoed = self._unechoed
        for index, sent in enumerate(unechoed):
            if sent.name == name:
                for _ in range(index + 1):  # echoes come in order: earlier marks are settled too
                    unechoed.popleft()
                self._confirmed = (sent.position, self._loop.time())
                self._settle_heard(sent.position)
                return True
        return False

    def _settle_heard(self, position: float) -> None:
        unheard = self._unheard
        while unheard and unheard[0].position <= position:
            self._heard_mark = unheard.popleft().name

    # -- the pacing task -----------------------------------------------------------------------

    async def run(self) -> None:
        """The pacing loop; returns when the pacer is closed or the socket is gone."""
        if self._running:
            raise RuntimeError("the pacer is already running")
        self._running = True
        loop = self._loop
        send = self._send
        framer = self._framer
        frame_size = self._frame_size
        max_lead = self._max_lead + _EPSILON
        min_lead = self._min_lead
        partial_lead = FRAME_SECONDS + _EPSILON
        try:
            while not self._closed:
                self._waiter = None
                self._wake_on_audio = False
                if self._clear_pending:
                    self._clear_pending = False
                    if not await send(framer.clear()):
                        break
                    continue
                marks = self._marks
                if marks and marks[0][0] <= self._sent:
                    name = marks.popleft()[1]
                    sent = _SentMark(name, self._segment_start + self._sent / self._bytes_per_second)
                    self._settle_heard(self.played_seconds())  # keeps `_unheard` short unpolled
                    self._unheard.append(sent)
                    self._unechoed.append(sent)
                    if not await send(framer.mark(name)):
                        break
                    continue
                buf = self._buf
                if not buf:
                    self._notify_idle()
                    await self._sleep(None)
                    continue
                now = loop.time()
                play_at = self._play_end if self._play_end > now else now
                if len(buf) >= frame_size:
                    if play_at - now > max_lead:
                        # Enough is buffered: sleep until the provider is down to `min_lead`.
                        await self._sleep(play_at - min_lead)
                        continue
                    frame = buf[:frame_size]
                    del buf[:frame_size]  # O(1): bytearray drops a prefix by moving its start
                else:
                    # A partial frame is held back until the provider is down to one frame, giving
                    # the producer time to complete it before it is padded with silence.
                    if play_at - now > partial_lead:
                        await self._sleep(play_at - FRAME_SECONDS)
                        continue
                    frame = buf + self._silence[len(buf) :]
                    buf.clear()
                # Account before awaiting: a clear() during the send then sees a consistent state.
                self._sent += frame_size
                self._play_end = play_at + FRAME_SECONDS
                self.frames_sent += 1
                if self._tap is not None:
                    self._tap(bytes(frame), play_at)
                if not await send(framer.media_payload(frame)):
                    break
        finally:
            self._running = False
            self._shut()

    def _sleep(self, deadline: float | None) -> asyncio.Future[None]:
        """A future resolved at `deadline` (loop time) or by `_wake`; with no deadline, only by
        `_wake` (new audio, a mark, a clear, closing). Plain method, not a coroutine: one frame
        object less per wake-up. A late timer on a resolved future is harmless (`_resolve`)."""
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiter = fut
        self._wake_on_audio = deadline is None or len(self._buf) < self._frame_size
        if deadline is not None:
            self._loop.call_at(deadline, _resolve, fut)
        return fut

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _notify_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for fut in waiters:
            _resolve(fut)

    def _shut(self) -> None:
        self._closed = True
        self._buf = bytearray()
        self._marks.clear()
        self._clear_pending = False
        self._notify_idle()
        self._wake()
