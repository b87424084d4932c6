"""A reply's first clause goes to the TTS at once; the rest sentence by sentence, as Pipecat does."""

from __future__ import annotations

import pytest

from adapters.pipelines.pipecat.clauses import FirstClauseAggregator


async def spoken(aggregator: FirstClauseAggregator, tokens: list[str]) -> list[tuple[int, str]]:
    """What the TTS is handed, each with the number of tokens streamed when it was."""
    out = []
    for n, token in enumerate(tokens, start=1):
        out += [(n, aggregation.text) async for aggregation in aggregator.aggregate(token)]
    rest = await aggregator.flush()
    if rest is not None and rest.text:
        out.append((len(tokens), rest.text))
    return out


REPLY = [
    "Of",
    " course",
    ",",
    " I",
    " can",
    " help",
    " with",
    " that",
    ".",
    " For",
    " which",
    " evening",
    "?",
]


async def test_the_first_clause_goes_when_the_next_token_starts_and_the_rest_by_sentence():
    assert await spoken(FirstClauseAggregator(), ["Sure", ",", " I", " can", "."]) == [
        (3, "Sure,"),
        (5, "I can."),
    ]
    assert await spoken(FirstClauseAggregator(), REPLY) == [
        (4, "Of course,"),  # with " I", not six tokens later with " For"
        (10, "I can help with that."),
        (13, "For which evening?"),
    ]


async def test_every_reply_starts_afresh_after_the_last_ended_or_was_interrupted():
    aggregator = FirstClauseAggregator()
    await spoken(aggregator, REPLY)
    assert (await spoken(aggregator, REPLY))[0] == (4, "Of course,")
    async for _ in aggregator.aggregate("Well, well, I"):
        pass
    await aggregator.handle_interruption()
    assert (await spoken(aggregator, ["Here", " it", " is", ":", " more", "."]))[0] == (5, "Here it is:")


@pytest.mark.parametrize(
    ("tokens", "first"),
    [
        (["It", " costs", " 1", ",", "000", " dollars", ",", " sir", "."], "It costs 1,000 dollars,"),
        (
            ["Dr", ".", " Smith", ",", " hello", ".", " Yes"],
            "Dr. Smith, hello.",
        ),  # a sentence's lookahead decides
        (["A", ",", " b", "."], "A, b."),  # too short to say alone
        (["Hello", " there", ".", " Bye"], "Hello there."),  # no clause: the sentence, as before
    ],
)
async def test_what_does_not_end_a_first_clause(tokens: list[str], first: str):
    assert (await spoken(FirstClauseAggregator(), tokens))[0][1] == first
