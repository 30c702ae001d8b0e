"""The store's safety: a full disk, a busy or damaged store give one line and exit 2 and leave
the store as it was; escaping errors never print a traceback."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import genremap.store
from genremap.cli import app
from genremap.sample import sample_paths
from genremap.store import ArtistRecord, Store, describe_store_error

SAMPLE_ARTISTS = sample_paths()[0]


def one_error_line(result: Result) -> str:
    """The single line a refusal prints (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture
def store_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "stores"
    folder.mkdir()
    return folder


def _dump(path: Path) -> list[tuple[object, ...]]:
    """The store's content, table by table, for before/after comparisons."""
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    rows = [(t, *row) for t in tables for row in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
    conn.close()
    return rows


# --- disk full -----------------------------------------------------------------------------------


def test_disk_full_during_import_is_one_line_and_the_store_keeps_its_old_state(
    runner: CliRunner, store_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLITE_FULL half-way through an import (simulated with max_page_count, which SQLite reports
    exactly as a full disk): one line naming the store, exit 2, and the store as it was. Before,
    the rollback of an already rolled-back transaction masked it with a traceback."""
    db = store_folder / "genremap.db"
    assert runner.invoke(app, ["import", str(SAMPLE_ARTISTS), "--db", str(db)]).exit_code == 0
    before = _dump(db)
    # 900 more artists with their genres: one write that does not fit on the disk.
    more = store_folder.parent / "more_artists.csv"
    with SAMPLE_ARTISTS.open(encoding="utf-8", newline="") as src, more.open("w", encoding="utf-8", newline="") as dst:
        rows = list(csv.DictReader(src))
        writer = csv.DictWriter(dst, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {**r, "artist_id": r["artist_id"] + "2", "artist_name": r["artist_name"] + " II"} for r in rows
        )
    connect = sqlite3.connect

    def connect_on_a_nearly_full_disk(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 4}")
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect_on_a_nearly_full_disk)
    result = runner.invoke(app, ["import", str(more), "--db", str(db)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(db) in line and "disk is full" in line and "free" in line
    monkeypatch.undo()
    assert _dump(db) == before
    with Store.open(db) as store:
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert runner.invoke(app, ["import", str(more), "--db", str(db)]).exit_code == 0  # with room, it goes in
    with Store.open(db) as store:
        assert store.summary().artists == 2 * len(rows)


def test_a_failed_commit_is_rolled_back_and_reported_as_itself(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The transaction helper never hides the original error behind a rollback error."""
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages}")
    many = [ArtistRecord(f"a{i}", f"Artist {i}", (f"genre {i}", "rock")) for i in range(2000)]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        store.upsert_artists(many, "x")
    assert not store.conn.in_transaction
    assert store.summary().artists == 0


# --- errors that escape a command --------------------------------------------------------------


def test_store_locked_by_another_writer_is_one_line_after_the_busy_timeout(
    runner: CliRunner, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(genremap.store, "BUSY_TIMEOUT_SECONDS", 0.2)
    other = sqlite3.connect(sample_db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another command in the middle of a write
    try:
        result = runner.invoke(app, ["import", str(SAMPLE_ARTISTS), "--db", str(sample_db)])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(sample_db) in line and "busy" in line and "again" in line


def test_sqlite_error_outside_a_store_block_still_names_the_store(
    runner: CliRunner, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def malformed(*args: object, **kwargs: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr("genremap.cli.resolve_rules_dir", malformed)
    result = runner.invoke(app, ["lint", "--db", str(sample_db)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(sample_db) in line and "damaged" in line


def test_unexpected_exception_is_one_line_asking_for_a_report(
    runner: CliRunner, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("genremap.cli.coverage", bug)
    result = runner.invoke(app, ["report", "--db", str(sample_db)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("internal error: ZeroDivisionError: division by zero")
    assert "GENREMAP_DEBUG=1" in lines[0]
    debug = runner.invoke(app, ["report", "--db", str(sample_db)], env={"GENREMAP_DEBUG": "1"})
    assert isinstance(debug.exception, ZeroDivisionError)


def test_interrupt_still_exits_130(runner: CliRunner, sample_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("genremap.cli.coverage", interrupted)
    result = runner.invoke(app, ["report", "--db", str(sample_db)])
    assert result.exit_code == 130
    assert result.output.startswith("interrupted:")


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (sqlite3.OperationalError("database or disk is full"), "free some space"),
        (sqlite3.OperationalError("database is locked"), "run this again"),
        (sqlite3.OperationalError("disk I/O error"), "check the disk"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "write access"),
        (sqlite3.DatabaseError("file is not a database"), "restore it from a copy"),
        (sqlite3.OperationalError("unable to open database file"), "accessible"),
    ],
)
def test_failures_of_the_store_file_say_what_to_do(error: sqlite3.Error, advice: str) -> None:
    described = describe_store_error(Path("music/genremap.db"), error)
    assert described is not None and described.exit_code == 2
    assert described.message.startswith("music/genremap.db: ") and advice in described.message


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.IntegrityError("NOT NULL constraint failed: tracks.artist_key"),
        sqlite3.OperationalError("no such table: x"),
    ],
)
def test_bugs_are_not_disguised_as_store_failures(error: sqlite3.Error) -> None:
    assert describe_store_error(Path("genremap.db"), error) is None
