"""Render report data as a rich table, JSON or CSV (the same data in each format).

Store content (artist names, genre strings) and rule-file content reach the terminal
through these consoles and tables only: every string they render has its control
characters, separators and bidi overrides escaped (`genremap.text.terminal_safe`), and is
never read as rich markup or emoji codes. JSON keeps exact values (its escapes parse back to
the same strings); CSV is data and keeps exact values too.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from genremap.text import json_terminal_safe, terminal_safe

FORMATS = ("table", "json", "csv")


class SafeConsole(Console):
    """A rich console that shows every string it renders (printed lines, table cells, titles)
    with terminal controls escaped, and without markup or emoji codes: a name like
    `\x1b]0;pwned\x07` or `[/]` is shown as written, never acted on."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, soft_wrap=True, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(terminal_safe(text), **kwargs)


def out_console() -> Console:
    """A console on the current stdout (so test runners that swap stdout see the output)."""
    return SafeConsole(file=sys.stdout)


def err_console() -> Console:
    return SafeConsole(file=sys.stderr)


def write_json(data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(json_terminal_safe(text) + "\n")


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
