"""The stand-in OpenAI-compatible server, shared by the integration tests that talk to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from entrypoints.simulator.standins.openai_api import OpenAIStandIn

OPENAI_KEY = "sk-standin-3f9a1c"


@pytest.fixture(scope="session")
def openai_server() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn(api_key=OPENAI_KEY) as server:
        yield server


@pytest.fixture
def standin(openai_server: OpenAIStandIn) -> Iterator[OpenAIStandIn]:
    """The stand-in, with nothing scripted, failed or delayed from an earlier test."""
    openai_server.reset()
    yield openai_server
    openai_server.reset()
