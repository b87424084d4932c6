"""What `agent-stream call` prints while the call runs: one redrawn progress line on a terminal,
plain periodic lines on a pipe."""

from __future__ import annotations

import io

from entrypoints.simulator.caller_console import Console
from entrypoints.simulator.caller_script import Phase


def test_a_terminal_gets_one_redrawn_progress_line() -> None:
    out = io.StringIO()
    console = Console(out, tty=True)
    console.progress(1.0, 0.5, -20.0, Phase.WAITING)
    console.progress(1.02, 0.5, -20.0, Phase.WAITING)  # within 100 ms: not redrawn
    console.progress(1.2, 0.7, -96.0, Phase.SPEAKING)
    console.event(1.3, "mark 'x' received")
    text = out.getvalue()
    assert text.count("\r\x1b[K") == 3  # two draws, one erase before the event line
    assert "VU [#############.......]  -20 dBFS" in text
    assert text.endswith("[  1.30 s] mark 'x' received\n")


def test_a_pipe_gets_plain_periodic_progress_lines() -> None:
    out = io.StringIO()
    console = Console(out, tty=False, plain_every=2.0)
    for k in range(250):  # 5 s of 20 ms ticks
        console.progress(k * 0.02, 0.0, -96.0, Phase.IDLE)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "\r" not in out.getvalue()
    assert lines[0] == "[  0.00 s] progress: heard 0.0 s of agent audio, level -96 dBFS, listening"
