"""The shared Silero VAD: batched scores are Pipecat's scores, each call keeps its own state, silence
costs no model run, and `CallVad` finds the utterances Pipecat's own analyser finds."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState

from adapters.media.g711 import MULAW
from adapters.pipelines.pipecat.vad import WINDOW, CallVad, SileroBatch, SileroStream, silero_session
from tests.media_caller import SPEECH, speech_phrase

FRAME = 160  # samples of a 20 ms call frame


def speech() -> np.ndarray:
    return np.frombuffer(MULAW.decode(SPEECH.read_bytes()), dtype="<i2")


def windows(pcm: np.ndarray, count: int, offset: int = 0) -> list[bytes]:
    return [pcm[offset + i * WINDOW : offset + (i + 1) * WINDOW].tobytes() for i in range(count)]


def pipecat_scores(chunks: list[bytes]) -> list[float]:
    """Pipecat's own model wrapper, one stream, one window at a time."""
    model = SileroOnnxModel.__new__(SileroOnnxModel)
    model.session = silero_session()
    model.sample_rates = [8000, 16000]
    model.reset_states()  # type: ignore[no-untyped-call]
    return [
        float(model(np.frombuffer(c, dtype="<i2").astype(np.float32) / 32768.0, 8000)[0, 0]) for c in chunks
    ]


async def test_batched_scores_are_pipecats_and_each_call_keeps_its_own_state() -> None:
    pcm = speech()
    calls = [windows(pcm, 40), windows(pcm, 40, offset=3000), [bytes(2 * WINDOW)] * 40]
    batch = SileroBatch(silero_session())
    streams = [SileroStream() for _ in calls]

    async def score(stream: SileroStream, chunks: list[bytes]) -> list[float]:
        return [await batch.score(stream, chunk) for chunk in chunks]

    got = await asyncio.gather(*(score(s, c) for s, c in zip(streams, calls, strict=True)))
    for scores, chunks in zip(got, calls, strict=True):
        assert scores == pytest.approx(pipecat_scores(chunks), abs=1e-4)
    assert max(got[0]) > 0.8  # espeak speech is speech
    assert max(got[2]) < 0.1  # the third call's silence is not, whatever the others said
    assert batch.runs == 40  # the three calls' windows went in together


async def test_a_lone_window_waits_at_most_one_tick() -> None:
    batch = SileroBatch(silero_session(), tick=0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await batch.score(SileroStream(), windows(speech(), 1)[0])
    assert loop.time() - started < 0.1
    assert batch.runs == 1


def frames_of(pcm: np.ndarray) -> list[bytes]:
    return [pcm[i : i + FRAME].tobytes() for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def utterances(states: list[VADState]) -> list[tuple[int, int]]:
    """(first SPEAKING frame, first QUIET frame after it) of each utterance."""
    found, start = [], None
    for i, state in enumerate(states):
        if state is VADState.SPEAKING and start is None:
            start = i
        elif state is VADState.QUIET and start is not None:
            found.append((start, i))
            start = None
    return found


@pytest.mark.filterwarnings("ignore:path is deprecated:DeprecationWarning")  # Pipecat's model loader
@pytest.mark.parametrize("gap_seconds", [0.3, 0.9, 1.5, 3.0])
async def test_call_vad_finds_the_utterances_pipecats_own_analyser_finds(gap_seconds: float) -> None:
    # silence, a phrase with pauses inside it, a gap, the rest of the file, hiss
    phrase = np.frombuffer(MULAW.decode(speech_phrase(2.4)), dtype="<i2")
    gap = np.zeros(int(gap_seconds * 8000), "<i2")
    hiss = (np.sin(np.arange(8000)) * 20).astype("<i2")  # about -64 dBFS
    pcm = np.concatenate([np.zeros(8000, "<i2"), phrase, gap, speech(), hiss])
    params = VADParams(stop_secs=0.2)
    ours = CallVad(params, SileroBatch(silero_session(), tick=0))
    theirs = SileroVADAnalyzer(sample_rate=8000, params=params)
    for vad in (ours, theirs):
        vad.set_sample_rate(8000)
    our_states = [await ours.analyze_audio(f) for f in frames_of(pcm)]
    their_states = [theirs._run_analyzer(f) for f in frames_of(pcm)]
    ours_found, theirs_found = utterances(our_states), utterances(their_states)
    assert len(ours_found) == len(theirs_found) >= 3
    for (start, end), (their_start, their_end) in zip(ours_found, theirs_found, strict=True):
        assert abs(start - their_start) <= 2 and abs(end - their_end) <= 2  # within 40 ms


async def test_silence_is_scored_without_running_the_model() -> None:
    batch = SileroBatch(silero_session(), tick=0)
    vad = CallVad(VADParams(), batch)
    vad.set_sample_rate(8000)
    hiss = (np.sin(np.arange(FRAME)) * 20).astype("<i2").tobytes()  # about -64 dBFS
    for frame in [bytes(2 * FRAME)] * 20 + [hiss] * 20:  # 0.8 s
        assert await vad.analyze_audio(frame) is VADState.QUIET
    assert batch.runs == 0
    for frame in frames_of(speech()[:8000]):  # a second of speech: the model listens
        await vad.analyze_audio(frame)
    runs = batch.runs
    assert runs > 0
    for frame in [bytes(2 * FRAME)] * 100:  # two seconds of silence: it follows the first one only
        await vad.analyze_audio(frame)
    assert 25 <= batch.runs - runs <= 35
