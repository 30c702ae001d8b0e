"""Collect tracks and their artists' genres from the Spotify Web API into the store.

Through spotipy, configured so that it never retries, sleeps or caches tokens on disk:
genremap's HTTP layer (`genremap.http.Retrying`) owns retries and Retry-After. What the
app may do is detected, not configured: the search page size (50 for extended-quota apps,
10 for development-mode apps), the batch artists endpoint, audio features and analysis;
each finding is remembered in the store so a resumed run does not probe again.

Whether artist answers carry genres is detected the same way ('spotify.genres'): since 2026
development-mode apps get artist objects without a `genres` key (`genres: []` is a normal
answer). The first such answer stops the artist fetching, so a whole collection spends at
most a batch probe and one artist request on it; the artists stay pending for `genremap
enrich`. A resumed run sends no artist request while the finding is younger than
GENRES_RECHECK; an older one is checked with a single request, and any answer that carries
genres again (extended quota granted) turns fetching back on.

Every page of results commits together with its checkpoint, and every artist fetch commits
on its own, so a run killed at any moment resumes with nothing lost or duplicated.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import requests
import spotipy
import yaml
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

from genremap.defaults import DEFAULT_API_BASE, DEFAULT_AUTH_URL
from genremap.envfile import read_env_file
from genremap.envfile import read_text as _read_text
from genremap.errors import UsageError
from genremap.http import (
    FAIL,
    RETRY,
    WAIT,
    DeadlineExceeded,
    DeadlineSession,
    MalformedBody,
    Retrying,
    Verdict,
    require_https,
    retry_after_seconds,
)
from genremap.store import ArtistRecord, Store, TrackRecord

ID_VAR, SECRET_VAR = "SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET"
SEARCH_CAP = 1000  # the API serves at most offset + limit = 1000 results per query
EXTENDED_LIMIT, DEVELOPMENT_LIMIT = 50, 10
ARTIST_BATCH, FEATURES_BATCH = 50, 100
GENRES_STATE = "spotify.genres"  # 'available' or 'unavailable': do this app's artist answers carry genres?
GENRES_RECHECK = timedelta(days=1)  # an 'unavailable' finding this old is checked again with one request
NO_GENRES_NOTE = (
    "this app gets no genres from Spotify (artist answers without `genres`, as for development-mode apps "
    "since 2026): its artists are left without genres; `genremap enrich` fills them from MusicBrainz"
)

# spotipy logs request headers at DEBUG (the token request's Basic header carries the secret in
# base64) and HTTP errors at ERROR: neither may reach the user's terminal or log files.
logging.getLogger("spotipy").setLevel(logging.CRITICAL + 1)
logging.getLogger("spotipy").propagate = False


@dataclass
class CollectConfig:
    """What to collect: search terms and market, how deep, and which extras."""

    terms: list[str]
    market: str = ""
    results_per_term: int = SEARCH_CAP
    all_artists: bool = False  # also fetch featured artists' genres
    audio_features: bool = False
    audio_analysis: bool = False
    analysis_segments: int = 125  # pitches/timbres of the first N segments (N x 12 values each)


def default_config_path() -> Path:
    return Path(str(resources.files("genremap").joinpath("data", "collect.yaml")))


def _flag(fetch: dict[Any, Any], key: str, path: Path) -> bool:
    value = fetch.get(key, False)
    if not isinstance(value, bool):
        raise UsageError(f"{path}: fetch.{key} must be true or false")
    return value


def load_collect_config(path: Path | None) -> CollectConfig:
    """Read collect.yaml (`--config`, else ./collect.yaml, else the packaged notebook terms)."""
    if path is None:
        path = Path("collect.yaml") if Path("collect.yaml").is_file() else default_config_path()
    if not path.is_file():
        raise UsageError(f"collect config not found: {path}")
    text = _read_text(path, "collect config")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UsageError(f"{where}: invalid YAML in the collect config") from None
    except RecursionError:
        raise UsageError(f"{path}: nested too deeply to be a collect config") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with keys terms, market, results_per_term, fetch")
    unknown = {str(k) for k in data} - {"terms", "market", "results_per_term", "fetch"}
    if unknown:
        raise UsageError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))} (allowed: terms, market, results_per_term, fetch)"
        )
    terms = data.get("terms") or []
    if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
        raise UsageError(f"{path}: 'terms' must be a list of non-empty strings")
    market = data.get("market")
    market = "" if market is None else market
    if not isinstance(market, str):  # YAML reads NO (Norway) as false: the code must be quoted
        raise UsageError(f"{path}: 'market' must be a country code in quotes, such as \"US\"")
    fetch = data.get("fetch") or {}
    if not isinstance(fetch, dict):
        raise UsageError(f"{path}: 'fetch' must be a mapping")
    bad = {str(k) for k in fetch} - {"all_artists", "audio_features", "audio_analysis", "analysis_segments"}
    if bad:
        raise UsageError(f"{path}: unknown fetch option(s) {', '.join(sorted(bad))}")
    per_term = data.get("results_per_term", SEARCH_CAP)
    if isinstance(per_term, bool) or not isinstance(per_term, int) or not 1 <= per_term <= SEARCH_CAP:
        raise UsageError(f"{path}: results_per_term must be an integer from 1 to {SEARCH_CAP}")
    segments = fetch.get("analysis_segments", 125)
    if isinstance(segments, bool) or not isinstance(segments, int) or not 1 <= segments <= 10_000:
        raise UsageError(f"{path}: fetch.analysis_segments must be an integer from 1 to 10000")
    return CollectConfig(
        terms=[t.strip() for t in terms],
        market=market,
        results_per_term=per_term,
        all_artists=_flag(fetch, "all_artists", path),
        audio_features=_flag(fetch, "audio_features", path),
        audio_analysis=_flag(fetch, "audio_analysis", path),
        analysis_segments=segments,
    )


def read_credentials(env_file: Path | None = None) -> tuple[str, str]:
    """Client id and secret from SPOTIPY_CLIENT_ID / SPOTIPY_CLIENT_SECRET (a --env-file wins)."""
    values = dict(os.environ)
    if env_file is not None:
        values.update(read_env_file(env_file))
    client_id, secret = values.get(ID_VAR, "").strip(), values.get(SECRET_VAR, "").strip()
    if not client_id or not secret:
        missing = " and ".join(v for v, x in ((ID_VAR, client_id), (SECRET_VAR, secret)) if not x)
        raise UsageError(
            f"Spotify credentials missing: set {missing} in the environment "
            f"(or in a file passed with --env-file); create an app at https://developer.spotify.com/dashboard"
        )
    return client_id, secret


def check_endpoints(api_base: str, auth_url: str) -> None:
    """Refuse (UsageError, before any connection) an API or token URL that is not https, unless
    it is on a loopback host: the token request carries the client id and secret."""
    require_https(auth_url, "--auth-url")
    require_https(api_base, "--api-base")


class CredentialsRejected(UsageError):
    def __init__(self, status: int | None) -> None:
        code = f" (HTTP {status})" if status else ""
        super().__init__(f"Spotify rejected the app credentials{code}: check {ID_VAR} and {SECRET_VAR}")


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status behind a spotipy exception (SpotifyOauthError hides it in its context)."""
    if isinstance(exc, SpotifyException):
        return int(exc.http_status)
    context = exc.__context__
    response = getattr(context, "response", None)
    return int(response.status_code) if response is not None else None


