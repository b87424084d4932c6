"""Silero voice-activity detection for every call of the process, on one model.

Pipecat's `SileroVADAnalyzer` loads a model per call (about 10 MB and a load on the event loop
each time) and runs it once per 32 ms window of each call. Here:

- the ONNX session is loaded once per process (`silero_session`) and shared; each call keeps only
  its recurrent state and audio context (`SileroStream`);
- the windows of all calls are scored together, in one model run per `BATCH_TICK` (`SileroBatch`).
  One run costs about 0.4 ms on a busy core (the model's weights are out of the cache by then),
  and a run of 16 windows about 0.9 ms: at 60 calls, one run per window would take about a third
  of the core, the batches take about a twentieth. A window waits at most `BATCH_TICK` for its
  score, against the VAD's 200 ms pause;
- once the line has been quieter than `SILENCE_POWER` (-60 dBFS) for `MODEL_HORIZON_SECS`, a
  window scores 0 without the model: a line is quiet most of the time (the caller listens). The
  model does hear the first second of each silence, as Pipecat's would: skipped sooner, its state
  would miss the pause, and it would find the next words' start and end some windows off.

`CallVad` is Pipecat's analyser with these scores: its state machine, parameters and the model's
reset schedule are Pipecat's own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import cache
from importlib import resources

import numpy as np
import onnxruntime
import structlog
from pipecat.audio.utils import exp_smoothing
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.audio.volume import VOLUME_WINDOW_SECS

from adapters.media.vad import mean_power
from adapters.pipelines.pcm import CALL_RATE

log = structlog.get_logger(__name__)

RATE = CALL_RATE  # Hz: the calls' audio
WINDOW = 256  # samples the model scores at 8 kHz (32 ms)
CONTEXT = 32  # samples of the previous window the model sees before each window
BATCH_TICK = 0.03  # seconds a window may wait for the other calls' windows (a window is 32 ms)
SILENCE_POWER = 32.0**2  # mean power of 16-bit samples at -60 dBFS
MODEL_HORIZON_SECS = 1.0  # the model follows this much silence after sound, then rests


@cache
def silero_session() -> onnxruntime.InferenceSession:
    """Silero's ONNX model (shipped inside Pipecat), loaded once per process and shared by every
    call: `InferenceSession.run` keeps no state between runs, the recurrent state is the caller's."""
    path = resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx")
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    with resources.as_file(path) as model:
        return onnxruntime.InferenceSession(
            str(model), providers=["CPUExecutionProvider"], sess_options=options
        )


class SileroStream:
    """One call's side of the model: its recurrent state and the tail of its last window."""

    def __init__(self) -> None:
        self.reset_states()

    def reset_states(self) -> None:  # the name Pipecat's analyser calls
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.context = np.zeros(CONTEXT, dtype=np.float32)


