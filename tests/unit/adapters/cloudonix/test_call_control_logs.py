"""`TwilioFramedCall` tells the run what its provider hang-up did (`logs.provider_hangup`)."""

from __future__ import annotations

from adapters.cloudonix.media_stream import TwilioFramedCall
from adapters.memory.calls import InMemoryCallSocket, InMemoryProviderSessions
from application.ports.live_call import ProviderCallRef
from domain.stream_events import StreamStart
from domain.telephony import SecretStr

START = StreamStart(stream_sid="MZ", call_sid="CA", session="S", account_sid="acme")
REF = ProviderCallRef(domain="acme.cloudonix.net", session="S", bearer_token=SecretStr("T"))


async def _hung_up(provider: InMemoryProviderSessions) -> tuple[TwilioFramedCall, InMemoryCallSocket]:
    socket = InMemoryCallSocket()
    call = TwilioFramedCall(socket, START, provider, REF, hangup_drain_seconds=0.1)
    await call.hang_up()
    await call.aclose()
    return call, socket


async def test_nothing_is_logged_before_a_hang_up():
    call = TwilioFramedCall(InMemoryCallSocket(), START, InMemoryProviderSessions(), REF)
    assert call.control_logs() == {}
    await call.aclose()


async def test_a_hang_up_that_went_through_is_logged():
    call, _ = await _hung_up(InMemoryProviderSessions())
    assert call.control_logs() == {
        "provider_hangup": {"hung_up": True, "attempts": 1, "last_status": 204, "error": None}
    }


async def test_a_failed_hang_up_is_logged_and_the_stream_still_ends():
    provider = InMemoryProviderSessions()
    provider.fail_hang_up = True
    call, socket = await _hung_up(provider)
    assert call.control_logs() == {
        "provider_hangup": {"hung_up": False, "attempts": 1, "last_status": 500, "error": None}
    }
    assert call.ended_by == "agent_hangup"
    assert socket.closed_with is not None and socket.closed_with.code == 1000
