"""A reply's first clause goes to the TTS as soon as it is whole, not its first sentence.

Pipecat's TTS services speak sentence by sentence: "Sure, I can help with that." reaches the TTS
only when the LLM has streamed all of it and the first letter of the next sentence (at 40 tokens a
second, ~175 ms after the first token), and every turn waits that long before the TTS starts. The
caller hears the answer sooner when the first clause ("Sure,") is spoken while the LLM streams the
rest. Later text goes sentence by sentence as before: a TTS speaks a whole sentence more naturally.

A short clause plays out quickly: the next sentence's audio must be there before it ends. The
OpenAI TTS service asks for the next text while this one's audio still streams (services.py); with
Pipecat's one text at a time, "Sure," left 40-90 ms holes before the next sentence under load
(docs/benchmarks.md).

A clause ends at `,` `:` or a dash followed by whitespace ("1,000" does not end one), once it holds
`MIN_CHARS` characters (an interjection such as "Well," is enough). `;` is a sentence ending to
Pipecat, which decides it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator, _LookaheadState

CLAUSE_ENDINGS: Final = frozenset(",:\u2014\u2013")  # the last two: em and en dash
MIN_CHARS: Final = 3


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
