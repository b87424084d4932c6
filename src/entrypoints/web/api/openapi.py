"""The OpenAPI document at `/schema`: configuration, and what Litestar leaves out of it."""

from __future__ import annotations

from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.enums import MediaType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme, Tag
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
            SwaggerRenderPlugin(path="/swagger"),
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
