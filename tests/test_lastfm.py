"""Last.fm enrichment against a loopback fake: tags and weights, caching, rate limit, errors, the key."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.clock import FakeClock
from fakes.lastfm import GOOD_KEY, SUSPENDED_KEY, FakeLastfm
from typer.testing import CliRunner

from genremap import __version__
from genremap.cli import app
from genremap.collectors.lastfm import (
    DEFAULT_LASTFM_API,
    ENDPOINT,
    enrich_lastfm,
    lastfm_client,
    parse_top_tags,
)
from genremap.collectors.musicbrainz import EnrichResult
from genremap.errors import GenremapError, UsageError
from genremap.http import GaveUp, Retrying, RetryPolicy
from genremap.store import ArtistRecord, Store

ARTISTS = [("a1", "Radiohead"), ("a2", "amy winehouse"), ("a3", "Daft Punk"), ("a4", "Nobody Knows Them")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeLastfm]:
    with FakeLastfm(timer=clock.monotonic) as server:
        yield server


def retrying_for(clock: Any, **policy: Any) -> Retrying:
    policy.setdefault("seed", 7)
    policy.setdefault("timeout", 5.0)
    return Retrying("Last.fm", policy=RetryPolicy(**policy), clock=clock)


def make_store(path: Path, artists: list[tuple[str, str]] = ARTISTS) -> Path:
    with Store.open(path) as store:
        store.upsert_artists([ArtistRecord(i, n, genres=()) for i, n in artists], origin="test")
    return path


def enrich(store: Store, fake: FakeLastfm, clock: Any, key: str = GOOD_KEY, **kw: Any) -> EnrichResult:
    return enrich_lastfm(store, key, api=fake.api, retrying=kw.pop("retrying", None) or retrying_for(clock), **kw)


def lastfm_genres(store: Store, artist_id: str) -> list[tuple[str, int | None]]:
    rows = store.conn.execute(
        """SELECT n.name, g.votes FROM artist_genres g JOIN artists a USING (artist_key)
           JOIN genres n USING (genre_key) WHERE a.artist_id = ? AND g.source = 'lastfm' ORDER BY g.position""",
        (artist_id,),
    ).fetchall()
    return [(str(n), v) for n, v in rows]


# --- tags, weights, what is asked -------------------------------------------------------------


def test_tags_at_or_above_min_weight_become_lastfm_genres_with_their_weights(
    tmp_path: Path, fake: FakeLastfm, clock: FakeClock
) -> None:
    with Store.open(make_store(tmp_path / "s.db")) as store:
        result = enrich(store, fake, clock)
        assert lastfm_genres(store, "a1") == [
            ("alternative", 100),
            ("alternative rock", 89),
            ("rock", 72),
            ("seen live", 55),
            ("british", 34),
            ("electronic", 33),
        ]  # `90s` (9) and `favorites` (4) weigh less than 10
        # autocorrect=1: "amy winehouse" is Last.fm's "Amy Winehouse"
        assert lastfm_genres(store, "a2") == [("soul", 100), ("jazz", 61), ("female vocalists", 52), ("british", 20)]
        assert lastfm_genres(store, "a4") == []
        sources = dict(
            store.conn.execute(
                "SELECT a.artist_id, s.origin FROM artist_genre_sources s JOIN artists a USING (artist_key) "
                "WHERE s.source = 'lastfm'"
            ).fetchall()
        )
        assert store.lastfm_answer("a4") == {
            "status": "no match",
            "fetched_at": store.lastfm_answer("a4")["fetched_at"],
            "tags": [],
        }
        assert store.lastfm_answer("a1")["status"] == "tagged"
    assert sources == {"a1": "lastfm", "a2": "lastfm", "a3": "lastfm", "a4": "lastfm:no match"}
    assert (result.looked_up, result.matched, result.no_match, result.requests) == (4, 3, 1, 4)
    assert result.genres_added == 6 + 4 + 4
    for params in fake.params:
        assert params["method"].lower() == "artist.gettoptags"
        assert (params["autocorrect"], params["format"], params["api_key"]) == ("1", "json", GOOD_KEY)
    assert all(agent.startswith(f"genremap/{__version__} ( ") for agent in fake.agents)


def test_min_weight_is_a_threshold_and_is_checked(tmp_path: Path, fake: FakeLastfm, clock: FakeClock) -> None:
    with Store.open(make_store(tmp_path / "s.db", ARTISTS[:1])) as store:
        enrich(store, fake, clock, min_weight=72)
        assert lastfm_genres(store, "a1") == [("alternative", 100), ("alternative rock", 89), ("rock", 72)]
        for bad in (-1, 101):
            with pytest.raises(UsageError, match="--min-weight"):
                enrich(store, fake, clock, min_weight=bad)
    assert fake.requests == 1


def test_only_artists_without_genres_are_asked_and_all_asks_again(
    tmp_path: Path, fake: FakeLastfm, clock: FakeClock
) -> None:
    with Store.open(make_store(tmp_path / "s.db")) as store:
        store.upsert_artists([ArtistRecord("a3", "Daft Punk", genres=("french house",))], origin="spotify")
        store.upsert_artists(
            [ArtistRecord("a2", "amy winehouse", genres=("soul",), genre_source="musicbrainz", votes=(3,))], origin="mb"
        )
        first = enrich(store, fake, clock)
        assert sorted(p["artist"] for p in fake.params) == ["Nobody Knows Them", "Radiohead"]
        assert lastfm_genres(store, "a3") == [] and lastfm_genres(store, "a2") == []

        second = enrich(store, fake, clock)  # every answer cached, "not found" included
        assert fake.requests == 2
        assert (second.looked_up, second.requests, second.skipped_cached) == (0, 0, 2)

        again = enrich(store, fake, clock, refresh=True)
        assert fake.requests == 4 and again.looked_up == 2
    assert first.looked_up == 2


def test_limit_leaves_the_rest_pending(tmp_path: Path, fake: FakeLastfm, clock: FakeClock) -> None:
    with Store.open(make_store(tmp_path / "s.db")) as store:
        result = enrich(store, fake, clock, limit=1)
        assert (result.looked_up, result.pending) == (1, 3)
        assert enrich(store, fake, clock).looked_up == 3
    assert fake.requests == 4


@pytest.mark.parametrize("status", [404, 200])
def test_error_6_is_cached_as_no_match_and_never_erases_known_tags(
    tmp_path: Path, clock: FakeClock, status: int
) -> None:
    with (
        FakeLastfm(timer=clock.monotonic, not_found_status=status) as fake,
        Store.open(make_store(tmp_path / "s.db", ARTISTS[:1])) as store,
    ):
        enrich(store, fake, clock)
        known = lastfm_genres(store, "a1")
        assert known
        fake.catalog.pop("Radiohead")  # Last.fm no longer finds it
        result = enrich(store, fake, clock, refresh=True)
        assert result.no_match == 1
        assert lastfm_genres(store, "a1") == known
        assert store.lastfm_answer("a1")["status"] == "tagged"
        assert enrich(store, fake, clock).requests == 0
    assert fake.requests == 2


def test_a_tag_list_of_one_object_no_tags_and_odd_counts() -> None:
    one = {"toptags": {"tag": {"name": "Rock", "count": "87", "url": "u"}, "@attr": {"artist": "X"}}}
    assert parse_top_tags(one, 10) == ("X", [("Rock", 87)])
    assert parse_top_tags({"toptags": {"#text": "\n", "@attr": {"artist": "X"}}}, 10) == ("X", [])
    odd = {
        "toptags": {
            "tag": [
                {"name": "a", "count": 1e308},
                {"name": " b  c ", "count": -3},
                {"name": "d"},
                {"name": 5, "count": 50},
                {"name": "e", "count": True},
                {"name": "a", "count": 20},
            ]
        }
    }
    assert parse_top_tags(odd, 0) == ("", [("a", 100), ("b c", 0)])
    with pytest.raises(GenremapError, match="toptags"):
        parse_top_tags({"results": []}, 10)


# --- Last.fm's limits and errors ----------------------------------------------------------------


def test_at_most_five_requests_per_second(tmp_path: Path, fake: FakeLastfm, clock: FakeClock) -> None:
    many = [(f"x{i}", f"Unknown {i}") for i in range(8)]
    with Store.open(make_store(tmp_path / "s.db", many)) as store:
        enrich(store, fake, clock)
    gaps = [b - a for a, b in itertools.pairwise(fake.request_times)]
    assert len(gaps) == 7 and min(gaps) >= 0.2 - 1e-9
    assert lastfm_client(DEFAULT_LASTFM_API, min_interval=0.01).limiter.interval == 0.2
    assert lastfm_client(fake.api, min_interval=0.01).limiter.interval == 0.01


@pytest.mark.parametrize(
    "fault", ["error:29", "error:29-as-text", "error:11", "error:16", "503", "429", "malformed", "drop"]
)
def test_rate_limit_temporary_errors_and_bad_answers_are_retried(tmp_path: Path, clock: FakeClock, fault: str) -> None:
    with (
        FakeLastfm(timer=clock.monotonic, faults={1: fault}) as fake,
        Store.open(make_store(tmp_path / "s.db", ARTISTS[:1])) as store,
    ):
        result = enrich(store, fake, clock)
        assert lastfm_genres(store, "a1")[0] == ("alternative", 100)
    assert fake.requests == 2
    assert result.stats.retries[ENDPOINT] == 1
    assert clock.sleeps and max(clock.sleeps) > 0.2  # a backoff, beyond the rate limiter's wait


def test_error_29_every_time_gives_up_with_progress_saved(tmp_path: Path, clock: FakeClock) -> None:
    faults = {n: "error:29" for n in range(2, 50)}
    with (
        FakeLastfm(timer=clock.monotonic, faults=faults) as fake,
        Store.open(make_store(tmp_path / "s.db", ARTISTS[:2])) as store,
    ):
        with pytest.raises(GaveUp, match="run the same command again later"):
            enrich(store, fake, clock)
        assert lastfm_genres(store, "a1") and store.lastfm_answer("a2") is None
    assert fake.requests == 1 + RetryPolicy().max_attempts


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("error:8", "error 8"),
        ("not-toptags", "toptags"),
        ("html-403", "HTTP 403"),
        ("echo-url", "error 99"),
        ("drop", "failed 6 times"),
    ],
)
def test_other_failures_are_one_error_without_the_key(
    tmp_path: Path, clock: FakeClock, fault: str, message: str
) -> None:
    faults = {n: fault for n in range(1, 20)}
    with (
        FakeLastfm(timer=clock.monotonic, faults=faults) as fake,
        Store.open(make_store(tmp_path / "s.db", ARTISTS[:1])) as store,
    ):
        with pytest.raises(GenremapError, match=message) as caught:
            enrich(store, fake, clock)
        assert store.lastfm_answer("a1") is None
    assert GOOD_KEY not in str(caught.value)


def test_debug_logs_of_the_http_stack_never_show_the_key(
    tmp_path: Path, fake: FakeLastfm, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs every request line, query included, at DEBUG: a program that turns DEBUG
    logging on around genremap still never sees the key."""
    caplog.set_level(logging.DEBUG)
    with Store.open(make_store(tmp_path / "s.db", ARTISTS[:2])) as store:
        enrich(store, fake, clock)
    request_lines = [r.getMessage() for r in caplog.records if "/2.0/?" in r.getMessage()]
    assert len(request_lines) == 2 and all("api_key=***" in line for line in request_lines)
    assert GOOD_KEY not in caplog.text
    assert not logging.getLogger("urllib3.connectionpool").filters  # nothing left behind


