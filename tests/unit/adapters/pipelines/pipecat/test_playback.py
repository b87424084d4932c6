"""Playback tracking and the heard-context cut: a turn cut by barge-in is cut where the caller
stopped hearing it, in the transcript and in the model's context."""

from __future__ import annotations

from pipecat.processors.aggregators.llm_context import LLMContext

from adapters.memory.calls import InMemoryActiveCall
from adapters.pipelines.pipecat.playback import Playback, apply_cut
from domain.stream_events import StreamStart

START = StreamStart(stream_sid="MZ", call_sid="CA", session="S", account_sid="acme")
SECOND = bytes(16000)  # one second of 8 kHz 16-bit audio


class Turns:
    def __init__(self) -> None:
        self.ended: list[tuple[str, str, bool]] = []

    def __call__(self, generated: str, heard: str, interrupted: bool) -> None:
        self.ended.append((generated, heard, interrupted))


async def two_sentences(call: InMemoryActiveCall) -> tuple[Playback, Turns]:
    turns = Turns()
    playback = Playback(call, turns)
    playback.queue_text("One two three four.")
    playback.queue_audio(2.0)
    playback.queue_text("Five six seven eight.")
    playback.queue_audio(2.0)
    playback.announce()
    await playback.write(SECOND * 2)
    playback.announce()
    await playback.write(SECOND)  # half of the second sentence written so far
    return playback, turns


async def test_a_cut_keeps_whole_sentences_and_the_played_share_of_the_next() -> None:
    call = InMemoryActiveCall(START)
    playback, turns = await two_sentences(call)
    call.heard_seconds = 3.0  # the caller heard the first sentence and half of the second
    await playback.interrupt()
    assert turns.ended == [
        ("One two three four. Five six seven eight.", "One two three four. Five six", True)
    ]
    assert call.clears == 1
    assert not playback.speaking


async def test_a_cut_before_the_audio_hears_nothing() -> None:
    call = InMemoryActiveCall(START)
    playback, turns = await two_sentences(call)
    call.heard_seconds = 0.0
    playback.cut(0.0)
    assert turns.ended == [("One two three four. Five six seven eight.", "", True)]


async def test_a_turn_played_out_is_heard_whole() -> None:
    call = InMemoryActiveCall(START)
    playback, turns = await two_sentences(call)
    playback.turn_done()
    assert turns.ended == [("One two three four. Five six seven eight.",) * 2 + (False,)]
    playback.turn_done()  # nothing more to end
    assert len(turns.ended) == 1


async def test_sentences_still_queued_count_as_not_heard() -> None:
    call = InMemoryActiveCall(START)
    turns = Turns()
    playback = Playback(call, turns)
    await playback.speak("Hello there.", SECOND)
    playback.queue_text("Not yet spoken.")
    call.heard_seconds = 1.0
    playback.cut(1.0)
    assert turns.ended == [("Hello there. Not yet spoken.", "Hello there.", True)]


def context(*messages: dict[str, str]) -> LLMContext:
    return LLMContext(messages=list(messages))  # type: ignore[arg-type]


def test_the_models_context_gets_the_heard_text() -> None:
    ctx = context(
        {"role": "assistant", "content": "One two three four."},
        {"role": "user", "content": "Stop."},
    )
    apply_cut(ctx, "One two three four. Five six seven eight.", "One two three four. Five six")
    assert ctx.get_messages()[0] == {"role": "assistant", "content": "One two three four. Five six"}


def test_a_turn_the_aggregator_never_kept_is_added_before_the_caller() -> None:
    ctx = context({"role": "user", "content": "Hi"}, {"role": "user", "content": "Stop."})
    apply_cut(ctx, "One two three four.", "One two")
    assert ctx.get_messages()[1:] == [
        {"role": "assistant", "content": "One two"},
        {"role": "user", "content": "Stop."},
    ]


def test_a_turn_nobody_heard_is_dropped() -> None:
    ctx = context(
        {"role": "assistant", "content": "One two three four."}, {"role": "user", "content": "Stop."}
    )
    apply_cut(ctx, "One two three four.", "")
    assert ctx.get_messages() == [{"role": "user", "content": "Stop."}]
