"""Console pages: sign-in and sign-out, agents, and telephony configurations.

Each page calls the same use cases as the REST API, scoped to the session's organisation, and shows
their validation errors beside the field they name.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_422_UNPROCESSABLE_ENTITY

from application.management import (
    AddCloudonixConfiguration,
    AgentChanges,
    AgentDraft,
    ConfigurationExistsError,
    CreateAgent,
    DeleteConfiguration,
    GetAgent,
    InvalidInputError,
    ListAgents,
    ListConfigurations,
    UpdateAgent,
)
from application.stream_url import NoConfigurationError, StreamUrl
from domain.agents import InvalidDefinitionError
from entrypoints.web.console.base import (
    SIGN_IN,
    AgentUuid,
    ConfigId,
    checked_form,
    go,
    page,
    session_cookies,
    signed_in,
)
from entrypoints.web.console.session import CsrfRefusedError

PRE_SESSION_CSRF = "agent_stream_console_signin"  # double-submit token of the sign-in form
DEFAULT_DEFINITION = '{\n  "engine": "linetest"\n}'


def _errors_of(exc: ValueError) -> dict[str, str]:
    """`{field: message}` of a use case's refusal; a definition key shows beside the definition."""
    if isinstance(exc, InvalidDefinitionError):
        return {"definition": f"{exc.field}: {str(exc).split(': ', 1)[-1]}"}
    if isinstance(exc, InvalidInputError):
        return {exc.field: str(exc).split(": ", 1)[-1]}
    return {"form": str(exc)}


