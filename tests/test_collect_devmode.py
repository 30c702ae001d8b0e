"""`collect` against apps that get no genres from Spotify (development mode since 2026): the artist
objects carry no `genres` key. Detected from the first such answer, remembered in the store, said
once with the way out (`genremap enrich`), and undone when answers carry genres again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.clock import FakeClock
from fakes.musicbrainz import FakeMusicBrainz, entry
from fakes.spotify import ARTIST_KEYS_2026, Catalog, FakeSpotify
from typer.testing import CliRunner

from genremap.cli import app
from genremap.collectors.musicbrainz import enrich_musicbrainz
from genremap.collectors.spotify import CollectConfig, Progress, SpotifyCollector
from genremap.http import Retrying, RetryPolicy
from genremap.store import Store

TERMS = ["rock", "jazz", "soul", "pop"]  # 67 primary artists in the catalog below
ENRICH = "genremap enrich"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(n_artists=120, seed=1)


@pytest.fixture
def no_genres(catalog: Catalog) -> Iterator[FakeSpotify]:
    """A development-mode app as Spotify serves it since 2026: artist objects without genres."""
    with FakeSpotify(catalog, artist_genres=False) as server:
        yield server


def artist_requests(fake: FakeSpotify) -> int:
    return fake.requests["artist"] + fake.requests["artists"]


def primary_artists(catalog: Catalog, terms: list[str]) -> set[str]:
    return {catalog.primary_artist(t)["id"] for t in catalog.expected(terms)}


def cli_collect(fake: FakeSpotify, db: Path, terms: list[str], *extra: str) -> Any:
    args = ["collect", "--db", str(db), "--api-base", fake.api_base, "--auth-url", fake.auth_url, *extra]
    env = {"SPOTIPY_CLIENT_ID": fake.client_id, "SPOTIPY_CLIENT_SECRET": fake.client_secret, "COLUMNS": "400"}
    return CliRunner().invoke(app, [*args, *(a for t in terms for a in ("--term", t))], env=env)


def status(db: Path) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["status", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def status_table(db: Path) -> str:
    result = CliRunner().invoke(app, ["status", "--db", str(db)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def spotify_consulted(db: Path) -> set[str]:
    """Artists for which a Spotify genre answer ([] included) is recorded."""
    with Store.open(db) as store:
        rows = store.conn.execute(
            "SELECT a.artist_id FROM artist_genre_sources s JOIN artists a USING (artist_key) WHERE s.source = 'spotify'"
        ).fetchall()
    return {r[0] for r in rows}


def spotify_genres(db: Path) -> dict[str, list[str]]:
    with Store.open(db) as store:
        rows = store.conn.execute(
            "SELECT a.artist_id, n.name FROM artist_genres g JOIN artists a USING (artist_key) "
            "JOIN genres n USING (genre_key) WHERE g.source = 'spotify' ORDER BY a.artist_id, g.position"
        ).fetchall()
    found: dict[str, list[str]] = {}
    for artist_id, genre in rows:
        found.setdefault(artist_id, []).append(genre)
    return found


def age_finding(db: Path, days: float) -> None:
    """Make the store's 'no genres' finding `days` old, as if the last run had been then."""
    stamp = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with Store.open(db) as store, store.transaction() as conn:
        conn.execute("UPDATE api_state SET updated_at = ? WHERE key = 'spotify.genres'", (stamp,))


def collect(fake: FakeSpotify, db: Path, terms: list[str], progress: Progress | None = None) -> SpotifyCollector:
    retrying = Retrying("Spotify", RetryPolicy(seed=1), clock=FakeClock())
    with Store.open(db) as store:
        collector = SpotifyCollector(
            store,
            fake.client_id,
            fake.client_secret,
            CollectConfig(terms=terms),
            retrying,
            api_base=fake.api_base,
            auth_url=fake.auth_url,
            progress=progress,
        )
        collector.run()
    return collector


