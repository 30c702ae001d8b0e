"""The SQLite store: schema version, migrations, idempotent upserts, refusing foreign files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from genremap.errors import UsageError
from genremap.store import MIGRATIONS, SCHEMA_VERSION, ArtistRecord, Store, TrackRecord


def test_new_store_has_schema_version_and_tables(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        assert store.version == SCHEMA_VERSION == len(MIGRATIONS)
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table in (
        "tracks",
        "artists",
        "artist_genres",
        "artist_genre_sources",
        "track_artists",
        "search_progress",
        "audio_features",
        "audio_analysis",
        "musicbrainz_lookups",
        "api_state",
    ):
        assert table in tables
    assert not tables & {"runs", "previews"}  # never written: dropped by migration 2


def test_upserts_are_idempotent(store: Store) -> None:
    artist = ArtistRecord("a1", "Band", ("hard rock", "punk"), "spotify", 12)
    track = TrackRecord("t1", "Song - Remastered 2011", "a1", "Band", ("a1", "a2"), duration_ms=1000, isrc="X1")
    first = store.upsert_artists([artist], "test")
    again = store.upsert_artists([artist], "test")
    assert (first.new, first.updated, again.new, again.updated) == (1, 0, 0, 1)
    assert store.upsert_tracks([track], "test").new == 1
    assert store.upsert_tracks([track], "test").updated == 1
    genres = store.artist_genres_frame()
    assert genres["genre"].tolist() == ["hard rock", "punk"]
    assert store.summary().tracks == 1
    key = store.conn.execute("SELECT dedupe_key FROM tracks").fetchone()[0]
    assert key.endswith("song")


def test_new_genre_list_replaces_the_old_and_empty_list_is_cached(store: Store) -> None:
    store.upsert_artists([ArtistRecord("a1", "Band", ("rock", "punk", "emo"))], "x")
    store.upsert_artists([ArtistRecord("a1", "Band", ("metal",))], "x")
    assert store.artist_genres_frame()["genre"].tolist() == ["metal"]
    store.upsert_artists([ArtistRecord("a2", "Quiet", ())], "x")
    consulted = {
        r[0] for r in store.conn.execute("SELECT artist_id FROM artist_genre_sources JOIN artists USING (artist_key)")
    }
    assert consulted == {"a1", "a2"}
    # A record without genres (a featured artist, say) keeps what is known.
    store.upsert_artists([ArtistRecord("a1", "Band", None)], "x")
    assert store.artist_genres_frame()["genre"].tolist() == ["metal"]


def test_known_track_fields_are_never_blanked(store: Store) -> None:
    store.upsert_tracks([TrackRecord("t1", "Song", "a1", "A", duration_ms=200, preview_url="https://p/1.mp3")], "x")
    store.upsert_tracks([TrackRecord("t1", "Song", "a1", "A")], "x")
    row = store.conn.execute("SELECT duration_ms, preview_url FROM tracks").fetchone()
    assert row == (200, "https://p/1.mp3")


def test_failed_batch_leaves_store_unchanged(store: Store) -> None:
    store.upsert_tracks([TrackRecord("t1", "Song", "a1", "A")], "x")
    bad = [TrackRecord("t2", "Other", "a1", "A"), TrackRecord("t3", "Third", None, "A")]  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        store.upsert_tracks(bad, "x")
    assert store.summary().tracks == 1


def test_reopening_migrates_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.upsert_artists([ArtistRecord("a1", "A", ("rock",))], "x")
    with Store.open(path) as store:
        assert store.version == SCHEMA_VERSION
        assert store.summary().artists == 1


def test_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(UsageError, match="newer than this genremap knows"), Store.open(path):
        pass


def test_refuses_foreign_sqlite_and_garbage(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE x (y)")
    conn.commit()
    conn.close()
    with pytest.raises(UsageError, match="not a genremap store"), Store.open(other):
        pass
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(UsageError, match="not a genremap store"), Store.open(garbage):
        pass


def test_missing_store_for_reading(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="store not found"), Store.open(tmp_path / "nope.db", create=False):
        pass


def _credits(store: Store) -> dict[str, list[str]]:
    rows = store.conn.execute("SELECT track_id, artist_id FROM track_artists ORDER BY track_id, position")
    out: dict[str, list[str]] = {}
    for track_id, artist_id in rows:
        out.setdefault(track_id, []).append(artist_id)
    return out


def test_only_tracks_with_several_artists_get_credit_rows(store: Store) -> None:
    """A single credit is the primary artist (tracks.artist_key); a later list replaces the
    earlier one, a single credit drops it, and a track without artist ids keeps its list."""
    store.upsert_tracks(
        [
            TrackRecord("t1", "Duet", "a1", "Band", ("a1", "a2")),
            TrackRecord("t2", "Solo", "a1", "Band", ("a1",)),
            TrackRecord("t3", "Twice", "a3", "Other", ("a3", "a3")),  # one artist credited twice
        ],
        "x",
    )
    assert _credits(store) == {"t1": ["a1", "a2"]}
    store.upsert_tracks([TrackRecord("t2", "Solo", "a1", "Band", ("a1", "a4", "a2"))], "x")
    assert _credits(store) == {"t1": ["a1", "a2"], "t2": ["a1", "a4", "a2"]}
    store.upsert_tracks(
        [TrackRecord("t1", "Duet", "a1", "Band", ("a1",)), TrackRecord("t2", "Solo", "a1", "Band", ())], "x"
    )
    assert _credits(store) == {"t2": ["a1", "a4", "a2"]}
    # Featured artists are still found through their lists, primary artists through the tracks.
    store.upsert_artists([ArtistRecord("a2", "Guest"), ArtistRecord("a4", "Guest Two")], "x")
    assert store.artists_without_genres("spotify", primary_only=False) == ["a1", "a2", "a3", "a4"]
    assert store.artists_without_genres("spotify") == ["a1", "a3"]
