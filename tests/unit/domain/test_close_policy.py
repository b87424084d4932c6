import pytest

from domain import close_policy as cp


@pytest.mark.parametrize(
    ("refusal", "code", "reason"),
    [
        (cp.UnknownProviderError("skype"), 1008, "Unknown provider: skype"),
        (cp.UnknownProviderError(None), 1008, "Unknown provider:"),
        (cp.WorkflowNotFoundError(), 1008, "Workflow not found"),
        (cp.CallLimitReachedError(), 1008, "Concurrent call limit reached"),
        (cp.QuotaExceededError(), 1008, "Quota exceeded"),
        (cp.ProviderNotImplementedError("twilio"), 1011, "Agent-stream not supported for provider twilio"),
        (cp.MissingDomainError(), 4400, "Missing Domain"),
        (cp.UnknownDomainError("acme.cloudonix.net"), 4400, "Unknown Cloudonix domain: acme.cloudonix.net"),
        (cp.MissingBearerTokenError(), 4400, "Cloudonix configuration missing bearer_token"),
        (cp.ExpectedConnectedEventError(), 4400, "Expected connected event"),
        (cp.ExpectedStartEventError(), 4400, "Expected start event"),
        (cp.MissingStartMetadataError(), 4400, "Missing start metadata"),
        (cp.MissingStreamIdentifiersError(), 4400, "Missing stream identifiers"),
        (cp.HandshakeTimeoutError(), 4400, "Handshake timeout"),
        (cp.SessionValidationFailedError(), 4400, "Cloudonix session validation failed"),
    ],
)
def test_each_refusal_carries_the_spec_code_and_reason(refusal, code, reason):
    assert refusal.close.code == code
    assert refusal.close.reason == reason
    assert str(refusal) == reason


def test_not_implemented_provider_is_also_a_not_implemented_error():
    assert isinstance(cp.ProviderNotImplementedError("ari"), NotImplementedError)


def test_detail_is_kept_apart_from_the_reason_sent():
    refusal = cp.QuotaExceededError(detail="used 3600s of 60 min")
    assert refusal.close.reason == "Quota exceeded"
    assert refusal.detail == "used 3600s of 60 min"


def test_reasons_are_capped_at_123_bytes_without_splitting_characters():
    refusal = cp.UnknownDomainError("é" * 200)
    encoded = refusal.close.reason.encode("utf-8")
    assert len(encoded) <= 123
    encoded.decode("utf-8")  # still valid UTF-8
    assert cp.Close(1000, "x" * 500).reason == "x" * 123
