"""An import into a store that does not exist yet: built aside, linked when complete, and a store
that another command creates meanwhile gets the rows instead."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from genremap.collectors.importers import check_files, import_into
from genremap.errors import UsageError
from genremap.store import Store

HEADER = "track_id,track_name,artist_name,artist_id,genres\n"


def _csv(path: Path, rows: int, bad: bool = False) -> Path:
    lines = [f"t{i:04d},Song {i},Band {i % 7},a{i % 7},\"['hard rock', 'blues rock']\"" for i in range(rows)]
    if bad:
        lines.append("t9999,,Band 1,a1,[]")  # no title: a bad row
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _beside(db: Path) -> list[str]:
    """What is in the store's folder besides the data files the test wrote."""
    return sorted(p.name for p in db.parent.iterdir() if not p.name.endswith(".csv"))


def _counts(db: Path) -> tuple[int, int, str]:
    conn = sqlite3.connect(db)
    try:
        tracks = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
        artists = conn.execute("SELECT count(*) FROM artists").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        return tracks, artists, mode
    finally:
        conn.close()


def test_a_new_store_is_complete_in_wal_mode_with_nothing_left_beside_it(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    results = import_into(db, check_files([_csv(tmp_path / "a.csv", 50), _csv(tmp_path / "b.csv", 80)], None))
    assert [r.tracks_new for r in results] == [50, 30]
    assert _counts(db) == (80, 7, "wal")
    assert _beside(db) == ["new.db"]
    with Store.open(db) as store:  # a store like any other: it opens, migrated, and takes writes
        assert store.summary().tracks == 80
        assert import_into(db, check_files([tmp_path / "a.csv"], None))[0].tracks_updated == 50


def test_a_refused_first_file_leaves_no_store(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with pytest.raises(UsageError, match="bad row"):
        import_into(db, check_files([_csv(tmp_path / "a.csv", 20, bad=True)], None), strict=True)
    assert _beside(db) == []


def test_an_error_while_writing_leaves_no_store_and_no_temporary_file(tmp_path: Path) -> None:
    db = tmp_path / "new.db"

    @contextmanager
    def failing(path: Path) -> Iterator[Callable[[int], None]]:
        def advance(rows: int) -> None:
            raise KeyboardInterrupt  # Ctrl-C while the file is read

        yield advance

    with pytest.raises(KeyboardInterrupt):
        import_into(db, check_files([_csv(tmp_path / "a.csv", 20)], None), progress=failing)
    assert _beside(db) == []


def test_a_later_refused_file_keeps_the_first_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    files = [_csv(tmp_path / "a.csv", 20), _csv(tmp_path / "b.csv", 30, bad=True)]
    with pytest.raises(UsageError, match=r"imported before it: .*a\.csv; not read: none"):
        import_into(db, check_files(files, None), strict=True)
    assert _counts(db)[:2] == (20, 7)
    assert [name for name in _beside(db) if name.endswith(".new")] == []


def test_a_store_created_meanwhile_gets_the_rows(tmp_path: Path) -> None:
    """Another command creates the store while the import builds its own: the import's rows go
    into that store, which keeps what the other command wrote."""
    db = tmp_path / "new.db"

    @contextmanager
    def racing(path: Path) -> Iterator[Callable[[int], None]]:
        if not db.exists():
            with Store.open(db) as other:
                other.conn.execute("INSERT INTO api_state(key, value, updated_at) VALUES ('k', 'theirs', 'now')")
        yield lambda rows: None

    results = import_into(db, check_files([_csv(tmp_path / "a.csv", 40)], None), progress=racing)
    assert results[0].tracks_new == 40
    assert _counts(db) == (40, 7, "wal")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM api_state WHERE key = 'k'").fetchone() == ("theirs",)
    conn.close()
    assert _beside(db) == ["new.db"]


def test_what_a_killed_build_left_is_removed_by_the_next(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".new.db.{gone.stdout.strip()}-0a1b2c3d.new"
    alive = tmp_path / f".new.db.{os.getpid()}-0a1b2c3d.new"  # this process: still building
    stale.write_bytes(b"half a store")
    alive.write_bytes(b"a store being built")
    import_into(db, check_files([_csv(tmp_path / "a.csv", 5)], None))
    assert not stale.exists()
    assert alive.exists()
    assert _counts(db)[0] == 5
