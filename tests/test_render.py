"""Tables are printed without rich's layout engine where they can be (render.plain_table):
the lines must be exactly rich's, on a terminal (styled or not) and off one, for any text."""

from __future__ import annotations

import io
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genremap.render import SafeConsole, emit, plain_table, table

CONSOLES: list[dict[str, Any]] = [
    {},  # off a terminal: a file, a pipe
    {"force_terminal": True, "color_system": "truecolor"},
    {"force_terminal": True, "color_system": "standard"},
    {"force_terminal": True, "no_color": True},
    {"force_terminal": True, "color_system": None},
]
# Names as the sources write them: any script, wide letters, controls, bidi overrides, marks.
CHARS = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
    st.sampled_from(["漢", "字", "é", "\u0301", "\u200b", "\u202e", "\x1b", "\t", "\n", " ", "[", "-", "/"]),
)
TEXT = st.one_of(
    st.lists(CHARS, max_size=12).map("".join),
    st.sampled_from(
        [
            "[/]",
            ":smile:",
            "[bold]x",
            "a  b",
            " pad ",
            "rules/10-rock.yaml:68:5",
            "x" * 70,
            "rock-umbrella-tags",
            "a/b-c d",
            "│┃",
        ]
    ),
)
VALUE = st.one_of(st.none(), TEXT, st.integers(-(10**9), 10**9), st.floats(-2, 2, allow_nan=False), st.booleans())
HEADERS = ["suggest", "now decided by", "漢字", "x\x1b[2J", "a│b"]  # what commands rename columns to
NAMES = ["subgenre", "target", "location", "rule", "artists", "tracks", "a_b", "x"]


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Any]:
    columns = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    rows = draw(st.lists(st.fixed_dictionaries({c: VALUE for c in columns}), max_size=6))
    return {
        "title": draw(st.one_of(st.just(""), TEXT)),
        "rows": rows,
        "columns": columns,
        "numeric": draw(st.lists(st.sampled_from(columns), unique=True)),
        "headers": draw(st.dictionaries(st.sampled_from(columns), st.sampled_from(HEADERS), max_size=2)),
        "footer": draw(st.one_of(st.none(), st.fixed_dictionaries({}, optional={c: VALUE for c in columns}))),
        "caption": draw(st.one_of(st.none(), st.just(""), TEXT)),
        "optional": draw(st.lists(st.sampled_from(columns), unique=True, max_size=2)),
        "long_text": draw(st.lists(st.sampled_from(columns), unique=True, max_size=2)),
    }


def rich_output(console_options: dict[str, Any], width: int, spec: dict[str, Any]) -> str:
    out = io.StringIO()
    console = SafeConsole(file=out, width=width, **console_options)
    args = {k: v for k, v in spec.items() if k not in ("title", "rows", "columns")}
    console.print(table(spec["title"], spec["rows"], spec["columns"], width=width, **args))
    return out.getvalue()


def plain_output(console_options: dict[str, Any], width: int, spec: dict[str, Any]) -> str | None:
    console = SafeConsole(file=io.StringIO(), width=width, **console_options)
    lines = plain_table(console, width=width, **spec)
    return None if lines is None else "".join(line + "\n" for line in lines)


@settings(
    max_examples=int(os.environ.get("GENREMAP_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(spec=tables(), console_options=st.sampled_from(CONSOLES), width=st.sampled_from([20, 60, 200]))
def test_plain_tables_are_rich_tables(spec: dict[str, Any], console_options: dict[str, Any], width: int) -> None:
    """Whenever plain_table answers, it answers rich's lines; it answers whenever the table
    fits the width without hiding, fitting or folding anything."""
    plain = plain_output(console_options, width, spec)
    if plain is not None:
        assert plain == rich_output(console_options, width, spec)
    wide = plain_output(console_options, 100_000, spec)
    if wide is not None and max(map(len, wide.splitlines()[1 if spec["title"] else 0 :][:1])) <= width:
        assert plain is not None  # it fits: no reason to hand it to rich


def test_emit_prints_the_corpus_sized_table_whole(capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    rows = [
        {"subgenre": f"subgenre {i}", "location": "genremap/rules/60-house-electronic.yaml:17", "n": i}
        for i in range(3000)
    ]
    emit("table", data=rows, rows=rows, columns=["subgenre", "location", "n"], title="3000 subgenres", numeric=["n"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3000 + 5
    assert lines[-2] == "│ subgenre 2999 │ genremap/rules/60-house-electronic.yaml:17 │ 2,999 │"
