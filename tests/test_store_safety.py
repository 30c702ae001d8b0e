"""The store's safety: foreign, damaged, read-only and full stores give one line and exit 2 and
are left exactly as they were; old stores migrate; escaping errors never print a traceback."""

from __future__ import annotations

import csv
import errno
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_store_concurrency import make_v1_store
from typer.testing import CliRunner, Result

import genremap.store
from genremap.cli import app
from genremap.errors import UsageError
from genremap.sample import sample_paths
from genremap.store import APPLICATION_ID, SCHEMA_VERSION, ArtistRecord, Store, describe_store_error

REPO = Path(__file__).resolve().parent.parent
SAMPLE_ARTISTS = sample_paths()[0]


def folder_state(folder: Path) -> dict[str, bytes]:
    """Every file in `folder` with its bytes: equal before and after means nothing was touched
    (not even a -wal or -shm file left beside the store)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


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


# --- files that are not genremap stores ----------------------------------------------------------


def _other_program(path: Path, *, wal: bool = False, user_version: int = 1, application_id: int = 0) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes(body) VALUES ('buy milk'), ('call the plumber')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.execute(f"PRAGMA application_id = {application_id}")
    conn.close()


def _look_alike(path: Path) -> None:
    """Another program's file with genremap's v1 tables but its own application id."""
    make_v1_store(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA application_id = 1234567")
    conn.close()


def _empty_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("DROP TABLE t")
    conn.close()


FOREIGN: dict[str, Callable[[Path], None]] = {
    "user_version 1 (like ours)": _other_program,
    "user_version 1 in WAL mode": lambda p: _other_program(p, wal=True),
    "user_version 0": lambda p: _other_program(p, user_version=0),
    "another application id": _look_alike,
    "an empty SQLite file": _empty_sqlite,
}


@pytest.mark.parametrize("command", ["import", "report"])
@pytest.mark.parametrize("kind", list(FOREIGN))
def test_foreign_sqlite_file_is_refused_and_left_exactly_as_it_was(
    runner: CliRunner, store_folder: Path, kind: str, command: str
) -> None:
    db = store_folder / "other.db"
    FOREIGN[kind](db)
    before = folder_state(store_folder)
    args = [command, str(SAMPLE_ARTISTS)] if command == "import" else [command]
    result = runner.invoke(app, [*args, "--db", str(db)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(db) in line and "not a genremap store" in line
    assert folder_state(store_folder) == before


def _random_over_all(data: bytes) -> bytes:
    return random.Random(7).randbytes(len(data))


def _random_after_header(data: bytes) -> bytes:
    page = int.from_bytes(data[16:18], "big")
    return data[:page] + random.Random(7).randbytes(len(data) - page)


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "random bytes over the file": _random_over_all,
    "random bytes after the first page": _random_after_header,
    "truncated to a third": lambda data: data[: len(data) // 3],
    "zero-length": lambda data: b"",
    "a text file": lambda data: b"artist,genres\nBlack Sabbath,metal\n",
}


@pytest.mark.parametrize("command", ["import", "report"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_store_is_one_line_exit_2_and_left_as_it_was(
    runner: CliRunner, sample_db: Path, store_folder: Path, damage: str, command: str
) -> None:
    db = store_folder / "x.db"
    db.write_bytes(DAMAGE[damage](sample_db.read_bytes()))
    before = folder_state(store_folder)
    args = [command, str(SAMPLE_ARTISTS)] if command == "import" else [command]
    result = runner.invoke(app, [*args, "--db", str(db)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(db) in line
    assert folder_state(store_folder) == before


# --- old stores --------------------------------------------------------------------------------


def test_store_of_schema_1_is_migrated_once_keeping_its_data(store_folder: Path) -> None:
    """A v1 store (no application id, the never-written runs and previews tables) becomes a
    current store: the dead tables dropped, the id set, the data kept; reopening changes nothing."""
    db = store_folder / "old.db"
    make_v1_store(db)
    with Store.open(db) as store:
        assert store.version == SCHEMA_VERSION
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "runs" not in tables and "previews" not in tables and "artists" in tables
        assert store.conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert store.find_artists("Old Band")["artist_id"].tolist() == ["old"]
    migrated = _dump(db)
    with Store.open(db) as store:
        assert store.version == SCHEMA_VERSION
    assert _dump(db) == migrated


def test_reading_an_old_store_does_not_migrate_it(runner: CliRunner, store_folder: Path) -> None:
    db = store_folder / "old.db"
    make_v1_store(db)
    before = folder_state(store_folder)
    result = runner.invoke(app, ["report", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert folder_state(store_folder) == before


def test_new_store_is_created_whole_even_without_hard_links(
    store_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New stores are built beside their path and moved in complete; on a file system without
    hard links the move is a rename."""

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    db = store_folder / "new.db"
    with Store.open(db) as store:
        assert store.version == SCHEMA_VERSION
    assert [p.name for p in store_folder.iterdir()] == ["new.db"]