@pytest.mark.parametrize(("key", "code"), [("wrong", 10), (SUSPENDED_KEY, 26)])
def test_a_rejected_key_is_a_usage_error(
    tmp_path: Path, fake: FakeLastfm, clock: FakeClock, key: str, code: int
) -> None:
    with Store.open(make_store(tmp_path / "s.db")) as store:
        with pytest.raises(UsageError, match=f"error {code}") as caught:
            enrich(store, fake, clock, key=key)
        assert store.lastfm_answer("a1") is None
    assert fake.requests == 1 and key not in str(caught.value)


# --- the CLI: options, the key never shown or stored -----------------------------------------------


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genremap", *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=60,
    )


def store_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))


@pytest.fixture
def base_env() -> dict[str, str]:
    """The environment without any LASTFM_API_KEY of the machine's."""
    return {k: v for k, v in os.environ.items() if k != "LASTFM_API_KEY"}


def test_cli_enrich_lastfm_keeps_the_key_out_of_output_and_store(tmp_path: Path, base_env: dict[str, str]) -> None:
    db = make_store(tmp_path / "s.db")
    env = {**base_env, "LASTFM_API_KEY": GOOD_KEY}
    with FakeLastfm() as fake:
        first = run(["enrich", "--source", "lastfm", "--lastfm-api", fake.api, "--db", str(db)], env)
        second = run(["enrich", "--source", "lastfm", "--lastfm-api", fake.api, "--db", str(db), "-f", "json"], env)
    assert first.returncode == 0, first.stderr
    assert "Last.fm: 4 artists looked up, 3 matched (14 genres stored), 1 without a match" in first.stdout
    assert second.returncode == 0 and '"requests": 0' in second.stdout
    assert fake.requests == 4
    for output in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert GOOD_KEY not in output
    assert GOOD_KEY.encode() not in store_bytes(db)


