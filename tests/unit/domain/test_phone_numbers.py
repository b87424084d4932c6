"""The `+` of an unencoded `from=+1555…` decodes to a space: it is put back, nothing else changes."""

from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.phone_numbers import MAX_PHONE_CHARS, restore_plus


def test_the_spec_example_query_decodes_to_a_space_that_is_restored():
    query = {k: v[0] for k, v in parse_qs("from=+15555550100&to=+15555550199").items()}
    assert query == {"from": " 15555550100", "to": " 15555550199"}  # what any URL decoder gives
    assert restore_plus(query["from"]) == "+15555550100"
    assert restore_plus(query["to"]) == "+15555550199"


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        (" 15555550100", "+15555550100"),
        (" 1 555 555-0100", "+1 555 555-0100"),  # a formatted number keeps its formatting
        (" 44 (20) 7946.0958 ", "+44 (20) 7946.0958"),
    ],
)
def test_a_space_then_a_phone_number_is_e164(given_value, expected):
    assert restore_plus(given_value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "+15555550100",  # encoded properly (%2B)
        "15555550100",  # no plus at all: kept as given
        "5550100",
        "  15555550100",  # two spaces: not one decoded `+`
        " alice",  # a SIP user, not a number
        " 1555x",
        " ",
        "",
        " ١٢٣",  # non-ASCII digits are not a phone number's
        " sip:1555@acme",
        " " + "1" * MAX_PHONE_CHARS,  # too long to be a phone number
        " 1555\x00",
    ],
)
def test_anything_else_is_kept_as_given(value):
    assert restore_plus(value) == value


@given(st.text(max_size=60))
def test_the_result_is_either_the_value_or_plus_and_its_ascii_digits(value):
    restored = restore_plus(value)
    if restored != value:
        assert value.startswith(" ") and restored == "+" + value.strip()
        assert len(restored) <= MAX_PHONE_CHARS and restored[1].isdigit() and restored.isascii()
