"""The pipeline's two ends on the `ActiveCall`: Pipecat transports of our own.

`CallInput` runs the VAD on the caller's audio (16-bit PCM, 8 kHz) as it arrives, and only speech
enters the pipeline, as Pipecat audio frames. While the agent speaks, caller speech becomes a turn
(and interrupts) only once it has lasted `backchannel_secs`: a "mm-hm" is not barge-in.
`CallOutput` sends agent audio out through the call's pacer (`Playback`), never more than `LEAD`
ahead of what the caller has heard, so "the bot stopped speaking" is true when Pipecat says it and
an interruption's `clear` silences the line at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.vad.vad_analyzer import VADState
from pipecat.audio.vad.vad_controller import VADController
from pipecat.frames.frames import (
    AggregatedTextFrame,
    BotSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    MetricsFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSTextFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from adapters.pipelines.pcm import CALL_RATE, duration
from adapters.pipelines.pipecat.journal import TurnRecorder
from adapters.pipelines.pipecat.playback import Playback
from adapters.pipelines.pipecat.vad import CallVad
from application.ports.live_call import ActiveCall
from domain.stream_events import AudioIn, DtmfIn, StopIn

PREROLL_FRAMES = 50  # 1 s of caller audio kept before speech starts (a segmented STT's own buffer)


class CallInput(BaseInputTransport):
    """Caller audio and DTMF from the `ActiveCall` into the pipeline; `StopIn` ends the session.

    The VAD runs here, on each frame as it arrives (Pipecat's own `VADController` over the shared
    Silero model), and its frames lead the caller's audio into the pipeline. With `gate`, audio
    enters only while the caller speaks, with up to a second before (what a segmented STT keeps
    of it anyway): a caller who listens costs no pipeline work, where each frame would otherwise
    take several queue hops 50 times a second. A streaming STT or a speech-to-speech model hears
    every frame. `tail_secs` of audio after speech still enter (an end-of-turn model's fallback
    counts that silence).

    Backchannels: when speech starts while `agent_speaking()`, its start is held back until the
    caller has been voiced for `backchannel_secs` (the VAD's `start_secs` included); speech that
    ends sooner is no turn at all (no interruption, no transcript).
    """

    def __init__(
        self,
        call: ActiveCall,
        params: TransportParams,
        vad: CallVad,
        gate: bool,
        on_stop: Callable[[], None],
        agent_speaking: Callable[[], bool] = lambda: False,
        backchannel_secs: float = 0.0,
        tail_secs: float = 0.0,
    ) -> None:
        super().__init__(params, name="CallInput")
        self._call = call
        self._on_stop = on_stop
        self._pump: asyncio.Task[None] | None = None
        self._gate = gate
        self._agent_speaking = agent_speaking
        self._backchannel_secs = backchannel_secs
        self._held: float | None = None  # seconds of speech still to come before a held start counts
        self._tail_secs = tail_secs
        self._tail = 0.0  # seconds of audio after speech still to let in
        self._speaking = False
        self._preroll: deque[InputAudioRawFrame] = deque(maxlen=PREROLL_FRAMES)
        self._analyzer = vad  # its `params` are the controller's (updates are set on it)
        self._vad = VADController(vad)
        self._vad.add_event_handler("on_speech_started", self._speech_started)
        self._vad.add_event_handler("on_speech_stopped", self._speech_stopped)
        self._vad.add_event_handler("on_push_frame", self._controller_push)
        self._vad.add_event_handler("on_broadcast_frame", self._controller_broadcast)

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        await super().setup(setup)
        await self._vad.setup(setup)

    async def cleanup(self) -> None:
        await super().cleanup()  # type: ignore[no-untyped-call]
        await self._vad.cleanup()  # type: ignore[no-untyped-call]

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        await self._vad.start()  # type: ignore[no-untyped-call]  # announces the VAD's parameters to the turn strategies
        if self._pump is None:
            self._pump = self.create_task(self._receive())

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._stop_pump()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._stop_pump()

    async def _stop_pump(self) -> None:
        await self._vad.stop()  # type: ignore[no-untyped-call]
        if self._pump is not None:
            await self.cancel_task(self._pump)
            self._pump = None

    async def _receive(self) -> None:
        async for event in self._call.events():
            if type(event) is AudioIn:
                await self._hear(InputAudioRawFrame(audio=event.pcm, sample_rate=CALL_RATE, num_channels=1))
            elif isinstance(event, DtmfIn):
                with contextlib.suppress(ValueError):
                    await self.push_frame(InputDTMFFrame(button=KeypadEntry(event.digit)))
            elif isinstance(event, StopIn):
                self._on_stop()
                return

    async def _hear(self, frame: InputAudioRawFrame) -> None:
        if self._speaking or not self._gate or self._tail > 0:
            self._tail -= 0.0 if self._speaking else duration(frame.audio)
            await self.push_frame(frame)
        else:
            self._preroll.append(frame)  # pushed if this frame starts speech
        held = self._held is not None
        await self._vad.process_frame(frame)  # its frames follow the audio they are about
        if held and self._held is not None and self._analyzer.state is VADState.SPEAKING:
            self._held -= duration(frame.audio)  # voiced time only: a pause after "mm-hm" is not
            if self._held <= 0:
                self._held = None  # not a backchannel: the caller's turn, and barge-in
                await self._push_started()

    # the VAD controller's events, as Pipecat's user aggregator turns them into frames (but for
    # the periodic "user speaking": only idle time-outs, off here, and wake phrases read it)
    async def _speech_started(self, _: VADController) -> None:
        self._speaking = True
        while self._preroll:
            await self.push_frame(self._preroll.popleft())
        wait = self._backchannel_secs - self._analyzer.params.start_secs
        if wait > 0 and self._agent_speaking():
            self._held = wait
            return
        await self._push_started()

    async def _push_started(self) -> None:
        await self.push_frame(VADUserStartedSpeakingFrame(start_secs=self._analyzer.params.start_secs))

    async def _speech_stopped(self, _: VADController) -> None:
        self._speaking = False
        self._tail = self._tail_secs
        if self._held is not None:  # a backchannel: over before it counted
            self._held = None
            return
        await self.push_frame(VADUserStoppedSpeakingFrame(stop_secs=self._analyzer.params.stop_secs))

    async def _controller_push(self, _: VADController, frame: Frame, direction: FrameDirection) -> None:
        await self.push_frame(frame, direction)

    async def _controller_broadcast(self, _: VADController, frame_cls: type[Frame], **kwargs: Any) -> None:
        await self.push_frame(frame_cls(**kwargs))  # downstream: nothing is upstream of the input


class CallOutput(BaseOutputTransport):
    """Agent audio to the call through `Playback`; interruptions become the call's `clear`."""

    def __init__(self, playback: Playback, recorder: TurnRecorder, params: TransportParams) -> None:
        super().__init__(params, name="CallOutput")
        self._playback = playback
        self._recorder = recorder

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, OutputAudioRawFrame):
                self._playback.queue_audio(len(frame.audio) / (2 * frame.sample_rate * frame.num_channels))
            elif _announces(frame):
                self._playback.queue_text(frame.text)  # type: ignore[attr-defined]
            else:
                self._recorder.on_frame(frame)
        if isinstance(frame, InterruptionFrame):  # before Pipecat's own handling ends the turn
            await self._playback.interrupt()
        await super().process_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        await self._playback.write(frame.audio)
        return True

    async def write_transport_frame(self, frame: Frame) -> None:
        if _announces(frame):  # in order with the audio: a sentence's text comes just before it
            self._playback.announce()

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        # Every frame pushed costs a queue hop per processor it crosses. Pipecat's periodic "bot
        # speaking" frame would cross all of them both ways five times a second, for the idle
        # time-out (off) and wake-phrase strategies (unused); audio and metrics were read here, and
        # the assistant aggregator after the output reads neither.
        if isinstance(frame, BotSpeakingFrame):
            return
        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, OutputAudioRawFrame | MetricsFrame):
                return
            if isinstance(frame, BotStoppedSpeakingFrame):
                self._playback.turn_done()
        await super().push_frame(frame, direction)


def _announces(frame: Frame) -> bool:
    """The text of a sentence about to be spoken (TTSTextFrame, a subclass, follows its audio)."""
    return (
        isinstance(frame, AggregatedTextFrame)
        and not isinstance(frame, TTSTextFrame)
        and frame.will_be_spoken
    )
