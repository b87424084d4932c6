"""/metrics: Prometheus text with interfaces.md's names, moved by real calls."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import Tenant


async def scrape(app_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{app_url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"  # the charset once
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


async def test_metrics_follow_the_calls(app_url: str, tenant: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.add_session(tenant.domain, "S-metrics")
    before = await scrape(app_url)
    await call(tenant.stream_url(), CONNECTED, start_event("S-metrics"), '{"bad json', stop_event())
    await call(tenant.stream_url().replace(str(tenant.agent_uuid), str(uuid.uuid4())), CONNECTED)
    after = await scrape(app_url)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("agent_stream_calls_total", close_code="1000") == 1
    assert grew("agent_stream_calls_total", close_code="1008") == 1
    assert grew("agent_stream_handshake_seconds_count") == 1
    assert grew("agent_stream_provider_requests_total", operation="validate", status="200") == 1
    assert grew("agent_stream_provider_request_seconds_count", operation="validate") == 1
    assert grew("agent_stream_bad_frames_total", kind="invalid_json") == 1
    assert after[("agent_stream_live_calls", ())] == 0
    assert ("agent_stream_event_loop_lag_seconds", ()) in after
