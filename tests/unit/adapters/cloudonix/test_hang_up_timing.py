"""`TwilioFramedCall.hang_up`: only the agent's own last words play out before the provider
hang-up; a hang-up someone asked for (caller, operator, drain) or a limit is immediate."""

from __future__ import annotations

import time

import pytest

from adapters.cloudonix.media_stream import TwilioFramedCall
from adapters.memory.calls import InMemoryCallSocket, InMemoryProviderSessions
from application.ports.live_call import ProviderCallRef
from domain.close_policy import Close
from domain.stream_events import StreamStart
from domain.telephony import SecretStr
from domain.workflow_run import EndReason, last_words_play_out

START = StreamStart(stream_sid="MZ", call_sid="CA", session="S", account_sid="acme")
REF = ProviderCallRef(domain="acme.cloudonix.net", session="S", bearer_token=SecretStr("T"))
TEN_SECONDS = bytes(2 * 8000 * 10)  # the length of the line test's greeting


def test_only_the_agents_own_endings_wait_for_its_last_words():
    waiting = {reason for reason in EndReason if last_words_play_out(reason)}
    assert waiting == {EndReason.AGENT_HANGUP, EndReason.ERROR}


@pytest.mark.parametrize(
    ("reason", "close_reason"),
    [
        (EndReason.CALLER_HANGUP, "Hung up at the caller's request"),
        (EndReason.OPERATOR_HANGUP, "Hung up by an operator"),
        (EndReason.DRAINED, "Server shutting down"),
        (EndReason.MAX_DURATION, "Maximum call duration reached"),
    ],
)
async def test_a_hang_up_asked_for_cuts_the_audio_and_ends_at_once(reason: EndReason, close_reason: str):
    socket = InMemoryCallSocket()
    provider = InMemoryProviderSessions()
    call = TwilioFramedCall(socket, START, provider, REF, hangup_drain_seconds=5.0)
    await call.play(TEN_SECONDS)
    began = time.monotonic()
    await call.hang_up(reason)
    took = time.monotonic() - began
    await call.aclose()
    assert took < 1.0, f"the hang-up waited {took:.2f} s for the greeting"
    assert provider.hung_up == [("acme.cloudonix.net", "S")]
    assert "clear" in [event["event"] for event in socket.sent_events]
    assert socket.closed_with == Close(1000, close_reason) == call.closed_with
    assert call.ended_by == reason


async def test_the_agents_goodbye_plays_before_the_hang_up():
    socket = InMemoryCallSocket()
    provider = InMemoryProviderSessions()
    call = TwilioFramedCall(socket, START, provider, REF, hangup_drain_seconds=5.0)
    goodbye = bytes(2 * 8000 * 6 // 10)  # 0.6 s
    await call.play(goodbye)
    began = time.monotonic()
    await call.hang_up(EndReason.AGENT_HANGUP)
    took = time.monotonic() - began
    await call.aclose()
    assert took >= 0.4, "the goodbye was cut"
    assert [event["event"] for event in socket.sent_events].count("clear") == 0
    assert provider.hung_up == [("acme.cloudonix.net", "S")]
    assert socket.closed_with == Close(1000, "Hung up by the agent")


async def test_a_transfer_closes_with_the_masked_destination():
    socket = InMemoryCallSocket()
    call = TwilioFramedCall(socket, START, InMemoryProviderSessions(), REF)
    await call.transfer("+15555550123")
    await call.aclose()
    assert socket.closed_with == Close(1000, "Transferred to ***0123") == call.closed_with
