"""Store.genre_rows reads one packed integer per row where the keys leave room: it must give
exactly the four columns a plain read gives, for any keys, or fall back to that read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genremap.store import Store

# Source codes as genremap.sources numbers them (STORED_SOURCES order; 7 for a name it lacks).
PLAIN = """SELECT artist_key, CASE source WHEN 'spotify' THEN 0 WHEN 'import' THEN 1 WHEN 'musicbrainz' THEN 2
                                         WHEN 'lastfm' THEN 3 ELSE 7 END AS source, position, genre_key
           FROM artist_genres"""
SOURCES = ("spotify", "import", "musicbrainz", "lastfm", "tidal")


def plain_read(store: Store) -> pd.DataFrame:
    return store._frame(PLAIN, ints=("artist_key", "source", "position", "genre_key"))


def test_sample_store_with_musicbrainz_genres(sample_db: Path) -> None:
    with Store.open(sample_db) as store:
        for artist_id, name in store.conn.execute("SELECT artist_id, name FROM artists LIMIT 40").fetchall():
            store.save_musicbrainz_lookup(
                artist_id, name, status="matched", mbid=f"mb-{artist_id}", mb_name=name, score=100.0,
                candidates=[], genres=[("rock", 3), ("jazz", 1)],
            )  # fmt: skip
        rows = store.genre_rows()
        assert rows.equals(plain_read(store))
        assert (rows["source"] == 2).sum() == 80


KEY = st.one_of(st.integers(1, 50), st.integers(1, 2**62))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(KEY, st.sampled_from(SOURCES), st.one_of(st.integers(0, 5), st.integers(0, 2**40)), KEY))
)
def test_any_keys_read_as_the_plain_read_does(store: Store, rows: list[tuple[int, str, int, int]]) -> None:
    """Small keys (packed) and huge ones (too wide to pack, or a position beyond its bits), any
    source (an unknown name reads as code 7)."""
    conn: sqlite3.Connection = store.conn
    with store.transaction():
        for table in ("artist_genres", "artists", "genres"):
            conn.execute(f"DELETE FROM {table}")
        for artist, _, _, genre in rows:
            conn.execute(
                "INSERT OR IGNORE INTO artists(artist_key, artist_id, name, origin, updated_at) VALUES (?, ?, ?, 't', '')",
                (artist, f"a{artist}", f"A {artist}"),
            )
            conn.execute("INSERT OR IGNORE INTO genres(genre_key, name) VALUES (?, ?)", (genre, f"g{genre}"))
        conn.executemany(
            "INSERT OR IGNORE INTO artist_genres(artist_key, source, position, genre_key) VALUES (?, ?, ?, ?)",
            rows,
        )
    with store.snapshot():
        assert store.genre_rows().equals(plain_read(store))


TRACK_PLAIN = "SELECT track_id, artist_key, dedupe_hash, COALESCE(isrc_hash, 0) AS isrc_hash FROM tracks"
TRACK_ID = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


def test_sample_store_track_keys_as_the_row_read(sample_db: Path) -> None:
    with Store.open(sample_db) as store:
        keys = store.track_keys()
        assert len(keys) > 100
        assert keys.equals(store._frame(TRACK_PLAIN, ints=("artist_key", "dedupe_hash", "isrc_hash")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tracks=st.dictionaries(
        TRACK_ID, st.tuples(st.integers(-(2**63), 2**63 - 1), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)))
    )
)
def test_track_keys_read_as_the_row_read(store: Store, tracks: dict[str, tuple[int, int | None]]) -> None:
    """track_keys joins each column into one text where it can (ids with a newline, extreme
    hashes, NULL ISRC hashes): it must give what reading the rows gives, in track_id order."""
    conn: sqlite3.Connection = store.conn
    with store.transaction():
        conn.execute("DELETE FROM tracks")
        conn.execute(
            "INSERT OR IGNORE INTO artists(artist_key, artist_id, name, origin, updated_at) VALUES (7, 'a', 'A', 't', '')"
        )
        conn.executemany(
            "INSERT INTO tracks(track_id, name, artist_key, dedupe_key, dedupe_hash, isrc_hash, origin, added_at)"
            " VALUES (?, 'n', 7, 'k', ?, ?, 't', '')",
            [(track_id, dedupe, isrc) for track_id, (dedupe, isrc) in tracks.items()],
        )
    plain = store._frame(TRACK_PLAIN + " ORDER BY track_id", ints=("artist_key", "dedupe_hash", "isrc_hash"))
    got = store.track_keys()
    assert list(got.columns) == list(plain.columns)
    assert len(got) == len(tracks)
    if tracks:
        assert got.equals(plain)


def test_track_keys_beyond_sqlite_length_limit_read_rows(sample_db: Path) -> None:
    """A store whose joined track ids exceed SQLite's text length limit (1 GB by default, here
    lowered to 2,000 bytes) reads rows instead of failing the build."""
    with Store.open(sample_db) as store:
        expected = store.track_keys()
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 2000)
        got = store.track_keys()
        assert got.equals(store._frame(TRACK_PLAIN, ints=("artist_key", "dedupe_hash", "isrc_hash")))
        assert got.equals(expected)