def judge_spotify(exc: BaseException) -> Verdict:
    """How genremap treats each failure of a spotipy call."""
    status = _status_of(exc)
    if isinstance(exc, SpotifyOauthError):
        if status in (400, 401, 403):
            return Verdict(FAIL, "credentials")
        return Verdict(RETRY, f"token http {status}" if status else "token")
    if isinstance(exc, SpotifyException):
        if status in (429, 503):
            seconds = retry_after_seconds(exc.headers)
            if seconds is not None:
                return Verdict(WAIT, f"http {status}", seconds)
            return Verdict(RETRY, f"http {status}")
        if status is not None and status >= 500:
            return Verdict(RETRY, f"http {status}")
        if status == 401:
            return Verdict(RETRY, "http 401")  # an expired or revoked token: fetched again
        return Verdict(FAIL, f"http {status}")
    if isinstance(exc, DeadlineExceeded):
        return Verdict(RETRY, "deadline")
    if isinstance(exc, requests.Timeout):
        return Verdict(RETRY, "timeout")
    if isinstance(exc, requests.RequestException):
        return Verdict(RETRY, "connection")
    if isinstance(exc, MalformedBody | ValueError):
        return Verdict(RETRY, "malformed")
    return Verdict(FAIL, type(exc).__name__)


def _expect(result: Any, key: str) -> dict[str, Any]:
    """spotipy turns an unparsable body into None: treat that (or a missing key) as malformed."""
    if not isinstance(result, dict) or key not in result:
        raise MalformedBody(f"answer without '{key}'")
    return result


