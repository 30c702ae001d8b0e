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

from rich.cells import cell_len
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
        console = out_console()
        lines = plain_table(
            console, title, rows, columns, numeric=numeric, headers=headers, footer=footer, caption=caption
        )
        if lines is not None:
            console.file.write("".join(line + "\n" for line in lines))
        else:
            console.print(table(title, rows, columns, numeric=numeric, headers=headers, footer=footer, caption=caption))


# Rich's styles for a table's title, caption, header and footer, as its default theme writes them.
_TITLE, _CAPTION, _BOLD, _RESET = "\x1b[3m", "\x1b[2;3m", "\x1b[1m", "\x1b[0m"


def plain_table(
    console: Console,
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    headers: dict[str, str] | None = None,
    numeric: Sequence[str] = (),
    footer: dict[str, Any] | None = None,
    caption: str | None = None,
) -> list[str] | None:
    """The lines rich prints for `table(...)` on `console`, built directly: rich lays out every
    cell as a renderable, about a second for the corpus's 2,604 subgenres; this takes
    milliseconds. None when only rich can lay it out: on a terminal too narrow for the table
    (rich folds cells), or with a column of no text at all. Off a terminal a wide table is
    never folded: one line per row, as wide as it needs (`grep` and `sort` see whole rows).
    tests/test_render.py checks these lines against rich's for tables of every kind of text."""
    if console.legacy_windows:
        return None
    headers = headers or {}
    head = [terminal_safe(headers.get(c, c.replace("_", " "))) for c in columns]
    body = [[terminal_safe(_cell(row.get(c))) for c in columns] for row in rows]
    foot = [terminal_safe(_cell(footer.get(c))) for c in columns] if footer is not None else None
    widths = [cell_len(h) for h in head]
    for texts in (*body, *([foot] if foot is not None else [])):
        for i, text in enumerate(texts):
            n = cell_len(text)
            if n > widths[i]:
                widths[i] = n
    if 0 in widths:  # an empty column: rich styles its padding its own way
        return None
    if console.is_terminal and sum(widths) + 3 * len(widths) + 1 > console.width:
        return None
    styled = console.is_terminal and console.color_system is not None
    right = [c in numeric for c in columns]

    def cells(texts: list[str], bold: bool) -> list[str]:
        out = []
        for text, width, to_right in zip(texts, widths, right, strict=True):
            if to_right:
                text = text.rstrip()  # as rich justifies
            gap = " " * (width - cell_len(text))
            padded = gap + text if to_right else text + gap
            out.append(f"{_BOLD} {_RESET}{_BOLD}{padded}{_RESET}{_BOLD} {_RESET}" if bold else f" {padded} ")
        return out

    def rule(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + end

    lines: list[str] = []
    if title:
        lines.append(f"{_TITLE}{terminal_safe(title)}{_RESET}" if styled else terminal_safe(title))
    lines.append(rule("┏", "━", "┳", "┓"))
    lines.append("┃" + "┃".join(cells(head, styled)) + "┃")
    lines.append(rule("┡", "━", "╇", "┩"))
    lines += ["│" + "│".join(cells(b, False)) + "│" for b in body]
    if foot is not None:
        lines.append(rule("├", "─", "┼", "┤"))
        lines.append("│" + "│".join(cells(foot, styled)) + "│")
    lines.append(rule("└", "─", "┴", "┘"))
    if caption:
        lines.append(f"{_CAPTION}{terminal_safe(caption)}{_RESET}" if styled else terminal_safe(caption))
    return lines
