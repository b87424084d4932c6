"""The operator console at `/console`: server-rendered Jinja pages with htmx, on the REST API's use cases.

`CONSOLE_ROUTES` go into the app beside the API; `console_templates()` is the app's template
config. The static files (htmx, its SSE extension, the console's script and style) are shipped
inside the package: nothing is fetched from elsewhere at run time.
"""

from __future__ import annotations

from litestar import Router
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.plugins.htmx import HTMXRequest
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from application.management import NotFoundError
from entrypoints.web.console.base import (
    STATIC,
    csrf_refused,
    not_found,
    security_headers,
    sign_in_required,
)
from entrypoints.web.console.pages import AgentPages, SessionPages, TelephonyPages
from entrypoints.web.console.runs import RunPages
from entrypoints.web.console.session import CsrfRefusedError, SignInRequiredError
from entrypoints.web.console.views import ENVIRONMENT

CONSOLE_PAGES = Router(
    path="/",
    route_handlers=[SessionPages, AgentPages, TelephonyPages, RunPages],
    request_class=HTMXRequest,
    after_request=security_headers,
    exception_handlers={
        SignInRequiredError: sign_in_required,
        CsrfRefusedError: csrf_refused,
        NotFoundError: not_found,
    },
    include_in_schema=False,
)
CONSOLE_STATIC = create_static_files_router(
    path="/console/static", directories=[STATIC], include_in_schema=False, name="console-static"
)
CONSOLE_ROUTES = [CONSOLE_PAGES, CONSOLE_STATIC]


def console_templates() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(ENVIRONMENT))


__all__ = ["CONSOLE_ROUTES", "console_templates"]
