"""What the commands print: JSON a line for scripts, a table or `name  value` fields for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

Column = Callable[[dict[str, Any]], Any]


def print_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


def print_list(rows: list[dict[str, Any]], columns: dict[str, Column], as_json: bool) -> int:
    """`rows` as a table of `columns` (header: what to show), or with `--json` one JSON object a line."""
    if as_json:
        for row in rows:
            print_json(row)
    else:
        sys.stdout.write(table(list(columns), [[column(row) for column in columns.values()] for row in rows]))
    return 0


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max(len(text) for text in column) for column in zip(headers, *cells, strict=True)]
    lines = [headers, *cells]
    return "".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in lines
    )


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """`name   value` lines; a dict or list value is indented JSON under its name."""
    width = max(len(name) for name, _ in pairs)
    out = []
    for name, value in pairs:
        if isinstance(value, dict | list):
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str) if value else "{}"
            value_text = text.replace("\n", "\n" + " " * (width + 2))
        else:
            value_text = cell(value)
        out.append(f"{name.ljust(width)}  {value_text}\n")
    return "".join(out)


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value)