def parse_track(item: dict[str, Any]) -> tuple[TrackRecord, list[ArtistRecord]] | None:
    """A TrackRecord and ArtistRecords (names only) from a search result item; None for local
    files and items without an id or artists."""
    if not isinstance(item, dict) or not item.get("id") or not item.get("artists"):
        return None
    artists = [a for a in item["artists"] if isinstance(a, dict) and a.get("id")]
    if not artists:
        return None
    album = item.get("album") or {}
    track = TrackRecord(
        track_id=str(item["id"]),
        name=str(item.get("name") or ""),
        artist_id=str(artists[0]["id"]),
        artist_name=str(artists[0].get("name") or ""),
        artist_ids=tuple(str(a["id"]) for a in artists),
        album=album.get("name"),
        release_date=album.get("release_date"),
        duration_ms=item.get("duration_ms"),
        preview_url=item.get("preview_url"),
        isrc=((item.get("external_ids") or {}).get("isrc") or None),
        popularity=item.get("popularity"),
    )
    return track, [ArtistRecord(str(a["id"]), str(a.get("name") or "")) for a in artists]


@dataclass
class CollectSummary:
    """What a collection run did."""

    new_tracks: int = 0
    updated_tracks: int = 0
    artists_fetched: int = 0
    features_fetched: int = 0
    analyses_fetched: int = 0
    spotify_genres: str = "unknown"  # 'available', 'unavailable' (artist answers without genres) or 'unknown'
    notes: list[str] = field(default_factory=list)  # one line per thing the API would not do

    def as_dict(self) -> dict[str, Any]:
        return {
            "new_tracks": self.new_tracks,
            "updated_tracks": self.updated_tracks,
            "artists_fetched": self.artists_fetched,
            "features_fetched": self.features_fetched,
            "analyses_fetched": self.analyses_fetched,
            "spotify_genres": self.spotify_genres,
            "notes": self.notes,
        }


@dataclass
class Progress:
    """Callbacks for progress displays (the library never prints)."""

    term: Callable[[str, int, int | None], None] = lambda term, done, total: None
    stage: Callable[[str, int, int], None] = lambda stage, done, total: None
    note: Callable[[str], None] = lambda text: None


