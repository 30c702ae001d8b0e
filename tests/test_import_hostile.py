"""`genremap import` on hostile and careless input (issue 7): nothing known is lost, a refusal
is one line with exit status 2 and leaves the store exactly as it was, and nothing expands
without bound; a property test feeds it random bytes and tables in every format."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import pickle
import pickletools
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from genremap.cli import app
from genremap.collectors.importers import import_file, safe_unpickle
from genremap.collectors.readers import ALIASES, MAX_LINE_BYTES
from genremap.collectors.safe_pickle import PickleTooLarge
from genremap.errors import UsageError
from genremap.store import Store

REPO = Path(__file__).resolve().parent.parent
HEADER = "track_id,track_name,artist,genres\n"


def dump(db: Path) -> list[str]:
    """Every row of every table, as SQL: equal dumps mean an unchanged store."""
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def genres_of(db: Path, artist: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            """SELECT g.name FROM artists a JOIN artist_genres ag USING (artist_key) JOIN genres g USING (genre_key)
               WHERE a.name = ? ORDER BY ag.source, ag.position""",
            (artist,),
        ).fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


TINY_RULES = {
    "00-targets.yaml": "targets:\n  rock: Rock music.\n  metal: Heavy metal.\n",
    "10-rules.yaml": "rules:\n  - name: rock\n    target: rock\n    kind: keyword\n    patterns: [rock]\n",
}


@pytest.fixture(scope="module")
def tiny_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two targets, one rule: labelling after each import stays cheap."""
    folder = tmp_path_factory.mktemp("rules")
    for name, text in TINY_RULES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


Run = Callable[..., Result]


@pytest.fixture
def run(runner: CliRunner, tiny_rules: Path) -> Run:
    """run(db, *args): `genremap import *args --db db` with the tiny rules."""

    def invoke(db: Path, *args: str | Path) -> Result:
        return runner.invoke(app, ["import", *map(str, args), "--db", str(db), "--rules", str(tiny_rules)])

    return invoke


def assert_refused(result: Result, *fragments: str) -> str:
    """Exit status 2, exactly one line on stderr (naming the fragments), no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def build_store(db: Path, *tables: Path) -> Path:
    """A store with `tables` imported, checkpointed so that copying the file copies it all."""
    with Store.open(db) as store:
        for table in tables:
            import_file(store, table)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared Spotify corpus (22,726 artists with genres) imported once; tests copy it."""
    corpus = REPO.parent / "shared" / "data" / "spotify_artists_genres.csv"
    if not corpus.exists():
        pytest.skip(f"shared corpus not found at {corpus}")
    return build_store(tmp_path_factory.mktemp("corpus") / "corpus.db", corpus)


@pytest.fixture
def db(corpus_db: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(corpus_db, tmp_path / "store.db"))


SMALL_ARTISTS = """artist_id,artist,genres,count
a1,Black Sabbath,"['heavy metal', 'hard rock']",12
a2,Björk,"['art pop', 'icelandic pop']",7
a3,Nobody Asked,,
a4,Asked And None,[],3
"""
SMALL_TRACKS = HEADER + "s1,Paranoid,Black Sabbath,\ns2,Jóga,Björk,\n"


@pytest.fixture(scope="module")
def small_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    tables = _text(folder / "artists.csv", SMALL_ARTISTS), _text(folder / "tracks.csv", SMALL_TRACKS)
    return build_store(folder / "small.db", *tables)


@pytest.fixture
def small_db(small_template: Path, tmp_path: Path) -> Path:
    """A small store with genres, so a refusal that wrote anything would show in its dump."""
    return Path(shutil.copy(small_template, tmp_path / "small.db"))


SABBATH = [
    "album rock",
    "birmingham metal",
    "classic rock",
    "hard rock",
    "metal",
    "rock",
    "stoner rock",
    "uk doom metal",
]


# --- 1. a missing value never erases a known one ----------------------------------------------


