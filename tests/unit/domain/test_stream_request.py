import unicodedata
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.close_policy import CloseCode, InvalidStreamParameterError
from domain.stream_request import MAX_PARAMETER_CHARS, AgentStreamRequest


def test_parses_the_spec_query():
    agent = uuid4()
    request = AgentStreamRequest.parse(
        str(agent),
        {
            "provider": "cloudonix",
            "Domain": "acme",
            "callId": "c-1",
            "from": "+15555550100",
            "to": "+15555550199",
        },
    )
    assert request == AgentStreamRequest(agent, "cloudonix", "acme", "c-1", "+15555550100", "+15555550199")


def test_the_path_provider_wins_over_the_query():
    request = AgentStreamRequest.parse(str(uuid4()), {"provider": "twilio"}, path_provider="Cloudonix")
    assert request.provider == "cloudonix"


def test_call_sid_is_the_fallback_for_call_id():
    assert AgentStreamRequest.parse(str(uuid4()), {"CallSid": "CA1"}).call_id == "CA1"
    assert AgentStreamRequest.parse(str(uuid4()), {"CallSid": "CA1", "callId": "X"}).call_id == "X"


def test_a_bad_uuid_and_empty_values_are_absent():
    request = AgentStreamRequest.parse("not-a-uuid", {"provider": " ", "Domain": ""})
    assert (request.agent_uuid, request.provider, request.domain) == (None, None, None)


# Printable text (spaces included): what a URL may carry; NUL and control characters are refused below.
clean_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)
query_values = st.one_of(st.none(), clean_text)


@given(
    agent=st.one_of(st.uuids().map(str), st.text(max_size=50)),
    provider=query_values,
    path_provider=query_values,
    domain=query_values,
    call_id=query_values,
    call_sid=query_values,
)
def test_parsing_never_fails_and_follows_the_precedence_rules(
    agent, provider, path_provider, domain, call_id, call_sid
):
    query = {
        k: v
        for k, v in {"provider": provider, "Domain": domain, "callId": call_id, "CallSid": call_sid}.items()
        if v is not None
    }
    request = AgentStreamRequest.parse(agent, query, path_provider=path_provider)
    if path_provider and path_provider.strip():
        assert request.provider == path_provider.strip().lower()
    elif provider and provider.strip():
        assert request.provider == provider.strip().lower()
    else:
        assert request.provider is None
    expected_call_id = (
        call_id.strip()
        if call_id and call_id.strip()
        else call_sid.strip()
        if call_sid and call_sid.strip()
        else None
    )
    assert request.call_id == expected_call_id
    assert request.domain == (domain.strip() if domain and domain.strip() else None)


@pytest.mark.parametrize("name", ["Domain", "from", "to", "callId", "CallSid", "provider"])
@pytest.mark.parametrize("value", ["\x00", "a\x00b", "\x01", "x\x7f", "\x9b", "\ud800", "+1555\n0100"])
def test_a_control_character_or_surrogate_in_a_value_is_refused_1008_naming_it(name, value):
    with pytest.raises(InvalidStreamParameterError) as refused:
        AgentStreamRequest.parse(str(uuid4()), {name: value})
    assert refused.value.close.code == CloseCode.POLICY_VIOLATION
    assert refused.value.close.reason == f"Invalid query parameter: {name}"


def test_an_over_long_value_is_refused_and_the_path_provider_too():
    with pytest.raises(InvalidStreamParameterError, match="Invalid query parameter: from"):
        AgentStreamRequest.parse(str(uuid4()), {"from": "1" * (MAX_PARAMETER_CHARS + 1)})
    assert AgentStreamRequest.parse(str(uuid4()), {"from": "1" * MAX_PARAMETER_CHARS}).caller_number
    with pytest.raises(InvalidStreamParameterError, match="Invalid path parameter: provider"):
        AgentStreamRequest.parse(str(uuid4()), {}, path_provider="cloud\x00nix")


@given(
    agent=st.text(max_size=50),
    values=st.dictionaries(
        st.sampled_from(["Domain", "from", "to", "callId", "CallSid", "provider"]), st.text(max_size=300)
    ),
)
def test_parsing_any_text_either_succeeds_clean_or_refuses_1008(agent, values):
    try:
        request = AgentStreamRequest.parse(agent, values)
    except InvalidStreamParameterError as refused:
        refusal = refused.close
    else:
        refusal = None
    if refusal is not None:
        assert refusal.code == CloseCode.POLICY_VIOLATION
        return
    for value in (
        request.domain,
        request.call_id,
        request.caller_number,
        request.called_number,
        request.provider,
    ):
        assert value is None or len(value) <= MAX_PARAMETER_CHARS
        assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in value or "")


def test_the_spec_example_url_unencoded_keeps_the_plus_of_both_numbers():
    # `&from=+15555550100&to=+15555550199` as pasted: every URL decoder turns `+` into a space
    query = {"provider": "cloudonix", "from": " 15555550100", "to": " 15555550199"}
    request = AgentStreamRequest.parse(str(uuid4()), query)
    assert (request.caller_number, request.called_number) == ("+15555550100", "+15555550199")


@pytest.mark.parametrize("value", ["15555550100", "+15555550100", "alice", "sip:alice@acme"])
def test_other_numbers_are_kept_as_the_caller_gave_them(value):
    assert AgentStreamRequest.parse(str(uuid4()), {"from": value}).caller_number == value


def test_a_restored_number_is_still_checked():
    with pytest.raises(InvalidStreamParameterError, match="Invalid query parameter: to"):
        AgentStreamRequest.parse(str(uuid4()), {"to": " 1555\x000100"})
