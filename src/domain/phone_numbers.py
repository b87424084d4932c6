"""Phone numbers as URLs and providers deliver them.

The spec's example stream URL writes `&from=+15555550100` unencoded, as Cloudonix users paste it;
in a query string `+` decodes to a space, so the number arrives as `" 15555550100"`. A value that
starts with that space and then holds only a phone number's characters is the E.164 number the
caller meant: its `+` is restored. Anything else is kept as the caller gave it.
"""

from __future__ import annotations

from typing import Final

# The characters of a written phone number after its `+`: digits and the usual separators.
_PHONE_CHARS: Final = frozenset("0123456789 -.()")
# E.164 allows 15 digits; room for separators, far below any other bound on a value.
MAX_PHONE_CHARS: Final = 32


def restore_plus(value: str) -> str:
    """`value` with the `+` a query string decoded to a space put back: `" 1555…"` → `"+1555…"`.

    Only a value whose first character is that space, whose second is a digit and whose rest is
    digits and separators is changed (into at most `MAX_PHONE_CHARS` characters, no surrounding
    blanks).
    """
    if not value.startswith(" ") or not value[1:2].isdigit() or not value[1:2].isascii():
        return value
    number = value[1:].rstrip()
    if len(number) >= MAX_PHONE_CHARS or not set(number) <= _PHONE_CHARS:
        return value
    return "+" + number