def _parquet(path: Path, columns: dict[str, list[object]]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


BLANK_GENRE_TABLES: dict[str, Callable[[Path], Path]] = {
    "csv blank cell": lambda d: _text(d / "t.csv", HEADER + "bs1,Paranoid,Black Sabbath,\n"),
    "csv missing cell": lambda d: _text(d / "t.csv", HEADER + "bs1,Paranoid,Black Sabbath\n"),
    "csv whitespace": lambda d: _text(d / "t.csv", HEADER + "bs1,Paranoid,Black Sabbath,  \n"),
    "json null": lambda d: _text(
        d / "t.json", json.dumps([{"id": "bs1", "name": "Paranoid", "artist": "Black Sabbath", "genres": None}])
    ),
    "jsonl key absent": lambda d: _text(
        d / "t.jsonl",
        json.dumps({"id": "bs0", "name": "War Pigs", "artist": "Black Sabbath", "genres": None})
        + "\n"
        + json.dumps({"id": "bs1", "name": "Paranoid", "artist": "Black Sabbath"})
        + "\n",
    ),
    "parquet null": lambda d: _parquet(
        d / "t.parquet",
        {"track_id": ["bs1"], "track_name": ["Paranoid"], "artist": ["Black Sabbath"], "genres": [None]},
    ),
    "pickle none": lambda d: _bytes(
        d / "t.pickle",
        pickle.dumps({"bs1": {"track_name": "Paranoid", "track_artists": "Black Sabbath", "genres": None}}),
    ),
}


def _text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("shape", list(BLANK_GENRE_TABLES))
def test_a_blank_genres_cell_keeps_the_stored_genres(run: Run, db: Path, tmp_path: Path, shape: str) -> None:
    assert genres_of(db, "Black Sabbath") == SABBATH
    result = run(db, BLANK_GENRE_TABLES[shape](tmp_path), "--strict")
    assert result.exit_code == 0, result.output
    assert genres_of(db, "Black Sabbath") == SABBATH
    with Store.open(db) as store:
        assert store.track("bs1")["artist_name"] == "Black Sabbath"  # type: ignore[index]


def test_only_an_explicit_empty_list_means_no_genres(run: Run, db: Path, tmp_path: Path) -> None:
    path = _text(tmp_path / "t.csv", HEADER + 'bs1,Paranoid,Black Sabbath,"[]"\n')
    assert run(db, path).exit_code == 0
    assert genres_of(db, "Black Sabbath") == []


def test_within_a_file_the_last_non_missing_value_wins(store: Store, tmp_path: Path) -> None:
    text = (
        "track_id,track_name,artist,genres,duration_ms\n"
        "t1,Paranoid,Black Sabbath,heavy metal;hard rock,168000\n"
        "t2,Iron Man,Black Sabbath,,356000\n"  # blank: keeps the genres of line 2
        "t1,Paranoid,Black Sabbath,,\n"  # the same track again, blank: keeps its duration
        "t3,Children of the Grave,Ozzy Osbourne,['heavy metal'],\n"
        "t4,Crazy Train,Ozzy Osbourne,\"['hard rock', 'metal']\",\n"  # a later list replaces
        "t5,Mr. Crowley,Ozzy Osbourne,,\n"
    )
    result = import_file(store, _text(tmp_path / "t.csv", text))
    assert result.bad_rows == []
    assert genres_of(store.path, "Black Sabbath") == ["heavy metal", "hard rock"]
    assert genres_of(store.path, "Ozzy Osbourne") == ["hard rock", "metal"]
    duration = store.conn.execute("SELECT duration_ms FROM tracks WHERE track_id = 't1'").fetchone()[0]
    assert duration == 168000


# --- 2. --strict is all or nothing; values are validated before writing ----------------------

OUT_OF_RANGE = ["99999999999999999999999", "inf", "-inf", "1e400", "9" * 5000, "nan", "-3", "12abc"]


@pytest.mark.parametrize("count", OUT_OF_RANGE, ids=lambda v: v[:12])
def test_a_count_the_store_cannot_hold_is_a_bad_row(run: Run, small_db: Path, tmp_path: Path, count: str) -> None:
    path = _text(tmp_path / "a.csv", f"artist,genres,count\nGood,rock,1\nHostile,rock,{count}\nAlso Good,pop,2\n")
    before = dump(small_db)
    assert_refused(run(small_db, path, "--strict"), "a.csv:3: count", "(1 bad row(s); nothing imported")
    assert dump(small_db) == before
    result = run(small_db, path, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [b["where"] for b in report["bad_rows"]] == ["a.csv:3"]
    assert report["imports"][0]["artists_new"] == 2


def test_a_bad_value_past_the_first_batches_writes_nothing_under_strict(
    run: Run, small_db: Path, tmp_path: Path
) -> None:
    rows = [f"New Artist {i},['rock'],{i % 50 + 1}" for i in range(45_000)]
    rows[44_000] = "New Artist 44000,['rock'],99999999999999999999999"  # line 44,002: the third batch
    path = _text(tmp_path / "artists.csv", "artist,genres,count\n" + "\n".join(rows) + "\n")
    before = dump(small_db)
    assert_refused(run(small_db, path, "--strict"), "artists.csv:44002: count", "nothing imported because of --strict")
    assert dump(small_db) == before


def test_a_file_is_written_in_one_transaction(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = "\n".join(f"Artist {i},['rock']" for i in range(45_000))
    path = _text(tmp_path / "artists.csv", "artist,genres\n" + rows + "\n")
    real = Store.upsert_artists
    calls = []

    def fails_on_the_third_batch(self: Store, artists: object, origin: str) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise sqlite3.OperationalError("simulated failure in the third batch")
        return real(self, artists, origin)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "upsert_artists", fails_on_the_third_batch)
    with pytest.raises(sqlite3.OperationalError):
        import_file(store, path)
    assert len(calls) == 3
    assert store.summary().artists == 0  # the first two batches were rolled back with the third


@pytest.mark.parametrize(
    ("column", "arrow_type", "value", "problem"),
    [
        ("duration_ms", "int64", 2**63 - 1, None),  # the largest INTEGER is stored exactly
        ("duration_ms", "int64", -(2**63), "is negative"),
        ("duration_ms", "uint64", 2**64 - 1, "larger than 9,223,372,036,854,775,807"),
        ("duration_ms", "float64", float("inf"), "not a finite number"),
        ("duration_ms", "float64", float("nan"), "not a finite number"),
        ("popularity", "decimal", Decimal("1e30"), "larger than 9,223,372,036,854,775,807"),
    ],
    ids=["int64-max", "int64-min", "uint64-max", "inf", "nan", "decimal-1e30"],
)
def test_parquet_numbers_out_of_range_are_bad_rows(
    run: Run, small_db: Path, tmp_path: Path, column: str, arrow_type: str, value: object, problem: str | None
) -> None:
    kind = pa.decimal128(38, 0) if arrow_type == "decimal" else getattr(pa, arrow_type)()
    first = Decimal(1) if arrow_type == "decimal" else 1
    path = _parquet(
        tmp_path / "t.parquet",
        {
            "track_id": ["p1", "p2"],
            "track_name": ["A", "B"],
            "artist": ["X", "Y"],
            column: pa.array([first, value], kind),
        },
    )
    before = dump(small_db)
    strict = run(small_db, path, "--strict")
    if problem is None:
        assert strict.exit_code == 0, strict.output
        stored = sqlite3.connect(small_db).execute(f"SELECT {column} FROM tracks WHERE track_id = 'p2'").fetchone()[0]
        assert stored == value
        return
    assert_refused(strict, "t.parquet: row 2", problem)
    assert dump(small_db) == before
    loose = run(small_db, path, "--format", "json")
    assert loose.exit_code == 0, loose.output
    assert [b["where"] for b in json.loads(loose.stdout)["bad_rows"]] == ["t.parquet: row 2"]


def test_all_files_are_checked_before_the_first_is_written(run: Run, small_db: Path, tmp_path: Path) -> None:
    good = _text(tmp_path / "good.csv", HEADER + "g1,Song,New Band,rock\n")
    before = dump(small_db)
    for missing in (tmp_path / "missing.csv", tmp_path / "x.xlsx", tmp_path):
        if missing.suffix == ".xlsx":
            missing.write_text("x")
        assert_refused(run(small_db, good, missing))
        assert dump(small_db) == before


def test_a_file_refused_half_way_says_what_was_imported(run: Run, small_db: Path, tmp_path: Path) -> None:
    first = _text(tmp_path / "first.csv", HEADER + "g1,Song,New Band,rock\n")
    bad = _text(tmp_path / "bad.csv", HEADER + "g2,Song,Other Band,rock\ng3,,Other Band,rock\n")
    last = _text(tmp_path / "last.csv", HEADER + "g4,Song,Last Band,rock\n")
    line = assert_refused(run(small_db, first, bad, last, "--strict"), "bad.csv:3")
    assert f"nothing of {bad} was imported; imported before it: {first}; not read: {last}" in line
    with Store.open(small_db) as store:
        assert store.track("g1") is not None
        assert store.track("g2") is None and store.track("g4") is None


# --- 3. inputs that expand ---------------------------------------------------------------------


def _limited_memory() -> None:
    limit = 1 << 30  # 1 GiB of address space: a regression dies with MemoryError, not the machine
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def in_child(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """`python *args` in a child with 1 GiB of memory; the timeout only turns a regression
    that would never end into a failure."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, *map(str, args)],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=300,
        preexec_fn=_limited_memory,
    )


def assert_child_refused(done: subprocess.CompletedProcess[bytes], *fragments: str) -> None:
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr[-800:]
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr[-800:]
    for fragment in fragments:
        assert fragment in stderr, stderr


def _genre_bomb(tracks: int = 5_000) -> bytes:
    """About 1 MB: tracks that share one 100,000-genre list (5 x 10^8 genres once expanded)."""
    genres = [f"g{i}" for i in range(100_000)]
    seed = {
        f"t{i}": {"track_name": f"Song {i}", "track_artists": f"Artist {i}", "genres": genres} for i in range(tracks)
    }
    return pickle.dumps(seed, protocol=pickle.HIGHEST_PROTOCOL)


def test_a_pickle_that_expands_is_refused(run: Run, small_db: Path, tmp_path: Path) -> None:
    data = _genre_bomb()
    assert len(data) < 1_200_000
    with pytest.raises(PickleTooLarge):
        safe_unpickle(data)
    before = dump(small_db)
    path = _bytes(tmp_path / "bomb.pickle", data)
    assert_child_refused(in_child("-m", "genremap", "import", path, "--db", small_db), "bomb.pickle: expands to more")
    assert dump(small_db) == before


def test_the_pickle_cap_counts_shared_references_not_allocations() -> None:
    shared = [f"genre {i}" for i in range(1000)]
    data = pickle.dumps([shared] * 50)  # 1,000 strings allocated, 50,000 genres once expanded
    assert safe_unpickle(data, max_elements=60_000) == [shared] * 50
    with pytest.raises(PickleTooLarge):
        safe_unpickle(data, max_elements=40_000)


def _tuple_key_bomb(depth: int = 60) -> bytes:
    """A dict keyed by a tuple that nests itself twice per level: hashing it would take 2^60 steps."""
    node: tuple[object, ...] = ("x",)
    for _ in range(depth):
        node = (node, node)  # built, never hashed, here
    body = pickle.dumps(node, protocol=2)[2:-1]  # the pickler memoizes, so this is linear
    return b"\x80\x02}" + body + b"K\x01s."  # PROTO 2, EMPTY_DICT, key, BININT1 1, SETITEM, STOP


# A list L shared three times while empty, then filled: [L, L, L] with L = ['a'] * 10. A count
# taken when L was shared would be stale; the unpickler refuses to change L after sharing it.
CHANGED_AFTER_SHARING = (
    b"\x80\x02]q\x010"  # PROTO 2; EMPTY_LIST L; BINPUT 1; POP
    b"]q\x02(h\x01h\x01h\x01e"  # EMPTY_LIST outer; BINPUT 2; MARK; BINGET 1 x3; APPENDS
    b"h\x01(" + b"X\x01\x00\x00\x00a" * 10 + b"e0."  # BINGET 1; MARK; 'a' x10; APPENDS; POP; STOP
)


def test_the_crafted_pickles_are_valid_pickles() -> None:
    """Checked without the default unpickler: pickletools walks the opcodes (a malformed stream
    raises), and the small bomb is loaded by the restricted unpickler."""
    for data in (CHANGED_AFTER_SHARING, _tuple_key_bomb(depth=3)):
        pickletools.dis(data, out=io.StringIO())
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(CHANGED_AFTER_SHARING)]
    # The outer list holds memo 1 three times; memo 1 is filled with ten 'a' afterwards.
    assert ops.count(("BINGET", 1)) == 4 and ops.count(("BINUNICODE", "a")) == 10
    assert ops.index(("BINGET", 1)) < ops.index(("APPENDS", None)) < ops.index(("BINUNICODE", "a"))
    small = safe_unpickle(_tuple_key_bomb(depth=3))
    assert list(small.values()) == [1] and len(repr(small)) > 40


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (_tuple_key_bomb(), "PickleTooLarge: expands to more than"),
        # a list shared first, filled afterwards: its count at the time of sharing would be stale
        (CHANGED_AFTER_SHARING, "UnpicklingError: refused a pickle that changes a container after sharing it"),
    ],
    ids=["tuple-key-hash-bomb", "changed-after-sharing"],
)
def test_crafted_pickles_that_would_expand_while_loading_are_refused(data: bytes, problem: str) -> None:
    load = "import sys; from genremap.collectors.importers import safe_unpickle; safe_unpickle(sys.stdin.buffer.read())"
    done = in_child("-c", load, stdin=data)  # a child: an unmetered unpickler would hash for ever
    assert done.returncode == 1 and problem in done.stderr.decode()[-300:], done.stderr


def test_dev_zero_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    for fmt in ("json", "jsonl", "csv", "pickle"):
        done = in_child("-m", "genremap", "import", "/dev/zero", "--file-format", fmt, "--db", tmp_path / "z.db")
        assert_child_refused(done, "error: zero")


# --- 4. one line, exit 2, never a traceback -----------------------------------------------------


def _tracks_csv(rows: int) -> bytes:
    return "".join(f"c{i},Song {i},Band {i % 97},genre {i % 31}\n" for i in range(rows)).encode()


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


HOSTILE_FILES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "field over the csv limit": (
        lambda d: _text(d / "big.csv", HEADER + "b1,Song,Band," + "x" * 200_000 + "\n"),
        ("big.csv:2: a field longer than 131,072 characters",),
    ),
    "unclosed quote to the end": (
        lambda d: _text(d / "open.csv", HEADER + 'o1,Song,Band,"rock\n' + "o2,Song,Band,rock\n" * 10_000),
        ("open.csv:2: a field longer than",),
    ),
    "latin-1 csv": (
        lambda d: _bytes(d / "latin.csv", (HEADER + "l1,Jóga,Björk,art pop\n").encode("latin-1")),
        ("latin.csv:2: byte 0xf3 (byte 5 of the line) is not utf-8", "--encoding latin-1"),
    ),
    "invalid utf-8 in jsonl": (
        lambda d: _bytes(d / "bad.jsonl", b'{"artist": "A", "genres": []}\n{"artist": "Bj\xf6rk", "genres": []}\n'),
        ("bad.jsonl:2: byte 0xf6", "UTF-8"),
    ),
    "invalid utf-8 in json": (
        lambda d: _bytes(d / "bad.json", b'[{"artist": "A", "genres": []},\n {"artist": "Bj\xf6rk", "genres": []}]'),
        ("bad.json:2: byte 0xf6 (byte 16 of the line)",),
    ),
    "100k-deep json": (
        lambda d: _text(d / "deep.json", "[" * 100_000 + "]" * 100_000),
        ("deep.json: invalid JSON (nested",),
    ),
    "json that is not a table": (lambda d: _text(d / "n.json", "42"), ("n.json: does not start with [ or {",)),
    "gzip cut short": (
        lambda d: _bytes(d / "cut.csv.gz", _cut(gzip.compress(HEADER.encode() + _tracks_csv(2000)))),
        ("cut.csv.gz: cannot read the file (EOFError",),
    ),
    "gzipped parquet": (lambda d: _bytes(d / "t.parquet.gz", gzip.compress(b"PAR1")), ("gzipped Parquet",)),
    "a line longer than the cap": (
        lambda d: _bytes(d / "long.jsonl", b" " * (MAX_LINE_BYTES + 10) + b"\n"),
        ("long.jsonl:1: a line longer than 16 MiB",),
    ),
    "not a pickle": (lambda d: _bytes(d / "x.pickle", b"\x00\x01\x02"), ("x.pickle: not a pickle",)),
    "a pickle cut short": (
        lambda d: _bytes(d / "cut.pickle", pickle.dumps({"t1": {"track_name": "S", "track_artists": "A"}})[:-5]),
        ("cut.pickle: not a readable pickle",),
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_hostile_files_are_refused_with_one_line(run: Run, small_db: Path, tmp_path: Path, case: str) -> None:
    write, fragments = HOSTILE_FILES[case]
    path = write(tmp_path)
    before = dump(small_db)
    assert_refused(run(small_db, path), *fragments)
    assert dump(small_db) == before


def test_an_unknown_file_format_is_refused(run: Run, small_db: Path, tmp_path: Path) -> None:
    path = _text(tmp_path / "t.csv", HEADER + "t1,Song,Band,rock\n")
    assert_refused(run(small_db, path, "--file-format", "xml"), "--file-format 'xml': expected one of")


BAD_ROWS = {
    "deeply nested list in a genres cell": ('"' + "[" * 100_000 + '"', "cannot parse list"),
    "count of 5000 digits": ("9" * 5000, "is not a number"),
    "count of 1e400": ("1e400", "is not a finite number"),
    "count of inf": ("inf", "is not a finite number"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_hostile_cells_are_bad_rows_with_their_line(run: Run, small_db: Path, tmp_path: Path, case: str) -> None:
    cell, problem = BAD_ROWS[case]
    genres, count = (cell, "3") if "genres" in case else ("rock", cell)
    path = _text(tmp_path / "a.csv", f"artist,genres,count\nGood,rock,1\nHostile,{genres},{count}\nAlso Good,pop,2\n")
    before = dump(small_db)
    assert_refused(run(small_db, path, "--strict"), "a.csv:3:", problem)
    assert dump(small_db) == before
    result = run(small_db, path, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(b["where"], problem in b["reason"]) for b in report["bad_rows"]] == [("a.csv:3", True)]
    assert report["imports"][0]["artists_new"] == 2


def test_text_longer_than_the_cap_is_a_bad_row(tmp_path: Path) -> None:
    title = ("(deluxe " * 12_000).strip()  # 95,999 characters, inside the CSV field limit
    path = _text(tmp_path / "t.csv", HEADER + f"t1,{title},Band,rock\nt2,Song,Band,rock\n")
    # In a child: the title normalisation is super-linear, and without the cap never finished.
    done = in_child("-m", "genremap", "import", path, "--db", tmp_path / "s.db", "--format", "json")
    assert done.returncode == 0, done.stderr[-500:]
    report = json.loads(done.stdout)
    assert [(b["where"], b["reason"]) for b in report["bad_rows"]] == [
        ("t.csv:2", "track_name of 95,999 characters is longer than the 1,000 accepted")
    ]
    assert report["imports"][0]["tracks_new"] == 1


def test_a_stray_quote_that_swallows_lines_is_a_bad_row(run: Run, small_db: Path, tmp_path: Path) -> None:
    text = (
        HEADER
        + 'x1,Paranoid,Black Sabbath,"heavy metal\n'  # the quote never closes on this line ...
        + "x2,Iron Man,Black Sabbath,heavy metal\n"
        + 'x3,War Pigs,Black Sabbath,"doom metal"\n'  # ... but here, so lines 2-4 became one row
        + "x4,Planet Caravan,Black Sabbath,psychedelic rock\n"
    )
    path = _text(tmp_path / "stray.csv", text)
    before = dump(small_db)
    assert_refused(run(small_db, path, "--strict"), "stray.csv:2-4: genre", "line break")
    assert dump(small_db) == before
    result = run(small_db, path, "--format", "json")
    assert result.exit_code == 0
    assert [b["where"] for b in json.loads(result.stdout)["bad_rows"]] == ["stray.csv:2-4"]
    with Store.open(small_db) as store:
        assert [store.track(t) is not None for t in ("x1", "x2", "x3", "x4")] == [False, False, False, True]
        assert not [g for g in store.genres_frame()["name"] if "\n" in g]


def test_a_row_with_more_fields_than_the_header_is_a_bad_row(store: Store, tmp_path: Path) -> None:
    path = _text(tmp_path / "t.csv", HEADER + "t1,Song, with a comma,Band,rock\nt2,Song,Band,rock,\n")
    result = import_file(store, path)
    assert [(b.where, b.reason) for b in result.bad_rows] == [
        ("t.csv:2", "5 fields where the header has 4 (an unquoted delimiter?)")
    ]
    assert result.tracks_new == 1  # a trailing empty field is harmless


def test_latin1_imports_with_encoding_and_gzip_is_read_transparently(run: Run, small_db: Path, tmp_path: Path) -> None:
    text = HEADER + "l1,Svefn-g-englar,Sigur Rós,post-rock;icelandic rock\n"
    latin = _bytes(tmp_path / "latin.csv", text.encode("latin-1"))
    assert run(small_db, latin, "--encoding", "latin-1").exit_code == 0
    assert genres_of(small_db, "Sigur Rós") == ["post-rock", "icelandic rock"]
    tsv = _bytes(tmp_path / "t.tsv.gz", gzip.compress(text.replace(",", "\t").replace("l1", "l2").encode()))
    assert run(small_db, tsv).exit_code == 0
    with Store.open(small_db) as store:
        first, second = store.track("l1"), store.track("l2")
    assert first is not None and second is not None
    assert (second["track_name"], second["artist_name"]) == ("Svefn-g-englar", "Sigur Rós")
    assert second["artist_id"] == first["artist_id"]
    assert_refused(run(small_db, latin, "--encoding", "utf-16"), "--encoding utf-16: not supported")
    assert_refused(run(small_db, latin, "--encoding", "klingon"), "--encoding 'klingon': unknown")


# --- 6. the restricted unpickler admits no builtins name but set and frozenset -------------------


def _global_call(module: str, name: str, argument: str) -> bytes:
    """A protocol-0 pickle that calls module.name(argument)."""
    return f"c{module}\n{name}\n(V{argument}\ntR.".encode()


@pytest.mark.parametrize(
    ("module", "name", "argument"),
    [
        ("builtins", "eval", "open('pwned-by-eval', 'w').write('x')"),
        ("builtins", "exec", "open('pwned-by-exec', 'w').write('x')"),
        ("builtins", "__import__", "os"),
        ("builtins", "getattr", "x"),
        ("builtins", "open", "pwned-by-open"),
        ("builtins", "compile", "x"),
        ("__builtin__", "eval", "open('pwned-by-eval', 'w').write('x')"),
        ("os", "system", "touch pwned-by-system"),
    ],
)
def test_builtins_callables_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, name: str, argument: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pickle.UnpicklingError, match=rf"refused to load {module}\.{name}"):
        safe_unpickle(_global_call(module, name, argument))
    assert list(tmp_path.iterdir()) == []


def test_no_builtins_name_but_set_and_frozenset_is_admitted() -> None:
    import builtins

    admitted = []
    for name in dir(builtins):
        data = f"\x80\x02cbuiltins\n{name}\nq\x00.".encode("latin-1")  # just load the global
        try:
            safe_unpickle(data)
        except pickle.UnpicklingError:
            continue
        admitted.append(name)
    assert admitted == ["frozenset", "set"]


def test_a_refused_pickle_through_the_cli_is_one_line(run: Run, small_db: Path, tmp_path: Path) -> None:
    path = _bytes(tmp_path / "evil.pickle", _global_call("builtins", "eval", "1+1"))
    before = dump(small_db)
    assert_refused(run(small_db, path), "evil.pickle: refused to load builtins.eval")
    assert dump(small_db) == before


def test_import_file_refuses_what_check_file_refuses(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="gzipped Parquet"):
        import_file(store, _bytes(tmp_path / "t.parquet.gz", gzip.compress(b"PAR1")))


# --- 5. property: random bytes and random tables, in every format ------------------------------
#
# `genremap import` on random bytes and random tables (recognised and unknown columns; cells
# with huge numbers, brackets, quotes, control characters, lone surrogates, latin-1), as CSV,
# TSV, gzipped CSV/JSONL, JSON, JSONL, Parquet and pickle, with and without --strict: exit 0
# or 2, exactly one line on 2, no exception, the store unchanged after a refusal and intact
# after an import. Derandomized, 25 examples per format (about 6 s);
# --hypothesis-show-statistics shows the mix of exit statuses.

COLUMNS = sorted({alias for aliases in ALIASES.values() for alias in aliases} | {"Artist", "GENRES", "x", ""})
NASTY = [
    "",
    " ",
    "[]",
    "['rock']",
    '["a", "b"]',
    "rock; pop",
    "[" * 300,
    "[" * 100_000,
    '"',
    '""',
    'a"b',
    "a,b",
    "a\tb",
    "line\nbreak",
    "\r",
    "\x00",
    "\x1b[2J",
    "\ud800",
    "inf",
    "-inf",
    "nan",
    "1e400",
    "9" * 5000,
    "99999999999999999999999",
    "-1",
    "3.7",
    "spotify:track:abc",
    "{'a': 1}",
    "__import__('os').system('true')",
]
cells = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.lists(st.text(max_size=6), max_size=3),
    st.none(),
)
FORMATS = ["csv", "tsv", "csv.gz", "json", "jsonl", "jsonl.gz", "parquet", "pickle", "bytes"]


def _csv(rows: list[list[Any]], header: list[str], delimiter: str, raw: bool) -> str:
    if raw:  # written without quoting: stray quotes, embedded delimiters and line breaks as they come
        lines = [delimiter.join(header)] + [delimiter.join("" if c is None else str(c) for c in row) for row in rows]
        return "\n".join(lines) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows([["" if c is None else c for c in row] for row in rows])
    return buffer.getvalue()


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")


def _arrow_column(values: list[Any]) -> Any:
    """A typed Parquet column from mixed cells: ints, floats, decimals, string lists, or text."""
    kinds = {type(v) for v in values if v is not None}
    try:
        if kinds <= {int} and all(v is None or -(2**63) <= v < 2**64 for v in values):
            big = any(v is not None and v >= 2**63 for v in values)
            return pa.array(values, pa.uint64() if big and all(v is None or v >= 0 for v in values) else None)
        if kinds <= {float}:
            return pa.array(values, pa.float64())
        if kinds <= {list}:
            return pa.array(values, pa.list_(pa.string()))
        if kinds <= {int} and all(v is None or abs(v) < 10**38 for v in values):
            return pa.array([None if v is None else Decimal(v) for v in values], pa.decimal128(38, 0))
    except (pa.ArrowException, OverflowError):
        pass
    return pa.array([None if v is None else str(v).encode("utf-8", "replace").decode() for v in values], pa.string())


def _header(draw: st.DrawFn) -> list[str]:
    """Mostly an artist column, often a title, then random recognised or unknown columns."""
    header = []
    if draw(st.integers(0, 9)) > 0:
        header.append(draw(st.sampled_from(ALIASES["artist_name"])))
        if draw(st.booleans()):
            header.append(draw(st.sampled_from(ALIASES["track_name"])))
    header += draw(st.lists(st.sampled_from(COLUMNS), max_size=4))
    unique = list({name.lower(): name for name in reversed(header)}.values())[::-1]
    return unique or ["x"]


@st.composite
def files(draw: st.DrawFn, fmt: str) -> tuple[str, bytes]:
    """(suffix, content) of a random table in format `fmt`, or of random bytes."""
    if fmt == "bytes":
        suffix = draw(st.sampled_from(["csv", "json", "jsonl", "parquet", "pickle", "csv.gz"]))
        return suffix, draw(st.binary(max_size=300))
    header = _header(draw)
    rows = draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=6))
    if fmt in ("csv", "tsv", "csv.gz"):
        text = _csv(rows, header, "\t" if fmt == "tsv" else ",", draw(st.booleans()))
        data = _encode(text, draw(st.sampled_from(["utf-8", "utf-8", "latin-1"])))
        return fmt, gzip.compress(data) if fmt.endswith(".gz") else data
    records = [dict(zip(header, row, strict=True)) for row in rows]
    if fmt.startswith("jsonl"):
        lines = [json.dumps(r) for r in records] + draw(st.lists(st.text(max_size=20), max_size=2))
        data = _encode("\n".join(lines) + "\n", "utf-8")
        return fmt, gzip.compress(data) if fmt.endswith(".gz") else data
    if fmt == "json":
        shape = draw(st.sampled_from(["list", "tracks", "mapping"]))
        document: Any = {"list": records, "tracks": {"tracks": records}}.get(shape)
        if shape == "mapping":
            document = {f"id{i}": r for i, r in enumerate(records)}
        return fmt, _encode(json.dumps(document), "utf-8")
    if fmt == "pickle":
        return fmt, pickle.dumps({f"t{i}": r for i, r in enumerate(records)}, protocol=draw(st.integers(0, 5)))
    table = pa.table({name: _arrow_column([row[i] for row in rows]) for i, name in enumerate(header)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return fmt, buffer.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), strict=st.booleans())
def test_import_exits_0_or_2_with_one_line_and_an_unchanged_store(
    small_template: Path, tiny_rules: Path, fmt: str, data: st.DataObject, strict: bool
) -> None:
    suffix, content = data.draw(files(fmt), label="file")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "store.db"
        shutil.copy(small_template, db)
        path = Path(folder) / f"input.{suffix}"
        path.write_bytes(content)
        before = dump(db)
        args = ["import", str(path), "--db", str(db), "--rules", str(tiny_rules), *(["--strict"] if strict else [])]
        result = CliRunner().invoke(app, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 2), result.output
        event(f"{suffix}: exit {result.exit_code}")  # --hypothesis-show-statistics shows the mix
        if result.exit_code == 2:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
            assert dump(db) == before
        else:
            conn = sqlite3.connect(db)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            finally:
                conn.close()


@pytest.mark.parametrize(
    "lines",
    [
        [b"a", b"bb", b"x" * 150],
        [b"a", b"x" * 150, b"b"],
        [b"track_id", b"y" * 99, b"z" * 101, b"c"],
        [b"x" * 101],
        [b"a" * 40, b"b" * 40, b"c" * 40, b"d" * 300, b"e"],
    ],
)
def test_the_long_line_is_named_by_its_number(lines: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever block the cap is crossed in, the error names the first line over it."""
    from genremap.collectors import readers

    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(readers, "READ_BLOCK", 16)
    source = readers.SourceFile(Path("long.csv"), "csv")
    first_long = next(i for i, line in enumerate(lines) if len(line) + 1 > 100) + 1
    with pytest.raises(UsageError, match=rf"^long\.csv:{first_long}: a line longer than"):
        readers._read_lines_capped(io.BytesIO(b"\n".join(lines) + b"\n"), source)