def test_the_fake_serves_artists_without_a_genres_key(no_genres: FakeSpotify, catalog: Catalog) -> None:
    import requests

    token = requests.post(
        no_genres.auth_url,
        data={"grant_type": "client_credentials"},
        auth=(no_genres.client_id, no_genres.client_secret),
        timeout=5,
    ).json()["access_token"]
    artist_id = next(iter(catalog.artists))
    answer = requests.get(
        f"{no_genres.api_base}artists/{artist_id}", headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()
    assert sorted(answer) == sorted(ARTIST_KEYS_2026) and "genres" not in answer


def test_a_whole_collection_spends_at_most_3_artist_requests_and_says_to_enrich(
    no_genres: FakeSpotify, catalog: Catalog, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    result = cli_collect(no_genres, db, TERMS)
    assert result.exit_code == 0, result.output
    assert 1 <= artist_requests(no_genres) <= 3  # the probe, not one request per artist
    artists = primary_artists(catalog, TERMS)
    assert len(artists) > 50
    data = status(db)
    assert data["track_rows"] == len(catalog.expected(TERMS))  # tracks were collected
    # Said once at the point of detection (stderr, during the run) and once in the summary (stdout).
    assert result.stderr.count(ENRICH) == 1 and "no genres from Spotify" in result.stderr
    summary = [line for line in result.stdout.splitlines() if ENRICH in line]
    assert len(summary) == 1 and summary[0].startswith("note: this app gets no genres from Spotify")
    # No artist is recorded as "Spotify gave none": every one stays pending, for enrich to pick up.
    assert spotify_consulted(db) == set()
    assert data["artists_pending"] == len(artists) and data["spotify_genres"] == "unavailable"
    assert "Spotify genres: none for this app" in status_table(db) and ENRICH in status_table(db)


def test_json_summary_says_unavailable_and_carries_the_note(no_genres: FakeSpotify, tmp_path: Path) -> None:
    result = cli_collect(no_genres, tmp_path / "s.db", TERMS, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["spotify_genres"] == "unavailable"
    assert [n for n in data["notes"] if ENRICH in n] and data["artists_fetched"] == 0


def test_enrich_picks_up_the_artists_collect_left(no_genres: FakeSpotify, catalog: Catalog, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert cli_collect(no_genres, db, TERMS).exit_code == 0
    artists = sorted(primary_artists(catalog, TERMS))
    known = {a: catalog.artists[a]["name"] for a in artists[:5]}
    clock = FakeClock()
    mb = FakeMusicBrainz(dict(entry(name, [("soul", 7)], key=a) for a, name in known.items()), timer=clock.monotonic)
    with mb, Store.open(db) as store:
        retrying = Retrying("MusicBrainz", policy=RetryPolicy(seed=7, timeout=5.0), clock=clock)
        result = enrich_musicbrainz(store, api=mb.api, retrying=retrying)
        looked_up = {i for i, _ in store.conn.execute("SELECT artist_id, status FROM musicbrainz_lookups")}
        matched = {
            r[0]
            for r in store.conn.execute(
                "SELECT a.artist_id FROM artist_genres g JOIN artists a USING (artist_key) WHERE g.source = 'musicbrainz'"
            )
        }
    assert set(artists) <= looked_up  # every artist Spotify gave nothing for was searched
    assert set(known) <= matched and result.matched >= len(known)


def test_status_says_unknown_then_unavailable_or_available(catalog: Catalog, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    with Store.open(fresh):
        pass
    assert status(fresh)["spotify_genres"] == "unknown"
    assert "Spotify genres: not asked yet" in status_table(fresh)
    with FakeSpotify(catalog, artist_genres=False) as dev:
        assert cli_collect(dev, tmp_path / "dev.db", ["jazz"]).exit_code == 0
    assert status(tmp_path / "dev.db")["spotify_genres"] == "unavailable"
    with FakeSpotify(catalog, mode="extended") as extended:
        result = cli_collect(extended, tmp_path / "ext.db", ["jazz"])
    assert result.exit_code == 0 and ENRICH not in result.output
    assert status(tmp_path / "ext.db")["spotify_genres"] == "available"
    assert "Spotify genres: given to this app" in status_table(tmp_path / "ext.db")


def test_a_resumed_run_sends_no_artist_request_while_unavailable(
    no_genres: FakeSpotify, catalog: Catalog, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    assert cli_collect(no_genres, db, ["rock", "jazz"]).exit_code == 0
    before = artist_requests(no_genres)
    result = cli_collect(no_genres, db, TERMS)  # new terms: new artists pending
    assert result.exit_code == 0, result.output
    assert artist_requests(no_genres) == before
    assert result.stdout.count(ENRICH) == 1  # the summary still says it
    assert status(db)["artists_pending"] == len(primary_artists(catalog, TERMS))


def test_an_old_finding_is_checked_with_one_request_and_genres_turn_fetching_back_on(
    no_genres: FakeSpotify, catalog: Catalog, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    assert cli_collect(no_genres, db, ["jazz"]).exit_code == 0
    # Two days later, still without genres: one request checks, then the finding is fresh again.
    age_finding(db, days=2)
    before = artist_requests(no_genres)
    assert cli_collect(no_genres, db, ["jazz", "soul"]).exit_code == 0
    assert artist_requests(no_genres) == before + 1
    before += 1
    assert cli_collect(no_genres, db, ["jazz", "soul"]).exit_code == 0
    assert artist_requests(no_genres) == before
    # Two days later again, the app has been granted extended quota: genres come back.
    age_finding(db, days=2)
    no_genres.artist_genres = True
    result = cli_collect(no_genres, db, ["jazz", "soul"])
    assert result.exit_code == 0 and "genres again" in result.stdout and ENRICH not in result.stdout
    artists = primary_artists(catalog, ["jazz", "soul"])
    assert spotify_consulted(db) == artists
    assert spotify_genres(db) == {a: catalog.artists[a]["genres"] for a in artists if catalog.artists[a]["genres"]}
    assert status(db)["spotify_genres"] == "available" and status(db)["artists_pending"] == 0


def test_answers_that_lose_genres_mid_run_stop_the_fetching(catalog: Catalog, tmp_path: Path) -> None:
    """An app that had genres (state 'available') and loses them (Spotify's cut-over) mid-run."""
    db = tmp_path / "s.db"
    with FakeSpotify(catalog) as fake:

        def stage(name: str, done: int, total: int) -> None:
            if name == "artists" and done == 5:
                fake.artist_genres = False

        collect(fake, db, TERMS, Progress(stage=stage))
        assert fake.requests["artist"] == 6  # five with genres, one without: then no more
    assert len(spotify_consulted(db)) == 5
    with Store.open(db) as store:
        assert store.get_state("spotify.genres") == "unavailable"


def test_empty_genre_lists_are_answers_not_the_signal(tmp_path: Path) -> None:
    """`genres: []` is a normal answer: it is recorded and fetching goes on."""
    catalog = Catalog(n_artists=120, seed=1)
    artists = sorted(primary_artists(catalog, TERMS))  # searched (and indexed) before the edit below
    for artist_id in artists[: len(artists) // 2]:  # the first half asked (in id order) has none
        catalog.artists[artist_id]["genres"] = []
    with FakeSpotify(catalog) as fake:
        collect(fake, tmp_path / "s.db", TERMS)
        assert fake.requests["artist"] == len(artists)
    assert spotify_consulted(tmp_path / "s.db") == set(artists)
    assert spotify_genres(tmp_path / "s.db") == {
        a: catalog.artists[a]["genres"] for a in artists if catalog.artists[a]["genres"]
    }
    assert status(tmp_path / "s.db")["spotify_genres"] == "available"


def test_a_batch_answer_without_genres_is_the_signal_too(catalog: Catalog, tmp_path: Path) -> None:
    with FakeSpotify(catalog, mode="extended", artist_genres=False) as fake:
        collector = collect(fake, tmp_path / "s.db", TERMS)
        assert fake.requests["artists"] == 1 and fake.requests["artist"] == 0
    assert spotify_consulted(tmp_path / "s.db") == set()
    assert collector.summary.spotify_genres == "unavailable"
    assert sum(ENRICH in n for n in collector.summary.notes) == 1
