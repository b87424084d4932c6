"""An import-linter contract that says what a package MAY import, not what it may not.

A `forbidden` list drifts: each new dependency has to be added to it, and the one that is
forgotten slips in unseen. An `allowlist` contract names what is allowed instead — the standard
library (`sys.stdlib_module_names`, always) and the listed modules — and reports every other
import of the source packages, whatever it is.

    [tool.importlinter]
    contract_types = ["allowlist: tools.importlinter_allowlist.AllowlistContract"]

    [[tool.importlinter.contracts]]
    name = "The application imports the domain and the standard library only"
    type = "allowlist"
    source_modules = ["application"]
    allowed_modules = ["domain"]

Every module of a source package (the package and its descendants) is checked, and only its
direct imports: imports inside the source package itself are always allowed, and an allowed
module is held to its own contract. The graph must be built with `include_external_packages`
(or an external import would not be seen); type-checking imports count unless the session sets
`exclude_type_checking_imports`.

`lint-imports` puts the working directory on `sys.path`, so the project root finds this module
there; it lives outside `src/` so that the service's wheel does not ship it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, cast

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _is_stdlib(module: str) -> bool:
    return module.partition(".")[0] in sys.stdlib_module_names


class AllowlistContract(Contract):
    """Every direct import of the source modules is to the standard library, to a module of the
    source package itself, or to a module within `allowed_modules`.

    Configuration options:
        - source_modules:  the packages checked (each with all its descendants).
        - allowed_modules: modules (internal or external) that they may import besides the
                           standard library; a package allows its submodules. (Optional.)
    """

    type_name = "allowlist"

    source_modules = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField(), default=[])

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = cast("list[str]", self.source_modules)
        allowed = cast("list[str]", self.allowed_modules)
        violations: list[dict[str, Any]] = []
        for source in sources:
            if source not in graph.modules:
                raise ValueError(f"Module '{source}' does not exist.")
            for importer in sorted({source} | graph.find_descendants(source)):
                output.verbose_print(verbose, f"Checking the imports of {importer}...")
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if _within(imported, source) or _is_stdlib(imported):
                        continue
                    if any(_within(imported, module) for module in allowed):
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    violations.append(
                        {
                            "importer": importer,
                            "imported": imported,
                            "line_numbers": sorted({d["line_number"] for d in details}),
                        }
                    )
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        allowed = ", ".join(["the standard library", *cast("Iterable[str]", self.allowed_modules)])
        for violation in check.metadata["violations"]:
            lines = ", ".join(f"l.{n}" for n in violation["line_numbers"]) or "l.?"
            output.print_error(
                f"{violation['importer']} is not allowed to import {violation['imported']} ({lines})"
            )
        output.new_line()
        output.print(f"Allowed: {allowed}.")
        output.new_line()
