"""Render report data as a rich table, JSON or CSV (the same data in each format)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "csv")


def out_console() -> Console:
    """A console on the current stdout (so test runners that swap stdout see the output)."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def err_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    sys.stdout.write(buffer.getvalue())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1%}" if 0 <= value <= 1 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    headers: dict[str, str] | None = None,
    numeric: Sequence[str] = (),
    footer: dict[str, Any] | None = None,
    caption: str | None = None,
) -> Table:
    """A rich table of `rows` (dicts) showing `columns`; numeric columns are right-aligned."""
    headers = headers or {}
    t = Table(title=title, caption=caption, show_footer=footer is not None, header_style="bold")
    for col in columns:
        t.add_column(
            headers.get(col, col.replace("_", " ")),
            justify="right" if col in numeric else "left",
            footer=_cell(footer.get(col)) if footer else "",
            overflow="fold",
        )
    for row in rows:
        t.add_row(*(_cell(row.get(col)) for col in columns))
    return t


def emit(
    fmt: str,
    *,
    data: Any,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    title: str,
    numeric: Sequence[str] = (),
    headers: dict[str, str] | None = None,
    footer: dict[str, Any] | None = None,
    caption: str | None = None,
) -> None:
    """Print `data` as JSON, `rows` as CSV, or `rows` as a rich table, as `fmt` asks."""
    if fmt == "json":
        write_json(data)
    elif fmt == "csv":
        write_csv(rows, columns)
    else:
        out_console().print(
            table(title, rows, columns, numeric=numeric, headers=headers, footer=footer, caption=caption)
        )
