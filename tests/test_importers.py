"""Imports of each format, aliases, derived ids, bad rows, --strict, and the restricted unpickler."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from genremap.collectors.importers import derive_id, import_file, parse_genres, safe_unpickle
from genremap.errors import UsageError
from genremap.store import Store

CORPUS_SHAPE = '''artists,acousticness,danceability,duration_ms,energy,popularity,key,mode,count,genres
"""Weird Al"" Yankovic",0.17,0.66,218165.2,0.68,33.6,9,1,132,"['antiviral pop', 'comedy rock', 'comic', 'parody']"
$uicideBoy$,0.12,0.76,147549.4,0.64,61.6,1,1,122,"['dark trap', 'new orleans rap', 'underground hip hop']"
$pyda,0.0001,0.51,331240,0.89,58,7,1,1,[]
Broken Genres,0.1,0.1,1000,0.1,1,1,1,3,"['unclosed"
,0.1,0.1,1000,0.1,1,1,1,3,['rock']
Bad Count,0.1,0.1,1000,0.1,1,1,1,many,['rock']
[bsd.u],0.1,0.1,1000,0.1,1,1,1,2,"['chillhop']"
$pyda,0.0001,0.51,331240,0.89,58,7,1,4,['lo-fi']
'''


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_corpus_shaped_artist_table(store: Store, tmp_path: Path) -> None:
    result = import_file(store, _write(tmp_path / "artists.csv", CORPUS_SHAPE))
    assert result.table == "artists"
    assert result.rows == 8
    assert [(d.where, d.reason) for d in result.duplicates] == [
        ("artists.csv:9", "artist '$pyda' appears again: merged into one artist (this row wins)")
    ]
    assert result.artists_new == 4  # "[bsd.u]" is a name that looks like a list
    assert [(b.where, b.reason.split(" ")[0]) for b in result.bad_rows] == [
        ("artists.csv:5", "cannot"),
        ("artists.csv:6", "artist"),
        ("artists.csv:7", "count"),
    ]
    artists = store.artists_frame().set_index("name")
    assert artists.loc["$uicideBoy$", "tracks"] == 122  # the declared count is the track count
    assert artists.loc["$pyda", "tracks"] == 4
    assert artists.loc['"Weird Al" Yankovic', "artist_id"] == derive_id("artist", '"Weird Al" Yankovic')
    genres = store.artist_genres_frame()
    suicide = genres[genres["artist_id"] == derive_id("artist", "$uicideBoy$")]
    assert suicide["genre"].tolist() == ["dark trap", "new orleans rap", "underground hip hop"]
    # $pyda has [] genres: recorded as consulted with none.
    consulted = store.conn.execute("SELECT count(*) FROM artist_genre_sources").fetchone()[0]
    assert consulted == 4


def test_reimport_is_idempotent(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path / "artists.csv", CORPUS_SHAPE)
    import_file(store, path)
    before = store.conn.execute("SELECT * FROM artist_genres ORDER BY 1, 2, 3").fetchall()
    again = import_file(store, path)
    assert again.artists_new == 0 and again.artists_updated == 4
    assert store.conn.execute("SELECT * FROM artist_genres ORDER BY 1, 2, 3").fetchall() == before


def test_strict_refuses_the_whole_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"artists.csv:5: .*3 bad row\(s\); nothing imported because of --strict"):
        import_file(store, _write(tmp_path / "artists.csv", CORPUS_SHAPE), strict=True)
    assert store.summary().artists == 0


def test_track_table_with_aliases_and_genres(store: Store, tmp_path: Path) -> None:
    text = (
        "id,title,artists,genres,duration,isrc\n"
        "t1,Song One,\"['Band A', 'Guest B']\",rock; punk,200000,us-ab1-23-00001\n"
        "t2,Song Two,Band A,rock; punk,180000,\n"
        "t3,,Band A,rock,1,\n"
    )
    result = import_file(store, _write(tmp_path / "tracks.csv", text))
    assert result.table == "tracks"
    assert result.columns["track_id"] == "id" and result.columns["artist_name"] == "artists"
    assert (result.tracks_new, len(result.bad_rows)) == (2, 1)
    assert result.bad_rows[0].where == "tracks.csv:4"
    track_artists = store.conn.execute(
        "SELECT artist_id FROM track_artists WHERE track_id='t1' ORDER BY position"
    ).fetchall()
    assert [r[0] for r in track_artists] == [derive_id("artist", "Band A"), derive_id("artist", "Guest B")]
    assert store.conn.execute("SELECT isrc FROM tracks WHERE track_id='t1'").fetchone()[0] == "USAB12300001"
    assert store.artist_genres_frame()["genre"].tolist() == ["rock", "punk"]  # the guest has no genres
    assert store.summary().artists == 2


def test_tracks_without_ids_get_stable_ids(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "track_name,artist_name\nSong,Band\n")
    import_file(store, path)
    import_file(store, path)
    ids = [r[0] for r in store.conn.execute("SELECT track_id FROM tracks")]
    assert ids == [derive_id("track", derive_id("artist", "Band"), "Song")]


def test_json_jsonl_and_spotify_objects(store: Store, tmp_path: Path) -> None:
    spotify_tracks = {
        "tracks": [
            {
                "id": "6rqhFgbbKwnb9MLmUQDhG6",
                "name": "Speak to Me",
                "artists": [{"id": "0k17h0D3J5VfsdmQ1iZtE9", "name": "Pink Floyd"}],
                "album": {"name": "The Dark Side of the Moon"},
                "duration_ms": 65000,
                "external_ids": {"isrc": "GBN9Y1100088"},
                "preview_url": None,
            }
        ]
    }
    json_result = import_file(store, _write(tmp_path / "t.json", json.dumps(spotify_tracks)))
    assert (json_result.table, json_result.tracks_new) == ("tracks", 1)
    row = tuple(store.tracks_frame(("artist_id", "album", "isrc")).iloc[0])
    assert row == ("0k17h0D3J5VfsdmQ1iZtE9", "The Dark Side of the Moon", "GBN9Y1100088")
    lines = [
        json.dumps({"id": "0k17h0D3J5VfsdmQ1iZtE9", "name": "Pink Floyd", "genres": ["art rock", "progressive rock"]}),
        "{not json",
        json.dumps({"id": "x", "name": "Nameless genres", "genres": "rock"}),
    ]
    jsonl = import_file(store, _write(tmp_path / "a.jsonl", "\n".join(lines) + "\n"))
    assert jsonl.table == "artists"
    assert [b.where for b in jsonl.bad_rows] == ["a.jsonl:2"]
    assert set(store.artist_genres_frame()["genre"]) == {"art rock", "progressive rock", "rock"}


def test_parquet(store: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"artist_name": ["A", "B"], "genres": [["dark trap", "rap"], []], "track_count": [5, 2]})
    pq.write_table(table, tmp_path / "artists.parquet")
    result = import_file(store, tmp_path / "artists.parquet")
    assert (result.table, result.artists_new, result.bad_rows) == ("artists", 2, [])
    assert store.artists_frame().set_index("name").loc["A", "tracks"] == 5


def test_seed_notebook_pickle(store: Store, tmp_path: Path) -> None:
    seed = {
        "3RrumTYvxSLX8SwLrZCjNd": {"track_name": "Song", "track_artists": "Band", "genres": ["hard rock", "rock"]},
        "1TrGdXSgiBm8W68D2K1COG": {"track_name": "Other", "track_artists": "Band", "genres": ["hard rock", "rock"]},
    }
    path = tmp_path / "raw_scrap.pickle"
    path.write_bytes(pickle.dumps(seed, protocol=pickle.HIGHEST_PROTOCOL))
    result = import_file(store, path)
    assert (result.table, result.tracks_new, result.artists_new) == ("tracks", 2, 1)
    assert sorted(r[0] for r in store.conn.execute("SELECT track_id FROM tracks")) == sorted(seed)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned-by-pickle",))


def test_malicious_pickle_is_refused(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"t1": {"track_name": "x", "track_artists": "y", "genres": [_Evil()]}}))
    with pytest.raises(UsageError, match=r"evil.pickle: refused to load (posix|os)\.system"):
        import_file(store, path)
    assert not (tmp_path / "pwned-by-pickle").exists()
    assert store.summary().tracks == 0


def test_restricted_unpickler_admits_plain_data_only() -> None:
    plain = {"a": [1, 2.5, "x", (1, 2), {3}, frozenset({4}), None, True, b"bytes"]}
    assert safe_unpickle(pickle.dumps(plain, protocol=4)) == plain
    old = {"a": [1, 2.5, "x", (1, 2), {3}, frozenset({4}), None, True]}
    assert safe_unpickle(pickle.dumps(old, protocol=2)) == old
    with pytest.raises(pickle.UnpicklingError):
        safe_unpickle(pickle.dumps(Path("/etc/passwd")))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("['dark trap', 'rap']", ("dark trap", "rap")),
        ('["dark trap", "rap"]', ("dark trap", "rap")),
        ("dark trap; rap", ("dark trap", "rap")),
        ("dark trap|rap", ("dark trap", "rap")),
        ("dark trap", ("dark trap",)),
        ("[]", ()),  # an explicit empty list: the source says "no genres"
        ([], ()),
        ("", None),  # blank, null, NaN: nothing is known
        ("  ", None),
        (None, None),
        (float("nan"), None),
        (";", None),
        (["a", " b "], ("a", "b")),
    ],
)
def test_parse_genres(value: object, expected: tuple[str, ...] | None) -> None:
    assert parse_genres(value) == expected


@pytest.mark.parametrize("value", ["['a', 1]", "[unclosed", "{'a': 1}", "__import__('os').system('x')"])
def test_parse_genres_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_genres(value if value.startswith(("[", "{")) else "[" + value + "]")


def test_collections_module_is_refused_too() -> None:
    import collections

    with pytest.raises(pickle.UnpicklingError, match=r"refused to load collections\.OrderedDict"):
        safe_unpickle(pickle.dumps(collections.OrderedDict(a=1)))


def test_usage_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="file not found"):
        import_file(store, tmp_path / "missing.csv")
    with pytest.raises(UsageError, match="unknown file type"):
        import_file(store, _write(tmp_path / "x.xlsx", "x"))
    with pytest.raises(UsageError, match="cannot tell what the rows are"):
        import_file(store, _write(tmp_path / "x.csv", "foo,bar\n1,2\n"))
    with pytest.raises(UsageError, match="invalid JSON"):
        import_file(store, _write(tmp_path / "x.json", "{"))
