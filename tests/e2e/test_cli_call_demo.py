"""The newcomer's path, as real processes: `agent-stream demo` in one terminal, the printed
`agent-stream call` command in another, then `agent-stream runs list`.

Each process runs in a fresh working directory with no `AGENT_STREAM_*` variable, as on a fresh
clone; the demo is always stopped (Ctrl-C, then killed if it lingers). What the caller recorded is
checked against the audio the agent is known to play: the greeting asset and the caller's own
phrase echoed back, matched by their energy envelopes, not by "some bytes came back".
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from adapters.media.g711 import MULAW
from adapters.pipelines.assets import greeting_ulaw
from entrypoints.simulator.caller_audio import builtin_phrase_ulaw

Signal = npt.NDArray[np.float64]
AGENT_STREAM = str(Path(sys.executable).with_name("agent-stream"))
RATE = 8000
FRAME = 160  # 20 ms
CALL_SECONDS = 24  # the greeting (~10.3 s), the phrase (~3.7 s), the pause and the echo
STARTUP_TIMEOUT = 90.0
CALL_TIMEOUT = CALL_SECONDS + 30.0


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_STREAM_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoProcess:
    proc: subprocess.Popen[str]
    cwd: Path
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def call_words(self) -> list[str]:
        line = next(line for line in self.lines if "agent-stream call --url" in line)
        return shlex.split(line.strip())

    @property
    def call_url(self) -> str:
        words = self.call_words
        return words[words.index("--url") + 1]

    @property
    def agent_uuid(self) -> str:
        match = re.search(r"agent_uuid ([0-9a-f-]{36})", self.text)
        assert match, self.text
        return match.group(1)

    @property
    def api_key(self) -> str:
        match = re.search(r"API key\s+(ask_\S+)", self.text)
        assert match, self.text
        return match.group(1)

    def log(self) -> str:
        return (self.cwd / "demo.log").read_text(errors="replace")[-4000:]


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line.rstrip("\n"))
    lines.put(None)


def start_demo(cwd: Path, port: int) -> DemoProcess:
    log = (cwd / "demo.log").open("w")
    proc = subprocess.Popen(  # noqa: S603
        [AGENT_STREAM, "demo", "--port", str(port)],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    log.close()
    demo = DemoProcess(proc, cwd)
    pending: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, pending), daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        while not any("agent-stream runs list" in line for line in demo.lines):
            line = pending.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                pytest.fail(f"the demo exited with {proc.wait()}:\n{demo.text}\n{demo.log()}")
            demo.lines.append(line)
    except queue.Empty:
        stop_demo(demo)
        pytest.fail(f"the demo printed no call command in {STARTUP_TIMEOUT} s:\n{demo.text}\n{demo.log()}")
    threading.Thread(target=_drain, args=(pending, demo), daemon=True).start()
    return demo


def _drain(pending: queue.Queue[str | None], demo: DemoProcess) -> None:
    while (line := pending.get()) is not None:
        demo.lines.append(line)


def stop_demo(demo: DemoProcess) -> int:
    """Ctrl-C, as a person stops it; killed if it has not stopped after 30 s."""
    if demo.proc.poll() is None:
        demo.proc.send_signal(signal.SIGINT)
        try:
            return demo.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.proc.kill()
            demo.proc.wait(timeout=10)
            pytest.fail(f"the demo did not stop on Ctrl-C:\n{demo.log()}")
    return demo.proc.returncode


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    process = start_demo(tmp_path_factory.mktemp("demo"), free_port())
    try:
        yield process
    finally:
        stop_demo(process)


def run_cli(cwd: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [AGENT_STREAM, *args],
        check=False,
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_call(cwd: Path, url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603
        [AGENT_STREAM, "call", "--url", url, *args],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(call: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = call.communicate(timeout=CALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        call.kill()
        out, _ = call.communicate(timeout=10)
        pytest.fail(f"the call did not end in {CALL_TIMEOUT} s:\n{out}")
    return call.returncode, out


# -- audio matching ---------------------------------------------------------------------------------


def read_recording(path: Path) -> Signal:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def ulaw_signal(ulaw: bytes) -> Signal:
    return np.frombuffer(MULAW.decode(ulaw), dtype="<i2").astype(np.float64)


def envelope(x: Signal) -> Signal:
    """Level of each 20 ms frame in dBFS, floored at -60."""
    n = len(x) // FRAME
    power = (x[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1)
    return np.asarray(np.maximum(10 * np.log10(np.maximum(power, 1e-9) / 32768.0**2), -60.0))


def best_match(recording: Signal, reference: Signal, from_s: float, to_s: float) -> tuple[float, float]:
    """(correlation, start in seconds) of the reference's envelope at its best position in the
    recording, its start searched between `from_s` and `to_s`."""
    rec, ref = envelope(recording), envelope(reference)
    ref = (ref - ref.mean()) / ref.std()
    best = (-1.0, 0.0)
    for start in range(max(0, round(from_s / 0.02)), min(len(rec) - len(ref), round(to_s / 0.02)) + 1):
        window = rec[start : start + len(ref)]
        if window.std() == 0:
            continue
        corr = float(np.mean(ref * (window - window.mean()) / window.std()))
        best = max(best, (corr, start * 0.02))
    return best


def event_time(output: str, text: str) -> float:
    match = re.search(r"\[\s*([\d.]+) s\] " + re.escape(text), output)
    assert match, f"no {text!r} in:\n{output}"
    return float(match.group(1))


def write_stereo_44k(path: Path, mono_8k: Signal) -> None:
    """The phrase as a 44.1 kHz stereo WAV (linear interpolation: the call must resample it)."""
    t_out = np.arange(round(len(mono_8k) * 44100 / RATE)) / 44100
    up = np.interp(t_out, np.arange(len(mono_8k)) / RATE, mono_8k)
    stereo = np.stack([up, 0.8 * up], axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(np.clip(np.round(stereo), -32768, 32767).astype("<i2").tobytes())


# -- the tests --------------------------------------------------------------------------------------


def test_the_demo_prints_what_a_newcomer_needs(demo: DemoProcess) -> None:
    assert demo.call_words[:7] == [
        "python3",
        "-m",
        "uv",
        "run",
        "--no-dev",
        "agent-stream",
        "call",
    ]  # as the README
    assert demo.call_words[-2:] == ["--record", "call.wav"]
    assert demo.call_url.startswith("ws://127.0.0.1:")
    assert demo.call_url.endswith(f"/api/v1/agent-stream/{demo.agent_uuid}?provider=cloudonix&Domain=demo")
    assert "&amp;Domain=demo" in demo.text  # the CXML, escaped
    assert demo.api_key.startswith("ask_")
    assert (demo.cwd / "agent-stream.db").exists()


def test_calls_hear_the_greeting_and_their_echo_and_the_runs_complete(demo: DemoProcess) -> None:
    phrase = ulaw_signal(builtin_phrase_ulaw())
    write_stereo_44k(demo.cwd / "phrase-44k.wav", phrase)
    seconds = str(CALL_SECONDS)
    calls = {
        "built-in": start_call(demo.cwd, demo.call_url, "--record", "out.wav", "--seconds", seconds),
        "wav": start_call(
            demo.cwd, demo.call_url, "--wav", "phrase-44k.wav", "--record", "wav.wav", "--seconds", seconds
        ),
        "hash": start_call(demo.cwd, demo.call_url, "--dtmf", "#", "--seconds", "60"),
    }
    results = {name: finish(call) for name, call in calls.items()}

    for name, (status, out) in results.items():
        assert status == 0, f"{name}:\n{out}"
        assert demo.agent_uuid not in out  # the URL's secret is masked
        assert "connected sent" in out
        assert "start sent" in out
        assert "first media received" in out

    _, out = results["built-in"]
    assert "stop sent (after --seconds)" in out
    assert re.search(r"closed by the (agent|caller): code 1000", out), out
    assert "call ended: you hung up" in out
    _, hash_out = results["hash"]
    assert "dtmf # sent" in hash_out
    assert "closed by the agent: code 1000" in hash_out  # `#` hangs up through the provider API
    assert "call ended: you hung up (the agent ended the call when you asked)" in hash_out
    assert "stop sent" not in hash_out

    greeting = ulaw_signal(greeting_ulaw())
    for name, wav in (("built-in", "out.wav"), ("wav", "wav.wav")):
        recording = read_recording(demo.cwd / wav)
        _, out = results[name]
        assert len(recording) / RATE == pytest.approx(CALL_SECONDS, abs=1.0)
        first = recording[round(0.2 * RATE) : 3 * RATE]
        assert 20 * np.log10(np.sqrt(np.mean(first**2)) / 32768) > -35, "no greeting in the first seconds"
        corr, at = best_match(recording, greeting, 0.0, 2.0)
        assert corr > 0.9, f"{name}: the greeting is not in the recording (correlation {corr:.2f})"
        assert at < 1.0
        spoken_end = event_time(out, "done speaking")
        corr, at = best_match(recording, phrase, spoken_end, spoken_end + 3.0)
        assert corr > 0.8, f"{name}: the phrase was not echoed (correlation {corr:.2f})"
        assert at - spoken_end < 2.0, f"{name}: the echo began {at - spoken_end:.2f} s after the phrase"

    runs = runs_by_session(demo)
    expected = {"built-in": "caller_hangup", "wav": "caller_hangup", "hash": "caller_hangup"}
    for name, reason in expected.items():
        run = runs[session_of(results[name][1])]
        assert (run["state"], run["end_reason"], run["close_code"]) == ("completed", reason, 1000), name


def test_call_says_a_transfer_and_hears_a_replayed_greeting_to_its_end(demo: DemoProcess) -> None:
    calls = {
        "transfer": start_call(demo.cwd, demo.call_url, "--dtmf", "0", "--seconds", "60"),
        "star": start_call(demo.cwd, demo.call_url, "--dtmf", "*", "--record", "star.wav"),  # default 24 s
    }
    results = {name: finish(call) for name, call in calls.items()}

    status, out = results["transfer"]
    assert status == 0, out
    assert "closed by the agent: code 1000, reason 'Transferred to ***0123'" in out
    assert "call ended: transferred to ***0123" in out
    assert "+15555550123" not in out  # masked as the service masks numbers

    status, out = results["star"]
    assert status == 0, out
    pressed = event_time(out, "dtmf * sent")
    assert pressed + 10 > CALL_SECONDS, "the replay would not have run past the default --seconds"
    assert "the agent is still speaking: hanging up once it is quiet" in out
    assert "stop sent (after --seconds, once the agent was quiet)" in out
    assert "call ended: you hung up" in out
    greeting = ulaw_signal(greeting_ulaw())
    recording = read_recording(demo.cwd / "star.wav")
    assert len(recording) / RATE > pressed + len(greeting) / RATE, "the replayed greeting was cut"
    corr, _ = best_match(recording, greeting, pressed, pressed + 2.0)
    assert corr > 0.9, f"the replayed greeting is not in the recording whole (correlation {corr:.2f})"

    runs = runs_by_session(demo)
    transferred = runs[session_of(results["transfer"][1])]
    assert (transferred["end_reason"], transferred["close_reason"]) == (
        "transferred",
        "Transferred to ***0123",
    )
    assert runs[session_of(out)]["end_reason"] == "caller_hangup"


def session_of(call_output: str) -> str:
    match = re.search(r"session ([0-9a-f]{8})\.\.\.", call_output)
    assert match, call_output
    return match.group(1)


def runs_by_session(demo: DemoProcess) -> dict[str, dict[str, Any]]:
    """`agent-stream runs list` (a process of its own), keyed by the first 8 characters of the
    Cloudonix session each call's `start` carried."""
    listed = run_cli(demo.cwd, "runs", "list", "--agent", demo.agent_uuid)
    assert listed.returncode == 0, listed.stderr
    runs = [json.loads(line) for line in listed.stdout.splitlines()]
    return {run["logs"]["stream"]["session"][:8]: run for run in runs}