@pytest.mark.parametrize("fault", ["echo-url", "html-403"])
def test_cli_errors_never_show_the_key(tmp_path: Path, base_env: dict[str, str], fault: str) -> None:
    db = make_store(tmp_path / "s.db")
    env = {**base_env, "LASTFM_API_KEY": GOOD_KEY}
    faults = {n: fault for n in range(1, 20)}
    with FakeLastfm(faults=faults) as fake:
        result = run(["enrich", "--source", "lastfm", "--lastfm-api", fake.api, "--db", str(db)], env)
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert GOOD_KEY not in result.stdout + result.stderr
    assert GOOD_KEY.encode() not in store_bytes(db)


def test_cli_missing_or_rejected_key_is_one_line_exit_2(tmp_path: Path) -> None:
    db = make_store(tmp_path / "s.db")
    runner = CliRunner()
    with FakeLastfm() as fake:
        args = ["enrich", "--source", "lastfm", "--lastfm-api", fake.api, "--db", str(db)]
        missing = runner.invoke(app, args, env={"LASTFM_API_KEY": ""})
        wrong = runner.invoke(app, args, env={"LASTFM_API_KEY": SUSPENDED_KEY})
    assert fake.requests == 1  # the missing key sent nothing
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1 and "LASTFM_API_KEY" in missing.stderr
    assert wrong.exit_code == 2 and wrong.stderr.count("\n") == 1 and "error 26" in wrong.stderr
    assert SUSPENDED_KEY not in wrong.output
    with Store.open(db) as store:
        assert store.lastfm_answer("a1") is None


