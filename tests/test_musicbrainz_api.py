"""MusicBrainz's web service used economically and exactly: genres from the search answer's tags
(about one request per artist), ISRC lookups for same-name artists, and `explain` saying how."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.clock import FakeClock
from fakes.musicbrainz import FakeMusicBrainz, entry, mbid
from typer.testing import CliRunner

from genremap.cli import app
from genremap.collectors.musicbrainz import EnrichResult, enrich_musicbrainz
from genremap.http import Retrying, RetryPolicy
from genremap.store import ArtistRecord, Store, TrackRecord

NIRVANA_US, NIRVANA_UK = mbid("nirvana-us"), mbid("nirvana-uk")
US_ISRC, UK_ISRC = "USGF19942501", "GBAAA6700001"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.db") as opened:
        yield opened


def enrich(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> EnrichResult:
    retrying = Retrying("MusicBrainz", policy=RetryPolicy(seed=7, timeout=5.0), clock=clock)
    return enrich_musicbrainz(store, api=fake.api, retrying=retrying)


def mb_genres(store: Store, artist_id: str) -> list[tuple[str, int | None]]:
    rows = store.conn.execute(
        """SELECT n.name, g.votes FROM artist_genres g JOIN artists a USING (artist_key)
           JOIN genres n USING (genre_key) WHERE a.artist_id = ? AND g.source = 'musicbrainz'
           ORDER BY g.position""",
        (artist_id,),
    ).fetchall()
    return [(str(n), v) for n, v in rows]


def realistic_catalog() -> dict[str, dict[str, Any]]:
    """60 artists as MusicBrainz tags them: genres mixed with free-form tags (places, decades,
    "seen live"), a few with no tag at all, and near names that a search also returns."""
    genres = ["rock", "jazz", "soul", "hip hop", "techno", "folk", "blues", "punk", "reggae", "ambient"]
    noise = [("seen live", 3), ("british", 2), ("80s", 5), ("female vocalists", 1)]
    catalog: dict[str, dict[str, Any]] = {}
    for i in range(60):
        tagged = i % 10 != 9  # every tenth artist has no tag at all
        record_genres = [(genres[i % 10], 3 + i % 7), (genres[(i + 3) % 10], 1)] if tagged else []
        key, record = entry(f"Artist Number {i}", record_genres, tags=[noise[i % 4]] if tagged else [])
        catalog[key] = record
    for i in range(0, 60, 6):  # "Artist Number 6 Tribute" also answers the search for "Artist Number 6"
        key, record = entry(f"Artist Number {i} Tribute", [("rock", 1)])
        catalog[key] = record
    return catalog


def test_about_one_request_per_artist_with_genres_from_the_search_tags(store: Store, clock: FakeClock) -> None:
    """60 matched artists plus 10 that MusicBrainz does not know, counted at the fake: each costs
    its search and nothing else, and only the tags on MusicBrainz's genre list are kept. The
    exception: an answer whose only candidate has no tags cannot tell "no tags" from "a server
    that leaves tags out", so those 6 artists (of 70) also cost the lookup."""
    names = [f"Artist Number {i}" for i in range(60)] + [f"Unknown Person {i}" for i in range(10)]
    store.upsert_artists([ArtistRecord(f"a{i:02}", n, genres=()) for i, n in enumerate(names)], origin="test")
    with FakeMusicBrainz(realistic_catalog(), timer=clock.monotonic) as fake:
        result = enrich(store, fake, clock)
        arrived, looked_up = dict(fake.requests), list(fake.lookups)
    assert (result.matched, result.no_match) == (60, 10)
    assert arrived == {"search": 70, "lookup": 6}
    assert looked_up == [mbid(f"Artist Number {i}") for i in range(9, 60, 10)]
    assert result.requests == 76 and result.requests / len(names) < 1.1
    assert mb_genres(store, "a00") == [("rock", 3), ("hip hop", 1)]  # no "seen live"
    assert mb_genres(store, "a02") == [("soul", 5), ("folk", 1)]  # no "80s"
    assert mb_genres(store, "a09") == []  # matched, no tag at all (the lookup agrees)
    assert store.musicbrainz_lookup("a09")["status"] == "matched"


