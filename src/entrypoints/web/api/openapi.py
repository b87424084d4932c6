"""The OpenAPI document at `/schema`: configuration, and what Litestar leaves out of it.

`/schema/swagger` loads Swagger UI's script and style from this app, not from a CDN, so an offline
demo shows its API docs: the files are those of the `swagger-ui-py` package (Swagger UI 5, Apache
License 2.0, whose text ships beside them), served under `/static/swagger-ui/`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Final

from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.enums import MediaType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme, Tag
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.typing import FieldDefinition
from msgspec import Struct

from entrypoints.web.api.auth import BEARER_SCHEME


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """A struct that refuses unknown fields says so: `additionalProperties: false`.

    Litestar's own plugin leaves it out, which documents a body that accepts any extra key.
    """

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.type_
        if issubclass(struct, Struct) and struct.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


OPENAPI_PLUGINS = [StrictStructSchemaPlugin()]

SWAGGER_ASSETS_PATH: Final = "/static/swagger-ui"


def swagger_ui_directory() -> Path:
    """Swagger UI's files in the installed `swagger-ui-py` package (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed: `uv sync` installs it")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def swagger_assets_router() -> Router:
    """Swagger UI's files, as `/schema/swagger` asks for them (no API key: the docs page needs none)."""
    return create_static_files_router(
        path=SWAGGER_ASSETS_PATH,
        directories=[swagger_ui_directory()],
        name="swagger-ui-assets",
        include_in_schema=False,
    )


def _asset(name: str) -> str:
    return f"{SWAGGER_ASSETS_PATH}/{name}"


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Agent Stream",
        version=version,
        description=(
            "Management API of Agent Stream: agents, telephony configurations, the runs of each agent, "
            "live call control, and the stream URL and CXML to paste into Cloudonix. Every route under "
            "`/api/v1` except the provider callback takes `Authorization: Bearer <api key>` (the key "
            "`agent-stream org create` prints) and sees only that key's organisation. Errors are JSON: "
            '`{"detail": "..."}`.'
        ),
        path="/schema",
        # `/schema` itself answers the JSON document (interfaces.md); `/schema/swagger` is a browsable UI.
        render_plugins=[
            JsonRenderPlugin(path=["/", "/openapi.json"], media_type=MediaType.JSON),
            SwaggerRenderPlugin(
                path="/swagger",
                js_url=_asset("swagger-ui-bundle.js"),
                standalone_preset_js_url=_asset("swagger-ui-standalone-preset.js"),
                css_url=_asset("swagger-ui.css"),
                favicon=f"<link rel='icon' type='image/png' href='{_asset('favicon-32x32.png')}'>",
            ),
        ],
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An organisation's API key, as printed once by `agent-stream org create`.",
                )
            }
        ),
        tags=[
            Tag(name="Agents", description="Agents (workflows) and their runs."),
            Tag(name="Telephony configurations", description="Provider credentials, per domain."),
            Tag(name="Runs", description="One call's record, and control of the live call."),
            Tag(name="Provider callbacks", description="Called by the telephony provider."),
        ],
        use_handler_docstrings=True,
    )
