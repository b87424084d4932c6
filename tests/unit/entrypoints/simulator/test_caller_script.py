"""The caller's turn-taking: it speaks after the greeting, listens for the echo, then dials.
Time is passed in, so these run without a server or sleeps."""

from __future__ import annotations

from entrypoints.simulator.caller_script import CallerScript, Phase


def run_script(
    script: CallerScript, voiced: list[tuple[float, float]], until: float
) -> list[tuple[float, str]]:
    """Step the script every 20 ms; `voiced` lists the (start, end) times the agent talks."""
    happened: list[tuple[float, str]] = []
    phase = script.phase
    for k in range(round(until / 0.02)):
        now = k * 0.02
        ends = [end for start, end in voiced if start <= now]
        voiced_until = min(max(ends), now) if ends else None
        digits = script.step(now, voiced_until)
        if script.phase is not phase:
            phase = script.phase
            happened.append((round(now, 2), phase.name))
        happened.extend((round(now, 2), f"dtmf {digit}") for digit in digits)
    return happened


class TestCallerScript:
    def test_speaks_after_the_greeting_then_dials_after_the_echo(self) -> None:
        script = CallerScript(speech_seconds=3.0, digits="1#")
        # greeting 0.1-10 s; the echo plays 1 s after the caller's phrase ends
        events = run_script(script, [(0.1, 10.0), (14.8, 17.8)], until=25)
        assert events == [
            (10.8, "SPEAKING"),
            (13.8, "LISTENING"),
            (18.6, "DIALLING"),
            (18.6, "dtmf 1"),
            (19.6, "dtmf #"),
            (19.62, "IDLE"),
        ]

    def test_speaks_after_three_seconds_when_the_agent_says_nothing(self) -> None:
        script = CallerScript(speech_seconds=1.0)
        assert run_script(script, [], until=5)[:2] == [(3.0, "SPEAKING"), (4.0, "LISTENING")]

    def test_speaks_over_an_agent_that_never_stops(self) -> None:
        script = CallerScript(speech_seconds=1.0)
        assert run_script(script, [(0.1, 100.0)], until=16)[0] == (15.0, "SPEAKING")

    def test_dials_anyway_when_no_echo_comes(self) -> None:
        script = CallerScript(speech_seconds=2.0, digits="5")
        events = run_script(script, [(0.1, 2.0)], until=12)
        assert events == [
            (2.8, "SPEAKING"),
            (4.8, "LISTENING"),
            (8.8, "DIALLING"),
            (8.8, "dtmf 5"),
            (8.82, "IDLE"),
        ]

    def test_without_digits_it_just_listens(self) -> None:
        script = CallerScript(speech_seconds=1.0)
        run_script(script, [(0.0, 1.0), (3.0, 4.0)], until=10)
        assert script.phase is Phase.IDLE