@pytest.mark.parametrize("search_tags", [True, False])
def test_the_lookup_is_sent_only_when_the_search_answer_lacks_tags(
    store: Store, clock: FakeClock, search_tags: bool
) -> None:
    """A server whose searches carry no `tags` at all (no candidate has the key) cannot say an
    artist's genres: then, and only then, the artist lookup is sent, and the genres agree."""
    store.upsert_artists(
        [ArtistRecord("a1", "The Beatles", genres=()), ArtistRecord("a2", "Diddy", genres=())], origin="test"
    )
    with FakeMusicBrainz(timer=clock.monotonic, search_tags=search_tags) as fake:
        result = enrich(store, fake, clock)
        arrived = dict(fake.requests)
    assert result.matched == 2
    assert arrived == ({"search": 2} if search_tags else {"search": 2, "lookup": 2})
    assert mb_genres(store, "a1") == [("rock", 30), ("pop", 25), ("psychedelic rock", 12)]
    assert mb_genres(store, "a2") == [("hip hop", 7), ("east coast hip hop", 2)]


def add_nirvanas(store: Store) -> None:
    """Three store artists named Nirvana: one with a 90s US track, one with a 60s UK track, one
    with no ISRC at all."""
    store.upsert_artists(
        [
            ArtistRecord("sp:n90", "Nirvana", genres=()),
            ArtistRecord("sp:n60", "Nirvana", genres=()),
            ArtistRecord("sp:nx", "Nirvana", genres=()),
        ],
        origin="test",
    )
    store.upsert_tracks(
        [
            TrackRecord("t1", "Lithium", "sp:n90", "Nirvana", isrc=US_ISRC),
            TrackRecord("t2", "Rainbow Chaser", "sp:n60", "Nirvana", isrc=UK_ISRC),
            TrackRecord("t3", "Untitled", "sp:nx", "Nirvana"),
        ],
        origin="test",
    )


def test_a_same_name_pair_is_resolved_by_isrc(store: Store, clock: FakeClock) -> None:
    add_nirvanas(store)
    with FakeMusicBrainz(timer=clock.monotonic) as fake:
        result = enrich(store, fake, clock)
        arrived, asked = dict(fake.requests), list(fake.isrcs)
    assert result.matched == 3
    assert arrived == {"search": 3, "isrc": 2}  # no ISRC lookup for the artist without one
    assert sorted(asked) == sorted([US_ISRC, UK_ISRC])
    n60, n90, nx = (store.musicbrainz_lookup(a) for a in ("sp:n60", "sp:n90", "sp:nx"))
    assert n60 is not None and n90 is not None and nx is not None
    assert (n60["mbid"], n90["mbid"]) == (NIRVANA_UK, NIRVANA_US)
    assert mb_genres(store, "sp:n60") == [("psychedelic pop", 3)]
    assert mb_genres(store, "sp:n90") == [("grunge", 40)]
    assert n60["method"].startswith(f"ISRC {UK_ISRC} names {NIRVANA_UK}")
    assert [(c["mbid"], c["reason"]) for c in n60["candidates"]] == [
        (NIRVANA_US, f"score 100 passes, but ISRC {UK_ISRC} names {NIRVANA_UK}")
    ]
    assert nx["method"] == "name score 100"  # no ISRC: the name ranking decides, as before


def test_an_isrc_musicbrainz_does_not_know_leaves_the_name_ranking(store: Store, clock: FakeClock) -> None:
    """A 404 from the ISRC lookup is an answer (unknown ISRC), not an error; a 503 is waited out."""
    store.upsert_artists([ArtistRecord("sp:n", "Nirvana", genres=())], origin="test")
    store.upsert_tracks([TrackRecord("t1", "Demo", "sp:n", "Nirvana", isrc="XXAAA0000001")], origin="test")
    faults = {("isrc", 1): "503-retry-after:2"}
    with FakeMusicBrainz(faults=faults, timer=clock.monotonic) as fake:
        result = enrich(store, fake, clock)
        arrived = dict(fake.requests)
    assert result.matched == 1 and arrived == {"search": 1, "isrc": 2}
    lookup = store.musicbrainz_lookup("sp:n")
    assert lookup is not None and lookup["method"] == "name score 100"
    assert lookup["mbid"] == min(NIRVANA_US, NIRVANA_UK)  # the name ranking's tie-break


