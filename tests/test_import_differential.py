"""The fast CSV import (a column at a time, bulk writes) against the import it replaced (issue 8).

Careless and hostile track and artist CSVs (duplicate ids, blank and explicit-empty genre lists,
`spotify:` ids, several artists per track, bad numbers, line breaks in quoted fields, extra and
missing fields, non-ASCII, over-long text, ...) are imported, in sequences of files into one
store and with and without --strict, once by this checkout and once by the code of commit
a809af4 (the last one before the fast path, taken from git), each in its own process. Every
table of every store, and every result (counts, bad rows with file:line, refusals), must be the
same; only the time stamps may differ.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
BASE_COMMIT = "a809af4"

DRIVER = r"""
import json, sys
from pathlib import Path
from dataclasses import asdict
from genremap.collectors.importers import import_file
from genremap.errors import UsageError
from genremap.store import Store
import genremap

assert genremap.__file__.startswith(sys.argv[2]), (genremap.__file__, sys.argv[2])
out = []
for case in json.loads(open(sys.argv[1]).read()):
    steps = []
    with Store.open(case["db"]) as store:
        for step in case["steps"]:
            try:
                # source named: the default became "import" after the base commit (issue 9)
                result = asdict(import_file(store, Path(step["file"]), strict=step["strict"], source="import"))
                result["path"] = result["path"].rsplit("/", 1)[-1]
                steps.append(result)
            except UsageError as exc:
                steps.append({"refused": str(exc).replace(case["dir"], "DIR")})
    out.append(steps)
