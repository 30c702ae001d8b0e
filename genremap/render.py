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
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
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


# Columns whose values are single tokens a reader copies or clicks (`FILE:LINE:COL`, file
# names): a table never breaks them, whatever its width.
WHOLE_COLUMNS = frozenset({"location", "file", "path"})
# Free text longer than this is shortened in tables (JSON and CSV keep it whole).
TABLE_TEXT_LIMIT = 60
SHORTENED_NOTE = "long text shortened: --format json or csv shows it whole"
NARROWEST = 3  # a free-text column folds down to this many cells before the table outgrows the terminal
_PIECES = re.compile(r"[^-/]+[-/]*|[-/]+")  # `rock-umbrella-tags` → `rock-`, `umbrella-`, `tags`
_SPACES = re.compile(r"(\s+)")


def shorten(text: str, limit: int = TABLE_TEXT_LIMIT) -> str:
    """`text` cut to at most `limit` characters, at a space when one is near, ending in `…`."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:(") + "…"


@dataclass
class _Column:
    """One column's name and texts, and the widths it can take: its widest text; the narrowest
    that breaks no word; the narrowest that breaks words only after a hyphen or slash. Whole
    columns (numbers, WHOLE_COLUMNS) keep every value on one line; only their header wraps.
    Each width is measured once (a column with other cells is a new _Column)."""

    name: str
    header: str
    cells: list[str]
    whole: bool

    def _widest(self, split: Callable[[str], list[str]]) -> int:
        return max((cell_len(part) for text in (self.header, *self.cells) for part in split(text)), default=1)

    @cached_property
    def natural(self) -> int:
        return self._widest(lambda text: [text])

    @cached_property
    def widest_value(self) -> int:
        return max((cell_len(text) for text in self.cells), default=1)

    @cached_property
    def by_words(self) -> int:
        if self.whole:  # values stay whole; the header may still wrap at its spaces
            return max(self.widest_value, *map(cell_len, self.header.split()))
        return self._widest(str.split)

    @cached_property
    def by_pieces(self) -> int:
        return self.by_words if self.whole else self._widest(lambda text: _PIECES.findall(text))


def _chrome(columns: int) -> int:
    """Cells a table's borders and padding take: 1 + 1 padding and a border per column, one more border."""
    return 3 * columns + 1


