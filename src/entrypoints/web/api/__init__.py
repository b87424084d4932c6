"""The management REST API (interfaces.md): routes, OpenAPI description and error handling."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from entrypoints.web.api.agents import AgentController
from entrypoints.web.api.errors import EXCEPTION_HANDLERS
from entrypoints.web.api.openapi import OPENAPI_PLUGINS, openapi_config, swagger_assets_router
from entrypoints.web.api.recordings import get_recording
from entrypoints.web.api.runs import RunController
from entrypoints.web.api.telephony import TelephonyConfigurationController, transfer_result

__all__ = ("API_ROUTES", "EXCEPTION_HANDLERS", "OPENAPI_PLUGINS", "openapi_config")

API_ROUTES: list[ControllerRouterHandler] = [
    AgentController,
    TelephonyConfigurationController,
    RunController,
    get_recording,
    transfer_result,
    swagger_assets_router(),
]