print(json.dumps(out))
"""

WORDS = ["Love", "Night", "Fire", "Blue", "Rain", "Gold", "Road", "Moon", "Björk", "Sigur Rós", "東京", "Ødegård"]
GENRES = ["rock", "indie rock", "hard rock", "metal", "art pop", "icelandic pop", "jazz", "k-pop", "rock'n'roll"]
SUFFIXES = ["", "", "", " - Remastered 2011", " (Mono)", " - Single Version"]


def _name(rnd: random.Random) -> str:
    return " ".join(rnd.sample(WORDS, rnd.randint(1, 3)))


def _genres(rnd: random.Random) -> str:
    """A genres cell as sources write it: Python or JSON list literals, `;` lists, blanks, junk."""
    picked = rnd.sample(GENRES, rnd.randint(0, 4))
    kind = rnd.random()
    if kind < 0.35:
        return str(picked)
    if kind < 0.45:
        return json.dumps(picked)
    if kind < 0.55:
        return "; ".join(picked)
    if kind < 0.9:
        return rnd.choice(["", " ", "[]", "[ ]"])
    return rnd.choice(
        [
            str(picked).replace(", ", ","),  # a list literal without spaces
            "['a\\'b', \"c\"]",  # escapes: only the parser reads them
            "['rock'",  # unclosed: a bad row
            "[1, 2]",
            "['x' 'y']",
            "['" + "long " * 300 + "']",  # one genre over the cap
            "['line\\nbreak']",
            "['tab\there']",
            "[['nested']]",
            "['" + "\u00e9" * 5 + "', 'ok']",
            "{'a': 1}",
            "['dup', 'dup', 'Dup']",
        ]
    )


def _number(rnd: random.Random) -> str:
    if rnd.random() < 0.85:
        return rnd.choice(["", str(rnd.randint(0, 400_000)), str(rnd.randint(0, 100)), "0"])
    return rnd.choice([" 42 ", "123.6", "1e3", "-3", "12abc", "inf", "nan", "9" * 30, "0x10", "1_000"])


def _track_id(rnd: random.Random, pool: list[str]) -> str:
    kind = rnd.random()
    if kind < 0.1:
        return ""
    if kind < 0.15:
        return "spotify:track:" + rnd.choice(pool)
    if kind < 0.18:
        return " " + rnd.choice(pool) + " "
    return rnd.choice(pool)


def _artist(rnd: random.Random, artists: list[tuple[str, str]]) -> tuple[str, str]:
    """An artist cell and an artist_id cell: one artist, a list of them, or blanks."""
    kind = rnd.random()
    if kind < 0.6:
        name, artist_id = rnd.choice(artists)
        return name, rnd.choice([artist_id, artist_id, "", "spotify:artist:" + artist_id])
    if kind < 0.95:
        several = rnd.sample(artists, rnd.randint(2, 3))
        ids = [a[1] for a in several]
        return str([a[0] for a in several]), rnd.choice([str(ids), "", str(ids[:1]), ids[0]])
    return rnd.choice([("", ""), ("  ", "x1"), ("['A', ", ""), (rnd.choice(artists)[0], "['bad id!']")])


def _text(rnd: random.Random, base: str) -> str:
    kind = rnd.random()
    if kind < 0.9:
        return base
    return rnd.choice(["", "  " + base + "  ", base + "\nsecond line", base + "\r\nwindows", "x" * 1_001, "\x00nul"])


def _track_rows(rnd: random.Random, n: int, artists: list[tuple[str, str]], pool: list[str]) -> list[list[str]]:
    rows = []
    for _ in range(n):
        artist, artist_id = _artist(rnd, artists)
        title = _text(rnd, _name(rnd) + rnd.choice(SUFFIXES))
        isrc = rnd.choice(["", "", "US-ABC-12-34567", "usabc1234567", f"GB{rnd.randint(0, 10**9):010d}"])
        row = [
            _track_id(rnd, pool),
            title,
            artist,
            artist_id,
            _genres(rnd),
            _text(rnd, rnd.choice(["Paranoid", "Homogenic", "Ágætis byrjun", ""])),
            rnd.choice(["", "1970-09-18", "1997", "2001-05"]),
            _number(rnd),
            _number(rnd),
            isrc,
            rnd.choice(["", "https://p.scdn.co/mp3-preview/abc"]),
        ]
        shape = rnd.random()
        if shape < 0.03:
            row = row[: rnd.randint(1, len(row) - 1)]  # a short row: missing cells are None
        elif shape < 0.06:
            row = [*row, rnd.choice(["", "  ", "surplus"])]  # extra fields: bad unless blank
        elif shape < 0.07:
            row = []  # a blank line
        rows.append(row)
    return rows


TRACK_HEADERS = [
    "track_id,track_name,artist_name,artist_id,genres,album,release_date,duration_ms,popularity,isrc,preview_url",
    "id,title,artists,artist_ids,artist_genres,album_name,year,duration,popularity,isrc,preview",
    "uri,name,artist,artist_uri,genre,album,release_date,duration_ms,popularity,isrc,preview_url",
]


def _csv_text(header: str, rows: list[list[str]], delimiter: str = ",", line_end: str = "\n") -> str:
    """`header` (comma-separated names) and `rows` as CSV or TSV; an empty row is a blank line."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(header.split(","))
    for row in rows:
        if row:
            writer.writerow(row)
        else:
            out.write(line_end)
    return out.getvalue()


