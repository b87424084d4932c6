"""A reply's first clause goes to the TTS as soon as it is whole, when it is long enough.

Pipecat's TTS services speak sentence by sentence: "Of course, I can book that for you." reaches
the TTS only when the LLM has streamed all of it and the first letter of the next sentence (at 40
tokens a second, ~200 ms after the first token), and the turn waits that long before the TTS
starts. The caller hears the answer sooner when the first clause ("Of course,") is spoken while the
LLM streams the rest. Later text goes sentence by sentence as before: a TTS speaks a whole sentence
more naturally.

A clause ends at `,` `:` or a dash followed by whitespace ("1,000" does not end one). It goes alone
only with `MIN_CHARS` characters or more: Pipecat asks the TTS for one text at a time, so the next
sentence's request starts only when the clause's audio has all arrived, and its first audio must
come before the clause has finished playing. A clause of 10 characters (about 0.6 s of speech)
covers that with a TTS that streams at twice real time and answers in 150 ms; "Sure," (about
0.3 s) does not: it left 40-90 ms holes in replies under load (docs/benchmarks.md), so a short
clause waits for its sentence. `;` is a sentence ending to Pipecat, which decides it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator, _LookaheadState

CLAUSE_ENDINGS: Final = frozenset(",:\u2014\u2013")  # the last two: em and en dash
MIN_CHARS: Final = 10


class FirstClauseAggregator(SimpleTextAggregator):
    """Sentence aggregation, but a reply's first clause is let out early."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self._first = True  # nothing of this reply let out yet

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        for char in text:
            if self._first and char.isspace() and self._clause_ends():
                clause = self._text.strip()
                self._text = ""
                self._first = False
                yield Aggregation(text=clause, type=TextType.SENTENCE)
                continue
            self._text += char
            sentence = await self._check_sentence_with_lookahead(char)
            if sentence is not None:
                self._first = False
                yield sentence

    def _clause_ends(self) -> bool:
        # pipecat-ai 1.14.0: `_lookahead_state` is IDLE unless a sentence ending waits for its
        # lookahead ("Dr. Smith,"): the sentence logic decides those
        return (
            self._lookahead_state is _LookaheadState.IDLE
            and self._text[-1:] in CLAUSE_ENDINGS
            and len(self._text.strip()) >= MIN_CHARS
        )

    async def flush(self) -> Aggregation | None:
        self._first = True  # the reply ended: the next one starts afresh
        return await super().flush()

    async def handle_interruption(self) -> None:
        self._first = True
        await super().handle_interruption()  # type: ignore[no-untyped-call]

    async def reset(self) -> None:
        self._first = True
        await super().reset()  # type: ignore[no-untyped-call]
