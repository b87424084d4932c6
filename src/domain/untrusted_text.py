"""Text a caller controls (query values, handshake fields): what may be kept, stored or echoed.

PostgreSQL refuses NUL in `text` and `json`; a lone surrogate (`"\\ud800"` as a JSON escape) cannot
be encoded as UTF-8 at all, so it breaks a close reason, a log line or a row. Control characters
have no business in an identifier, a phone number or a domain. So a value is *clean* when it holds
none of these; values that are not clean are refused at the edge or dropped, never stored raw.
"""

from __future__ import annotations

import re
from typing import Final

# C0 and C1 controls (NUL among them), DEL, and the UTF-16 surrogates.
_UNCLEAN: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same, but tab, newline and carriage return are allowed (free text such as a note).
_UNCLEAN_MULTILINE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def is_clean(value: str, *, multiline: bool = False) -> bool:
    """True when `value` holds no NUL, surrogate or control character (with `multiline`, tab,
    newline and carriage return are allowed)."""
    pattern = _UNCLEAN_MULTILINE if multiline else _UNCLEAN
    return pattern.search(value) is None


def shown(value: object, limit: int = 40) -> str:
    """`value` as text that is safe to echo in a close reason or a log line: at most `limit`
    characters, every character that is not printable replaced by `?`."""
    if isinstance(value, str):
        text = value[:limit]
    elif value is None or isinstance(value, (bool, int, float)):
        text = str(value)[:limit]  # a JSON number has at most 4,300 digits (Python's int limit)
    else:
        text = type(value).__name__  # never the repr of a caller's nested structure
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)
