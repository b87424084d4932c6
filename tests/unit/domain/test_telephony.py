import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.telephony import SecretStr, TelephonyConfig, normalize_cloudonix_domain


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("acme", "acme.cloudonix.net"),
        ("  ACME ", "acme.cloudonix.net"),
        ("acme.cloudonix.net", "acme.cloudonix.net"),
        ("acme.cloudonix.net.", "acme.cloudonix.net"),
        (" Tenant.Example.Com. ", "tenant.example.com"),
        ("acme..", "acme.cloudonix.net"),
        ("..", ""),
        ("", ""),
        (None, None),
    ],
)
def test_cloudonix_domain_normalisation(raw, normalized):
    assert normalize_cloudonix_domain(raw) == normalized


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.ABC ", max_size=30))
def test_normalisation_is_idempotent(raw):
    once = normalize_cloudonix_domain(raw)
    assert normalize_cloudonix_domain(once) == once


def test_bearer_token_never_shows_itself():
    token = "cx-secret-token-1234567890"
    config = TelephonyConfig.cloudonix(1, "acme", token)
    for text in (
        repr(config),
        str(config),
        repr(config.bearer_token),
        str(config.bearer_token),
        f"{config.bearer_token}",
        format(config.bearer_token, ""),
    ):
        assert token not in text
    assert config.bearer_token.reveal() == token
    assert config.bearer_token.masked() == "cx-s******************7890"
    with pytest.raises(TypeError):
        pickle.dumps(config.bearer_token)


def test_short_secrets_are_fully_masked():
    assert SecretStr("abc").masked() == "***"


def test_empty_domain_is_refused():
    with pytest.raises(ValueError, match="domain_id"):
        TelephonyConfig.cloudonix(1, "  ", "t")
