"""The use cases, one per WebSocket connection or HTTP request."""

from __future__ import annotations

from dishka import Provider, Scope, provide, provide_all

from application.agent_stream import AgentStream
from application.authentication import Authenticate, RotateApiKey
from application.management import (
    AddCloudonixConfiguration,
    CreateAgent,
    CreateOrganization,
    DeleteConfiguration,
    FindAgent,
    FindRun,
    GetAgent,
    GetRun,
    ListAgents,
    ListAllAgents,
    ListConfigurations,
    ListOrganizations,
    ListRuns,
    UpdateAgent,
)
from application.ports.repositories import TelephonyConfigRepository
from application.run_watch import WatchRuns
from application.runs_control import HangUpRun, TransferRun
from application.stream_url import StreamUrl
from application.webhooks import RotateWebhookSecret, WebhookStatus
from entrypoints.settings import Settings


class UseCasesProvider(Provider):
    """Use cases, one per WebSocket connection or HTTP request."""

    scope = Scope.SESSION

    agent_stream = provide(AgentStream)
    authenticate = provide(Authenticate)
    management = provide_all(
        CreateOrganization,
        ListOrganizations,
        CreateAgent,
        ListAgents,
        ListAllAgents,
        GetAgent,
        FindAgent,
        UpdateAgent,
        AddCloudonixConfiguration,
        ListConfigurations,
        DeleteConfiguration,
        ListRuns,
        GetRun,
        FindRun,
        RotateApiKey,
    )
    call_control = provide_all(HangUpRun, TransferRun)
    watch_runs = provide(WatchRuns)
    webhooks = provide_all(RotateWebhookSecret, WebhookStatus)

    @provide
    def provide_stream_url(
        self, settings: Settings, get_agent: GetAgent, configs: TelephonyConfigRepository
    ) -> StreamUrl:
        return StreamUrl(get_agent, configs, settings.public_url)
