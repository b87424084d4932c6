"""What `agent-stream call` is told: its options checked, who it says it is in `start`, and the
stream URL it prints never holding the agent UUID."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.cli import main
from entrypoints.simulator.caller_options import CallOptions, CallUsageError, Identity, mask_url

AGENT = "9d6093bd-34b6-4ccd-b3c4-25c8520c766a"
URL = f"ws://127.0.0.1:8000/api/v1/agent-stream/{AGENT}?provider=cloudonix&Domain=acme"


def identity(url: str = URL, account_sid: str | None = None) -> Identity:
    return Identity.for_call(CallOptions(url=url, account_sid=account_sid))


def test_account_sid_comes_from_the_flag_then_the_domain_then_demo() -> None:
    assert identity(account_sid="other").account_sid == "other"
    assert identity().account_sid == "acme"
    assert identity(f"ws://h/api/v1/agent-stream/{AGENT}").account_sid == "demo"


def test_the_agent_uuid_is_masked_wherever_it_appears() -> None:
    masked = mask_url(URL)
    assert AGENT not in masked
    assert masked == "ws://127.0.0.1:8000/api/v1/agent-stream/9d60****?provider=cloudonix&Domain=acme"
    path_form = mask_url(f"wss://a.example/api/v1/agent-stream/cloudonix/{AGENT}?Domain=x")
    assert path_form == "wss://a.example/api/v1/agent-stream/cloudonix/9d60****?Domain=x"
    not_a_uuid = mask_url("ws://h/api/v1/agent-stream/some-secret-name")
    assert "some-secret-name" not in not_a_uuid
    assert "user:pw" not in mask_url(f"ws://user:pw@h:1/api/v1/agent-stream/{AGENT}")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (CallOptions(url=f"http://127.0.0.1:8000/api/v1/agent-stream/{AGENT}"), "must be a WebSocket URL"),
        (CallOptions(url="127.0.0.1:8000"), "must be a WebSocket URL"),
        (CallOptions(url=URL, seconds=0), "--seconds must be a positive number"),
        (CallOptions(url=URL, dtmf="12x"), "--dtmf takes 0-9"),
        (CallOptions(url=URL, record=Path("/no/such/dir/out.wav")), "no such directory"),
    ],
)
def test_unusable_options_are_refused(options: CallOptions, message: str) -> None:
    with pytest.raises(CallUsageError, match=message):
        options.check()


def test_the_command_refuses_a_non_websocket_url_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["call", "--url", f"https://example.com/api/v1/agent-stream/{AGENT}"])
    err = capsys.readouterr().err
    assert status == 2
    assert "must be a WebSocket URL (ws:// or wss://)" in err
    assert AGENT not in err