def _share_room(minimum: list[int], naturals: list[int], room: int) -> list[int]:
    """Widths from `minimum` plus `room` cells: first to the columns that then fit on one line,
    fewest missing cells first, then the rest in proportion to what each still misses."""
    widths = list(minimum)
    for index in sorted(range(len(widths)), key=lambda i: naturals[i] - widths[i]):
        want = naturals[index] - widths[index]
        if 0 < want <= room:
            widths[index] += want
            room -= want
    wants = [n - w for n, w in zip(naturals, widths, strict=True)]
    if room and sum(wants):
        gifts = [room * want // sum(wants) for want in wants]
        for index in sorted(range(len(wants)), key=lambda i: -wants[i])[: room - sum(gifts)]:
            gifts[index] += 1
        widths = [w + g for w, g in zip(widths, gifts, strict=True)]
    return widths


def fit_widths(columns: Sequence[_Column], available: int) -> list[int] | None:
    """Content widths for the columns within `available` cells, or None when all fit as they are.

    Rich's own fitting shrinks the widest columns first, so it folds a `FILE:LINE:COL` or a rule
    name mid-token while a neighbour could have wrapped at a space. Here whole columns keep
    their width; free text wraps at spaces, else also after hyphens, and is folded mid-word
    only when nothing else fits (the widest columns first; in a whole column, only a header
    word)."""
    naturals = [c.natural for c in columns]
    if sum(naturals) <= available:
        return None
    for minimum in ([c.by_words for c in columns], [c.by_pieces for c in columns]):
        if sum(minimum) <= available:
            return _share_room(minimum, naturals, available - sum(minimum))
    # Fold the widest columns one cell at a time: free text down to NARROWEST, whole columns
    # down to their widest value (only a header word folds there).
    widths = [c.by_pieces for c in columns]
    floors = [c.widest_value if c.whole else min(NARROWEST, w) for c, w in zip(columns, widths, strict=True)]
    while sum(widths) > available:
        widest = max(range(len(widths)), key=lambda i: (widths[i] > floors[i], widths[i]))
        if widths[widest] <= floors[widest]:
            break  # rather a table wider than the terminal than a broken value
        widths[widest] -= 1
    return widths


def _break_after_hyphens(text: str, width: int) -> str:
    """`text` with each word wider than `width` split into lines after its hyphens or slashes."""
    parts = _SPACES.split(text)
    for index in range(0, len(parts), 2):
        word = parts[index]
        if cell_len(word) <= width:
            continue
        lines = [""]
        for piece in _PIECES.findall(word):
            if lines[-1] and cell_len(lines[-1] + piece) > width:
                lines.append("")
            lines[-1] += piece
        parts[index] = "\n".join(lines)
    return "".join(parts)


def _columns(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    headers: dict[str, str],
    numeric: Sequence[str],
    footer: dict[str, Any] | None,
    long_text: Sequence[str] = (),
) -> tuple[list[_Column], bool]:
    """The table's columns with their texts (terminal-safe, free text shortened unless its column
    is in `long_text`), and whether any text was shortened. A footer's cell comes last in each
    column."""
    specs: list[_Column] = []
    shortened = False
    for col in columns:
        whole = col in numeric or col in WHOLE_COLUMNS
        cells = [terminal_safe(_cell(row.get(col))) for row in rows]
        if not whole and col not in long_text:
            short = [shorten(text) for text in cells]
            shortened = shortened or short != cells
            cells = short
        if footer:
            cells.append(terminal_safe(_cell(footer.get(col))))
        specs.append(_Column(col, headers.get(col, col.replace("_", " ")), cells, whole))
    return specs, shortened


def _layout(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    headers: dict[str, str],
    numeric: Sequence[str],
    footer: dict[str, Any] | None,
    caption: str | None,
    width: int | None,
    optional: Sequence[str],
    long_text: Sequence[str],
) -> tuple[list[_Column], str | None, list[int] | None]:
    """What `table` shows: the columns kept (texts shortened), the caption with its notes, and
    the widths fitted to `width` (None when every column fits as it is)."""
    specs, shortened = _columns(rows, columns, headers or {}, numeric, footer, long_text)
    hidden: list[str] = []
    if width:
        for name in optional:
            if sum(c.by_words for c in specs) <= width - _chrome(len(specs)):
                break
            specs = [c for c in specs if c.name != name]
            hidden.append(name)
    notes = [caption] if caption else []
    if hidden:
        notes.append(f"hidden at this width: {', '.join(hidden)} (--format csv shows every column)")
    if shortened:
        notes.append(SHORTENED_NOTE)
    caption = " · ".join(notes) or None
    return specs, caption, fit_widths(specs, width - _chrome(len(specs))) if width else None


def table(
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    headers: dict[str, str] | None = None,
    numeric: Sequence[str] = (),
    footer: dict[str, Any] | None = None,
    caption: str | None = None,
    width: int | None = None,
    optional: Sequence[str] = (),
    long_text: Sequence[str] = (),
) -> Table:
    """A rich table of `rows` (dicts) showing `columns`; numeric columns are right-aligned.

    Numbers and WHOLE_COLUMNS are never broken, free text longer than TABLE_TEXT_LIMIT is
    shortened (except in the `long_text` columns, the table's point, folded instead). Given the
    console's `width`, the `optional` columns are hidden, first listed
    first, while the others would have to break a word, then the columns are fitted to it (see
    fit_widths); the caption says what was shortened or hidden. Every cell is made
    terminal-safe here, before it becomes a rich Text (which is never read as markup)."""
    specs, caption, widths = _layout(rows, columns, headers or {}, numeric, footer, caption, width, optional, long_text)
    t = Table(title=title, caption=caption, show_footer=footer is not None, header_style="bold")
    chrome = _chrome(len(specs))
    if widths and sum(widths) + chrome > (width or 0):
        t.width = sum(widths) + chrome  # wider than the terminal: soft-wrapped, never cropped
    for index, spec in enumerate(specs):
        if widths and not spec.whole:
            spec = specs[index] = replace(
                spec, cells=[_break_after_hyphens(text, widths[index]) for text in spec.cells]
            )
        t.add_column(
            spec.header,
            justify="right" if spec.name in numeric else "left",
            footer=Text(spec.cells[-1]) if footer else "",
            overflow="fold",
            width=widths[index] if widths else None,
            min_width=spec.widest_value if spec.whole else None,
        )
    for row_index in range(len(rows)):
        t.add_row(*(Text(spec.cells[row_index]) for spec in specs))
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
    optional: Sequence[str] = (),
    long_text: Sequence[str] = (),
) -> None:
    """Print `data` as JSON, `rows` as CSV, or `rows` as a rich table, as `fmt` asks."""
    if fmt == "json":
        write_json(data)
    elif fmt == "csv":
        write_csv(rows, columns)
    else:
        console = out_console()
        options: dict[str, Any] = {
            "numeric": numeric,
            "headers": headers,
            "footer": footer,
            "caption": caption,
            "width": console.width,
            "optional": optional,
            "long_text": long_text,
        }
        lines = plain_table(console, title, rows, columns, **options)
        if lines is not None:
            console.file.write("".join(line + "\n" for line in lines))
        else:
            console.print(table(title, rows, columns, **options))


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
    width: int | None = None,
    optional: Sequence[str] = (),
    long_text: Sequence[str] = (),
) -> list[str] | None:
    """The lines `console.print(table(...))` prints, built directly: rich lays out each cell as
    a renderable, about a second for the corpus's 2,604 subgenres; this takes milliseconds
    (only a cell wider than its column goes through rich's own word wrap). None where rich must
    do it: a styled terminal whose columns must be fitted, a column of no text at all.
    tests/test_render.py checks these lines against rich's for tables of every kind of text."""
    if console.legacy_windows:
        return None
    specs, caption, widths = _layout(rows, columns, headers or {}, numeric, footer, caption, width, optional, long_text)
    if not specs:
        return None
    styled = console.is_terminal and console.color_system is not None
    head = [terminal_safe(spec.header) for spec in specs]
    if widths is None:
        sizes = [max([cell_len(h), *map(cell_len, spec.cells)]) for h, spec in zip(head, specs, strict=True)]
        if width is not None and sum(sizes) + _chrome(len(sizes)) > width:
            return None
    elif styled:
        return None
    else:
        sizes = list(widths)
        specs = [
            replace(spec, cells=[_break_after_hyphens(text, size) for text in spec.cells]) if not spec.whole else spec
            for spec, size in zip(specs, sizes, strict=True)
        ]
    if 0 in sizes:  # an empty column: rich styles its padding its own way
        return None
    right = [spec.name in numeric for spec in specs]

    def cell(text: str, size: int, to_right: bool) -> list[str]:
        if "\n" in text or len(text) > size or cell_len(text) > size:  # rich's wrap: folds, trims
            wrapped = Text(text, justify="right" if to_right else "left", overflow="fold").wrap(console, size)
            return [line.plain for line in wrapped] or [" " * size]
        if to_right:
            text = text.rstrip()  # as rich justifies
        gap = " " * (size - cell_len(text))
        return [gap + text if to_right else text + gap]

    def row(texts: Sequence[str], bold: bool = False, bottom: bool = False, bar: str = "│") -> list[str]:
        """A row's lines; cells aligned at the top (a header's at the bottom, as rich does)."""
        parts = [cell(text, size, to_right) for text, size, to_right in zip(texts, sizes, right, strict=True)]
        height = max(map(len, parts))
        if bottom:
            parts = [[" " * size] * (height - len(part)) + part for part, size in zip(parts, sizes, strict=True)]
        lines = []
        for i in range(height):
            padded = [part[i] if i < len(part) else " " * size for part, size in zip(parts, sizes, strict=True)]
            if bold:
                line = [f"{_BOLD} {_RESET}{_BOLD}{text}{_RESET}{_BOLD} {_RESET}" for text in padded]
            else:
                line = [f" {text} " for text in padded]
            lines.append(line)
        return [bar + bar.join(line) + bar for line in lines]

    def rule(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * (size + 2) for size in sizes) + end

    table_width = sum(sizes) + _chrome(len(sizes))

    def banner(text: str, style: str) -> str:
        """A title or caption line: as written, or centred over the table where this rich does so."""
        text = terminal_safe(text)
        if _rich_centres_banners():
            text = text.rstrip()
            left = max(0, (table_width - cell_len(text)) // 2)
            text = " " * left + text + " " * max(0, table_width - cell_len(text) - left)
        return f"{style}{text}{_RESET}" if styled else text

    lines: list[str] = []
    if title:
        lines.append(banner(title, _TITLE))
    lines.append(rule("┏", "━", "┳", "┓"))
    lines += row(head, styled, bottom=True, bar="┃")
    lines.append(rule("┡", "━", "╇", "┩"))
    for i in range(len(rows)):
        lines += row([spec.cells[i] for spec in specs])
    if footer is not None:
        lines.append(rule("├", "─", "┼", "┤"))
        lines += row([spec.cells[-1] if footer else "" for spec in specs], styled)
    lines.append(rule("└", "─", "┴", "┘"))
    if caption:
        lines.append(banner(caption, _CAPTION))
    return lines


@lru_cache(maxsize=1)
def _rich_centres_banners() -> bool:
    """Whether this rich centres a table's title and caption on a soft-wrapping console, padding
    them to the table's width (13.x does; later releases print them as written)."""
    out = io.StringIO()
    sample = Table(title="t")
    sample.add_column("column")
    Console(file=out, width=40, soft_wrap=True, color_system=None).print(sample)
    return out.getvalue().splitlines()[0] != "t"
