"""`agent-stream call`: play one call as Cloudonix would (see `caller_session`) and say how it went;
the exit status, the summary, the recording."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import TextIO

from websockets.exceptions import InvalidHandshake, InvalidURI

from adapters.media.g711 import MULAW
from entrypoints.simulator.caller_audio import RATE, builtin_phrase_ulaw, read_wav, write_wav
from entrypoints.simulator.caller_console import Console
from entrypoints.simulator.caller_options import DEFAULT_SECONDS, CallOptions, CallUsageError, mask_text
from entrypoints.simulator.caller_session import CallOutcome, CallSession

__all__ = ["DEFAULT_SECONDS", "CallOptions", "CallUsageError", "run_call"]


def _speech(options: CallOptions) -> tuple[bytes, str]:
    if options.wav is None:
        return builtin_phrase_ulaw(), "built-in test phrase"
    pcm = read_wav(options.wav, max_seconds=options.seconds)
    return MULAW.encode(pcm), options.wav.name


def run_call(options: CallOptions, out: TextIO | None = None) -> int:
    """Play the call; the process exit status (0: a normal close or the caller's stop; 1 otherwise)."""
    options.check()
    speech, name = _speech(options)
    console = Console(out or sys.stdout)
    session = CallSession(options, speech, name, console)
    started = time.monotonic()

    async def main() -> CallOutcome:
        loop = asyncio.get_running_loop()

        def on_interrupt() -> None:  # the first Ctrl-C hangs up; a second one interrupts
            session.hangup.set()
            loop.remove_signal_handler(signal.SIGINT)

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
        try:
            return await session.run()
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)

    status = 1
    try:
        outcome = asyncio.run(main())
        status = outcome.exit_status
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        console.done()
        console.event(time.monotonic() - started, f"could not connect: {_describe(exc)}")
    except KeyboardInterrupt:  # a second Ctrl-C: no goodbye, but keep what was heard
        console.done()
        console.event(time.monotonic() - started, "interrupted")
    console.event(time.monotonic() - started, session.summary())
    if options.record is not None:
        write_wav(options.record, session.ear.pcm())
        console.event(
            time.monotonic() - started,
            f"recorded {len(session.ear.pcm()) / 2 / RATE:.1f} s to {options.record}",
        )
    return status


def _describe(exc: BaseException) -> str:
    text = mask_text(str(exc)) or type(exc).__name__
    return text[:200]
