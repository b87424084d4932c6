"""Stereo recordings written as calls go, by one writer thread for all the calls of the process.

The call's hot path only appends to a per-call `deque` (`TimelineRecording.caller`/`agent`/`cut`:
no encoding, no I/O, nothing awaited). Every `INTERVAL` the writer thread takes what each call
handed over and places it on the call's timeline, then writes what is older than `LAG` to the
call's file: a crash (kill -9) loses at most the last `LAG + INTERVAL` seconds, and the header's
sizes, zero until the file is closed, are repaired at the next start (`wav.repair`).

The timeline (time 0 = the provider's stream start):
- caller audio sits at its provider `position` (`media.timestamp`, else a frame count), not at its
  arrival: frames a busy event loop read late, or that waited while the session was validated,
  keep their place. The provider's clock is tied to ours by the earliest `arrival - position`
  seen (the frame with the least delay);
- agent audio sits where the pacer said it starts playing (`plays_at`, our clock), and a `clear`
  (`cut`) removes what was sent to play after it: the provider discarded it, nobody heard it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from adapters.media.g711 import Codec, codec_for
from adapters.recording.wav import FRAME_BYTES, fix_sizes, header
from domain.recording import SAMPLE_RATE

log = logging.getLogger(__name__)

INTERVAL: Final = 0.5  # seconds between two passes of the writer thread
LAG: Final = 1.5  # seconds: audio this recent may still be placed (late caller frames, a `clear`)
MAX_PENDING: Final = 2000  # hand-overs per call between two passes (~10 s of audio); more are dropped
MAX_DRIFT: Final = 10.0  # seconds: a caller position this far from its arrival is not believed
PAUSE: Final = 0.25  # seconds: caller audio without positions arriving this late follows a pause

_CALLER, _AGENT, _CUT = 0, 1, 2
Item = tuple[int, bytes, float, float]  # (kind, audio, time or position, arrival)
Segment = tuple[float, npt.NDArray[np.int16]]  # (where it starts, samples)
_HALF_SAMPLE: Final = 0.5 / SAMPLE_RATE


class _Run:
    """Frames that play one after the other, gathered until one does not follow."""

    __slots__ = ("at", "chunks", "next")

    def __init__(self) -> None:
        self.at = 0.0  # where the first frame starts
        self.next = 0.0  # where the next frame would follow
        self.chunks: list[bytes] = []

    def follows(self, at: float) -> bool:
        return abs(at - self.next) < _HALF_SAMPLE

    def add(self, audio: bytes, at: float, seconds: float) -> None:
        if not self.chunks:
            self.at = at
        self.chunks.append(audio)
        self.next = at + seconds

    def flush(self, decode: Callable[[bytes], bytes]) -> list[Segment]:
        """The gathered frames as one segment of 16-bit samples (none when nothing is gathered)."""
        if not self.chunks:
            return []
        audio = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        return [(self.at, np.frombuffer(decode(audio), dtype="<i2"))]


class TimelineRecording:
    """One call's recording (the `CallRecording` port). Hot-path methods append only; the rest
    runs on the writer thread, except `finish`."""

    def __init__(self, writer: RecordingWriter, path: Path, opened_at: float) -> None:
        self.path = path
        self.dropped = 0
        self._writer = writer
        self._inbox: deque[Item] = deque()
        self._codec: Codec = codec_for("pcm16")
        # the writer thread's state
        self._file: BinaryIO | None = None
        self._origin = opened_at  # our clock at the provider's stream time 0
        self._origin_known = False
        self._callers: list[Segment] = []  # (position, samples)
        self._agents: list[Segment] = []  # (plays_at, samples)
        self._caller_run = _Run()  # frames that follow each other, joined before they are placed
        self._agent_run = _Run()
        self._written = 0  # samples (per channel) written
        self._finishing: concurrent.futures.Future[int] | None = None

    # -- the call's hot path --------------------------------------------------------------------

    def agent_encoding(self, encoding: str) -> None:
        self._codec = codec_for(encoding)

    def caller(self, pcm: bytes, position: float | None, arrival: float) -> None:
        if len(self._inbox) < MAX_PENDING:
            self._inbox.append((_CALLER, pcm, -1.0 if position is None else position, arrival))
        else:
            self.dropped += 1

    def agent(self, frame: bytes, plays_at: float) -> None:
        if len(self._inbox) < MAX_PENDING:
            self._inbox.append((_AGENT, frame, plays_at, 0.0))
        else:
            self.dropped += 1

    def cut(self, at: float) -> None:
        self._inbox.append((_CUT, b"", at, 0.0))  # never dropped: it only removes audio

    async def finish(self) -> int:
        """Place and write everything, fix the header, close the file; returns its data bytes."""
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._finishing = future
        self._writer.wake()
        return await asyncio.wrap_future(future)

    # -- the writer thread ----------------------------------------------------------------------

    @property
    def finishing(self) -> bool:
        return self._finishing is not None

    def pump(self, now: float) -> bool:
        """One pass: place what was handed over, write what is older than `LAG`; when finishing,
        write everything and close. Returns `False` once the recording is closed."""
        finishing = self._finishing
        try:
            self._take()
            if finishing is None:
                self._write_until((now - LAG - self._origin) * SAMPLE_RATE)
                return True
            self._write_until(None)
            data_bytes = self._written * FRAME_BYTES
            file = self._open()
            fix_sizes(file, data_bytes)
            file.close()
        except Exception as exc:  # a full disk must not end the call; the file is repaired later
            log.exception("recording_write_failed", extra={"path": self.path.name})
            if finishing is not None and not finishing.done():
                finishing.set_exception(exc)
            return finishing is None
        finishing.set_result(data_bytes)
        return False

    def _open(self) -> BinaryIO:
        if self._file is None:
            self._file = self.path.open("wb")
            self._file.write(header(0))
        return self._file

    def _take(self) -> None:
        """Place what the call handed over. Frames that follow each other without a gap (nearly
        all of them) are joined into one segment: the write then copies a few arrays per pass,
        not one per 20 ms frame."""
        inbox = self._inbox
        agent_seconds = 1.0 / (self._codec.sample_width * SAMPLE_RATE)  # per byte of a frame
        while inbox:
            kind, audio, at, arrival = inbox.popleft()
            if kind == _CALLER:
                self._place_caller(audio, at, arrival)
            elif kind == _AGENT:
                run = self._agent_run
                if not run.follows(at):
                    self._agents += run.flush(self._codec.decode)
                run.add(audio, at, len(audio) * agent_seconds)
            else:
                self._agents += self._agent_run.flush(self._codec.decode)
                self._cut(at)
        self._callers += self._caller_run.flush(bytes)
        self._agents += self._agent_run.flush(self._codec.decode)

    def _place_caller(self, pcm: bytes, position: float, arrival: float) -> None:
        run = self._caller_run
        since_origin = arrival - self._origin
        if position < 0.0:  # no position from the provider: after the previous frame, unless the
            position = run.next  # provider paused sending (then where it arrived)
            if self._origin_known and since_origin - position > PAUSE:
                position = since_origin
        elif self._origin_known and abs(since_origin - position) > MAX_DRIFT:
            position = run.next  # a position we cannot believe: after the previous frame
        if not self._origin_known:
            self._origin, self._origin_known = arrival - position, True
        else:  # the frame with the least delay ties the provider's clock to ours
            self._origin = min(self._origin, arrival - position)
        if not run.follows(position):
            self._callers += run.flush(bytes)
        run.add(pcm, position, len(pcm) / (2 * SAMPLE_RATE))

    def _cut(self, at: float) -> None:
        kept: list[Segment] = []
        for plays_at, samples in self._agents:
            heard = round((at - plays_at) * SAMPLE_RATE)
            if heard >= len(samples):
                kept.append((plays_at, samples))
            elif heard > 0:
                kept.append((plays_at, samples[:heard]))
        self._agents = kept

    def _write_until(self, until: float | None) -> None:
        """Write the samples from `_written` up to `until` (all that is placed when `None`)."""
        origin = self._origin
        start = self._written
        placed = [(0, round(position * SAMPLE_RATE), samples) for position, samples in self._callers] + [
            (1, round((plays_at - origin) * SAMPLE_RATE), samples) for plays_at, samples in self._agents
        ]
        if until is None:
            end = max((first + len(samples) for _, first, samples in placed), default=start)
        else:
            end = int(until)
        if end <= start:
            return
        block = np.zeros((end - start, 2), dtype=np.int16)
        callers: list[Segment] = []
        agents: list[Segment] = []
        for (channel, first, samples), raw in zip(placed, self._callers + self._agents, strict=True):
            last = first + len(samples)
            lo, hi = max(first, start), min(last, end)
            if lo < hi:
                block[lo - start : hi - start, channel] = samples[lo - first : hi - first]
            if last > end:  # not all written yet: kept for the next pass
                (callers if channel == 0 else agents).append(raw)
            elif last <= start:
                self.dropped += 1  # came after its place was written
        self._callers, self._agents = callers, agents
        file = self._open()
        file.write(block.tobytes())
        file.flush()  # into the OS: a killed process loses nothing written
        self._written = end


class RecordingWriter:
    """The one thread that writes every recording of the process."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self._interval = interval
        self._recordings: list[TimelineRecording] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def open(self, path: Path, opened_at: float) -> TimelineRecording:
        recording = TimelineRecording(self, path, opened_at)
        with self._lock:
            self._recordings.append(recording)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="recording-writer", daemon=True)
                self._thread.start()
        return recording

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Finish the thread (recordings still open are left to the next start's repair)."""
        self._stopping = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        """A pass over every recording each `interval`; a `finish` in between wakes the thread
        for that recording alone (a pass over hundreds of calls per ended call would cost more
        than the recording itself)."""
        next_pass = time.monotonic() + self._interval
        while not self._stopping:
            self._wake.wait(max(0.0, next_pass - time.monotonic()))
            self._wake.clear()
            now = time.monotonic()
            with self._lock:
                recordings = list(self._recordings)
            if now >= next_pass:
                next_pass = now + self._interval
            else:
                recordings = [recording for recording in recordings if recording.finishing]
            closed = [recording for recording in recordings if not recording.pump(now)]
            if closed:
                with self._lock:
                    self._recordings = [r for r in self._recordings if r not in closed]
        with self._lock:
            for recording in self._recordings:
                with contextlib.suppress(Exception):
                    recording.pump(time.monotonic())
