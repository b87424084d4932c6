"""Recordings end to end: a real-time caller on the served app, the recording fetched through the
API and compared with what the caller sent and heard; organisation scope and byte ranges."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from moto.server import ThreadedMotoServer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from adapters.pipelines.assets import greeting_ulaw
from domain.workflow_run import RunState
from entrypoints.settings import Settings
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.e2e.conftest import SECRET_KEY, Tenant, TenantFactory
from tests.media_caller import MediaCaller, Received, best_match, pcm_of, speech_phrase
from tests.processes import serve_env, serve_process
from tests.served import free_port, served_app

RECORDED = {"engine": "linetest", "recording": True, "max_call_seconds": 60}
RATE = 8000
MAX_OFFSET = 0.04  # seconds


def best_lag(needle: np.ndarray, haystack: np.ndarray) -> tuple[float, float]:
    """Where `needle` sits in `haystack` (seconds) and how well it matches there (1.0 = identical)."""
    at, score = best_match(needle, haystack)
    return at / RATE, score


def played(received: Received) -> list[tuple[float, bytes]]:
    """When each frame the caller got played, as a provider plays them: in order, each after the
    previous, never before it arrived; a `clear` drops what had not played yet."""
    out: list[tuple[float, bytes]] = []
    end = 0.0
    clears = list(received.clears)
    for arrival, chunk in received.media:
        while clears and clears[0] <= arrival:
            cut = clears.pop(0)
            out = [(at, c) for at, c in out if at < cut]
            end = min(end, cut)
        start = max(arrival, end)
        out.append((start, chunk))
        end = start + len(chunk) / RATE
    return out


def wav_channels(body: bytes) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return frames[:, 0].astype(np.float64), frames[:, 1].astype(np.float64)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt((samples**2).mean())) if len(samples) else 0.0


@pytest.fixture
async def recorded(tenants: TenantFactory, cloudonix: CloudonixStandIn) -> Tenant:
    line = await tenants.create(definition=RECORDED)
    cloudonix.add_domain(line.domain, line.token, sessions={"S-rec"})
    return line


async def _short_call(line: Tenant) -> int:
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-rec")
        await caller.stream(speech_phrase(1.0))
        await caller.stop()
        await caller.closed()
    run = await line.ended_run(5.0)
    assert run.id is not None
    return run.id


async def test_the_two_channels_line_up_with_what_the_caller_sent_and_heard(
    recorded: Tenant, api: httpx.AsyncClient
):
    phrase = speech_phrase(1.6)
    async with connect(recorded.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-rec")
        await caller.silence(1.8)  # the greeting plays meanwhile; at 1.8 s it is loud
        first = len(caller.sent_at)
        await caller.stream(phrase)  # talking over the greeting: `clear`
        await caller.silence(2.5)  # the pause, then the echo
        await caller.stop()
        assert await caller.closed() == (1000, "")
    run = await recorded.ended_run(5.0)
    assert run.state is RunState.COMPLETED
    assert run.recording is not None and run.recording.channels == 2
    answer = await api.get(f"/api/v1/runs/{run.id}/recording", headers=recorded.auth)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "audio/wav"
    left, right = wav_channels(answer.content)
    assert abs(len(left) / RATE - run.recording.seconds) < 0.01
    t0 = caller.sent_at[0]  # the recording's time 0: the stream's first frame

    # caller, left: the phrase where it was sent
    at, match = best_lag(pcm_of(phrase), left)
    assert match > 0.9
    assert abs(at - (caller.sent_at[first] - t0)) < MAX_OFFSET, (at, caller.sent_at[first] - t0)

    # agent, right: the greeting's start and the echo, where the caller heard them
    heard = played(caller.received)
    clear = caller.received.clears[0]
    greeting = [(at, chunk) for at, chunk in heard if at < clear]
    after = [(at, chunk) for at, chunk in heard if at >= clear]
    loud = next(i for i, (_, chunk) in enumerate(after) if rms(pcm_of(chunk)) > 500)
    echo = after[loud:]
    for segment in (greeting[:25], echo[:50]):
        at, match = best_lag(pcm_of(b"".join(chunk for _, chunk in segment)), right)
        assert match > 0.9
        assert abs(at - (segment[0][0] - t0)) < MAX_OFFSET, (at, segment[0][0] - t0)

    # the greeting's tail that `clear` discarded is not in it: silence until the echo
    start = round((clear - t0 + 0.03) * RATE)
    assert rms(right[round((clear - t0 - 0.3) * RATE) : start - 240]) > 300  # it was talking
    assert rms(right[start : start + 1600]) < 30, "the cleared tail is in the recording"


async def test_a_cleared_tail_is_not_in_the_recording(recorded: Tenant, api: httpx.AsyncClient):
    """`#` during the greeting: `clear`, then the hang-up. The greeting audio already sent to play
    after the `clear` (up to 100 ms) was discarded by the provider; the recording ends with it."""
    async with connect(recorded.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-rec")
        await caller.silence(1.8)  # the greeting is loud from 1.78 s to 2.28 s
        await caller.dtmf("#")
        await caller.closed()
    run = await recorded.ended_run(5.0)
    answer = await api.get(f"/api/v1/runs/{run.id}/recording", headers=recorded.auth)
    _, right = wav_channels(answer.content)
    t0 = caller.sent_at[0]
    clear = caller.received.clears[0] - t0
    assert rms(right[round((clear - 0.2) * RATE) : round(clear * RATE)]) > 300  # it was talking
    tail = right[round((clear + 0.01) * RATE) :]
    assert rms(tail) < 30, f"{len(tail) / RATE:.3f} s of the cleared greeting is in the recording"


async def test_another_organisation_gets_404_and_ranges_work(
    recorded: Tenant, tenants: TenantFactory, api: httpx.AsyncClient
):
    run_id = await _short_call(recorded)
    url = f"/api/v1/runs/{run_id}/recording"
    whole = await api.get(url, headers=recorded.auth)
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    size = len(whole.content)
    assert int(whole.headers["content-length"]) == size > 44

    other = await tenants.create()
    refused = await api.get(url, headers=other.auth)
    assert refused.status_code == 404
    assert refused.json() == {"detail": "Run not found"}

    part = await api.get(url, headers={**recorded.auth, "Range": "bytes=0-43"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-43/{size}"
    assert part.content == whole.content[:44]
    assert part.content.startswith(b"RIFF")
    tail = await api.get(url, headers={**recorded.auth, "Range": "bytes=-100"})
    assert (tail.status_code, tail.content) == (206, whole.content[-100:])
    assert tail.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"
    open_ended = await api.get(url, headers={**recorded.auth, "Range": f"bytes={size - 10}-"})
    assert (open_ended.status_code, open_ended.content) == (206, whole.content[-10:])
    beyond = await api.get(url, headers={**recorded.auth, "Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.json() == {"detail": f"Range not satisfiable: the recording has {size} bytes"}
    several = await api.get(url, headers={**recorded.auth, "Range": "bytes=0-1,5-6"})
    assert (several.status_code, several.content) == (200, whole.content)


async def test_an_agent_without_recording_leaves_none(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, api: httpx.AsyncClient
):
    line = await tenants.create(definition={"engine": "linetest"})
    cloudonix.add_domain(line.domain, line.token, sessions={"S-rec"})
    run_id = await _short_call(line)
    answer = await api.get(f"/api/v1/runs/{run_id}", headers=line.auth)
    assert answer.json()["recording"] is None
    missing = await api.get(f"/api/v1/runs/{run_id}/recording", headers=line.auth)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Recording not found"})


async def test_the_run_carries_its_recording(recorded: Tenant, api: httpx.AsyncClient):
    run_id = await _short_call(recorded)
    body = (await api.get(f"/api/v1/runs/{run_id}", headers=recorded.auth)).json()
    assert set(body["recording"]) == {"url", "seconds", "channels"}
    assert body["recording"]["url"].endswith(f"/api/v1/runs/{run_id}/recording")
    assert body["recording"]["channels"] == 2
    assert 0.9 < body["recording"]["seconds"] < 5


async def test_a_server_killed_mid_call_leaves_a_recording_that_plays_after_restart(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str, tmp_path: Path
):
    line = await tenants.create(definition=RECORDED)
    cloudonix.add_domain(line.domain, line.token, sessions={"S-rec"})
    folder = tmp_path / "recordings"
    env = serve_env(
        database_url, cloudonix.url, SECRET_KEY, instance_ttl="60", recordings_url=f"file://{folder}"
    )
    port = free_port()
    async with serve_process(env, port) as first:
        here = dataclasses.replace(line, app_url=first.url)
        with contextlib.suppress(ConnectionClosed):
            async with connect(here.stream_url(), compression=None) as ws:
                caller = MediaCaller(ws)
                await caller.handshake("S-rec")
                await caller.silence(1.0)  # the greeting plays meanwhile
                await caller.stream(speech_phrase(1.0))  # and is interrupted
                await caller.silence(3.0)  # the echo plays meanwhile
                first.kill()
    [left_behind] = (folder / ".partial").iterdir()
    assert left_behind.name.endswith(".wav.part")
    assert left_behind.read_bytes()[40:44] == b"\0\0\0\0"  # the data size was never written

    async with serve_process(env, port) as second:  # the same name: its previous life is reaped at once
        run = None
        for _ in range(100):
            run = await line.only_run()
            if run.recording is not None:
                break
            await asyncio.sleep(0.1)
        assert run is not None and run.recording is not None, run
        assert (run.state, run.end_reason) == (RunState.FAILED, "instance_lost")
        async with httpx.AsyncClient(base_url=second.url) as api:
            answer = await api.get(f"/api/v1/runs/{run.id}/recording", headers=line.auth)
    assert answer.status_code == 200
    left, right = wav_channels(answer.content)  # a playable WAV: its sizes were repaired
    assert 5.0 - 2.5 <= len(left) / RATE <= 5.5  # a crash loses at most the last seconds
    assert abs(len(left) / RATE - run.recording.seconds) < 0.01
    at, match = best_lag(pcm_of(speech_phrase(1.0)), left)
    assert match > 0.9
    assert abs(at - 1.0) < MAX_OFFSET
    _, match = best_lag(pcm_of(greeting_ulaw()[:6400]), right)
    assert match > 0.9
    assert not list((folder / ".partial").iterdir())


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 in server mode: a real HTTP server on loopback, reached through the standard
    `AWS_*` variables (as `serve` would be configured)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield url
    finally:
        server.stop()


async def test_an_s3_store_round_trip(
    s3_server: str, settings: Settings, tenants: TenantFactory, cloudonix: CloudonixStandIn
):
    from aiobotocore.session import get_session

    async with get_session().create_client("s3") as s3:
        await s3.create_bucket(Bucket="calls")
        port = free_port()
        on_s3 = dataclasses.replace(
            settings,
            recordings_url="s3://calls/agent-stream/",
            public_url=f"http://127.0.0.1:{port}",
            instance_id="s3-instance",
            instance_name="s3-host",
        )
        with served_app(on_s3, port=port) as url:
            line = dataclasses.replace(await tenants.create(definition=RECORDED), app_url=url)
            cloudonix.add_domain(line.domain, line.token, sessions={"S-rec"})
            run_id = await _short_call(line)
            run = await line.only_run()
            assert run.recording is not None
            assert run.recording.url == f"{url}/api/v1/runs/{run_id}/recording"
            async with httpx.AsyncClient(base_url=url) as api:
                whole = await api.get(f"/api/v1/runs/{run_id}/recording", headers=line.auth)
                part = await api.get(
                    f"/api/v1/runs/{run_id}/recording", headers={**line.auth, "Range": "bytes=4-11"}
                )
        stored = await s3.get_object(Bucket="calls", Key=f"agent-stream/run-{run_id}.wav")
        async with stored["Body"] as body:
            content = await body.read()
    assert whole.status_code == 200
    assert whole.content == content
    left, _ = wav_channels(content)
    assert abs(len(left) / RATE - run.recording.seconds) < 0.01
    _, match = best_lag(pcm_of(speech_phrase(1.0)), left)
    assert match > 0.9
    assert (part.status_code, part.content) == (206, content[4:12])
    assert part.headers["content-range"] == f"bytes 4-11/{len(content)}"