def _artist_csv(rnd: random.Random, artists: list[tuple[str, str]]) -> str:
    rows = [[artist_id, name, _genres(rnd), _number(rnd)] for name, artist_id in rnd.sample(artists, len(artists) // 2)]
    return _csv_text("artist_id,artist,genres,count", rows)


def _case(rnd: random.Random, folder: Path, index: int) -> dict[str, Any]:
    """A store and the files imported into it, one after the other."""
    artists = [(_name(rnd) + f" {i}", f"a{i:03d}") for i in range(rnd.randint(3, 30))]
    pool = [f"t{i:04d}" for i in range(rnd.randint(5, 200))]
    case = folder / f"case{index:03d}"
    case.mkdir()
    steps = []
    if rnd.random() < 0.5:
        (case / "artists.csv").write_text(_artist_csv(rnd, artists), encoding="utf-8")
        steps.append({"file": str(case / "artists.csv"), "strict": False})
    for part in range(rnd.randint(1, 3)):
        rows = _track_rows(rnd, rnd.randint(1, 120), artists, pool)
        header = rnd.choice(TRACK_HEADERS)
        if rnd.random() < 0.2:  # optional columns absent
            keep = sorted(rnd.sample(range(5, 11), rnd.randint(0, 5)))
            columns = [0, 1, 2, 3, 4, *keep]
            header = ",".join(header.split(",")[c] for c in columns)
            rows = [[row[c] for c in columns if c < len(row)] if row else row for row in rows]
        delimiter, suffix = rnd.choice([(",", ".csv"), (",", ".csv"), ("\t", ".tsv")])
        text = _csv_text(header, rows, delimiter, rnd.choice(["\n", "\r\n"]))
        path = case / f"tracks{part}{suffix}"
        if rnd.random() < 0.15:
            path = path.with_name(path.name + ".gz")
            path.write_bytes(gzip.compress(text.encode("utf-8")))
        else:
            path.write_text(text, encoding="utf-8", newline="")
        steps.append({"file": str(path), "strict": rnd.random() < 0.25})
    return {"db": str(case / "store.db"), "dir": str(folder), "steps": steps}


def _bulk_case(folder: Path) -> dict[str, Any]:
    """Large enough for the bulk write's index rebuild; then the same tracks again, some blanked."""
    rnd = random.Random(8)
    artists = [(f"Artist {i}", f"a{i:05d}") for i in range(3_000)]
    case = folder / "bulk"
    case.mkdir()
    header = TRACK_HEADERS[0]
    rows = []
    for i in range(60_000):
        name, artist_id = artists[i % len(artists)]
        title, genres = _name(rnd) + rnd.choice(SUFFIXES), str(rnd.sample(GENRES, i % 3))
        isrc = f"US{i:010d}" if i % 3 else ""
        rows.append(
            [f"t{i:06d}", title, name, artist_id, genres, "Album", "1999", str(1000 + i % 5000), str(i % 101), isrc, ""]
        )
    (case / "first.csv").write_text(_csv_text(header, rows), encoding="utf-8")
    again = [[*row[:4], "" if i % 2 else row[4], "", "", "", "", "", ""] for i, row in enumerate(rows[::7])]
    (case / "again.csv").write_text(_csv_text(header, again), encoding="utf-8")
    steps = [{"file": str(case / name), "strict": False} for name in ("first.csv", "again.csv")]
    return {"db": str(case / "store.db"), "dir": str(folder), "steps": steps}


def _tables(db: str) -> dict[str, list[Any]]:
    """Every table (its definition, then every row, time stamps left out, in a fixed order) and
    every index definition."""
    conn = sqlite3.connect(db)
    try:
        out: dict[str, list[Any]] = {}
        for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall():
            if kind != "table":
                out[f"{kind} {name}"] = [sql]
                continue
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")') if not r[1].endswith("_at")]
            select = ", ".join(f'"{c}"' for c in columns)
            out[name] = [sql, *conn.execute(f'SELECT {select} FROM "{name}" ORDER BY {select}')]
        # A track credited to one artist has no track_artists row now (tracks.artist_key says it);
        # the base wrote one: compare the lists of tracks with several artists.
        several = {
            r[0] for r in conn.execute("SELECT track_id FROM track_artists GROUP BY track_id HAVING count(*) > 1")
        }
        out["track_artists"] = out["track_artists"][:1] + [r for r in out["track_artists"][1:] if r[0] in several]
        return out
    finally:
        conn.close()


def _run(code: Path, cases: list[dict[str, Any]], listing: Path) -> list[Any]:
    listing.write_text(json.dumps(cases), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONHASHSEED": "0"}
    done = subprocess.run(  # run from the listing's folder: `python -c` puts the working folder first on the path
        [sys.executable, "-c", DRIVER, str(listing), str(code)],
        env=env,
        cwd=listing.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def base_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The genremap package of commit a809af4, from this repository's history."""
    folder = tmp_path_factory.mktemp("base")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BASE_COMMIT, "genremap"], capture_output=True, check=False
    )
    if archive.returncode:
        pytest.skip(f"commit {BASE_COMMIT} is not in this clone (a shallow checkout?): {archive.stderr[:200]!r}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")
    return io.StringIO(text, newline=None).readlines()


def _from_row(span: str, lines: list[str]) -> str:
    """`first-last` (1-based lines) without the blank lines at its start."""
    first, _, last = span.partition("-")
    if not last:
        return span
    start = int(first)
    while start < int(last) and not lines[start - 1].strip("\r\n"):
        start += 1
    return str(start) if start == int(last) else f"{start}-{last}"


def _as_fixed(results: list[dict[str, Any]], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The base's results with its one known fault fixed: a row after blank lines was reported from
    the first blank line on (`f.csv:3-4` for a bad row on line 4 after a blank line 3)."""
    for result, step in zip(results, steps, strict=True):
        lines = _lines(Path(step["file"]))
        for bad in result.get("bad_rows", []):
            name, span = bad["where"].rsplit(":", 1)
            bad["where"] = f"{name}:{_from_row(span, lines)}"
        refused = re.match(r"([^:]+):([0-9-]+): ", result.get("refused", ""))
        if refused:
            rest = result["refused"][refused.end() :]
            result["refused"] = f"{refused[1]}:{_from_row(refused[2], lines)}: {rest}"
    return results


def _both(tmp_path: Path, base_code: Path, make: Any) -> None:
    """Import the cases made by make(folder) with both codes; every store and result must match."""
    runs = {}
    for name, code in (("fast", REPO), ("base", base_code)):
        folder = tmp_path / name
        folder.mkdir()
        cases = make(folder)
        runs[name] = (cases, _run(code, cases, folder / "cases.json"))
    (fast_cases, fast_results), (base_cases, base_results) = runs["fast"], runs["base"]
    for fast_case, base_case, fast, base in zip(fast_cases, base_cases, fast_results, base_results, strict=True):
        where = fast_case["steps"][-1]["file"]
        assert fast == _as_fixed(base, base_case["steps"]), f"results differ for {where}"
        fast_tables, base_tables = _tables(fast_case["db"]), _tables(base_case["db"])
        for table in base_tables:
            assert fast_tables.get(table) == base_tables[table], f"table {table} differs for {where}"
        for table in fast_tables.keys() - base_tables.keys():  # added by later schema versions: left empty
            assert len(fast_tables[table]) == 1, f"import wrote to {table} for {where}"


def test_careless_csvs_import_as_before(tmp_path: Path, base_code: Path) -> None:
    """80 stores of careless track and artist files: the same tables and results as before."""

    def make(folder: Path) -> list[dict[str, Any]]:
        rnd = random.Random(2026)
        return [_case(rnd, folder, index) for index in range(80)]

    _both(tmp_path, base_code, make)


def test_bulk_import_as_before(tmp_path: Path, base_code: Path) -> None:
    """60,000 tracks (the bulk path that rebuilds indexes; read by pyarrow, plain inserts into the
    empty table), then a re-import with blanks (upserts)."""
    _both(tmp_path, base_code, lambda folder: [_bulk_case(folder)])
    assert _read_by_arrow(tmp_path / "fast" / "bulk" / "first.csv")


def test_bad_row_after_blank_lines_is_named_by_its_own_line(tmp_path: Path) -> None:
    """Blank lines are not rows: a bad row after them is reported at its line, not from the first blank one."""
    from genremap.collectors.importers import import_file
    from genremap.store import Store

    table = tmp_path / "tracks.csv"
    table.write_text("track_id,track_name,artist\nt1,Paranoid,Black Sabbath\n\n\nt2,,Black Sabbath\n", encoding="utf-8")
    with Store.open(tmp_path / "store.db") as store:
        result = import_file(store, table)
    assert [(bad.where, bad.reason) for bad in result.bad_rows] == [("tracks.csv:5", "no track name")]
    assert result.tracks_new == 1


def test_errors_far_into_a_big_file_name_their_line(tmp_path: Path) -> None:
    """Decoding and parsing go a block or a chunk at a time: an error past the first block (1 MiB)
    or chunk (100,000 rows) still names its own line and byte."""
    from genremap.collectors.importers import import_file
    from genremap.errors import UsageError
    from genremap.store import Store

    rows = "".join(f"t{i},Song {i},Artist {i % 97},\"['rock', 'pop']\"\n" for i in range(150_000))
    header = b"track_id,track_name,artist,genres\n"
    bad_byte = tmp_path / "latin1.csv"
    bad_byte.write_bytes(header + rows.encode() + "t-x,Caf\u00e9,Someone,\n".encode("latin-1"))
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_bytes(header + rows.encode() + b't-y,"Open quote,Someone,\n' + b"more,rows,here,\n" * 20_000)
    with Store.open(tmp_path / "store.db") as store:
        with pytest.raises(UsageError) as decoding:
            import_file(store, bad_byte)
        with pytest.raises(UsageError) as parsing:
            import_file(store, unclosed)
    assert str(decoding.value).startswith("latin1.csv:150002: byte 0xe9 (byte 8 of the line) is not utf-8;")
    assert str(parsing.value).startswith("unclosed.csv:150002: a field longer than 131,072 characters")


_LIST_TEXT = st.one_of(
    st.lists(st.text(max_size=12), max_size=5).map(repr),  # Python's spelling, escapes included
    st.lists(st.text(max_size=12), max_size=5).map(json.dumps),  # JSON's
    st.lists(st.text(st.sampled_from("ab'\" ,[]\\\n\t\x00é"), max_size=6), max_size=4).map(
        lambda items: "[" + ", ".join(f"'{i}'" for i in items) + "]"  # hand-quoted: often not a literal
    ),
    st.text(st.sampled_from("ab'\" ,[]\\"), max_size=20),
)


@given(_LIST_TEXT)
@settings(max_examples=400, deadline=None)
def test_plain_list_reads_like_the_parser(text: str) -> None:
    """The parser-free reading of plain list literals gives what ast.literal_eval gives, or steps aside."""
    from genremap.collectors.importers import _plain_list

    plain = _plain_list(text)
    if plain is None:
        return
    assert plain == ast.literal_eval(text)


# --- the pyarrow reader (issue 8: the 1M-track import) ---------------------------------------
#
# Well-formed files (every record on one line) are parsed by pyarrow's CSV reader; the cases
# below are made so that every one of their files takes that path, with the quoting quirks,
# BOMs, CRLF line ends, blank and odd cells that both parsers must read alike.

QUIRKS = {  # a cell written as is, not quoted by the csv writer: how careless exporters write them
    "QUIRK1": '"Qa"b',  # text after a closing quote: part of the cell
    "QUIRK2": 'a"b',  # a quote inside an unquoted cell: a character
    "QUIRK3": 'a""b',
    "QUIRK4": '"x"",y"',  # a doubled quote and a delimiter inside quotes
    "QUIRK5": '" padded "',
}


def _one_line(cell: str) -> str:
    return cell.replace("\r", " ").replace("\n", " ").replace("\x00", "0")


def _fast_case(rnd: random.Random, folder: Path, index: int) -> dict[str, Any]:
    """A store and well-formed track files (one line per record, rows as wide as the header), with
    careless cells: blank and explicit-empty genres, duplicate and `spotify:` ids, several
    artists, odd numbers, non-ASCII, spaces, over-long text, quotes; CRLF, BOM, TSV, gzip."""
    artists = [(_name(rnd) + f" {i}", f"a{i:03d}") for i in range(rnd.randint(3, 30))]
    pool = [f"t{i:04d}" for i in range(rnd.randint(5, 200))]
    case = folder / f"fast{index:03d}"
    case.mkdir()
    steps = []
    for part in range(rnd.randint(1, 3)):
        header = rnd.choice(TRACK_HEADERS)
        width = len(header.split(","))
        rows = [[_one_line(c) for c in row] for row in _track_rows(rnd, rnd.randint(1, 120), artists, pool)]
        rows = [row for row in rows if len(row) == width]
        for row in rows:
            if rnd.random() < 0.1:
                row[rnd.choice([1, 2, 5])] = rnd.choice(list(QUIRKS))
            if rnd.random() < 0.05:
                row[1] = rnd.choice(['Say "Hi", Bye', "Café, Noir", "  spaced  ", "\u00a0nbsp\u00a0", "tab\tin"])
        delimiter, suffix = rnd.choice([(",", ".csv"), (",", ".csv"), ("\t", ".tsv")])
        text = _csv_text(header, rows, delimiter, rnd.choice(["\n", "\r\n"]))
        for marker, raw in QUIRKS.items():
            text = text.replace(marker, raw if delimiter == "," or "," not in raw else raw.replace(",", ";"))
        if rnd.random() < 0.3:
            text = text.rstrip("\r\n")  # no line end after the last record
        data = (b"\xef\xbb\xbf" if rnd.random() < 0.2 else b"") + text.encode("utf-8")
        path = case / f"tracks{part}{suffix}"
        if rnd.random() < 0.15:
            path = path.with_name(path.name + ".gz")
            data = gzip.compress(data)
        path.write_bytes(data)
        steps.append({"file": str(path), "strict": rnd.random() < 0.25})
    return {"db": str(case / "store.db"), "dir": str(folder), "steps": steps}


def _read_by_arrow(path: Path) -> bool:
    """Whether the pyarrow reader takes this file (rather than the csv module)."""
    from genremap.collectors.readers import _arrow_table, check_file

    data = _lines_bytes(path)
    return _arrow_table(data.removeprefix(b"\xef\xbb\xbf"), check_file(path)) is not None


def _lines_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def test_files_pyarrow_reads_import_as_before(tmp_path: Path, base_code: Path) -> None:
    """40 stores of well-formed but careless track files, every one read by pyarrow: the same
    tables and results (bad rows with their lines, refusals under --strict) as the csv module's."""

    def make(folder: Path) -> list[dict[str, Any]]:
        rnd = random.Random(88)
        return [_fast_case(rnd, folder, index) for index in range(40)]

    _both(tmp_path, base_code, make)
    files = sorted((tmp_path / "fast").glob("fast*/tracks*"))
    assert files and all(_read_by_arrow(path) for path in files)


_PLAIN = st.text(st.sampled_from('ab"\t \u00e9'), max_size=5)
_CELL = st.one_of(
    _PLAIN,  # quotes inside unquoted cells, spaces, non-ASCII
    st.text(st.sampled_from('ab,"\t \u00e9'), max_size=5).map(lambda s: '"' + s.replace('"', '""') + '"'),
    st.tuples(_PLAIN, _PLAIN).map(lambda p: f'"{p[0]}"{p[1]}'),  # text after a closing quote
    st.text(st.sampled_from('ab,"\r\n'), max_size=5),  # anything, rarely well-formed
)


@st.composite
def _raw_csv(draw: st.DrawFn) -> bytes:
    """Raw CSV bytes, often well-formed: rows of cells joined by hand (quotes not escaped), with
    \\n or \\r\\n line ends, sometimes blank lines, ragged rows or a BOM."""
    width = draw(st.integers(1, 3))
    ragged = draw(st.booleans()) and draw(st.booleans())
    rows = draw(st.lists(st.lists(_CELL, min_size=width, max_size=width + ragged), max_size=6))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(f"h{i}" for i in range(width)), *(",".join(row) for row in rows)]
    text = end.join(lines) + draw(st.sampled_from(["", end]))
    return text.encode("utf-8")


@given(_raw_csv())
@settings(max_examples=500, deadline=None)
def test_pyarrow_reads_what_it_takes_as_the_csv_module_does(data: bytes) -> None:
    """Whatever file the pyarrow reader takes, it reads as the csv module does: the same header,
    cells and lines of every record; files it cannot read so, it leaves to the csv module."""
    from genremap.collectors.readers import SourceFile, _arrow_table, _parse_csv

    source = SourceFile(Path("t.csv"), "csv")
    fast = _arrow_table(data, source)
    if fast is None:
        return
    slow = _parse_csv(data, source, lambda n: None)
    assert fast.header == slow.header
    assert not slow.errors
    assert [fast.record(i) for i in range(len(fast))] == [slow.record(i) for i in range(len(slow))]
    assert [fast.where(i) for i in range(len(fast))] == [slow.where(i) for i in range(len(slow))]


def test_bulk_import_keeps_foreign_keys_whole_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import writes without SQLite's per-row foreign key lookups: every reference it writes is
    still whole, and checks are on again after it, also after a write that fails half-way."""
    from genremap.collectors.importers import import_file
    from genremap.store import Store

    table = tmp_path / "tracks.csv"
    rows = [f"t{i},Song {i},Artist {i % 7},a{i % 7},\"['rock', 'pop']\"" for i in range(200)]
    table.write_text("track_id,track_name,artist,artist_id,genres\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with Store.open(tmp_path / "store.db") as store:
        assert import_file(store, table).tracks_new == 200
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.conn.execute("PRAGMA foreign_key_check").fetchall() == []

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise OSError("disk gone")

        monkeypatch.setattr(Store, "upsert_track_columns", broken)
        table.write_text(table.read_text(encoding="utf-8").replace("t1,", "t9999,"), encoding="utf-8")
        with pytest.raises(OSError):
            import_file(store, table)
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 200


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"t-x,Caf\xe9,Someone\n", "tracks.csv:4: byte 0xe9 (byte 8 of the line) is not utf-8;"),
        (b"t-x,\xed\xa0\x80,Someone\n", "tracks.csv:4: byte 0xed (byte 5 of the line) is not utf-8;"),
        (b"t-x," + b"x" * 140_000 + b",Someone\n", "tracks.csv:4: a field longer than 131,072 characters"),
    ],
)
def test_files_pyarrow_would_misread_are_refused_as_before(tmp_path: Path, tail: bytes, message: str) -> None:
    """A file pyarrow would read although the csv module refuses it (a byte that is not UTF-8, an
    encoded surrogate, a field over the csv module's limit) is left to the csv module: one line
    naming the file and line, nothing imported."""
    from genremap.collectors.importers import import_file
    from genremap.errors import UsageError
    from genremap.store import Store

    table = tmp_path / "tracks.csv"
    table.write_bytes(b"track_id,track_name,artist\nt1,Paranoid,Black Sabbath\nt2,Iron Man,Black Sabbath\n" + tail)
    with Store.open(tmp_path / "store.db") as store:
        with pytest.raises(UsageError) as refused:
            import_file(store, table)
        assert store.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 0
    assert str(refused.value).startswith(message)


def test_a_file_parsed_in_many_blocks_imports_as_in_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow parses large files in blocks, a chunk of each column per block: the store is the
    same as from one block (artists, genre lists and numbers are factorized across chunks)."""
    from genremap.collectors import readers
    from genremap.collectors.importers import check_files, import_into

    rnd = random.Random(3)
    rows = []
    for i in range(4_000):
        artist = rnd.randrange(300)
        isrc = f"us-{i:09d}" if i % 4 else ""
        rows.append(
            [f"t{rnd.randrange(3_500):05d}", _name(rnd) + rnd.choice(SUFFIXES), f"Artist {artist}", f"a{artist}",
             str(rnd.sample(GENRES, artist % 4)) if artist % 5 else "", "Album", "2001", str(1000 + i % 7), "", isrc, ""]
        )  # fmt: skip
    data = tmp_path / "tracks.csv"
    data.write_text(_csv_text(TRACK_HEADERS[0], rows), encoding="utf-8")
    stores = {}
    for block in (readers.ARROW_BLOCK, 4096):
        monkeypatch.setattr(readers, "ARROW_BLOCK", block)
        table = readers.read_csv_table(check_files([data], None)[0])
        assert (table.arrays[0].num_chunks > 1) == (block == 4096)
        stores[block] = tmp_path / f"store-{block}.db"
        import_into(stores[block], check_files([data], None))
    one, many = (_tables(str(path)) for path in stores.values())
    assert len(one["tracks"]) > 2_000
    assert many == one
