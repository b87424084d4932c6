"""What the caller prints: timed event lines, a progress line, and how the call ended in words."""

from __future__ import annotations

import math
from typing import Final, TextIO

from domain.workflow_run import HANGUP_CLOSE_REASONS, TRANSFERRED_CLOSE_PREFIX, EndReason
from entrypoints.simulator.caller_script import Phase

__all__ = ["Console", "describe_ending"]


class Console:
    """Event lines, and a progress line: one line redrawn in place on a terminal, plain lines
    every `plain_every` seconds otherwise."""

    def __init__(self, out: TextIO, tty: bool | None = None, plain_every: float = 2.0) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.plain_every = plain_every
        self._drawn = False
        self._last_plain = -math.inf
        self._last_tty = -math.inf

    def event(self, at: float, text: str) -> None:
        self._erase()
        self.out.write(f"[{at:6.2f} s] {text}\n")
        self.out.flush()

    def progress(self, at: float, heard: float, dbfs: float, phase: Phase) -> None:
        if self.tty:
            if at - self._last_tty < 0.1:
                return
            self._last_tty = at
            bars = max(0, min(20, round((dbfs + 60) / 3)))
            line = (
                f"  {at:5.1f} s | heard {heard:5.1f} s | VU [{'#' * bars}{'.' * (20 - bars)}] "
                f"{dbfs:4.0f} dBFS | {phase.value}"
            )
            self.out.write("\r\x1b[K" + line)
            self._drawn = True
        else:
            if at - self._last_plain < self.plain_every:
                return
            self._last_plain = at
            self.out.write(
                f"[{at:6.2f} s] progress: heard {heard:.1f} s of agent audio, "
                f"level {dbfs:.0f} dBFS, {phase.value}\n"
            )
        self.out.flush()

    def _erase(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False

    def done(self) -> None:
        self._erase()
        self.out.flush()


_ENDINGS: Final = {
    HANGUP_CLOSE_REASONS[EndReason.CALLER_HANGUP]: "you hung up (the agent ended the call when you asked)",
    HANGUP_CLOSE_REASONS[EndReason.AGENT_HANGUP]: "hung up by the agent",
    HANGUP_CLOSE_REASONS[EndReason.OPERATOR_HANGUP]: "hung up by an operator",
    HANGUP_CLOSE_REASONS[EndReason.MAX_DURATION]: "hung up by the agent: the call's time limit",
    HANGUP_CLOSE_REASONS[EndReason.DRAINED]: "hung up by the agent: the server is shutting down",
}


def describe_ending(code: int | None, reason: str, stopped_by_caller: bool, closed_by_agent: bool) -> str:
    """How the call ended, in words, from the close the server sent and whether `stop` went out."""
    if stopped_by_caller:
        return "you hung up"
    if code == 1000:
        if reason.startswith(TRANSFERRED_CLOSE_PREFIX):
            return "transferred to " + reason.removeprefix(TRANSFERRED_CLOSE_PREFIX)
        return _ENDINGS.get(reason, "the agent closed the stream")
    if code is None or not closed_by_agent:
        return "the connection was lost"
    return f"ended by the server: code {code}" + (f" ({reason})" if reason else "")
