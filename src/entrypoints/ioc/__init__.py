"""The composition root: dishka providers per layer, and `make_container`.

`infrastructure`: process-wide resources (clients, clocks, registries, metrics, this instance);
`persistence`: the repositories on SQL (the default) or in memory; `use_cases`: one per WebSocket
connection or HTTP request; `web`: the objects of one HTTP request.
"""

from __future__ import annotations

from dishka import AsyncContainer, Provider, make_async_container

from entrypoints.ioc.infrastructure import InfraProvider
from entrypoints.ioc.persistence import SqlAdaptersProvider
from entrypoints.ioc.recordings import RecordingsProvider
from entrypoints.ioc.use_cases import UseCasesProvider
from entrypoints.ioc.web import HttpProvider
from entrypoints.settings import Settings


def make_container(settings: Settings, *providers: Provider) -> AsyncContainer:
    """The app container; `providers` replace the default SQL persistence when given."""
    persistence = providers or (SqlAdaptersProvider(),)
    return make_async_container(
        InfraProvider(),
        *persistence,
        UseCasesProvider(),
        HttpProvider(),
        RecordingsProvider(),
        context={Settings: settings},
    )


__all__ = ["make_container"]