def _json_object(text: str, field: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidInputError(field, f"is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise InvalidInputError(field, "must be a JSON object")
    return value


class SessionPages(Controller):
    path = "/console"

    @get("/", include_in_schema=False)
    async def home(self) -> Redirect:
        return Redirect("/console/agents")

    @get("/sign-in", include_in_schema=False)
    async def sign_in_form(self) -> Template:
        token = secrets.token_urlsafe(32)
        response = page("sign_in.html", None, sign_in_token=token)
        response.cookies.append(_pre_session_cookie(token))
        return response

    @post("/sign-in", include_in_schema=False)
    async def sign_in(self, request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        submitted = str(form.get("csrf_token") or "")
        expected = request.cookies.get(PRE_SESSION_CSRF) or ""
        if not expected or not secrets.compare_digest(submitted.encode(), expected.encode()):
            raise CsrfRefusedError
        cookies = await session_cookies(request)
        signed = await cookies.sign_in(str(form.get("api_key") or ""))
        if signed is None:
            token = secrets.token_urlsafe(32)
            response = page(
                "sign_in.html",
                None,
                HTTP_422_UNPROCESSABLE_ENTITY,
                sign_in_token=token,
                error="That API key is not valid.",
            )
            response.cookies.append(_pre_session_cookie(token))
            return response
        _, cookie = signed
        done = Cookie(
            key=PRE_SESSION_CSRF, value="", path=SIGN_IN, max_age=0, httponly=True, samesite="strict"
        )
        return Redirect("/console/agents", status_code=HTTP_303_SEE_OTHER, cookies=[cookie, done])

    @post("/sign-out", include_in_schema=False)
    async def sign_out(self, request: Request[Any, Any, Any]) -> Response[Any]:
        session = await signed_in(request)
        await checked_form(request, session)
        return go(request, SIGN_IN, cookies=[(await session_cookies(request)).sign_out()])


def _pre_session_cookie(token: str) -> Cookie:
    return Cookie(key=PRE_SESSION_CSRF, value=token, path=SIGN_IN, httponly=True, samesite="strict")


class AgentPages(Controller):
    path = "/console/agents"

    @get("/", include_in_schema=False)
    @inject
    async def agents(self, request: Request[Any, Any, Any], agents: FromDishka[ListAgents]) -> Template:
        session = await signed_in(request)
        found = await agents.execute(session.organization_id)
        return page("agents.html", session, agents=found, draft={"definition": DEFAULT_DEFINITION}, errors={})

    @post("/", include_in_schema=False)
    @inject
    async def create_agent(
        self, request: Request[Any, Any, Any], create: FromDishka[CreateAgent], agents: FromDishka[ListAgents]
    ) -> Response[Any]:
        session = await signed_in(request)
        form = await checked_form(request, session)
        try:
            draft = AgentDraft(
                name=form.get("name", ""),
                definition=_json_object(form.get("definition", ""), "definition"),
                status=form.get("status", "draft"),
            )
            workflow = await create.execute(session.organization_id, draft)
        except ValueError as exc:
            found = await agents.execute(session.organization_id)
            return page(
                "agents.html",
                session,
                HTTP_422_UNPROCESSABLE_ENTITY,
                agents=found,
                draft=form,
                errors=_errors_of(exc),
            )
        return go(request, f"/console/agents/{workflow.uuid}")

    @get("/{agent_uuid:uuid}", include_in_schema=False)
    @inject
    async def agent(
        self,
        request: Request[Any, Any, Any],
        agent_uuid: AgentUuid,
        agents: FromDishka[GetAgent],
        configs: FromDishka[ListConfigurations],
        address: FromDishka[StreamUrl],
        domain: Annotated[str | None, Parameter(max_length=253)] = None,
    ) -> Template:
        session = await signed_in(request)
        workflow = await agents.execute(session.organization_id, agent_uuid)
        context = await _stream_context(session.organization_id, agent_uuid, domain, configs, address)
        form = {
            "name": workflow.name,
            "status": str(workflow.status),
            "definition": json.dumps(workflow.definition.to_dict(), indent=2),
        }
        saved = request.query_params.get("saved") == "1"
        return page("agent.html", session, agent=workflow, form=form, errors={}, saved=saved, **context)

    @post("/{agent_uuid:uuid}", include_in_schema=False)
    @inject
    async def update_agent(
        self,
        request: Request[Any, Any, Any],
        agent_uuid: AgentUuid,
        agents: FromDishka[GetAgent],
        update: FromDishka[UpdateAgent],
        configs: FromDishka[ListConfigurations],
        address: FromDishka[StreamUrl],
    ) -> Response[Any]:
        session = await signed_in(request)
        form = await checked_form(request, session)
        workflow = await agents.execute(session.organization_id, agent_uuid)
        try:
            changes = AgentChanges(
                name=form.get("name"),
                definition=_json_object(form.get("definition", ""), "definition"),
                status=form.get("status"),
            )
            await update.execute(session.organization_id, agent_uuid, changes)
        except ValueError as exc:
            context = await _stream_context(session.organization_id, agent_uuid, None, configs, address)
            return page(
                "agent.html",
                session,
                HTTP_422_UNPROCESSABLE_ENTITY,
                agent=workflow,
                form=form,
                errors=_errors_of(exc),
                **context,
            )
        return go(request, f"/console/agents/{agent_uuid}?saved=1")


async def _stream_context(
    organization_id: int,
    agent_uuid: AgentUuid,
    domain: str | None,
    configs: ListConfigurations,
    address: StreamUrl,
) -> dict[str, Any]:
    """The domains to choose from and, for the chosen one, the stream URL and the CXML."""
    domains = [config.domain_id for config in await configs.execute(organization_id)]
    chosen = domain if domain is not None else (domains[0] if domains else None)
    context: dict[str, Any] = {"domains": domains, "domain": chosen, "stream": None, "stream_error": None}
    if chosen:
        try:
            context["stream"] = await address.execute(organization_id, agent_uuid, chosen)
        except (NoConfigurationError, InvalidInputError) as exc:
            context["stream_error"] = (
                str(exc).split(": ", 1)[-1]
                if isinstance(exc, InvalidInputError)
                else (f"No Cloudonix configuration for {exc.domain}: add one under Telephony first.")
            )
    return context


class TelephonyPages(Controller):
    path = "/console/telephony"

    @get("/", include_in_schema=False)
    @inject
    async def configurations(
        self, request: Request[Any, Any, Any], configs: FromDishka[ListConfigurations]
    ) -> Template:
        session = await signed_in(request)
        found = await configs.execute(session.organization_id)
        return page("telephony.html", session, configs=found, form={}, errors={})

    @post("/", include_in_schema=False)
    @inject
    async def add(
        self,
        request: Request[Any, Any, Any],
        add: FromDishka[AddCloudonixConfiguration],
        configs: FromDishka[ListConfigurations],
    ) -> Response[Any]:
        session = await signed_in(request)
        form = await checked_form(request, session)
        try:
            await add.execute(
                session.organization_id,
                form.get("domain_id", ""),
                form.get("bearer_token", ""),
                form.get("name", ""),
            )
        except (ValueError, ConfigurationExistsError) as exc:
            errors = {"domain_id": str(exc)} if isinstance(exc, ConfigurationExistsError) else _errors_of(exc)
            found = await configs.execute(session.organization_id)
            form.pop("bearer_token", None)  # a password field is never filled in again
            return page(
                "telephony.html",
                session,
                HTTP_422_UNPROCESSABLE_ENTITY,
                configs=found,
                form=form,
                errors=errors,
            )
        return go(request, "/console/telephony")

    @get("/{config_id:int}/delete", include_in_schema=False)
    @inject
    async def confirm_delete(
        self, request: Request[Any, Any, Any], config_id: ConfigId, configs: FromDishka[ListConfigurations]
    ) -> Template:
        session = await signed_in(request)
        found = [c for c in await configs.execute(session.organization_id) if c.id == config_id]
        if not found:
            return page("not_found.html", session, 404)
        return page("telephony_delete.html", session, config=found[0])

    @post("/{config_id:int}/delete", include_in_schema=False)
    @inject
    async def delete(
        self, request: Request[Any, Any, Any], config_id: ConfigId, delete: FromDishka[DeleteConfiguration]
    ) -> Response[Any]:
        session = await signed_in(request)
        await checked_form(request, session)
        await delete.execute(session.organization_id, config_id)
        return go(request, "/console/telephony")
