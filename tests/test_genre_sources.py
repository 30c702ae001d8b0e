"""Genre sources side by side: the store keeps Spotify's, imported files', MusicBrainz's and
Last.fm's genres apart, and `--genre-source` is a precedence list (an artist's genres come from
the first source of the list that has any), on every report, `build` and `explain`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from genremap.cli import app
from genremap.collectors.importers import import_file
from genremap.dataset.labels import choose_policy, label_artist_genres, label_store
from genremap.engine import RuleSet, default_rules_dir, load_rules
from genremap.errors import UsageError
from genremap.sources import STORED_SOURCES, parse_genre_sources
from genremap.store import ArtistRecord, Store

Genres = list[tuple[str, int | None]]  # (genre, votes or weight)


def add(store: Store, artist_id: str, source: str, genres: Genres) -> None:
    """Store one source's genre list of an artist through the store's write API."""
    store.upsert_artists(
        [
            ArtistRecord(
                artist_id,
                artist_id.title(),
                tuple(g for g, _ in genres),
                genre_source=source,
                votes=tuple(v or 0 for _, v in genres) if any(v is not None for _, v in genres) else None,
            )
        ],
        origin=source,
    )


# --- the precedence list -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "names", "stored"),
    [
        ("both", ("spotify", "musicbrainz"), ("spotify", "import", "musicbrainz")),
        ("spotify", ("spotify",), ("spotify", "import")),
        ("musicbrainz", ("musicbrainz",), ("musicbrainz",)),
        (
            "spotify,musicbrainz,lastfm",
            ("spotify", "musicbrainz", "lastfm"),
            ("spotify", "import", "musicbrainz", "lastfm"),
        ),
        ("lastfm,both", ("lastfm", "spotify", "musicbrainz"), ("lastfm", "spotify", "import", "musicbrainz")),
        ("import,spotify", ("import", "spotify"), ("import", "spotify")),
        ("spotify,import", ("spotify", "import"), ("spotify", "import")),
        (" Spotify , LastFM ", ("spotify", "lastfm"), ("spotify", "import", "lastfm")),
        ("musicbrainz,musicbrainz", ("musicbrainz",), ("musicbrainz",)),
    ],
)
def test_precedence_lists_parse(spec: str, names: tuple[str, ...], stored: tuple[str, ...]) -> None:
    parsed = parse_genre_sources(spec)
    assert (parsed.names, parsed.stored) == (names, stored)


@pytest.mark.parametrize("spec", ["tidal", "spotify,tidal", "", "spotify,,lastfm", "both;lastfm"])
def test_unknown_sources_are_refused_naming_the_valid_ones(spec: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_genre_sources(spec)
    message = str(caught.value)
    assert "\n" not in message
    assert "spotify, import, musicbrainz, lastfm" in message and "both" in message


# --- sources present → precedence → chosen source and label --------------------------------------

ROCK: Genres = [("hard rock", None), ("rock", None)]
JAZZ_VOTES: Genres = [("bebop", 6), ("hard bop", 3)]
ONE_VOTE_JAZZ: Genres = [("bebop", 1)]
TECHNO_TAGS: Genres = [("techno", 100), ("seen live", 40)]
RAP_FILE: Genres = [("rap", None)]


@pytest.mark.parametrize(
    ("present", "spec", "min_votes", "source", "target"),
    [
        ({"spotify": ROCK, "musicbrainz": JAZZ_VOTES}, "spotify,musicbrainz,lastfm", None, "spotify", "rock"),
        ({"spotify": ROCK, "musicbrainz": JAZZ_VOTES}, "musicbrainz,spotify", None, "musicbrainz", "jazz"),
        ({"spotify": ROCK, "musicbrainz": JAZZ_VOTES}, "both", None, "spotify", "rock"),
        ({"spotify": [], "musicbrainz": JAZZ_VOTES}, "both", None, "musicbrainz", "jazz"),  # asked, gave none
        ({"musicbrainz": JAZZ_VOTES, "lastfm": TECHNO_TAGS}, "spotify,musicbrainz,lastfm", None, "musicbrainz", "jazz"),
        ({"musicbrainz": JAZZ_VOTES, "lastfm": TECHNO_TAGS}, "lastfm,musicbrainz", None, "lastfm", "house"),
        ({"lastfm": TECHNO_TAGS}, "spotify,musicbrainz,lastfm", None, "lastfm", "house"),
        ({"lastfm": TECHNO_TAGS}, "both", None, None, None),
        ({"lastfm": TECHNO_TAGS}, "musicbrainz", None, None, None),
        # An imported file's genres are Spotify's unless the list names `import` itself.
        ({"import": RAP_FILE}, "spotify,musicbrainz,lastfm", None, "import", "hip hop"),
        ({"import": RAP_FILE}, "spotify", None, "import", "hip hop"),
        ({"import": RAP_FILE, "musicbrainz": JAZZ_VOTES}, "both", None, "import", "hip hop"),
        ({"import": RAP_FILE, "spotify": ROCK}, "spotify,musicbrainz,lastfm", None, "spotify", "rock"),
        ({"import": RAP_FILE, "spotify": ROCK}, "import,spotify", None, "import", "hip hop"),
        ({"import": RAP_FILE, "spotify": ROCK}, "musicbrainz,import", None, "import", "hip hop"),
        ({"import": RAP_FILE, "musicbrainz": JAZZ_VOTES}, "musicbrainz,spotify", None, "musicbrainz", "jazz"),
        # --min-votes drops MusicBrainz genres; a source left with none does not count as having any.
        ({"musicbrainz": ONE_VOTE_JAZZ, "lastfm": TECHNO_TAGS}, "spotify,musicbrainz,lastfm", 2, "lastfm", "house"),
        ({"musicbrainz": ONE_VOTE_JAZZ, "lastfm": TECHNO_TAGS}, "spotify,musicbrainz,lastfm", 1, "musicbrainz", "jazz"),
        # Last.fm's weights were filtered when enriching: --min-votes leaves them alone.
        ({"lastfm": [("techno", 3)]}, "lastfm", 50, "lastfm", "house"),
        ({}, "spotify,musicbrainz,lastfm", None, None, None),
    ],
)
def test_first_source_with_genres_labels_the_artist(
    store: Store,
    test_rules: RuleSet,
    present: dict[str, Genres],
    spec: str,
    min_votes: int | None,
    source: str | None,
    target: str | None,
) -> None:
    store.upsert_artists([ArtistRecord("a1", "Artist One")], origin="test")
    for name, genres in present.items():
        add(store, "a1", name, genres)
    labelling = label_store(store, test_rules, choose_policy(test_rules, None, min_votes), spec)
    artist = labelling.artists.set_index("artist_id").loc["a1"]
    assert (artist["genre_source"], artist["target"]) == (source, target)
    genres = labelling.artist_genres
    assert set(genres["source"]) == ({source} if source else set())


def test_the_store_keeps_an_imported_file_and_spotify_apart(store: Store, tmp_path: Path, test_rules: RuleSet) -> None:
    """An imported file's genres are stored under `import`; Spotify's answer for the same artist
    later does not erase them, and collect does not ask Spotify about imported artists again."""
    table = tmp_path / "tracks.csv"
    table.write_text(
        "track_id,track_name,artist_name,artist_id,genres\n"
        "t1,Paranoid,Black Sabbath,sabbath,\"['hard rock', 'blues rock']\"\n"
        "t2,Shook Ones,Mobb Deep,mobb,\"['east coast hip hop']\"\n",
        encoding="utf-8",
    )
    import_file(store, table)
    assert store.genres_of("sabbath") == {"import": [("hard rock", None), ("blues rock", None)]}
    assert store.artists_without_genres("spotify") == []  # imported genres count as Spotify's

    add(store, "sabbath", "spotify", [("birmingham metal", None)])
    assert store.genres_of("sabbath") == {
        "import": [("hard rock", None), ("blues rock", None)],
        "spotify": [("birmingham metal", None)],
    }
    first = label_store(store, test_rules, genre_source="spotify,musicbrainz,lastfm").artists.set_index("artist_id")
    assert first.loc["sabbath", ["genre_source", "genre"]].tolist() == ["spotify", "birmingham metal"]
    assert first.loc["mobb", ["genre_source", "target"]].tolist() == ["import", "hip hop"]
    preferred = label_store(store, test_rules, genre_source="import,spotify").artists.set_index("artist_id")
    assert preferred.loc["sabbath", ["genre_source", "target"]].tolist() == ["import", "rock"]


def test_a_store_written_before_import_was_a_source_reads_the_same(store: Store, test_rules: RuleSet) -> None:
    """Stores written before hold imported genres as `spotify` (no migration): `spotify` and the
    default list still use them; an unknown source name in a store is kept and never used."""
    store.upsert_artists([ArtistRecord("old", "Old Import", ("bebop",))], origin="import:old.csv")
    add(store, "odd", "discogs", [("techno", None)])  # a later version's source
    labelling = label_store(store, test_rules)
    artists = labelling.artists.set_index("artist_id")
    assert artists.loc["old", ["genre_source", "target"]].tolist() == ["spotify", "jazz"]
    assert pd.isna(artists.loc["odd", "genre_source"]) and artists.loc["odd", "status"] == "unlabelled"


# --- vectorised choice, checked against a per-artist reference -----------------------------------

SOURCE_GENRES = {"spotify": ["hard rock", "pop"], "import": ["rap"], "musicbrainz": ["bebop"], "lastfm": ["techno"]}


def reference_source(present: dict[str, int], stored: tuple[str, ...]) -> str | None:
    """The first stored source of the list with any genre row, per artist, in plain Python."""
    return next((s for s in stored if present.get(s, 0) > 0), None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    artists=st.lists(st.dictionaries(st.sampled_from(STORED_SOURCES), st.integers(1, 2), max_size=4), max_size=25),
    spec=st.lists(st.sampled_from(["spotify", "import", "musicbrainz", "lastfm", "both"]), min_size=1, max_size=4),
)
def test_array_choice_matches_a_per_artist_reference(
    test_rules: RuleSet, artists: list[dict[str, int]], spec: list[str]
) -> None:
    rows = [
        {"artist_id": f"a{i}", "source": source, "position": p, "genre": SOURCE_GENRES[source][p]}
        for i, present in enumerate(artists)
        for source, n in present.items()
        for p in range(min(n, len(SOURCE_GENRES[source])))
    ]
    frame = pd.DataFrame(rows, columns=["artist_id", "source", "position", "genre"])
    table = pd.DataFrame({"artist_id": [f"a{i}" for i in range(len(artists))], "name": "x", "tracks": 1})
    labelling = label_artist_genres(test_rules, frame, table, test_rules.policy, ",".join(spec))
    stored = parse_genre_sources(",".join(spec)).stored
    expected = [reference_source(present, stored) for present in artists]
    got = [None if pd.isna(s) else s for s in labelling.artists["genre_source"]]
    assert got == expected
    chosen = labelling.artist_genres.groupby("artist_id")["source"].nunique()
    assert (chosen <= 1).all()


# --- CLI: reports, explain, build ----------------------------------------------------------------


@pytest.fixture
def mixed_db(sample_db: Path) -> dict[str, Any]:
    """The sample store (Spotify's genres for 662 of its 900 artists) plus, for artists Spotify
    left without: MusicBrainz genres with votes, Last.fm tags with weights, an imported file's
    genres; and MusicBrainz genres for a few artists Spotify has genres for (unused by default)."""
    with Store.open(sample_db) as store:
        bare = [
            r[0]
            for r in store.conn.execute(
                """SELECT artist_id FROM artists a WHERE NOT EXISTS
                   (SELECT 1 FROM artist_genres g WHERE g.artist_key = a.artist_key) ORDER BY artist_id"""
            )
        ]
        covered = [r[0] for r in store.conn.execute("SELECT DISTINCT a.artist_id FROM artists a JOIN artist_genres g USING (artist_key) ORDER BY 1 LIMIT 10")]  # fmt: skip
        mb, lastfm, imported = bare[:60], bare[60:100], bare[100:120]
        for artist_id in mb:
            add(store, artist_id, "musicbrainz", [("bebop", 9), ("hard bop", 2)])
        for artist_id in lastfm:
            add(store, artist_id, "lastfm", [("hip hop", 100), ("seen live", 30)])
        for artist_id in imported:
            add(store, artist_id, "import", [("outlaw country", None)])
        for artist_id in covered:
            add(store, artist_id, "musicbrainz", [("techno", 12)])
    return {"db": sample_db, "mb": mb, "lastfm": lastfm, "import": imported, "covered": covered}


def test_report_counts_artists_per_source_and_target(
    runner: CliRunner, mixed_db: dict[str, Any], test_rules_dir: Path
) -> None:
    args = ["report", "--db", str(mixed_db["db"]), "--rules", str(test_rules_dir)]
    data = json.loads(runner.invoke(app, [*args, "--format", "json"]).stdout)
    targets = {t["target"]: t for t in data["targets"]}
    assert data["genre_source"] == "spotify,musicbrainz,lastfm"
    assert data["genre_sources"] == ["spotify", "import", "musicbrainz", "lastfm"]
    for row in data["targets"]:  # every labelled artist took its genres from exactly one source
        assert sum(row[f"artists_from_{s}"] for s in STORED_SOURCES) == row["artists"]
    assert targets["jazz"]["artists_from_musicbrainz"] == len(mixed_db["mb"])
    assert targets["hip hop"]["artists_from_lastfm"] == len(mixed_db["lastfm"])
    assert targets["country"]["artists_from_import"] == len(mixed_db["import"])
    assert targets["house"]["artists_from_musicbrainz"] == 0  # Spotify's genres come first for them
    assert data["totals"]["artists_from_lastfm"] == len(mixed_db["lastfm"])

    swapped = json.loads(
        runner.invoke(app, [*args, "--format", "json", "--genre-source", "musicbrainz,spotify"]).stdout
    )
    swapped_targets = {t["target"]: t for t in swapped["targets"]}
    assert swapped_targets["house"]["artists_from_musicbrainz"] == len(mixed_db["covered"])
    assert swapped["totals"]["artists_from_lastfm"] == 0  # not in the list

    csv_lines = runner.invoke(app, [*args, "--format", "csv"]).stdout.splitlines()
    assert csv_lines[0] == (
        "target,artists,tracks,share,subgenres,"
        "artists_from_spotify,artists_from_import,artists_from_musicbrainz,artists_from_lastfm"
    )
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    header = next(line for line in table.stdout.splitlines() if "target" in line)
    assert "spotify" in header and "lastfm" in header and "musicbrainz" in header


def test_report_table_of_one_source_has_no_source_columns(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path
) -> None:
    table = runner.invoke(app, ["report", "--db", str(sample_db), "--rules", str(test_rules_dir)])
    header = next(line for line in table.stdout.splitlines() if "target" in line)
    assert "spotify" not in header and "artists" in header


def test_explain_artist_shows_every_source_and_the_one_used(
    runner: CliRunner, mixed_db: dict[str, Any], test_rules_dir: Path
) -> None:
    artist_id = mixed_db["covered"][0]
    args = ["explain", "--artist", artist_id, "--db", str(mixed_db["db"]), "--rules", str(test_rules_dir)]
    data = json.loads(runner.invoke(app, [*args, "--format", "json"]).stdout)
    by_source = {s["source"]: s for s in data["sources"]}
    assert [s["source"] for s in data["sources"]] == ["spotify", "import", "musicbrainz", "lastfm"]
    assert by_source["spotify"]["used"] and data["genre_source"] == "spotify"
    assert by_source["musicbrainz"] == {
        "source": "musicbrainz",
        "used": False,
        "why": "spotify comes first",
        "genres": [{"genre": "techno", "votes": 12}],
    }
    assert by_source["lastfm"]["why"] == "none stored"
    assert {g["source"] for g in data["subgenres"]} == {"spotify"}

    text = runner.invoke(app, args).stdout
    assert "musicbrainz (not used: spotify comes first): 'techno' 12" in text

    flipped = json.loads(runner.invoke(app, [*args, "--format", "json", "--genre-source", "musicbrainz"]).stdout)
    flipped_sources = {s["source"]: s for s in flipped["sources"]}
    assert flipped["genre_source"] == "musicbrainz" and flipped_sources["musicbrainz"]["used"]
    assert flipped_sources["spotify"]["why"] == "not in --genre-source"
    assert [g["genre"] for g in flipped["subgenres"]] == ["techno"]


def test_build_manifest_records_the_sources_and_their_artists(
    runner: CliRunner, mixed_db: dict[str, Any], test_rules_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dataset"
    args = ["build", "--db", str(mixed_db["db"]), "--rules", str(test_rules_dir), "--out", str(out)]
    result = runner.invoke(app, [*args, "--per-class", "100000", "--allow-short", "--genre-source", "both,lastfm"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["genre_source"] == "spotify,musicbrainz,lastfm"
    sources = manifest["genre_sources"]
    assert sources["precedence"] == ["spotify", "import", "musicbrainz", "lastfm"]
    assert sources["labelled_artists"]["lastfm"] == len(mixed_db["lastfm"])
    assert sources["labelled_artists"]["musicbrainz"] == len(mixed_db["mb"])
    assert sources["labelled_artists"]["import"] == len(mixed_db["import"])
    tracks = pd.read_csv(out / "tracks.csv")
    assert sum(sources["dataset_artists"].values()) == tracks["artist_id"].nunique()
    lastfm_in_dataset = tracks.loc[tracks["artist_id"].isin(mixed_db["lastfm"]), "artist_id"].nunique()
    assert sources["dataset_artists"]["lastfm"] == lastfm_in_dataset > 0


@pytest.mark.parametrize(
    "command",
    [
        ["report"],
        ["report", "--format", "html"],
        ["subgenres"],
        ["unmapped"],
        ["explain", "--artist", "DJ Raven"],
        ["diff"],
        ["build", "--out", "ds"],
        ["watch", "--max-updates", "0"],
    ],
)
def test_unknown_genre_source_is_one_line_exit_2(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path, command: list[str]
) -> None:
    args = [*command, "--db", str(sample_db), "--rules", str(test_rules_dir), "--genre-source", "spotify,tidal"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown genre source 'tidal'"), result.output
    assert "spotify, import, musicbrainz, lastfm" in lines[0]
    assert not (tmp_path / "ds").exists()


def test_genre_source_list_in_a_real_process_has_no_traceback(sample_db: Path, test_rules_dir: Path) -> None:
    report = [sys.executable, "-m", "genremap", "report", "--db", str(sample_db), "--rules", str(test_rules_dir)]
    done = subprocess.run(
        [*report, "--genre-source", "lastfm,nope", "--format", "json"], capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    good = subprocess.run(
        [*report, "--genre-source", "lastfm,both", "--format", "json"], capture_output=True, text=True
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["genre_sources"] == ["lastfm", "spotify", "import", "musicbrainz"]


def test_packaged_rules_label_from_each_source(store: Store) -> None:
    """With the shipped rules too: one artist per source, each labelled from its own source."""
    ruleset = load_rules(default_rules_dir())
    for artist_id, source, genres in [
        ("s", "spotify", [("album rock", None)]),
        ("i", "import", [("bebop", None)]),
        ("m", "musicbrainz", [("deep house", 5)]),
        ("l", "lastfm", [("hip hop", 100)]),
    ]:
        add(store, artist_id, source, genres)
    artists = label_store(store, ruleset).artists.set_index("artist_id")
    assert artists["genre_source"].to_dict() == {"s": "spotify", "i": "import", "m": "musicbrainz", "l": "lastfm"}
    assert artists["target"].to_dict() == {"s": "rock", "i": "jazz", "m": "house", "l": "hip hop"}


def test_watch_shows_the_sources_like_report(runner: CliRunner, mixed_db: dict[str, Any], test_rules_dir: Path) -> None:
    args = ["watch", "--db", str(mixed_db["db"]), "--rules", str(test_rules_dir), "--max-updates", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "target" in line and "artists" in line)
    assert [c for c in ("spotify", "import", "musicbrainz", "lastfm") if c in header] == [
        "spotify",
        "import",
        "musicbrainz",
        "lastfm",
    ]
    only_musicbrainz = runner.invoke(app, [*args, "--genre-source", "musicbrainz"])
    header = next(line for line in only_musicbrainz.stdout.splitlines() if "target" in line and "artists" in line)
    assert "musicbrainz" not in header  # one source labelled everything: no source columns


def test_reimporting_into_an_older_store_replaces_what_the_older_import_stored(
    store: Store, tmp_path: Path, test_rules: RuleSet
) -> None:
    """A store written before `import` was a source holds imported genres as `spotify` (origin
    `import:...`): the next import of those artists replaces them, as a re-import always did;
    genres Spotify's API gave (origin `spotify`) stay, beside the file's."""
    store.upsert_artists([ArtistRecord("sabbath", "Black Sabbath", ("hard rock", "blues rock"))], "import:old.csv")
    store.upsert_artists([ArtistRecord("mobb", "Mobb Deep", ("east coast hip hop",))], "spotify")
    table = tmp_path / "artists.csv"
    table.write_text(
        "artist_id,name,genres\nsabbath,Black Sabbath,doom metal;stoner metal\nmobb,Mobb Deep,hardcore hip hop\n",
        encoding="utf-8",
    )
    import_file(store, table)
    assert store.genres_of("sabbath") == {"import": [("doom metal", None), ("stoner metal", None)]}
    assert store.genres_of("mobb") == {
        "import": [("hardcore hip hop", None)],
        "spotify": [("east coast hip hop", None)],
    }
    artists = label_store(store, test_rules).artists.set_index("artist_id")
    assert artists.loc["sabbath", ["genre_source", "target"]].tolist() == ["import", "metal"]
    assert artists.loc["mobb", ["genre_source", "genre"]].tolist() == ["spotify", "east coast hip hop"]
    consulted = store.conn.execute(
        "SELECT a.artist_id, s.source FROM artist_genre_sources s JOIN artists a USING (artist_key) ORDER BY 1, 2"
    ).fetchall()
    assert consulted == [("mobb", "import"), ("mobb", "spotify"), ("sabbath", "import")]
