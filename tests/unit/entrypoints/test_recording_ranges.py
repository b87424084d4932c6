"""`Range` on the recording route (RFC 9110 §14): one range served, the rest ignored or refused."""

from __future__ import annotations

import pytest

from entrypoints.web.api.recordings import UNSATISFIABLE, byte_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=10-", (10, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),  # more than there is: all of it
        ("bytes=900-5000", (900, 999)),  # the end is clipped
        (" Bytes = 1-2 ", (1, 2)),
        ("bytes=1000-", UNSATISFIABLE),
        ("bytes=1000-2000", UNSATISFIABLE),
        ("bytes=-0", UNSATISFIABLE),
        ("bytes=5-1", None),  # invalid: ignored
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("items=0-1", None),
        ("bytes=a-b", None),
        ("bytes=", None),
        ("bytes=-", None),
    ],
)
def test_ranges(header: str | None, expected: object):
    assert byte_range(header, 1000) == expected


def test_an_empty_file_has_no_satisfiable_range():
    assert byte_range("bytes=0-", 0) == UNSATISFIABLE
    assert byte_range("bytes=-1", 0) == UNSATISFIABLE