def _has_genres(artist: dict[str, Any]) -> bool:
    """Whether an artist object carries a `genres` list (`[]` included). Since 2026 the objects
    development-mode apps get have no `genres` key at all: that, not `[]`, means "no genres here"."""
    return isinstance(artist.get("genres"), list)


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class SpotifyCollector:
    """One collection run against one Spotify app."""

    def __init__(
        self,
        store: Store,
        client_id: str,
        client_secret: str,
        config: CollectConfig,
        retrying: Retrying,
        *,
        api_base: str = DEFAULT_API_BASE,
        auth_url: str = DEFAULT_AUTH_URL,
        progress: Progress | None = None,
    ) -> None:
        check_endpoints(api_base, auth_url)
        self.store = store
        self.config = config
        self.retrying = retrying
        self.progress = progress or Progress()
        self.summary = CollectSummary()
        self._flushed: dict[str, dict[str, int]] = {"requests": {}, "throttled": {}, "errors": {}}
        # No retry adapter (genremap owns retries); every answer read within the policy's deadline.
        session = DeadlineSession(retrying.clock, retrying.policy.deadline)
        timeout = retrying.policy.timeout
        self.auth = SpotifyClientCredentials(
            client_id=client_id,
            client_secret=client_secret,
            cache_handler=MemoryCacheHandler(),  # never a .cache file in the working directory
            requests_session=session,
            requests_timeout=timeout,
        )
        self.auth.OAUTH_TOKEN_URL = auth_url
        self.client = spotipy.Spotify(
            auth_manager=self.auth, requests_session=session, requests_timeout=timeout, retries=0, status_retries=0
        )
        self.client.prefix = api_base if api_base.endswith("/") else api_base + "/"

    # --- plumbing -----------------------------------------------------------------------------
    def _call(self, endpoint: str, call: Callable[[], Any]) -> Any:
        def judge(exc: BaseException) -> Verdict:
            verdict = judge_spotify(exc)
            if verdict.kind == "credentials":
                raise CredentialsRejected(_status_of(exc)) from None
            if verdict.kind == "http 401":
                self.auth.cache_handler.save_token_to_cache(None)
            return verdict

        return self.retrying.run(endpoint, call, judge)

    def flush_counts(self) -> None:
        """Write the request counters gathered since the last flush into the store."""
        stats = self.retrying.stats
        current = {"requests": dict(stats.requests), "throttled": dict(stats.throttled), "errors": dict(stats.failed)}
        delta = {
            name: {
                k: v - self._flushed[name].get(k, 0) for k, v in counts.items() if v != self._flushed[name].get(k, 0)
            }
            for name, counts in current.items()
        }
        self.store.add_request_counts(delta["requests"], delta["throttled"], delta["errors"])
        self._flushed = current

    def _note(self, text: str) -> None:
        self.summary.notes.append(text)
        self.progress.note(text)

    # --- search -------------------------------------------------------------------------------
    def _search_page(self, term: str, offset: int) -> dict[str, Any]:
        """One page of results, learning the page size the app allows on the first call."""
        known = self.store.get_state("spotify.search_limit")
        limit = int(known) if known else EXTENDED_LIMIT
        limit = min(limit, SEARCH_CAP - offset, self.config.results_per_term - offset)
        market = self.config.market or None

        def search() -> dict[str, Any]:
            return _expect(
                self.client.search(q=term, type="track", limit=limit, offset=offset, market=market), "tracks"
            )

        try:
            page = self._call("search", search)
        except SpotifyException as exc:
            if known is None and exc.http_status == 400 and limit > DEVELOPMENT_LIMIT:
                self.store.set_state("spotify.search_limit", str(DEVELOPMENT_LIMIT))
                self.store.set_state("spotify.mode", "development")
                self._note(f"this app is in development mode: search pages hold at most {DEVELOPMENT_LIMIT} results")
                return self._search_page(term, offset)
            raise
        if known is None:
            self.store.set_state("spotify.search_limit", str(EXTENDED_LIMIT))
            self.store.set_state("spotify.mode", "extended")
        page["_limit"] = limit
        return page

    def collect_term(self, term: str) -> None:
        market = self.config.market
        offset, total, done = self.store.search_checkpoint(term, market)
        cap = min(SEARCH_CAP, self.config.results_per_term)
        while not done:
            if offset >= cap:
                self.store.save_search_page(term, market, [], [], offset, total, True)
                break
            page = self._search_page(term, offset)
            results = page["tracks"]
            total = int(results.get("total") or 0)
            items = results.get("items") or []
            parsed = [p for p in (parse_track(i) for i in items) if p is not None]
            tracks = [t for t, _ in parsed]
            artists = list({a.artist_id: a for _, artist_list in parsed for a in artist_list}.values())
            next_offset = offset + int(page["_limit"])
            done = not results.get("next") or not items or next_offset >= min(total, cap)
            written = self.store.save_search_page(term, market, tracks, artists, next_offset, total, done)
            self.summary.new_tracks += written.new
            self.summary.updated_tracks += written.updated
            self.flush_counts()
            self.progress.term(term, min(next_offset, min(total, cap)), min(total, cap))
            offset = next_offset

    # --- artists --------------------------------------------------------------------------------
    def _batch_allowed(self) -> bool:
        known = self.store.get_state("spotify.batch_artists")
        if known is not None:
            return known == "yes"
        # Development-mode apps lost the batch endpoint; only extended-quota apps are probed.
        return self.store.get_state("spotify.mode") == "extended"

    def _genres_worth_asking(self) -> bool:
        """False (and says so) when this app is known to get no genres and the finding is recent:
        a resumed run sends no artist request. An older finding is checked again with one request."""
        if self.store.get_state(GENRES_STATE) != "unavailable":
            return True
        since = self.store.state_updated_at(GENRES_STATE)
        if since is not None and datetime.now(UTC) - since >= GENRES_RECHECK:
            return True  # one probe: the app may have been granted extended quota since
        self._note(NO_GENRES_NOTE)
        return False

    def _learn_genres(self, carried: bool) -> bool:
        """Remember whether artist answers carry `genres` (either way, a later answer can change
        it); True to go on fetching."""
        known = self.store.get_state(GENRES_STATE)
        if carried:
            if known != "available":
                self.store.set_state(GENRES_STATE, "available")
                if known == "unavailable":
                    self._note("Spotify gives this app genres again: fetching its artists' genres")
            return True
        self.store.set_state(GENRES_STATE, "unavailable")  # also dates the finding, for the next check
        self._note(NO_GENRES_NOTE)
        return False

    def fetch_artists(self) -> None:
        """Each pending artist's genres, until an answer shows that this app gets none: the
        rest then stay pending (never recorded as "no genres") for `genremap enrich`."""
        pending = self.store.artists_without_genres("spotify", primary_only=not self.config.all_artists)
        total, done = len(pending), 0
        self.progress.stage("artists", 0, total)
        if not pending or not self._genres_worth_asking():
            return
        for chunk in _chunks(pending, ARTIST_BATCH):
            carried = self._fetch_batch(chunk) if self._batch_allowed() else None
            if carried is None:  # no batch endpoint for this app: one request per artist
                for artist_id in chunk:
                    if not self._fetch_one(artist_id):
                        return
                    done += 1
                    self.progress.stage("artists", done, total)
                continue
            if not carried:
                return
            done += len(chunk)
            self.progress.stage("artists", done, total)

    def _stored_name(self, artist_id: str) -> str:
        row = self.store.conn.execute("SELECT name FROM artists WHERE artist_id = ?", (artist_id,)).fetchone()
        return str(row[0]) if row else ""

    def _fetch_batch(self, ids: list[str]) -> bool | None:
        """One batch request: None if the app has no batch endpoint, else whether the answer
        carried genres (when not, nothing is recorded)."""
        try:
            answer = self._call("artists", lambda: _expect(self.client.artists(ids), "artists"))
        except SpotifyException as exc:
            if exc.http_status in (403, 404):
                self.store.set_state("spotify.batch_artists", "no")
                self._note("the batch artists endpoint is not available to this app: one request per artist")
                return None
            raise
        if self.store.get_state("spotify.batch_artists") is None:
            self.store.set_state("spotify.batch_artists", "yes")
        by_id = {a["id"]: a for a in answer["artists"] if isinstance(a, dict) and a.get("id")}
        if by_id and not self._learn_genres(all(_has_genres(a) for a in by_id.values())):
            self.flush_counts()
            return False
        records = [
            ArtistRecord(i, str(by_id[i].get("name") or self._stored_name(i)), tuple(by_id[i]["genres"]))
            if i in by_id
            else ArtistRecord(i, self._stored_name(i), ())  # unknown to Spotify: asked, none
            for i in ids
        ]
        self.store.upsert_artists(records, "spotify")
        self.summary.artists_fetched += len(records)
        self.flush_counts()
        return True

    def _fetch_one(self, artist_id: str) -> bool:
        """One artist request; False (nothing recorded) when the answer carries no genres."""
        try:
            answer = self._call("artist", lambda: _expect(self.client.artist(artist_id), "id"))
        except SpotifyException as exc:
            if exc.http_status not in (400, 404):
                raise
            # Unknown to Spotify: remembered as having no genres, so it is not asked again.
            record = ArtistRecord(artist_id, self._stored_name(artist_id), ())
        else:
            if not self._learn_genres(_has_genres(answer)):
                self.flush_counts()
                return False
            record = ArtistRecord(artist_id, str(answer.get("name") or ""), tuple(answer["genres"]))
        self.store.upsert_artists([record], "spotify")
        self.summary.artists_fetched += 1
        self.flush_counts()
        return True

    # --- audio features and analysis -----------------------------------------------------------------
    def _forbidden(self, what: str, key: str) -> bool:
        """True (and says so once per run) when this app was found to have no access to `what`."""
        if self.store.get_state(key) != "forbidden":
            return False
        self._note(f"this app has no access to {what} (Spotify answers 403 to apps created since late 2024): skipped")
        return True

    def _features(self, ids: str) -> dict[str, Any]:
        return _expect(self.client._get("audio-features", ids=ids), "audio_features")

    def _analysis(self, track_id: str) -> dict[str, Any]:
        return _expect(self.client._get(f"audio-analysis/{track_id}"), "segments")

    def fetch_audio_features(self) -> None:
        key = "spotify.audio_features"
        if self._forbidden("audio features", key):
            return
        pending = self.store.tracks_without("audio_features")
        total, done = len(pending), 0
        for chunk in _chunks(pending, FEATURES_BATCH):
            ids = ",".join(chunk)
            try:
                answer = self._call("audio-features", partial(self._features, ids))
            except SpotifyException as exc:
                if exc.http_status == 403:
                    self.store.set_state(key, "forbidden")
                    self._forbidden("audio features", key)
                    return
                raise
            self.store.set_state(key, "ok")
            by_id = {f["id"]: f for f in answer["audio_features"] if isinstance(f, dict) and f.get("id")}
            self.store.save_audio_features([(t, by_id.get(t)) for t in chunk])
            self.summary.features_fetched += len(by_id)
            self.flush_counts()
            done += len(chunk)
            self.progress.stage("audio features", done, total)

    def fetch_audio_analysis(self) -> None:
        key = "spotify.audio_analysis"
        if self._forbidden("audio analysis", key):
            return
        pending = self.store.tracks_without("audio_analysis")
        keep = self.config.analysis_segments
        for done, track_id in enumerate(pending, 1):
            try:
                answer = self._call("audio-analysis", partial(self._analysis, track_id))
            except SpotifyException as exc:
                if exc.http_status == 403:
                    self.store.set_state(key, "forbidden")
                    self._forbidden("audio analysis", key)
                    return
                if exc.http_status != 404:
                    raise
                self.store.save_audio_analysis(track_id, "missing", None, [], [])  # recorded, not fatal
            else:
                self.store.set_state(key, "ok")
                segments = [s for s in answer["segments"] if isinstance(s, dict)][:keep]
                pitches = [float(v) for s in segments for v in s.get("pitches", [])]
                timbres = [float(v) for s in segments for v in s.get("timbre", [])]
                self.store.save_audio_analysis(track_id, "ok", len(segments), pitches, timbres)
                self.summary.analyses_fetched += 1
            self.flush_counts()
            self.progress.stage("audio analysis", done, len(pending))

    # --- the run ----------------------------------------------------------------------------------
    def run(self) -> CollectSummary:
        try:
            for term in self.config.terms:
                self.collect_term(term)
            self.fetch_artists()
            if self.config.audio_features:
                self.fetch_audio_features()
            if self.config.audio_analysis:
                self.fetch_audio_analysis()
        finally:
            self.flush_counts()
            self.summary.spotify_genres = self.store.get_state(GENRES_STATE) or "unknown"
        return self.summary