def test_ctrl_c_hangs_up_with_a_stop_and_exits_0(demo: DemoProcess) -> None:
    call = start_call(demo.cwd, demo.call_url, "--record", "interrupted.wav")
    time.sleep(4.0)
    call.send_signal(signal.SIGINT)
    status, out = finish(call)
    assert status == 0, out
    assert "stop sent (Ctrl-C)" in out
    assert "closed by the agent: code 1000" in out
    recording = read_recording(demo.cwd / "interrupted.wav")
    assert 1.0 < len(recording) / RATE < 6.0  # stopped at Ctrl-C, long before the 24 s default
    run = runs_by_session(demo)[session_of(out)]
    assert (run["state"], run["end_reason"]) == ("completed", "caller_hangup")


def test_a_call_to_an_unknown_agent_reports_the_close_and_exits_1(demo: DemoProcess) -> None:
    stranger = str(uuid.uuid4())
    url = demo.call_url.replace(demo.agent_uuid, stranger)
    status, out = finish(start_call(demo.cwd, url, "--seconds", "5"))
    assert status == 1, out
    assert "closed by the agent: code 1008, reason 'Workflow not found'" in out
    assert stranger not in out


def test_a_refused_connection_exits_1(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/api/v1/agent-stream/{uuid.uuid4()}?provider=cloudonix&Domain=demo"
    status, out = finish(start_call(tmp_path, url, "--record", "none.wav"))
    assert status == 1, out
    assert "could not connect" in out


def test_a_second_demo_reuses_the_agent_and_shows_a_new_key(tmp_path: Path) -> None:
    first = start_demo(tmp_path, free_port())
    assert stop_demo(first) == 0
    assert "demo stopped" in first.text
    second = start_demo(tmp_path, free_port())
    try:
        assert second.agent_uuid == first.agent_uuid
        assert "(reused from an earlier run)" in second.text
        assert second.api_key != first.api_key
    finally:
        assert stop_demo(second) == 0


def test_the_demo_drains_like_serve_and_a_second_signal_hangs_up_at_once(tmp_path: Path) -> None:
    own = start_demo(tmp_path, free_port())  # its own: this test stops it mid-call
    try:
        call = start_call(own.cwd, own.call_url, "--seconds", "60")
        time.sleep(3.0)  # the greeting is playing
        own.proc.send_signal(signal.SIGTERM)  # the drain: the call may go on (30 s by default)
        time.sleep(1.0)
        assert call.poll() is None, "the drain ended the call before its grace"
        own.proc.send_signal(signal.SIGTERM)  # a second signal: hang up through Cloudonix now
        status, out = finish(call)
        assert status == 0, out
        assert "closed by the agent: code 1000" in out, out
        assert "call ended: hung up by the agent: the server is shutting down" in out, out
        own.proc.wait(timeout=30)
    finally:
        stop_demo(own)
    run = runs_by_session(own)[session_of(out)]
    assert (run["state"], run["end_reason"], run["close_code"]) == ("completed", "drained", 1000)
