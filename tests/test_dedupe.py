"""Dedupe columns computed by a forked child while the artists are written: the same store as
when they are computed in the importing process, also when the child fails."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import pytest
from test_import_differential import GENRES, SUFFIXES, TRACK_HEADERS, _csv_text, _name, _tables

from genremap import dedupe
from genremap.collectors.importers import check_files, import_into
from genremap.dedupe import DedupeColumns, dedupe_aside, dedupe_columns

needs_fork = pytest.mark.skipif(not dedupe._second_core(), reason="needs Linux and a second CPU for the forked child")


@pytest.fixture
def tracks_csv(tmp_path: Path) -> Path:
    rnd = random.Random(5)
    rows = []
    for i in range(3_000):
        artist = rnd.randrange(200)
        isrc = f"GB-{i:09d}" if i % 3 else ""
        rows.append(
            [f"t{i:05d}", _name(rnd) + rnd.choice(SUFFIXES), f"The Artist {artist}", f"a{artist}",
             str(rnd.sample(GENRES, artist % 3)), "Album", "1999", str(2000 + i), "", isrc, ""]
        )  # fmt: skip
    path = tmp_path / "tracks.csv"
    path.write_text(_csv_text(TRACK_HEADERS[0], rows), encoding="utf-8")
    return path


def _import(path: Path, db: Path) -> dict[str, list[Any]]:
    import_into(db, check_files([path], None))
    return _tables(str(db))


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Forks made by genremap.dedupe from here on (every import takes the forked path)."""
    made: list[int] = []
    real = os.fork

    def counted() -> int:
        pid = real()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(dedupe, "ASIDE_FROM", 1)
    monkeypatch.setattr(dedupe.os, "fork", counted)
    return made


@needs_fork
def test_the_forked_child_gives_the_same_store(
    tracks_csv: Path, tmp_path: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    computed_here: list[int] = []

    def counted(*columns: Any) -> DedupeColumns:
        computed_here.append(os.getpid())
        return dedupe_columns(*columns)

    monkeypatch.setattr(dedupe, "dedupe_columns", counted)
    aside = _import(tracks_csv, tmp_path / "aside.db")
    assert len(forks) == 1
    assert computed_here == []  # the child's columns were used (its own calls are not seen here)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dedupe, "ASIDE_FROM", 10**9)
        here = _import(tracks_csv, tmp_path / "here.db")
    assert len(forks) == 1
    assert computed_here == [os.getpid()]
    assert len(here["tracks"]) == 3_001  # the table's definition, then its rows
    assert aside == here


@needs_fork
def test_a_failing_child_is_replaced_by_the_work_done_here(
    tracks_csv: Path, tmp_path: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(columns: DedupeColumns, file: Any) -> None:
        file.write(b"half a pickle")
        raise OSError("disk full")

    monkeypatch.setattr(dedupe, "_send", broken)
    failed = _import(tracks_csv, tmp_path / "failed.db")
    assert len(forks) == 1
    monkeypatch.setattr(dedupe, "ASIDE_FROM", 10**9)
    assert failed == _import(tracks_csv, tmp_path / "here.db")


@needs_fork
def test_a_caller_that_fails_stops_the_child(forks: list[int]) -> None:
    names = [f"Song {i}" for i in range(50)]
    with pytest.raises(KeyError), dedupe_aside(names, names, [None] * 50):
        raise KeyError("the artists could not be written")
    assert len(forks) == 1
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(forks[0], os.WNOHANG)


def test_without_a_fork_the_columns_are_computed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedupe, "_second_core", lambda: False)
    names, titles = ["The Band", "Band"], ["Song - Remastered 2011", "Song (Mono)"]
    with dedupe_aside(names, titles, ["US-AB1", None]) as pending:
        columns = pending.result()
    assert columns == dedupe_columns(names, titles, ["US-AB1", None])
    assert columns.keys[0] == columns.keys[1] == "band\x1fsong"
    assert columns.isrc_hashes[1] is None


def test_the_child_s_file_holds_plain_arrays_read_back_exactly(tmp_path: Path) -> None:
    columns = dedupe_columns(["Björk", "The Band", ""], ["Jóga", "Song (Mono)", ""], [None, "US-AB1", ""])
    with (tmp_path / "columns").open("w+b") as file:
        dedupe._send(columns, file)
        file.seek(0)
        assert dedupe._receive(file) == columns
        size = file.tell()
        file.truncate(size - 30)  # a child killed while writing
        file.seek(0)
        with pytest.raises(ValueError):
            dedupe._receive(file)
    with pytest.raises(ValueError, match="NUL"):
        dedupe._send(DedupeColumns(["a\x00b"], [1], [None]), io.BytesIO())
