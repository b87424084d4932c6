"""What the caller does: it takes turns like a person, driven by the clock and by when the agent
last spoke (greeting, its phrase, the echo, the digits)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["EPSILON", "CallerScript", "Phase"]

EPSILON: Final = 1e-6  # clock readings are sums of 20 ms steps: compare them with a tolerance


class Phase(enum.Enum):
    WAITING = "waiting for the greeting to end"
    SPEAKING = "speaking"
    LISTENING = "listening for the echo"
    DIALLING = "pressing digits"
    IDLE = "listening"


@dataclass
class CallerScript:
    """Turn-taking of the simulated caller, driven by the clock and by when the agent last spoke.

    `step(now, voiced_until)` is called every 20 ms; it returns the digits to press now, and
    `phase` says whether to send the speech (`SPEAKING`) or silence.
    """

    speech_seconds: float
    digits: str = ""
    quiet: float = 0.8  # agent silence that ends its turn
    no_agent_wait: float = 3.0  # speak after this long if the agent has said nothing
    max_wait: float = 15.0  # speak after this long even if the agent is still talking
    echo_start_wait: float = 4.0  # stop waiting for an echo that has not begun after this long
    digit_interval: float = 1.0
    phase: Phase = Phase.WAITING
    since: float = 0.0  # when the current phase began
    _next_digit: int = 0
    _next_digit_at: float = 0.0

    def step(self, now: float, voiced_until: float | None) -> list[str]:
        if self.phase is Phase.WAITING:
            agent_done = voiced_until is not None and now - voiced_until >= self.quiet - EPSILON
            silent_agent = voiced_until is None and now >= self.no_agent_wait - EPSILON
            if agent_done or silent_agent or now >= self.max_wait - EPSILON:
                self.phase, self.since = Phase.SPEAKING, now
        if self.phase is Phase.SPEAKING and now - self.since >= self.speech_seconds - EPSILON:
            self.phase, self.since = Phase.LISTENING, now
        if self.phase is Phase.LISTENING:
            waited = now - self.since + EPSILON
            echoed = voiced_until is not None and voiced_until > self.since
            if (
                (echoed and voiced_until is not None and now - voiced_until >= self.quiet - EPSILON)
                or (not echoed and waited >= self.echo_start_wait)
                or waited >= self.speech_seconds + self.echo_start_wait + 2 * self.quiet
            ):
                self.phase, self.since, self._next_digit_at = Phase.DIALLING, now, now
        if self.phase is Phase.DIALLING:
            if self._next_digit >= len(self.digits):
                self.phase = Phase.IDLE
            elif now >= self._next_digit_at - EPSILON:
                digit = self.digits[self._next_digit]
                self._next_digit += 1
                self._next_digit_at = now + self.digit_interval
                return [digit]
        return []