def test_explain_says_how_the_match_was_made_and_what_was_rejected(
    tmp_path: Path, clock: FakeClock, test_rules_dir: Path
) -> None:
    db = tmp_path / "x.db"
    with Store.open(db) as store, FakeMusicBrainz(timer=clock.monotonic) as fake:
        add_nirvanas(store)
        store.upsert_artists([ArtistRecord("sp:diddy", "Puff Daddy", genres=())], origin="test")
        enrich(store, fake, clock)
    runner = CliRunner()
    common = ["--db", str(db), "--rules", str(test_rules_dir)]
    shown = runner.invoke(app, ["explain", "--artist", "sp:n60", *common], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    assert f"MusicBrainz: matched 'Nirvana' (score 100) {NIRVANA_UK} by ISRC {UK_ISRC}" in shown.output
    assert f"rejected {NIRVANA_US} 'Nirvana': score 100 passes, but ISRC {UK_ISRC} names {NIRVANA_UK}" in shown.output
    as_json = runner.invoke(app, ["explain", "--artist", "sp:diddy", *common, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    lookup = json.loads(as_json.output)["musicbrainz"]
    assert lookup["mbid"] == mbid("Diddy") and lookup["method"] == "alias 'Puff Daddy' score 100"


# --- votes as weights ------------------------------------------------------------------------

VOTED = dict(
    [
        entry("Quiet Storm", [("rock", 12), ("jazz", 1), ("bebop", 1)]),  # rock 12 against jazz 1 + 1
        entry("Even Split", [("rock", 2), ("jazz", 1), ("bebop", 1)]),  # rock 2 against jazz 2
        entry("Lone Voice", [("soul", 1)]),
    ]
)


def voted_store(db: Path, clock: FakeClock) -> None:
    """A store whose MusicBrainz genres came through enrichment from the fake, plus one artist
    with Spotify genres (no vote counts)."""
    with Store.open(db) as store, FakeMusicBrainz(VOTED, timer=clock.monotonic) as fake:
        store.upsert_artists(
            [
                ArtistRecord("mb:storm", "Quiet Storm", genres=()),
                ArtistRecord("mb:split", "Even Split", genres=()),
                ArtistRecord("mb:lone", "Lone Voice", genres=()),
                ArtistRecord("sp:band", "Spotify Band", genres=("jazz", "soul jazz")),
            ],
            origin="test",
        )
        assert enrich(store, fake, clock).matched == 3


def labels_of(db: Path, rules: Path, *options: str) -> dict[str, tuple[str, str | None]]:
    """artist id → (status, target) from `explain --artist ... --format json`, via the CLI."""
    out = {}
    for artist_id in ("mb:storm", "mb:split", "mb:lone", "sp:band"):
        args = ["explain", "--artist", artist_id, "--db", str(db), "--rules", str(rules), "-f", "json", *options]
        shown = CliRunner().invoke(app, args)
        assert shown.exit_code == 0, shown.output
        explained = json.loads(shown.output)
        out[artist_id] = (explained["status"], explained["target"])
    return out


def test_the_vote_weighs_musicbrainz_genres_by_their_vote_counts(
    tmp_path: Path, clock: FakeClock, test_rules_dir: Path
) -> None:
    """rock with 12 votes against jazz and bebop with 1 vote each: rock, not jazz (two genres
    to one, as an unweighted vote would have it)."""
    db = tmp_path / "v.db"
    voted_store(db, clock)
    labels = labels_of(db, test_rules_dir)
    assert labels["mb:storm"] == ("labelled", "rock")
    assert labels["mb:split"] == ("ambiguous", None)  # 2 votes against 1 + 1: a tie
    assert labels["mb:lone"] == ("labelled", "blues")
    assert labels["sp:band"] == ("labelled", "jazz")  # Spotify's genres carry no counts: one each
    shown = CliRunner().invoke(
        app, ["explain", "--artist", "mb:storm", "--db", str(db), "--rules", str(test_rules_dir), "-f", "json"]
    )
    explained = json.loads(shown.output)
    assert [(v["target"], v["votes"]) for v in explained["votes"]] == [("rock", 12.0), ("jazz", 2.0)]
    assert [(s["genre"], s.get("votes")) for s in explained["subgenres"]] == [("rock", 12), ("bebop", 1), ("jazz", 1)]


def test_min_votes_drops_the_rarest_musicbrainz_genres(tmp_path: Path, clock: FakeClock, test_rules_dir: Path) -> None:
    db = tmp_path / "v.db"
    voted_store(db, clock)
    labels = labels_of(db, test_rules_dir, "--min-votes", "2")
    assert labels["mb:split"] == ("labelled", "rock")  # the two 1-vote jazz genres are dropped
    assert labels["mb:lone"] == ("unlabelled", None)  # its only genre had 1 vote
    assert labels["mb:storm"] == ("labelled", "rock")
    assert labels["sp:band"] == ("labelled", "jazz")  # genres without counts are never dropped
    refused = CliRunner().invoke(app, ["report", "--db", str(db), "--rules", str(test_rules_dir), "--min-votes", "0"])
    assert refused.exit_code == 2
    assert refused.output.strip() == "error: --min-votes 0: expected a number of votes, 1 or more"
