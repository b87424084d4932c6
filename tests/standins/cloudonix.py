"""The stand-in Cloudonix REST API, now shipped in `entrypoints.standins.cloudonix` (the demo runs
it); re-exported here so tests keep importing `tests.standins.cloudonix`.

    python -m tests.standins.cloudonix --port 8765 --token T --domain acme   # same as the module in src
"""

from __future__ import annotations

from entrypoints.standins.cloudonix import *  # noqa: F403
from entrypoints.standins.cloudonix import (
    CallbackFormat,
    CallbackRecord,
    CloudonixStandIn,
    DialRecord,
    MoveRecord,
    Operation,
    RecordedRequest,
    main,
)

__all__ = [
    "CallbackFormat",
    "CallbackRecord",
    "CloudonixStandIn",
    "DialRecord",
    "MoveRecord",
    "Operation",
    "RecordedRequest",
    "main",
]

if __name__ == "__main__":
    main()
