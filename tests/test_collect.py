"""`collect` against a loopback fake of the Spotify Web API: modes, minimal requests, faults,
Retry-After and its bounds, deadlines, resumability after SIGKILL, credentials, https only."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.clock import FakeClock
from fakes.spotify import Catalog, FakeSpotify, Faults
from typer.testing import CliRunner

from genremap.cli import app
from genremap.collectors.spotify import CollectConfig, SpotifyCollector, load_collect_config, read_credentials
from genremap.errors import UsageError
from genremap.http import GaveUp, Retrying, RetryPolicy, TooLongToWait
from genremap.store import Store

TERMS = ["rock", "jazz", "Disco"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(n_artists=120, seed=1)


@pytest.fixture
def fake(catalog: Catalog) -> Iterator[FakeSpotify]:
    with FakeSpotify(catalog) as server:
        yield server


def collect(
    fake: FakeSpotify,
    db: Path,
    terms: list[str] = TERMS,
    clock: FakeClock | None = None,
    policy: RetryPolicy | None = None,
    **config: Any,
) -> tuple[SpotifyCollector, Retrying]:
    retrying = Retrying("Spotify", policy or RetryPolicy(seed=1), clock=clock or FakeClock())
    with Store.open(db) as store:
        collector = SpotifyCollector(
            store,
            fake.client_id,
            fake.client_secret,
            CollectConfig(terms=list(terms), **config),
            retrying,
            api_base=fake.api_base,
            auth_url=fake.auth_url,
        )
        collector.run()
    return collector, retrying


def snapshot(db: Path) -> dict[str, Any]:
    """Everything a collection writes that must not depend on faults or interruptions."""
    with Store.open(db) as store:
        conn = store.conn
        tracks = conn.execute(
            "SELECT t.track_id, t.name, a.artist_id, t.album, t.duration_ms, t.preview_url, t.isrc, t.dedupe_key "
            "FROM tracks t JOIN artists a USING (artist_key) ORDER BY t.track_id"
        ).fetchall()
        return {
            # preview URLs point at whichever fake server answered: compare them without host and port
            "tracks": [(*t[:5], re.sub(r"^http://[^/]+", "", t[5] or ""), *t[6:]) for t in tracks],
            "track_artists": conn.execute("SELECT * FROM track_artists ORDER BY track_id, position").fetchall(),
            "genres": conn.execute(
                "SELECT a.artist_id, g.source, g.position, n.name FROM artist_genres g "
                "JOIN artists a USING (artist_key) JOIN genres n USING (genre_key) ORDER BY 1, 2, 3"
            ).fetchall(),
            "consulted": conn.execute(
                "SELECT a.artist_id, s.source FROM artist_genre_sources s JOIN artists a USING (artist_key) ORDER BY 1"
            ).fetchall(),
            "artists": conn.execute("SELECT artist_id, name FROM artists ORDER BY artist_id").fetchall(),
            "progress": conn.execute(
                "SELECT term, next_offset, total, done FROM search_progress ORDER BY term"
            ).fetchall(),
        }


def pages(catalog: Catalog, terms: list[str], limit: int) -> int:
    return sum(math.ceil(min(len(catalog.search(t)), 1000) / limit) for t in terms)


def primary_artists(catalog: Catalog, terms: list[str]) -> set[str]:
    return {catalog.primary_artist(t)["id"] for t in catalog.expected(terms)}


def test_development_mode_collects_everything_with_the_fewest_requests(
    fake: FakeSpotify, catalog: Catalog, tmp_path: Path
) -> None:
    collector, _ = collect(fake, tmp_path / "s.db")
    state = snapshot(tmp_path / "s.db")
    assert {t[0] for t in state["tracks"]} == catalog.expected(TERMS)
    artists = primary_artists(catalog, TERMS)
    genres: dict[str, list[str]] = {}
    for artist_id, _, _, genre in state["genres"]:
        genres.setdefault(artist_id, []).append(genre)
    assert genres == {a: catalog.artists[a]["genres"] for a in artists if catalog.artists[a]["genres"]}
    assert {a for a, _ in state["consulted"]} == artists  # artists with [] are cached too
    # one probe of the 50-result page (400 Invalid limit), then pages of 10; one request per artist
    assert fake.requests["search"] == pages(catalog, TERMS, 10) + 1
    assert fake.requests["artist"] == len(artists)
    assert fake.requests["artists"] == 0 and fake.requests["token"] == 1
    assert "development mode" in collector.summary.notes[0]
    with Store.open(tmp_path / "s.db") as store:
        assert store.get_state("spotify.search_limit") == "10"
        assert store.request_counts()["search"]["requests"] == fake.requests["search"]
    assert all(t[6] is None for t in state["tracks"])  # development mode: no ISRCs


def test_extended_mode_uses_pages_of_50_and_batch_artists(catalog: Catalog, tmp_path: Path) -> None:
    with FakeSpotify(catalog, mode="extended") as fake:
        collect(fake, tmp_path / "s.db")
        requests = dict(fake.requests)
    artists = primary_artists(catalog, TERMS)
    assert requests["search"] == pages(catalog, TERMS, 50)
    assert requests["artists"] == math.ceil(len(artists) / 50) and requests.get("artist", 0) == 0
    state = snapshot(tmp_path / "s.db")
    assert {t[0] for t in state["tracks"]} == catalog.expected(TERMS)
    assert any(t[6] for t in state["tracks"])  # ISRCs kept where the API gives them


def test_a_second_run_sends_no_request(fake: FakeSpotify, tmp_path: Path) -> None:
    collect(fake, tmp_path / "s.db")
    before = dict(fake.requests)
    collect(fake, tmp_path / "s.db")
    assert dict(fake.requests) == before


def test_a_resumed_run_does_not_probe_the_page_size_again(fake: FakeSpotify, catalog: Catalog, tmp_path: Path) -> None:
    collect(fake, tmp_path / "s.db", terms=["rock"])
    collect(fake, tmp_path / "s.db", terms=["rock", "jazz"])
    assert fake.requests["search"] == pages(catalog, ["rock", "jazz"], 10) + 1


@pytest.mark.parametrize("mode", ["development", "extended"])
def test_faults_do_not_change_the_result(catalog: Catalog, tmp_path: Path, mode: str) -> None:
    with FakeSpotify(catalog, mode=mode) as clean:
        collect(clean, tmp_path / "clean.db")
    faults = Faults(rate_429=0.2, retry_after=3, rate_5xx=0.2, rate_malformed=0.2, rate_drop=0.2, seed=7)
    clock = FakeClock()
    with FakeSpotify(catalog, mode=mode, faults=faults) as faulty:
        _, retrying = collect(faulty, tmp_path / "faulty.db", clock=clock, policy=RetryPolicy(seed=1, max_attempts=25))
        assert faulty.errors == []
    assert snapshot(tmp_path / "faulty.db") == snapshot(tmp_path / "clean.db")
    assert retrying.stats.throttled and 3.0 in clock.sleeps  # 429s waited exactly Retry-After
    assert sum(retrying.stats.retries.values()) > 5


def test_slow_answers_time_out_and_are_retried(catalog: Catalog, tmp_path: Path) -> None:
    with FakeSpotify(catalog) as clean:
        collect(clean, tmp_path / "clean.db", terms=["jazz"])
    faults = Faults(script={("search", 2): "slow", ("artist", 3): "slow"}, slow_seconds=0.6)
    with FakeSpotify(catalog, faults=faults) as slow:
        _, retrying = collect(slow, tmp_path / "slow.db", terms=["jazz"], policy=RetryPolicy(timeout=0.2, seed=1))
    assert retrying.stats.errors["timeout"] == 2
    assert snapshot(tmp_path / "slow.db") == snapshot(tmp_path / "clean.db")


def test_retry_after_beyond_max_wait_stops_with_progress_saved(catalog: Catalog, tmp_path: Path) -> None:
    faults = Faults(script={("search", 4): "429"}, retry_after=7200)
    with FakeSpotify(catalog, faults=faults) as fake:
        clock = FakeClock()
        with pytest.raises(TooLongToWait, match=r"asks to wait 7,200 s .*run the same command again after"):
            collect(fake, tmp_path / "s.db", clock=clock, policy=RetryPolicy(max_wait=600))
        assert clock.sleeps == []  # never retried sooner than asked
        with Store.open(tmp_path / "s.db") as store:
            offset, _, done = store.search_checkpoint("rock", "")
        assert (offset, done) == (20, False)  # pages 1-2 of 10 committed (request 1 was the probe)
        collect(fake, tmp_path / "s.db")
    assert {t[0] for t in snapshot(tmp_path / "s.db")["tracks"]} == catalog.expected(TERMS)


def test_a_server_that_always_answers_429_is_given_up_with_progress_saved(catalog: Catalog, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    faults = Faults(rate_429=1.0, retry_after=5, endpoints=frozenset({"artist"}))  # searches answer, artists never
    with FakeSpotify(catalog, faults=faults) as fake:
        clock = FakeClock(max_sleeps=200)  # a client that waits forever fails here instead of hanging
        with pytest.raises(
            GaveUp, match=r"Spotify artist: asked to wait 13 times \(last: http 429\); progress is saved"
        ):
            collect(fake, db, terms=["jazz"], clock=clock)
        assert fake.requests["artist"] == 13 and clock.sleeps == [5.0] * 12  # each wait honoured, 12 at most
    with Store.open(db) as store:
        assert store.search_checkpoint("jazz", "")[2] is True  # the search pages are kept
    assert snapshot(db)["consulted"] == []  # no artist half-written
    with FakeSpotify(catalog) as fake:
        collect(fake, db, terms=["jazz"])  # resumes with the artists
        assert fake.requests["search"] == 0
    with FakeSpotify(catalog) as fake:
        collect(fake, tmp_path / "clean.db", terms=["jazz"])
    assert snapshot(db) == snapshot(tmp_path / "clean.db")


def test_a_trickling_answer_is_cut_at_the_deadline_and_retried(catalog: Catalog, tmp_path: Path) -> None:
    """One byte every 2 s of fake time: the per-read timeout never fires, the 30 s deadline does."""
    with FakeSpotify(catalog) as clean:
        collect(clean, tmp_path / "clean.db", terms=["jazz"])
    clock = FakeClock()
    faults = Faults(script={("search", 2): "trickle", ("artist", 1): "trickle"})
    with FakeSpotify(catalog, faults=faults, advance=clock.advance) as fake:
        policy = RetryPolicy(seed=1, timeout=5.0, deadline=30.0)
        _, retrying = collect(fake, tmp_path / "s.db", terms=["jazz"], clock=clock, policy=policy)
    assert retrying.stats.errors["deadline"] == 2 and retrying.stats.errors["timeout"] == 0
    assert snapshot(tmp_path / "s.db") == snapshot(tmp_path / "clean.db")


def test_expired_token_is_fetched_again(catalog: Catalog, tmp_path: Path) -> None:
    with FakeSpotify(catalog, faults=Faults(script={("artist", 2): "401"})) as fake:
        collect(fake, tmp_path / "s.db", terms=["jazz"])
        assert fake.requests["token"] == 2
    assert {t[0] for t in snapshot(tmp_path / "s.db")["tracks"]} == catalog.expected(["jazz"])


def test_all_artists_fetches_featured_artists_too(catalog: Catalog, tmp_path: Path) -> None:
    with FakeSpotify(catalog) as fake:
        collect(fake, tmp_path / "s.db", all_artists=True)
    consulted = {a for a, _ in snapshot(tmp_path / "s.db")["consulted"]}
    everyone = {a["id"] for t in catalog.expected(TERMS) for a in catalog.tracks[t]["artists"]}
    assert consulted == everyone and len(everyone) > len(primary_artists(catalog, TERMS))


def test_audio_features_and_analysis(catalog: Catalog, tmp_path: Path) -> None:
    with FakeSpotify(catalog, mode="development") as dev:
        collector, _ = collect(dev, tmp_path / "dev.db", terms=["jazz"], audio_features=True, audio_analysis=True)
        assert (
            dev.requests["audio-features"] == 1 and dev.requests["audio-analysis"] == 1
        )  # detected once, then skipped
    assert sum("no access to audio features" in n for n in collector.summary.notes) == 1
    expected = catalog.expected(["jazz"])
    with FakeSpotify(catalog, mode="extended", missing_analysis={sorted(expected)[0]}) as ext:
        collect(ext, tmp_path / "ext.db", terms=["jazz"], audio_features=True, audio_analysis=True, analysis_segments=5)
        assert ext.requests["audio-features"] == math.ceil(len(expected) / 100)
        assert ext.requests["audio-analysis"] == len(expected)
    with Store.open(tmp_path / "ext.db") as store:
        statuses = dict(store.conn.execute("SELECT status, count(*) FROM audio_analysis GROUP BY status").fetchall())
        assert statuses == {"ok": len(expected) - 1, "missing": 1}
        segments, pitches = store.conn.execute(
            "SELECT segments, pitches FROM audio_analysis WHERE status='ok'"
        ).fetchone()
        assert segments <= 5 and len(__import__("json").loads(pitches)) == segments * 12
        assert store.conn.execute("SELECT count(*) FROM audio_features WHERE status = 'ok'").fetchone()[0] == len(
            expected
        )


# --- credentials and the command line ------------------------------------------------------------


def test_credentials_come_from_the_environment_or_an_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPOTIPY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SPOTIPY_CLIENT_SECRET", raising=False)
    with pytest.raises(UsageError, match="SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET"):
        read_credentials()
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", "from-env")
    with pytest.raises(UsageError, match="set SPOTIPY_CLIENT_SECRET"):
        read_credentials()
    env = tmp_path / ".env"
    env.write_text("# app\nexport SPOTIPY_CLIENT_ID='file-id'\nSPOTIPY_CLIENT_SECRET=\"file-secret\"\n")
    assert read_credentials(env) == ("file-id", "file-secret")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"terms: [rock]\nmarket: caf\xe9\n", ":2: not valid UTF-8"),
        (b"terms: [rock]\nfetch:\n  analysis_segments: lots\n", "fetch.analysis_segments must be an integer"),
        (b"terms: [rock]\nfetch:\n  all_artists: 'no'\n", "fetch.all_artists must be true or false"),
        (b"terms: [rock]\nmarket: NO\n", "'market' must be a country code in quotes"),
        (b"terms: [rock]\nresults_per_term: true\n", "results_per_term must be an integer"),
        (b"{1: 2, terms: [rock]}\n", "unknown key(s) 1 (allowed"),
        (b"terms: " + b"[" * 5000, "nested too deeply"),
        (b"terms: [rock\n", ":2:1: invalid YAML"),
    ],
)
def test_a_malformed_config_is_one_line_naming_the_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "collect.yaml"
    path.write_bytes(content)
    with pytest.raises(UsageError) as raised:
        load_collect_config(path)
    assert expected in raised.value.message and str(path) in raised.value.message
    assert "\n" not in raised.value.message and raised.value.exit_code == 2


def test_default_config_is_the_notebooks_terms_with_the_comma_fixed() -> None:
    config = load_collect_config(None)
    assert len(config.terms) == 33
    assert "Acoustic Blues" in config.terms and "Disco" in config.terms
    assert config.results_per_term == 1000


def _cli_env(fake: FakeSpotify, secret: str | None = None) -> dict[str, str]:
    return {
        "SPOTIPY_CLIENT_ID": fake.client_id,
        "SPOTIPY_CLIENT_SECRET": secret or fake.client_secret,
        "COLUMNS": "200",
    }


def _cli_args(fake: FakeSpotify, db: Path, *terms: str) -> list[str]:
    return [
        "collect", "--db", str(db), "--api-base", fake.api_base, "--auth-url", fake.auth_url,
        *[a for t in terms for a in ("--term", t)],
    ]  # fmt: skip


def test_cli_collect_status_and_a_secret_that_never_shows(fake: FakeSpotify, catalog: Catalog, tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "s.db"
    result = runner.invoke(app, _cli_args(fake, db, "jazz", "Disco"), env=_cli_env(fake))
    assert result.exit_code == 0, result.output
    assert "collected" in result.stdout
    status = runner.invoke(app, ["status", "--db", str(db), "--format", "json"])
    data = __import__("json").loads(status.stdout)
    assert isinstance(data["tracks"], int) and data["tracks"] == len(catalog.expected(["jazz", "Disco"]))
    assert isinstance(data["artists"], int) and isinstance(data["artists_with_genres"], int)
    assert data["artists_with_genres"] <= data["artists"]
    assert data["requests"]["search"] == fake.requests["search"]
    assert {t["term"] for t in data["terms"]} == {"jazz", "Disco"} and all(t["done"] for t in data["terms"])
    table = runner.invoke(app, ["status", "--db", str(db)], env={"COLUMNS": "200"})
    assert "jazz" in table.stdout and "search" in table.stdout
    build = runner.invoke(app, ["build", "--db", str(db), "--out", str(tmp_path / "ds"), "--allow-short"])
    assert build.exit_code in (0, 2)
    secret = fake.client_secret.encode()
    for path in [db, *(tmp_path / "ds").glob("*")] if (tmp_path / "ds").exists() else [db]:
        assert secret not in path.read_bytes()
    for path in tmp_path.glob("s.db*"):
        assert secret not in path.read_bytes()
    assert fake.client_secret not in result.output + status.output + table.output
    assert not (Path.cwd() / ".cache").exists()


@pytest.mark.parametrize("status", [400, 401])
def test_cli_rejected_credentials_exit_2_without_the_secret(catalog: Catalog, tmp_path: Path, status: int) -> None:
    with FakeSpotify(catalog, token_error_status=status) as fake:
        result = CliRunner().invoke(
            app, _cli_args(fake, tmp_path / "s.db", "jazz"), env=_cli_env(fake, "wrong-secret-123")
        )
    assert f"HTTP {status}" in result.output
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "SPOTIPY_CLIENT_ID" in lines[0] and "SPOTIPY_CLIENT_SECRET" in lines[0]
    assert "wrong-secret-123" not in result.output and "Traceback" not in result.output


def test_cli_missing_credentials_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTIPY_")}
    result = subprocess.run(
        [sys.executable, "-m", "genremap", "collect", "--term", "x", "--db", str(tmp_path / "s.db")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "SPOTIPY_CLIENT_ID" in result.stderr


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"SPOTIPY_CLIENT_ID=abc\nSPOTIPY_CLIENT_SECRET=s3cret-\xff-value\n", 2),  # not UTF-8
        (b"# app\nSPOTIPY_CLIENT_ID=abc\ns3cret-value-pasted-alone\n", 3),  # not KEY=VALUE
    ],
)
def test_cli_a_malformed_env_file_is_one_line_without_the_secret(
    fake: FakeSpotify, tmp_path: Path, content: bytes, line: int
) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_bytes(content)
    args = [*_cli_args(fake, tmp_path / "s.db", "jazz"), "--env-file", str(env_file)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert len(_lines(result.output)) == 1 and f"--env-file {env_file}:{line}: " in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output
    assert sum(fake.requests.values()) == 0


def test_cli_a_config_that_is_not_utf8_is_one_line(fake: FakeSpotify, tmp_path: Path) -> None:
    config = tmp_path / "collect.yaml"
    config.write_bytes(b"terms:\n  - caf\xe9\n")
    result = CliRunner().invoke(
        app, [*_cli_args(fake, tmp_path / "s.db"), "--config", str(config)], env={**_cli_env(fake), "COLUMNS": "400"}
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert _lines(result.output) == [f"error: collect config {config}:2: not valid UTF-8; save the file as UTF-8"]


@pytest.mark.parametrize("option", ["--auth-url", "--api-base"])
def test_cli_plain_http_off_loopback_is_refused_before_the_credentials_are_read(
    fake: FakeSpotify, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    db = tmp_path / "s.db"
    args = _cli_args(fake, db, "jazz")
    args[args.index(option) + 1] = "http://accounts.example.invalid/api/token"
    env = {**_cli_env(fake, "s3cret-value-123"), "COLUMNS": "400"}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2
    assert _lines(result.output) == [
        f"error: {option}: https is required, not plain http to accounts.example.invalid "
        "(plain http only to a loopback host: 127.0.0.0/8, ::1, localhost)"
    ]
    assert "s3cret" not in result.output
    # The refusal comes before the credentials are even looked for (none here, nor the --env-file).
    monkeypatch.delenv("SPOTIPY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SPOTIPY_CLIENT_SECRET", raising=False)
    missing = CliRunner().invoke(app, [*args, "--env-file", str(tmp_path / "none.env")], env={"COLUMNS": "400"})
    assert missing.exit_code == 2 and "https is required" in missing.output
    assert sum(fake.requests.values()) == 0 and not db.exists()


def test_cli_a_server_that_keeps_saying_wait_ends_like_other_give_ups(catalog: Catalog, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    faults = Faults(rate_429=1.0, retry_after=0, endpoints=frozenset({"search"}))  # "Retry-After: 0", forever
    with FakeSpotify(catalog, faults=faults) as fake:
        result = CliRunner().invoke(app, _cli_args(fake, db, "jazz"), env={**_cli_env(fake), "COLUMNS": "400"})
        assert fake.requests["search"] == 13
    assert result.exit_code == 1
    assert _lines(result.output)[-1] == (
        "error: Spotify search: asked to wait 13 times (last: http 429); "
        "progress is saved, run the same command again later"
    )
    with Store.open(db) as store:
        assert store.search_checkpoint("jazz", "")[::2] == (0, False)  # nothing half-written: resumable


def test_cli_max_wait_exits_non_zero_at_once(catalog: Catalog, tmp_path: Path) -> None:
    with FakeSpotify(catalog, faults=Faults(script={("search", 2): "429"}, retry_after=3600)) as fake:
        started = time.monotonic()
        result = CliRunner().invoke(
            app, [*_cli_args(fake, tmp_path / "s.db", "jazz"), "--max-wait", "60"], env=_cli_env(fake)
        )
        assert time.monotonic() - started < 10
    assert result.exit_code == 3
    assert (
        "asks to wait 3,600 s (more than --max-wait 60 s)" in result.output
        and "run the same command again" in result.output
    )


# --- kill -9 and resume ----------------------------------------------------------------------------


def _collect_process(fake: FakeSpotify, db: Path, terms: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **_cli_env(fake)}
    return subprocess.Popen(
        [sys.executable, "-m", "genremap", *_cli_args(fake, db, *terms)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_kill_9_at_random_points_then_resume_gives_the_same_store(catalog: Catalog, tmp_path: Path) -> None:
    terms = ["rock", "jazz"]
    with FakeSpotify(catalog) as fake:
        reference = tmp_path / "reference.db"
        collect(fake, reference, terms=terms)
        total_requests = sum(fake.requests.values())
    db = tmp_path / "killed.db"
    with FakeSpotify(catalog) as fake:
        for kill_after in (3, total_requests // 3, (2 * total_requests) // 3):
            process = _collect_process(fake, db, terms)
            deadline = time.monotonic() + 60
            while sum(fake.requests.values()) < kill_after and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert process.poll() is None, "the run ended on its own before the kill"
            process.send_signal(signal.SIGKILL)
            assert process.wait() == -signal.SIGKILL  # the kill landed
        assert snapshot(db) != snapshot(reference)  # and cut the work short: the finisher has something to do
        finisher = _collect_process(fake, db, terms)
        assert finisher.wait(timeout=120) == 0, finisher.stderr.read() if finisher.stderr else ""
        # a kill costs at most the requests in flight: committed pages and artists are never fetched again
        assert sum(fake.requests.values()) <= total_requests + 4 * 3
    assert snapshot(db) == snapshot(reference)


def test_build_exports_spotify_audio_in_the_notebooks_layout(catalog: Catalog, tmp_path: Path) -> None:
    import csv

    db = tmp_path / "s.db"
    with FakeSpotify(catalog, mode="extended") as fake:
        collect(fake, db, terms=["rock", "jazz", "hip hop", "metal"], audio_features=True, audio_analysis=True)
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["build", "--db", str(db), "--out", str(out), "--allow-short"])
    assert result.exit_code == 0, result.output
    manifest = __import__("json").loads((out / "manifest.json").read_text())
    with (out / "spotify_features.csv").open() as handle:
        header = next(csv.reader(handle))
    assert header[:3] == ["track_name", "track_artists", "genre"]
    assert {"danceability", "energy", "tempo", "id"} <= set(header) and not {"type", "uri", "analysis_url"} & set(
        header
    )
    with (out / "tracksPitches.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "" and rows[0][1:4] == ["0", "1", "2"] and rows[0][-1] == "genre" and len(rows[0]) == 1502
    tracks = {r["track_id"]: r for r in csv.DictReader((out / "tracks.csv").open())}
    assert all(r[0] in tracks and r[-1] == tracks[r[0]]["target"] for r in rows[1:])
    assert {"spotify_features.csv", "tracksPitches.csv", "tracksTimbres.csv", "tracksMeta.csv"} <= set(
        manifest["files"]
    )