# --- read-only and immutable stores ------------------------------------------------------------


@pytest.fixture
def immutable(sample_db: Path) -> Iterator[Path]:
    """The sample store with the immutable attribute (chattr +i), which stops root too."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    made = subprocess.run(["chattr", "+i", str(sample_db)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a file immutable here: {made.stderr.strip()}")
    try:
        yield sample_db
    finally:
        subprocess.run(["chattr", "-i", str(sample_db)], check=True)


def test_immutable_store_refuses_writes_in_one_line_and_still_reports(runner: CliRunner, immutable: Path) -> None:
    before = folder_state(immutable.parent)
    result = runner.invoke(app, ["import", str(SAMPLE_ARTISTS), "--db", str(immutable)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(immutable) in line and "read-only" in line
    report = runner.invoke(app, ["report", "--db", str(immutable)])
    assert report.exit_code == 0, report.output
    assert "Coverage of" in report.output
    assert folder_state(immutable.parent) == before


def _as_unprivileged(args: list[str]) -> list[str]:
    """`args` run without the power to ignore file permissions (root drops it with setpriv)."""
    if os.geteuid() != 0:
        return args
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", *args]


def test_store_in_a_read_only_folder_reports_and_refuses_writes(sample_db: Path, tmp_path: Path) -> None:
    """A 0444 store in a 0555 folder (subprocesses: what a user sees): reports and builds read it
    as it is; import says in one line that it is read-only, or that a new store cannot be made
    there; nothing in the folder changes."""
    folder = sample_db.parent
    out = tmp_path / "out"
    out.mkdir()
    sample_db.chmod(0o444)
    folder.chmod(0o555)
    try:
        before = folder_state(folder)

        def genremap(*args: str, db: Path = sample_db) -> subprocess.CompletedProcess[str]:
            command = _as_unprivileged([sys.executable, "-m", "genremap", *args, "--db", str(db)])
            env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "NO_COLOR": "1"}
            return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)

        report = genremap("report")
        assert report.returncode == 0, report.stderr
        assert "Coverage of" in report.stdout
        build = genremap("build", "--out", str(out / "dataset"), "--allow-short")
        assert build.returncode == 0, build.stderr
        assert (out / "dataset" / "tracks.csv").exists()
        refused = genremap("import", str(SAMPLE_ARTISTS))
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "read-only" in lines[0] and str(sample_db) in lines[0], refused.stderr
        new_store = genremap("import", str(SAMPLE_ARTISTS), db=folder / "new.db")
        assert new_store.returncode == 2, new_store.stderr
        assert new_store.stderr.count("\n") == 1 and "folder is not writable" in new_store.stderr
        assert folder_state(folder) == before
    finally:
        folder.chmod(0o755)
        sample_db.chmod(0o644)


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

    monkeypatch.setattr("genremap.engine.loader.resolve_rules_dir", malformed)
    result = runner.invoke(app, ["lint", "--db", str(sample_db)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(sample_db) in line and "damaged" in line


def test_unexpected_exception_is_one_line_asking_for_a_report(
    runner: CliRunner, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("genremap.report.coverage", bug)
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

    monkeypatch.setattr("genremap.report.coverage", interrupted)
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


def test_library_refusals_are_usage_errors(store_folder: Path) -> None:
    db = store_folder / "other.db"
    _other_program(db)
    with pytest.raises(UsageError, match="not a genremap store"), Store.open(db):
        pass
