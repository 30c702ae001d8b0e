"""Property: `genremap import` on random bytes and random tables, in every file format, exits 0
or 2; on 2 it prints exactly one line and leaves the store exactly as it was; it never
prints a traceback."""

from __future__ import annotations

import csv
import gzip
import io
import json
import pickle
import shutil
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from genremap.cli import app
from genremap.collectors.importers import import_file
from genremap.collectors.readers import ALIASES
from genremap.store import Store

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

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


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(store, rules): a small store with genres, and a one-rule rules folder."""
    folder = tmp_path_factory.mktemp("property")
    csv_path = folder / "artists.csv"
    csv_path.write_text(
        "artist_id,artist,genres,count\na1,Black Sabbath,\"['heavy metal', 'hard rock']\",12\na2,Björk,[],3\n",
        encoding="utf-8",
    )
    db = folder / "template.db"
    with Store.open(db) as store:
        import_file(store, csv_path)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rules = folder / "rules"
    rules.mkdir()
    (rules / "00-targets.yaml").write_text("targets:\n  rock: Rock.\n  metal: Metal.\n", encoding="utf-8")
    (rules / "10-rules.yaml").write_text(
        "rules:\n  - name: rock\n    target: rock\n    kind: keyword\n    patterns: [rock]\n", encoding="utf-8"
    )
    return db, rules


def dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.mark.parametrize("fmt", FORMATS)
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), strict=st.booleans())
def test_import_exits_0_or_2_with_one_line_and_an_unchanged_store(
    template: tuple[Path, Path], fmt: str, data: st.DataObject, strict: bool
) -> None:
    suffix, content = data.draw(files(fmt), label="file")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "store.db"
        shutil.copy(template[0], db)
        path = Path(folder) / f"input.{suffix}"
        path.write_bytes(content)
        before = dump(db)
        args = ["import", str(path), "--db", str(db), "--rules", str(template[1]), *(["--strict"] if strict else [])]
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
