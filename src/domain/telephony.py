"""Stored telephony configurations and the Cloudonix domain rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domain.stored import Stored


class Provider(StrEnum):
    CLOUDONIX = "cloudonix"
    TWILIO = "twilio"
    TELNYX = "telnyx"
    PLIVO = "plivo"
    VONAGE = "vonage"
    VOBIZ = "vobiz"
    ARI = "ari"


CLOUDONIX_SUFFIX = ".cloudonix.net"


def normalize_cloudonix_domain(value: str | None) -> str | None:
    """`acme` -> `acme.cloudonix.net`; a value with a dot is a custom FQDN and kept.

    Whitespace and trailing dots are stripped, letters lowered; `None` stays `None` and an
    empty value stays empty (protocol.md §7).
    """
    if value is None:
        return None
    # `acme..` is `acme`: normalising twice changes nothing
    domain = value.strip().rstrip(".").strip().lower()
    if not domain or "." in domain:
        return domain
    return domain + CLOUDONIX_SUFFIX


class SecretStr:
    """A credential that never shows itself in `repr`, `str` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        """First and last four characters, for API answers; short values are fully hidden."""
        v = self._value
        if len(v) <= 12:
            return "*" * len(v)
        return f"{v[:4]}{'*' * (len(v) - 8)}{v[-4:]}"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[Any, ...]:  # pickling would leak the value into caches and dumps
        raise TypeError("SecretStr cannot be pickled")


@dataclass(slots=True)
class TelephonyConfig(Stored):
    organization_id: int
    provider: Provider
    domain_id: str
    bearer_token: SecretStr = field(repr=False)
    name: str = ""
    id: int | None = None

    @classmethod
    def cloudonix(
        cls, organization_id: int, domain: str, bearer_token: str, name: str = ""
    ) -> TelephonyConfig:
        normalized = normalize_cloudonix_domain(domain)
        if not normalized:
            raise ValueError("domain_id must not be empty")
        return cls(
            organization_id=organization_id,
            provider=Provider.CLOUDONIX,
            domain_id=normalized,
            bearer_token=SecretStr(bearer_token),
            name=name or normalized,
        )