def test_cli_env_file_and_https_check_before_the_key(tmp_path: Path) -> None:
    db = make_store(tmp_path / "s.db", ARTISTS[:1])
    env_file = tmp_path / "lastfm.env"
    env_file.write_text(f"export LASTFM_API_KEY='{GOOD_KEY}'\n")
    runner = CliRunner()
    with FakeLastfm() as fake:
        ok = runner.invoke(
            app,
            ["enrich", "--source", "lastfm", "--lastfm-api", fake.api, "--env-file", str(env_file), "--db", str(db)],
        )
    assert ok.exit_code == 0, ok.output
    assert fake.requests == 1 and fake.params[0]["api_key"] == GOOD_KEY and GOOD_KEY not in ok.output
    plain = runner.invoke(
        app, ["enrich", "--source", "lastfm", "--lastfm-api", "http://example.org/2.0/", "--db", str(db)]
    )
    assert plain.exit_code == 2 and "https is required" in plain.output and "LASTFM_API_KEY" not in plain.output
    for args, expected in (
        (["--source", "spotify"], "expected musicbrainz or lastfm"),
        (["--source", "lastfm", "--min-weight", "101"], "--min-weight 101"),
        (["--source", "lastfm", "--dump", str(env_file)], "--dump"),
    ):
        bad = runner.invoke(app, ["enrich", *args, "--db", str(db)], env={"LASTFM_API_KEY": GOOD_KEY})
        assert bad.exit_code == 2 and expected in bad.output, bad.output
