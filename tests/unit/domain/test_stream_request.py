from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from domain.stream_request import AgentStreamRequest


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


query_values = st.one_of(st.none(), st.text(max_size=40))


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
