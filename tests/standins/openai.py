"""The stand-in OpenAI HTTP API, shipped in `entrypoints.standins.openai`; re-exported here so tests
import `tests.standins.openai` like the other stand-ins.

    python -m tests.standins.openai --port 8767 --latency-llm 0.4   # same as the module in src
"""

from __future__ import annotations

from entrypoints.standins.openai import *  # noqa: F403
from entrypoints.standins.openai import (
    SAMPLE_RATE,
    OpenAIStandIn,
    Operation,
    RecordedRequest,
    Reply,
    ToolCall,
    main,
)

__all__ = [
    "SAMPLE_RATE",
    "OpenAIStandIn",
    "Operation",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "main",
]

if __name__ == "__main__":
    main()
