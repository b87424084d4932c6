"""The allowlist contract of `tools/importlinter_allowlist.py`, run on a tiny package of its own."""

import textwrap
from pathlib import Path

import grimp
import pytest
from tools.importlinter_allowlist import AllowlistContract


def _package(root: Path, name: str, modules: dict[str, str]) -> None:
    package = root / name
    package.mkdir()
    for module, source in modules.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> grimp.ImportGraph:
    _package(
        tmp_path,
        "toy_core",
        {
            "__init__": "",
            "clean": """\
                from __future__ import annotations
                import json
                from dataclasses import dataclass
                from toy_core import other
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    import numpy  # type-checking imports are excluded from the graph below
            """,
            "other": "import os.path\n",
            "broken": "import json\n\nimport httpx\n",
        },
    )
    _package(
        tmp_path,
        "toy_app",
        {
            "__init__": "",
            "uses_core": "from toy_core.clean import json\nimport toy_core.other\n",
            "uses_io": "import asyncio\nfrom toy_io import client\n",
        },
    )
    _package(tmp_path, "toy_io", {"__init__": "", "client": "import httpx\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    return grimp.build_graph(
        "toy_core",
        "toy_app",
        "toy_io",
        include_external_packages=True,
        exclude_type_checking_imports=True,
        cache_dir=None,
    )


def _contract(**options: object) -> AllowlistContract:
    return AllowlistContract(name="toy", session_options={}, contract_options=options)


def test_an_import_outside_the_standard_library_breaks_the_contract(graph, capsys):
    check = _contract(source_modules=["toy_core"]).check(graph, verbose=False)

    assert not check.kept
    assert check.metadata["violations"] == [
        {"importer": "toy_core.broken", "imported": "httpx", "line_numbers": [3]}
    ]
    _contract(source_modules=["toy_core"]).render_broken_contract(check)
    assert "toy_core.broken is not allowed to import httpx (l.3)" in capsys.readouterr().out


def test_listed_modules_are_allowed_and_nothing_else(graph):
    contract = _contract(source_modules=["toy_app"], allowed_modules=["toy_core"])
    check = contract.check(graph, verbose=False)

    assert not check.kept
    assert check.metadata["violations"] == [
        {"importer": "toy_app.uses_io", "imported": "toy_io.client", "line_numbers": [2]}
    ]
    both = _contract(source_modules=["toy_app"], allowed_modules=["toy_core", "toy_io"])
    assert both.check(graph, verbose=False).kept


def test_imports_within_the_source_package_are_allowed(graph):
    assert _contract(source_modules=["toy_io"], allowed_modules=["httpx"]).check(graph, verbose=False).kept
    clean = _contract(source_modules=["toy_core.clean"]).check(graph, verbose=False)
    assert [v["imported"] for v in clean.metadata["violations"]] == ["toy_core.other"]  # a sibling


def test_an_unknown_source_module_is_an_error_not_a_pass(graph):
    with pytest.raises(ValueError, match="toy_nowhere"):
        _contract(source_modules=["toy_nowhere"]).check(graph, verbose=False)