class SileroBatch:
    """Scores windows of many streams in one model run: the first window of a batch waits
    `tick` seconds for the others. Bound to the event loop it is first used on."""

    def __init__(self, session: onnxruntime.InferenceSession, tick: float = BATCH_TICK) -> None:
        self._session = session
        self._tick = tick
        self._pending: list[tuple[SileroStream, bytes, asyncio.Future[float]]] = []
        self._flush: asyncio.TimerHandle | None = None
        self.runs = 0  # model runs so far, and the windows they scored (for tests and benchmarks)
        self.windows = 0

    async def score(self, stream: SileroStream, window: bytes) -> float:
        """The speech probability of `window` (16-bit PCM, `WINDOW` samples) for `stream`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self._pending.append((stream, window, future))
        if self._flush is None:
            self._flush = loop.call_later(self._tick, self.run)
        return await future

    def run(self) -> None:
        """Score every pending window now."""
        batch, self._pending = self._pending, []
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if not batch:
            return
        inputs = np.empty((len(batch), CONTEXT + WINDOW), dtype=np.float32)
        inputs[:, CONTEXT:] = np.frombuffer(b"".join(w for _, w, _ in batch), dtype="<i2").reshape(-1, WINDOW)
        inputs[:, CONTEXT:] /= 32768.0
        inputs[:, :CONTEXT] = [stream.context for stream, _, _ in batch]
        states = np.concatenate([stream.state for stream, _, _ in batch], axis=1)
        try:
            scores, new_states = self._session.run(
                None, {"input": inputs, "state": states, "sr": np.array(RATE, dtype=np.int64)}
            )
        except Exception:  # as Pipecat's analyser does: no score is no speech, the call goes on
            log.exception("vad_model_failed", windows=len(batch))
            scores, new_states = np.zeros((len(batch), 1)), states
        else:
            self.runs += 1
            self.windows += len(batch)
        for i, (stream, _, future) in enumerate(batch):
            stream.state = new_states[:, i : i + 1, :].copy()
            stream.context = inputs[i, -CONTEXT:].copy()
            if not future.done():  # a call that ended meanwhile no longer waits
                future.set_result(float(scores[i, 0]))


class CallVad(SileroVADAnalyzer):
    """Pipecat's Silero analyser, scored through the process's `SileroBatch`.

    The one place that leans on Pipecat's private members, written against pipecat-ai 1.14.0:
    `VADAnalyzer`'s state machine (`_run_analyzer`) and volume (`_get_smoothed_volume`,
    `_volume_tracker`, `_prev_volume`, `_smoothing_factor`), and `SileroVADAnalyzer`'s model and
    reset schedule (`_model`, `_maybe_reset_model`, `_windows_since_reset`,
    `_low_confidence_windows`). `test_vad.py` holds it to Pipecat's own analyser's utterances.
    """

    def __init__(self, params: VADParams, batch: SileroBatch) -> None:
        VADAnalyzer.__init__(self, sample_rate=RATE, params=params)  # not Silero's: no model load
        self._model = SileroStream()  # type: ignore[assignment]  # Pipecat resets it by this name
        self._batch = batch
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._silent_windows = 1 << 30  # quiet windows in a row, up to the last one (a call starts quiet)
        self._unscored = b""  # audio short of a whole window
        self._scores: deque[float] = deque()  # for `voice_confidence`, in window order
        self.state = VADState.QUIET  # after the last buffer analysed

    async def analyze_audio(self, buffer: bytes) -> VADState:
        # Score the windows this buffer completes, then let Pipecat's state machine take them.
        # (Pipecat would hand every 20 ms frame to a thread and back for this.)
        audio = self._unscored + buffer
        whole = len(audio) // (2 * WINDOW) * 2 * WINDOW
        for start in range(0, whole, 2 * WINDOW):
            self._scores.append(await self._score(audio[start : start + 2 * WINDOW]))
        self._unscored = audio[whole:]
        self.state = self._run_analyzer(buffer)
        return self.state

    async def _score(self, window: bytes) -> float:
        self._silent_windows = self._silent_windows + 1 if mean_power(window) < SILENCE_POWER else 0
        if self._silent_for(MODEL_HORIZON_SECS):
            confidence = 0.0
        else:  # speech, or a pause in it: the model follows it as Pipecat's does
            confidence = await self._batch.score(self._model, window)  # type: ignore[arg-type]
        self._maybe_reset_model(confidence)  # Silero's own reset schedule
        return confidence

    def _silent_for(self, seconds: float) -> bool:
        return self._silent_windows * WINDOW >= seconds * RATE

    def voice_confidence(self, buffer: bytes) -> float:
        return self._scores.popleft()  # scored by `analyze_audio` just before

    def _get_smoothed_volume(self, audio: bytes) -> float:
        # Pipecat measures the loudness of the last 400 ms (ITU-R BS.1770) at every window, 40 us
        # each; once those 400 ms are all silence, it is taken as 0 without measuring.
        if self._silent_for(VOLUME_WINDOW_SECS):
            self._volume_tracker.update(audio, self.sample_rate)
            return exp_smoothing(0.0, self._prev_volume, self._smoothing_factor)
        return super()._get_smoothed_volume(audio)
