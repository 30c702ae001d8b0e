"""MusicBrainz enrichment against a loopback fake: matching, caching, rate limit, faults."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakes.clock import FakeClock
from fakes.musicbrainz import FakeMusicBrainz, entry, parse_query
from typer.testing import CliRunner

from genremap import __version__
from genremap.cli import app
from genremap.collectors.musicbrainz import (
    DEFAULT_MB_API,
    LOOKUP_ENDPOINT,
    PROJECT_URL,
    SEARCH_ENDPOINT,
    EnrichResult,
    MusicBrainzMatch,
    best_match,
    enrich_musicbrainz,
    lucene_escape,
    musicbrainz_client,
    name_score,
    parse_genres,
    search_query,
    user_agent,
)
from genremap.dataset.labels import label_store
from genremap.engine import load_rules
from genremap.errors import GenremapError, UsageError
from genremap.http import GaveUp, Retrying, RetryPolicy, TooLongToWait
from genremap.store import ArtistRecord, Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeMusicBrainz]:
    """A server that leaves tags out of its search answers, so that every match also costs the
    artist lookup: the tests using it are about that second request and the HTTP layer."""
    with FakeMusicBrainz(timer=clock.monotonic, search_tags=False) as server:
        yield server


def retrying_for(clock: Any, **policy: Any) -> Retrying:
    policy.setdefault("seed", 7)
    policy.setdefault("timeout", 5.0)
    return Retrying("MusicBrainz", policy=RetryPolicy(**policy), clock=clock)


def add_artists(store: Store, *artists: tuple[str, str, tuple[str, ...] | None]) -> None:
    """(artist_id, name, Spotify genres: a tuple, () for "Spotify gave none", None for "never asked")."""
    store.upsert_artists([ArtistRecord(i, n, genres=g) for i, n, g in artists], origin="test")


def enrich(
    store: Store, fake: FakeMusicBrainz, clock: Any, retrying: Retrying | None = None, **kw: Any
) -> EnrichResult:
    return enrich_musicbrainz(store, api=fake.api, retrying=retrying or retrying_for(clock), **kw)


def mb_genres(store: Store, artist_id: str) -> list[tuple[str, int | None]]:
    """(genre, votes) stored under the source musicbrainz, in stored order."""
    rows = store.conn.execute(
        """SELECT n.name, g.votes FROM artist_genres g JOIN artists a USING (artist_key)
           JOIN genres n USING (genre_key) WHERE a.artist_id = ? AND g.source = 'musicbrainz'
           ORDER BY g.position""",
        (artist_id,),
    ).fetchall()
    return [(str(n), v) for n, v in rows]


# --- pure parts ---------------------------------------------------------------------------


def test_user_agent_names_genremap_version_and_contact() -> None:
    assert user_agent() == f"genremap/{__version__} ( {PROJECT_URL} )"
    assert user_agent("me@example.org") == f"genremap/{__version__} ( me@example.org )"
    assert user_agent("  ") == user_agent()


def test_lucene_special_characters_are_escaped() -> None:
    assert lucene_escape("AC/DC") == "AC\\/DC"
    assert lucene_escape("Sunn O)))") == "Sunn O\\)\\)\\)"
    assert lucene_escape('a+b-c&&d||e!f(g)h{i}j[k]l^m"n~o*p?q:r\\s') == (
        'a\\+b\\-c\\&\\&d\\|\\|e\\!f\\(g\\)h\\{i\\}j\\[k\\]l\\^m\\"n\\~o\\*p\\?q\\:r\\\\s'
    )
    assert search_query('Weird  "Al"') == 'artist:"Weird \\"Al\\"" OR alias:"Weird \\"Al\\""'
    assert parse_query(search_query('K?!(x)/"y" \\ z')) == [("artist", 'K?!(x)/"y" \\ z'), ("alias", 'K?!(x)/"y" \\ z')]


@pytest.mark.parametrize(
    ("spotify", "musicbrainz"),
    [
        ("Beyonce", "Beyoncé"),
        ("BEYONCÉ", "Beyoncé"),
        ("Beatles", "The Beatles"),
        ("The Beatles", "Beatles"),
        ("Motley Crue", "Mötley Crüe"),
        ("Guns N Roses", "Guns N' Roses"),
        ("Earth, Wind and Fire", "Earth, Wind & Fire"),
        ("ACDC", "AC/DC"),
        ("!!!", "!!!"),
    ],
)
def test_normalised_names_score_100(spotify: str, musicbrainz: str) -> None:
    assert name_score(spotify, musicbrainz) == 100.0


def candidate(mbid: str, name: str, score: int = 100, aliases: list[str] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"id": mbid, "name": name, "score": score}
    if aliases:
        found["aliases"] = [{"name": a, "sort-name": a} for a in aliases]
    return found


def test_best_match_rejects_near_misses_with_scores_and_reasons() -> None:
    accepted, score, rejected = best_match("The Beatles", [candidate("m2", "The Beatles Revival Band", 88)])
    assert accepted is None
    assert 40 < score < 90
    assert rejected == [
        {
            "mbid": "m2",
            "name": "The Beatles Revival Band",
            "score": score,
            "reason": f"score {score:g} below threshold 90",
        }
    ]
    assert best_match("Anyone", []) == (None, 0.0, [])


def test_best_match_accepts_the_best_and_keeps_the_rest() -> None:
    accepted, score, rejected = best_match(
        "The Beatles",
        [candidate("m2", "The Beatles Revival Band", 90), candidate("m1", "The Beatles", 100), {"name": "no id"}],
    )
    assert accepted is not None and accepted["id"] == "m1" and score == 100.0
    assert [r["mbid"] for r in rejected] == ["m2"]


def test_best_match_uses_aliases() -> None:
    accepted, score, rejected = best_match("Puff Daddy", [candidate("d", "Diddy", 100, ["P. Diddy", "Puff Daddy"])])
    assert accepted is not None and accepted["id"] == "d" and score == 100.0 and rejected == []
    _, _, rejected = best_match("Puff Daddy", [candidate("d", "Diddy", 80, ["Puffy"])], threshold=99)
    assert "alias 'Puffy'" in rejected[0]["reason"]


def test_best_match_breaks_ties_deterministically() -> None:
    twins = [candidate("b", "Nirvana", 100), candidate("a", "Nirvana", 100), candidate("c", "Nirvana", 95)]
    for order in (twins, twins[::-1]):
        accepted, score, rejected = best_match("Nirvana", order)
        assert accepted is not None and accepted["id"] == "a" and score == 100.0
        assert [r["mbid"] for r in rejected] == ["b", "c"]
        assert "passes, but a ranks higher" in rejected[0]["reason"]


def test_best_match_threshold_is_inclusive() -> None:
    score = name_score("Metallica", "Metalica")
    assert best_match("Metallica", [candidate("m", "Metalica")], threshold=score)[0] is not None
    assert best_match("Metallica", [candidate("m", "Metalica")], threshold=score + 0.1)[0] is None


def test_parse_genres_sorts_by_votes_then_name_and_drops_unvoted() -> None:
    body = {"genres": [{"name": "rock", "count": 3}, {"name": "art rock", "count": 3}, {"name": "pop", "count": 9},
                       {"name": "meh", "count": 0}, {"name": " ", "count": 4}, "junk"]}  # fmt: skip
    assert parse_genres(body) == [("pop", 9), ("art rock", 3), ("rock", 3)]
    assert parse_genres({"id": "x"}) == []
    with pytest.raises(GenremapError):
        parse_genres([])


def test_official_host_is_never_faster_than_one_request_per_second() -> None:
    assert musicbrainz_client(DEFAULT_MB_API, min_interval=0.1).limiter.interval == 1.0
    assert musicbrainz_client("http://127.0.0.1:9/ws/2", min_interval=0.1).limiter.interval == 0.1
    with pytest.raises(UsageError):
        musicbrainz_client("ftp://musicbrainz.org/ws/2")


# --- against the fake -----------------------------------------------------------------------


def test_exact_match_stores_genres_with_votes_under_musicbrainz(
    store: Store, fake: FakeMusicBrainz, clock: FakeClock
) -> None:
    add_artists(store, ("a1", "The Beatles", ()))
    seen: list[MusicBrainzMatch] = []
    result = enrich(store, fake, clock, on_match=seen.append)
    assert (result.looked_up, result.matched, result.no_match, result.genres_added) == (1, 1, 0, 3)
    assert result.requests == 2 and fake.requests == {"search": 1, "lookup": 1}
    assert mb_genres(store, "a1") == [("rock", 30), ("pop", 25), ("psychedelic rock", 12)]
    beatles = fake.mbid_of("The Beatles")
    cached = store.musicbrainz_lookup("a1")
    assert cached is not None
    assert (cached["status"], cached["mbid"], cached["mb_name"], cached["score"]) == (
        "matched",
        beatles,
        "The Beatles",
        100.0,
    )
    assert [c["name"] for c in cached["candidates"]] == ["The Beatles Revival Band"]  # found, rejected
    assert seen[0].genres == [("rock", 30), ("pop", 25), ("psychedelic rock", 12)]
    assert result.stats.requests == {SEARCH_ENDPOINT: 1, LOOKUP_ENDPOINT: 1}
    assert result.summary()["stats"]["requests"] == {SEARCH_ENDPOINT: 1, LOOKUP_ENDPOINT: 1}


def test_accents_the_and_punctuation_are_normalised(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> None:
    add_artists(
        store,
        ("a1", "Beyonce", ()),
        ("a2", "Beatles", ()),
        ("a3", "MOTLEY CRUE", ()),
        ("a4", "ac/dc", ()),
        ("a5", "Sunn O)))", ()),
        ("a6", "!!!", ()),
    )
    result = enrich(store, fake, clock)
    assert result.matched == 6 and result.no_match == 0
    names = {a: (store.musicbrainz_lookup(a) or {})["mb_name"] for a in ("a1", "a2", "a3", "a4", "a5", "a6")}
    assert names == {
        "a1": "Beyoncé",
        "a2": "The Beatles",
        "a3": "Mötley Crüe",
        "a4": "AC/DC",
        "a5": "Sunn O)))",
        "a6": "!!!",
    }
    assert mb_genres(store, "a1")[0] == ("contemporary r&b", 9)


def test_near_miss_is_no_match_with_candidates_kept(store: Store, clock: FakeClock) -> None:
    catalog = dict([entry("The Beatles Revival Band", [("rock", 1)]), entry("The Beatles Tribute Night", [("pop", 1)])])
    add_artists(store, ("a1", "The Beatles", ()))
    with FakeMusicBrainz(catalog, timer=clock.monotonic) as fake:
        result = enrich(store, fake, clock)
        assert fake.requests == {"search": 1}  # no lookup for a rejected candidate
    assert (result.matched, result.no_match, result.genres_added) == (0, 1, 0)
    cached = store.musicbrainz_lookup("a1")
    assert cached is not None and cached["status"] == "no match" and cached["mbid"] is None
    assert {c["name"] for c in cached["candidates"]} == {"The Beatles Revival Band", "The Beatles Tribute Night"}
    assert all(c["score"] < 90 and "below threshold 90" in c["reason"] for c in cached["candidates"])
    assert cached["score"] == max(c["score"] for c in cached["candidates"])
    assert mb_genres(store, "a1") == []


def test_threshold_is_configurable(store: Store, clock: FakeClock) -> None:
    catalog = dict([entry("The Beatles Revival Band", [("rock", 1)])])
    add_artists(store, ("a1", "The Beatles", ()))
    with FakeMusicBrainz(catalog, timer=clock.monotonic) as fake:
        result = enrich(store, fake, clock, threshold=50)
    cached = store.musicbrainz_lookup("a1")
    assert result.matched == 1 and cached is not None and 50 <= cached["score"] < 90
    assert mb_genres(store, "a1") == [("rock", 1)]


def test_alias_match(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> None:
    add_artists(store, ("a1", "Puff Daddy", ()))
    result = enrich(store, fake, clock)
    cached = store.musicbrainz_lookup("a1")
    assert result.matched == 1 and cached is not None and cached["mb_name"] == "Diddy"
    assert mb_genres(store, "a1") == [("hip hop", 7), ("east coast hip hop", 2)]


def test_matched_artist_without_genres_is_still_matched(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> None:
    add_artists(store, ("a1", "Obscure Band", ()))
    result = enrich(store, fake, clock)
    assert (result.matched, result.genres_added) == (1, 0)
    assert (store.musicbrainz_lookup("a1") or {})["status"] == "matched"
    assert enrich(store, fake, clock).requests == 0


def test_one_request_per_second_across_search_and_lookup(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> None:
    add_artists(store, ("a1", "The Beatles", ()), ("a2", "Beyonce", ()), ("a3", "Nobody At All", ()))
    result = enrich(store, fake, clock)
    assert result.requests == 5 == len(fake.request_times)  # 3 searches, 2 lookups
    assert sum(clock.sleeps) >= (result.requests - 1) * 1.0
    gaps = [b - a for a, b in itertools.pairwise(fake.request_times)]
    assert min(gaps) >= 1.0


def test_rate_limit_with_the_real_clock(store: Store) -> None:
    add_artists(store, ("a1", "The Beatles", ()), ("a2", "Beyonce", ()), ("a3", "AC/DC", ()))
    with FakeMusicBrainz(search_tags=False) as fake:
        started = time.monotonic()
        result = enrich_musicbrainz(
            store, api=fake.api, min_interval=0.2, retrying=Retrying("MusicBrainz", policy=RetryPolicy(timeout=5))
        )
        elapsed = time.monotonic() - started
        times = list(fake.request_times)
    assert result.requests == 6 == len(times)
    # Waits can only run long, never short: six requests 0.2 s apart take at least 1 s on the
    # client's own clock. (When the server thread sees each request depends on load, so gaps
    # measured there, or an upper bound, would be timing assertions; the fake-clock test above
    # checks every gap exactly.)
    assert elapsed >= 1.0


def test_user_agent_is_sent_with_the_contact(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> None:
    add_artists(store, ("a1", "The Beatles", ()))
    enrich(store, fake, clock, contact="me@example.org")
    assert fake.user_agents == [f"genremap/{__version__} ( me@example.org )"] * 2
    assert fake.statuses[403] == 0  # the fake turns away clients without one (tests/test_fake_musicbrainz.py)


def test_503_with_retry_after_waits_exactly_that_long(store: Store, clock: FakeClock) -> None:
    add_artists(store, ("a1", "The Beatles", ()))
    with FakeMusicBrainz(faults={("search", 1): "503-retry-after:5"}, timer=clock.monotonic, search_tags=False) as fake:
        result = enrich(store, fake, clock)
        times = list(fake.request_times)
    assert result.matched == 1
    assert clock.sleeps[0] == 5.0
    assert times[1] - times[0] == 5.0
    assert result.stats.throttled[SEARCH_ENDPOINT] == 1 and result.stats.retries[SEARCH_ENDPOINT] == 1


def test_503_without_retry_after_backs_off_and_retries(store: Store, clock: FakeClock) -> None:
    add_artists(store, ("a1", "The Beatles", ()))
    waits: list[tuple[str, float, str]] = []
    retrying = retrying_for(clock)
    retrying.on_wait = lambda endpoint, seconds, why: waits.append((endpoint, seconds, why))
    with FakeMusicBrainz(
        faults={("lookup", 1): "503", ("lookup", 2): "503"}, timer=clock.monotonic, search_tags=False
    ) as fake:
        result = enrich(store, fake, clock, retrying=retrying)
        assert fake.requests == {"search": 1, "lookup": 3}
    assert result.matched == 1 and result.requests == 4
    assert [(e, w) for e, _, w in waits] == [(LOOKUP_ENDPOINT, "http 503")] * 2
    assert 0 < waits[0][1] <= 0.5 <= waits[1][1] <= 1.0  # exponential backoff with jitter
    assert result.stats.errors["http 503"] == 2 and result.stats.throttled[LOOKUP_ENDPOINT] == 0


def test_retry_after_beyond_max_wait_stops_with_nothing_half_written(store: Store, clock: FakeClock) -> None:
    add_artists(store, ("a1", "Beyonce", ()), ("a2", "The Beatles", ()))
    with FakeMusicBrainz(
        faults={("lookup", 2): "503-retry-after:3600"}, timer=clock.monotonic, search_tags=False
    ) as fake:
        with pytest.raises(TooLongToWait) as raised:
            enrich(store, fake, clock, retrying=retrying_for(clock, max_wait=60))
        assert raised.value.exit_code == 3
        assert fake.requests == {"search": 2, "lookup": 2}
    assert (store.musicbrainz_lookup("a1") or {})["status"] == "matched"
    assert store.musicbrainz_lookup("a2") is None and mb_genres(store, "a2") == []
    assert store.artists_for_musicbrainz() == [("a2", "The Beatles")]


def test_a_server_that_always_says_wait_is_given_up_with_nothing_half_written(store: Store, clock: FakeClock) -> None:
    add_artists(store, ("a1", "Beyonce", ()), ("a2", "The Beatles", ()))
    busy = {("lookup", n): "503-retry-after:5" for n in range(2, 200)}  # every lookup after the first
    clock.max_sleeps = 200  # a client that waits forever fails here instead of hanging
    with FakeMusicBrainz(faults=busy, timer=clock.monotonic, search_tags=False) as fake:
        with pytest.raises(GaveUp, match=r"MusicBrainz musicbrainz\.lookup: asked to wait 13 times") as raised:
            enrich(store, fake, clock)
        assert raised.value.exit_code == 1 and "run the same command again later" in raised.value.message
        assert fake.requests == {"search": 2, "lookup": 14}
    assert [s for s in clock.sleeps if s == 5.0] == [5.0] * 12
    assert (store.musicbrainz_lookup("a1") or {})["status"] == "matched"
    assert store.musicbrainz_lookup("a2") is None and mb_genres(store, "a2") == []
    assert store.artists_for_musicbrainz() == [("a2", "The Beatles")]


def test_cli_plain_http_mb_api_is_refused_before_any_request(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        add_artists(store, ("a1", "Beyonce", ()))
    with FakeMusicBrainz(timer=clock.monotonic, search_tags=False) as fake:
        plain = fake.api.replace("127.0.0.1", "musicbrainz.example.invalid")
        result = CliRunner().invoke(app, ["enrich", "--db", str(db), "--mb-api", plain], env={"COLUMNS": "400"})
        assert fake.total_requests == 0
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --mb-api: https is required, not plain http to musicbrainz.example.invalid "
        "(plain http only to a loopback host: 127.0.0.0/8, ::1, localhost)"
    )
    with Store.open(db) as store:
        assert store.artists_for_musicbrainz() == [("a1", "Beyonce")]


@pytest.mark.parametrize(
    ("fault", "kind"),
    [(("lookup", 1), "malformed"), (("search", 1), "drop"), (("search", 1), "slow"), (("search", 1), "500")],
)
def test_transient_failures_are_retried(store: Store, clock: FakeClock, fault: tuple[str, int], kind: str) -> None:
    add_artists(store, ("a1", "The Beatles", ()))
    with FakeMusicBrainz(faults={fault: kind}, timer=clock.monotonic, search_tags=False, slow_seconds=1.0) as fake:
        result = enrich(store, fake, clock, retrying=retrying_for(clock, timeout=0.3))
        assert fake.requests[fault[0]] == 2
    assert result.matched == 1 and result.requests == 3
    assert mb_genres(store, "a1")[0] == ("rock", 30)
    expected = {"malformed": "malformed", "drop": "connection", "slow": "timeout", "500": "http 500"}[kind]
    assert result.stats.errors == {expected: 1}


def test_a_client_error_records_nothing_and_stops(store: Store, clock: FakeClock) -> None:
    add_artists(store, ("a1", "Beyonce", ()), ("a2", "The Beatles", ()))
    with FakeMusicBrainz(faults={("lookup", 2): "404"}, timer=clock.monotonic, search_tags=False) as fake:
        with pytest.raises(GenremapError, match=r"HTTP 404.*'The Beatles'"):
            enrich(store, fake, clock)
        assert fake.requests == {"search": 2, "lookup": 2}  # never retried
    assert store.musicbrainz_lookup("a1") is not None
    assert store.musicbrainz_lookup("a2") is None


def test_second_run_sends_no_request(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> None:
    add_artists(store, ("a1", "The Beatles", ()), ("a2", "Nobody At All", ()), ("a3", "Zzyzx Qwerty", None))
    first = enrich(store, fake, clock)
    assert (first.matched, first.no_match, first.skipped_cached) == (1, 2, 0)
    sent = fake.total_requests
    second = enrich(store, fake, clock)
    assert fake.total_requests == sent
    assert (second.looked_up, second.requests, second.skipped_cached) == (0, 0, 3)


def test_only_artists_without_spotify_genres_are_searched(
    store: Store, fake: FakeMusicBrainz, clock: FakeClock
) -> None:
    add_artists(
        store,
        ("a1", "The Beatles", ("british invasion", "rock")),  # Spotify has genres: never asked
        ("a2", "Beyonce", ()),  # Spotify answered []
        ("a3", "AC/DC", None),  # Spotify never asked
    )
    result = enrich(store, fake, clock)
    assert result.looked_up == 2
    assert all("Beatles" not in q for q in fake.queries)
    assert [parse_query(q)[0][1] for q in fake.queries] == ["Beyonce", "AC/DC"]
    assert store.musicbrainz_lookup("a1") is None


def test_limit_leaves_the_rest_pending(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> None:
    add_artists(store, ("a1", "The Beatles", ()), ("a2", "Beyonce", ()), ("a3", "AC/DC", ()))
    result = enrich(store, fake, clock, limit=1)
    assert (result.looked_up, result.pending) == (1, 2)
    assert enrich(store, fake, clock, limit=0).requests == 0
    with pytest.raises(UsageError):
        enrich(store, fake, clock, limit=-1)
    with pytest.raises(UsageError):
        enrich(store, fake, clock, threshold=101)


def test_interrupted_run_resumes_without_requerying(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> None:
    add_artists(store, ("a1", "The Beatles", ()), ("a2", "Beyonce", ()), ("a3", "AC/DC", ()), ("a4", "Nobody", ()))
    progress: list[tuple[int, int]] = []

    def stop_after_two(done: int, total: int) -> None:
        progress.append((done, total))
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        enrich(store, fake, clock, on_artist=stop_after_two)
    assert progress == [(0, 4), (1, 4), (2, 4)]
    assert [parse_query(q)[0][1] for q in fake.queries] == ["The Beatles", "Beyonce"]
    result = enrich(store, fake, clock)
    assert result.looked_up == 2 and result.skipped_cached == 2
    assert [parse_query(q)[0][1] for q in fake.queries] == ["The Beatles", "Beyonce", "AC/DC", "Nobody"]


def test_lucene_special_characters_reach_the_service_escaped(
    store: Store, fake: FakeMusicBrainz, clock: FakeClock
) -> None:
    names = ["AC/DC", "Sunn O)))", "!!!", 'The "Weird" One', "What? (Yes!) [No] {Maybe} ^~*:+-&|\\"]
    add_artists(store, *((f"a{i}", name, ()) for i, name in enumerate(names)))
    result = enrich(store, fake, clock)
    assert fake.statuses[400] == 0 and result.looked_up == len(names)
    assert fake.queries == [search_query(name) for name in names]
    assert fake.queries[0] == 'artist:"AC\\/DC" OR alias:"AC\\/DC"'
    assert [parse_query(q)[0][1] for q in fake.queries] == names


def test_blank_name_is_no_match_without_a_request(store: Store, fake: FakeMusicBrainz, clock: FakeClock) -> None:
    add_artists(store, ("a1", "  ", ()))
    result = enrich(store, fake, clock)
    assert (result.no_match, result.requests) == (1, 0)


def test_labels_use_musicbrainz_genres_where_spotify_has_none(
    tmp_path: Path, test_rules_dir: Path, clock: FakeClock
) -> None:
    ruleset = load_rules(test_rules_dir)
    catalog = dict(
        [
            entry("Coltrane Quartet", [("hard bop", 4), ("jazz", 12)]),
            entry("Spotify Rockers", [("jazz", 50)]),
        ]
    )
    with Store.open(tmp_path / "x.db") as store, FakeMusicBrainz(catalog, timer=clock.monotonic) as fake:
        store.upsert_artists(
            [
                ArtistRecord("a1", "Coltrane Quartet", genres=()),
                ArtistRecord("a2", "Spotify Rockers", genres=("grunge",)),
            ],
            origin="test",
        )
        before = label_store(store, ruleset, genre_source="both").artists.set_index("artist_id")
        assert before.loc["a1", "status"] != "labelled" and pd.isna(before.loc["a1", "target"])
        result = enrich(store, fake, clock)
        assert result.matched == 1 and fake.queries == [search_query("Coltrane Quartet")]
        artists = label_store(store, ruleset, genre_source="both").artists.set_index("artist_id")
        assert (artists.loc["a1", "target"], artists.loc["a1", "genre_source"]) == ("jazz", "musicbrainz")
        assert artists.loc["a1", "genre"] == "jazz"  # most votes first
        assert (artists.loc["a2", "target"], artists.loc["a2", "genre_source"]) == ("rock", "spotify")
        spotify_only = label_store(store, ruleset, genre_source="spotify").artists.set_index("artist_id")
        assert spotify_only.loc["a1", "status"] != "labelled"
