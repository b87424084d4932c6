"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

import structlog
from dishka import AsyncContainer
from dishka.integrations.litestar import setup_dishka
from litestar import Litestar

from application.agent_stream import PipelineRegistry
from application.instance_tasks import InstanceTasks
from application.ports.call_control import CallControlChannel
from application.ports.repositories import TelephonyConfigRepository
from application.ports.run_feed import RunFeed
from application.recordings import RecoverRecordings
from entrypoints.settings import Settings, SettingsError
from entrypoints.web.api import API_ROUTES, EXCEPTION_HANDLERS, OPENAPI_PLUGINS, openapi_config
from entrypoints.web.api.routing import complete_allow_header
from entrypoints.web.console import CONSOLE_ROUTES, console_templates
from entrypoints.web.health import health, metrics, ready
from entrypoints.web.stream import agent_stream, agent_stream_with_provider

log = structlog.get_logger(__name__)


def create_app(settings: Settings, container: AsyncContainer) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:  # resolves the credential cipher: a missing secret key stops the start, naming the variable
            await container.get(TelephonyConfigRepository)
        except SettingsError as exc:
            log.error("startup_refused", reason=str(exc))
            await container.close()
            raise
        await container.get(CallControlChannel)  # listens for call control from other instances
        await container.get(RunFeed)  # and for the run changes they publish
        await container.get(PipelineRegistry)  # engines load now (Pipecat, its VAD model), not during a call
        # What start-up made (modules, Pipecat's classes, the model: ~200k objects) lives as long
        # as the process: out of the cyclic collector's way, a full collection no longer walks it.
        # Under 60 calls such a collection paused the event loop for 130-230 ms, longer than the
        # audio the caller's side holds.
        gc.collect()
        gc.freeze()
        tasks = await container.get(InstanceTasks)
        await tasks.start()  # registers, and reaps this instance's previous life, before serving
        recovery = asyncio.create_task((await container.get(RecoverRecordings)).execute())
        log.info("service_started", instance_id=settings.instance_id)
        try:
            yield
        finally:
            recovery.cancel()  # what it did not store waits for the next start
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await recovery
            await tasks.stop()  # the heartbeat and the lag sampler, then this life's end
            await container.close()

    app = Litestar(
        route_handlers=[
            health,
            ready,
            metrics,
            agent_stream,
            agent_stream_with_provider,
            *API_ROUTES,
            *CONSOLE_ROUTES,
        ],
        template_config=console_templates(),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(_version()),
        plugins=[*OPENAPI_PLUGINS],
        before_send=[complete_allow_header],
        lifespan=[lifespan],
        debug=False,
        logging_config=None,  # logging is ours (entrypoints.logging): one format, secrets scrubbed
    )
    setup_dishka(container, app)
    return app


def _version() -> str:
    try:
        return version("agent-stream")
    except PackageNotFoundError:
        return "0.0.0"
