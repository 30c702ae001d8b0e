"""Download a 30-second audio preview for every track of a dataset folder (`genremap audio`).

Each track gets the Spotify `preview_url` of tracks.csv when it has one; otherwise Deezer's
public API is asked, by ISRC first (`GET /track/isrc:<ISRC>`, exact) and then by a search
with both artist and title (`GET /search/track?q=artist:"X" track:"Y"`). A search result is
accepted only when the rapidfuzz scores of its artist and of its title both reach a
threshold and its duration agrees with the track's. Files land in `DIR/audio/<target>/
<track_id>.mp3` (a GTZAN-like layout) exactly as served, and `DIR/audio/manifest.csv` keeps
one row per track of tracks.csv.

Safety first: only https (plain http only to a loopback host named with --allow-host), only
allowed hosts (redirects included), a size cap enforced while streaming, a deadline for each
whole download (a trickling host fails its track instead of holding the run), an audio
content type and an MP3 header, names made from track ids only, and every file written to a
temporary name in its folder and renamed only once it passed every check.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import ipaddress
import json
import math
import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from genremap import __version__
from genremap.audio.dataset import DatasetFolder, open_dataset, read_tracks
from genremap.collectors.musicbrainz import name_score
from genremap.errors import GenremapError, UsageError
from genremap.http import (
    FAIL,
    RETRY,
    WAIT,
    Clock,
    Deadline,
    DeadlineExceeded,
    GaveUp,
    HttpStatusError,
    MalformedBody,
    RealClock,
    Retrying,
    Stats,
    Verdict,
    is_loopback,
    iter_body,
    judge_http,
)
from genremap.words import counted

DEFAULT_DEEZER_API = "https://api.deezer.com"
DEFAULT_ALLOWED_HOSTS = ("api.deezer.com", "p.scdn.co", ".dzcdn.net")  # a leading dot = any subdomain
DEFAULT_MAX_BYTES = 5_000_000
DEFAULT_WORKERS = 4
DEFAULT_MIN_SCORE = 85.0
DEFAULT_DURATION_TOLERANCE = 10.0
DEFAULT_RATE = (50, 5.0)  # requests, seconds: per host

FOUND, MISSING, REJECTED, FAILED = "found", "missing", "rejected", "failed"
STATUSES = (FOUND, MISSING, REJECTED, FAILED)
SPOTIFY, DEEZER = "spotify", "deezer"
MANIFEST_COLUMNS = ("track_id", "status", "source", "score", "bytes", "sha256", "duration", "path", "reason")

# Keys of Stats (and of PreviewResult.requests): one per kind of request.
ISRC_ENDPOINT = "deezer.isrc"
SEARCH_ENDPOINT = "deezer.search"
SPOTIFY_DOWNLOAD = "spotify.preview"
DEEZER_DOWNLOAD = "deezer.preview"

SERVICE = "Deezer"
DOWNLOAD_SERVICE = "preview download"
SEARCH_LIMIT = 10  # results asked for per search
MANIFEST_EVERY = 50  # tracks between two saves of the manifest
QUOTA_WAITS = 12  # consecutive quota answers waited out (a window each) before they count as failures
MAX_REDIRECTS = 3
API_MAX_BYTES = 2_000_000  # a Deezer JSON answer larger than this is refused
CHUNK = 65536
HEAD_BYTES = 10  # enough to tell an ID3 tag or an MPEG frame header
MP3_TYPES = frozenset({"audio/mpeg", "audio/mp3"})
OCTET_STREAM = "application/octet-stream"
PARTIAL_SUFFIX = ".part"
JOURNAL_NAME = ".manifest.journal"

# Words that mark a karaoke or tribute recording when the track itself does not have them.
_IMITATION = re.compile(
    r"\b(karaoke|tribute|in the style of|made famous by|originally performed by|backing track)\b", re.IGNORECASE
)
_SPOTIFY_VERSION = re.compile(r"\s+-\s+.*$")  # "Song - Remastered 2011"
_BRACKETS = re.compile(r"\s*[(\[][^)\]]*[)\]]")  # "Song (feat. X) [Live]"
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


# --- results ------------------------------------------------------------------------------


@dataclass
class PreviewOutcome:
    """What happened to one track: one row of audio/manifest.csv."""

    track_id: str
    status: str  # found, missing, rejected or failed
    source: str = ""  # "spotify", "deezer" or "" (nothing to ask)
    score: float | None = None  # match score of the Deezer result accepted, or of the best one rejected
    bytes: int | None = None
    sha256: str = ""
    duration: float | None = None  # seconds, read from the saved file when it can be
    path: str = ""  # relative to the dataset folder, "" when no file
    reason: str = ""  # "" when found, else why missing, rejected or failed

    def row(self) -> dict[str, str]:
        """The manifest row (every value a string, numbers in a fixed format)."""
        return {
            "track_id": self.track_id,
            "status": self.status,
            "source": self.source,
            "score": "" if self.score is None else f"{self.score:.1f}",
            "bytes": "" if self.bytes is None else str(self.bytes),
            "sha256": self.sha256,
            "duration": "" if self.duration is None else f"{self.duration:.3f}",
            "path": self.path,
            "reason": self.reason,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, str | None]) -> PreviewOutcome:
        """An outcome from a manifest row; unreadable numbers become None."""

        def text(key: str) -> str:
            return str(row.get(key) or "")

        def number(key: str) -> float | None:
            try:
                return float(text(key))
            except ValueError:
                return None

        size = number("bytes")
        return cls(
            track_id=text("track_id"),
            status=text("status"),
            source=text("source"),
            score=number("score"),
            bytes=None if size is None else int(size),
            sha256=text("sha256").lower(),
            duration=number("duration"),
            path=text("path"),
            reason=text("reason"),
        )


@dataclass
class PreviewResult:
    """What a run did. `found` counts every track with a file, `skipped` those of them that
    were already there (no request); `kept` counts missing or rejected answers of an earlier
    run reused without a request."""

    found: int = 0
    missing: int = 0
    rejected: int = 0
    failed: int = 0
    skipped: int = 0
    kept: int = 0
    requests: dict[str, int] = field(default_factory=dict)  # by endpoint, retries included
    outcomes: list[PreviewOutcome] = field(default_factory=list)  # in tracks.csv order
    stats: Stats = field(default_factory=Stats)
    manifest: Path | None = None

    @property
    def total(self) -> int:
        return len(self.outcomes)

    def describe(self) -> str:
        """One line for the user."""
        sent = sum(self.requests.values())
        return (
            f"previews: {self.found:,} found ({self.skipped:,} already there), {self.missing:,} missing, "
            f"{self.rejected:,} rejected, {self.failed:,} failed; {counted(sent, 'request')}"
        )

    def summary(self) -> dict[str, Any]:
        """The counts and the HTTP layer's summary, as plain JSON-ready values."""
        return {
            "tracks": self.total,
            "found": self.found,
            "missing": self.missing,
            "rejected": self.rejected,
            "failed": self.failed,
            "skipped": self.skipped,
            "kept": self.kept,
            "manifest": str(self.manifest) if self.manifest else None,
            "stats": self.stats.summary(),
        }


# --- hosts --------------------------------------------------------------------------------


def _has_port(host: str) -> bool:
    """True for "host:port" (an IPv6 address has colons too, but is no host:port)."""
    if ":" not in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def _host_matches(host: str, entry: str) -> bool:
    return host.endswith(entry) if entry.startswith(".") else host == entry


@dataclass(frozen=True)
class HostPolicy:
    """Which URLs may be fetched: https to an allowed host, plain http only to a loopback host
    named explicitly (with --allow-host)."""

    allowed: tuple[str, ...]
    explicit: tuple[str, ...] = ()

    @classmethod
    def build(cls, allow_hosts: Iterable[str] = ()) -> HostPolicy:
        explicit = []
        for given in allow_hosts:
            host = str(given).strip().lower().strip("[]")
            if not host or any(ch in host for ch in "/@ \t") or host in (".", "..") or _has_port(host):
                raise UsageError(
                    f"--allow-host {given!r}: expected a host name (no scheme, port or path) "
                    "such as 127.0.0.1 or .example.org"
                )
            explicit.append(host)
        return cls(allowed=(*DEFAULT_ALLOWED_HOSTS, *explicit), explicit=tuple(explicit))

    def problem(self, url: str) -> str | None:
        """Why `url` may not be fetched, or None when it may."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            return "not a valid URL"
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not host:
            return f"only https URLs are fetched, not {scheme + ':' if scheme else 'this'}"
        if parts.username or parts.password:
            return "URLs with credentials are refused"
        if scheme == "http":
            if any(_host_matches(host, entry) for entry in self.explicit) and is_loopback(host):
                return None
            return (
                f"plain http to {host} is refused: https is required "
                "(plain http only to a loopback host given with --allow-host)"
            )
        if any(_host_matches(host, entry) for entry in self.allowed):
            return None
        return f"host {host} is not allowed (allow it with --allow-host {host})"


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class HostRateLimiter:
    """At most `requests` requests per `seconds` to each host (a sliding window), for every
    thread: a caller over the limit sleeps (on the clock) until the oldest request of the
    window leaves it. Thread-safe."""

    def __init__(self, requests_per_window: int, seconds: float, clock: Clock) -> None:
        self.limit = requests_per_window
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[threading.Lock, deque[float]]] = {}

    def wait(self, host: str) -> None:
        with self._lock:
            lock, times = self._windows.setdefault(host, (threading.Lock(), deque()))
        with lock:  # held while sleeping: the other threads asking this host queue behind
            while True:
                now = self.clock.monotonic()
                while times and times[0] <= now - self.seconds:
                    times.popleft()
                if len(times) < self.limit:
                    times.append(now)
                    return
                self.clock.sleep(times[0] + self.seconds - now)


# --- matching -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A Deezer track object, as far as matching needs it."""

    deezer_id: str
    artist: str
    title: str
    title_short: str
    duration: float | None
    preview: str

    @classmethod
    def from_json(cls, item: Any) -> Candidate | None:
        if not isinstance(item, Mapping):
            return None
        artist = item.get("artist")
        artist_name = artist.get("name") if isinstance(artist, Mapping) else None
        title = item.get("title")
        if not isinstance(title, str) or not isinstance(artist_name, str):
            return None
        short = item.get("title_short")
        duration = item.get("duration")
        preview = item.get("preview")
        return cls(
            deezer_id=str(item.get("id", "")),
            artist=artist_name,
            title=title,
            title_short=short if isinstance(short, str) and short.strip() else title,
            duration=float(duration) if isinstance(duration, int | float) and duration > 0 else None,
            preview=preview.strip() if isinstance(preview, str) else "",
        )

    def describe(self) -> str:
        return f"{self.title!r} by {self.artist!r}"


def short_title(title: str) -> str:
    """A title without its version: Spotify's " - Remastered 2011" and any (...) or [...] part."""
    short = _BRACKETS.sub("", _SPOTIFY_VERSION.sub("", title)).strip()
    return " ".join(short.split()) or " ".join(title.split())


def match_score(artist: str, title: str, candidate: Candidate) -> float:
    """How surely `candidate` is the track (0–100): the lower of the artist score and the title
    score, each a rapidfuzz ratio of normalised names (titles compared with and without their
    version, so "Song - Remastered" meets "Song (Remastered)")."""
    artist_score = name_score(artist, candidate.artist)
    ours = {title, short_title(title)}
    theirs = {candidate.title, candidate.title_short, short_title(candidate.title)}
    title_score = max(name_score(a, b) for a in ours for b in theirs)
    return round(min(artist_score, title_score), 1)


def _quote_phrase(text: str) -> str:
    return " ".join(text.replace('"', " ").split())


def search_query(artist: str, title: str) -> str:
    """Deezer's advanced search for a track: `artist:"X" track:"Y"` (title without version)."""
    return f'artist:"{_quote_phrase(artist)}" track:"{_quote_phrase(short_title(title))}"'


def clean_isrc(value: str) -> str:
    """An ISRC in its 12-character form, or "" when `value` is not one."""
    isrc = re.sub(r"[\s-]", "", str(value or "")).upper()
    return isrc if _ISRC.match(isrc) else ""


@dataclass(frozen=True)
class Choice:
    """The verdict on a list of Deezer results: the accepted one (with a preview), or why none."""

    candidate: Candidate | None
    status: str  # FOUND, MISSING or REJECTED
    score: float | None
    reason: str = ""


def _duration_problem(candidate: Candidate, seconds: float | None, tolerance: float) -> str | None:
    if seconds is None or candidate.duration is None:
        return None
    if abs(candidate.duration - seconds) <= tolerance:
        return None
    return f"lasts {candidate.duration:g} s, not {seconds:g} s (tolerance {tolerance:g} s)"


def _imitation(artist: str, title: str, candidate: Candidate) -> bool:
    ours = _IMITATION.search(f"{artist} {title}")
    return ours is None and _IMITATION.search(f"{candidate.artist} {candidate.title}") is not None


def choose(
    artist: str,
    title: str,
    seconds: float | None,
    candidates: Sequence[Candidate],
    *,
    min_score: float = DEFAULT_MIN_SCORE,
    tolerance: float = DEFAULT_DURATION_TOLERANCE,
) -> Choice:
    """Pick the Deezer result that is this track, if any.

    A result passes when its match score reaches `min_score`, its duration is within
    `tolerance` seconds of `seconds` (when both are known) and it is not a karaoke or tribute
    recording. Among passing results with a preview, the highest score wins, then the closest
    duration, then Deezer's order. No result at all, or passing results without a preview,
    is MISSING; results that all fail are REJECTED, with the best score and why it failed.
    """
    if not candidates:
        return Choice(None, MISSING, None, "no Deezer result")
    scored = [(match_score(artist, title, c), i, c) for i, c in enumerate(candidates)]
    passing: list[tuple[float, float, int, Candidate]] = []
    failures: list[tuple[float, int, str]] = []
    for score, i, cand in scored:
        if score < min_score:
            failures.append((score, i, f"best Deezer result {cand.describe()} scores {score:g} (< {min_score:g})"))
            continue
        if _imitation(artist, title, cand):
            failures.append((score, i, f"Deezer result {cand.describe()} is a karaoke or tribute recording"))
            continue
        problem = _duration_problem(cand, seconds, tolerance)
        if problem is not None:
            failures.append((score, i, f"Deezer result {cand.describe()} scores {score:g} but {problem}"))
            continue
        gap = abs((cand.duration or 0) - seconds) if seconds is not None and cand.duration is not None else 0.0
        passing.append((score, gap, i, cand))
    with_preview = [p for p in passing if p[3].preview]
    if with_preview:
        score, _, _, cand = min(with_preview, key=lambda p: (-p[0], p[1], p[2]))
        return Choice(cand, FOUND, score)
    if passing:
        score, _, _, cand = min(passing, key=lambda p: (-p[0], p[1], p[2]))
        return Choice(None, MISSING, score, f"Deezer has {cand.describe()} but no preview for it")
    score, _, reason = min(failures, key=lambda f: (-f[0], f[1]))
    return Choice(None, REJECTED, score, reason)


# --- MP3 checks ---------------------------------------------------------------------------


def mpeg_frame_header_ok(head: bytes) -> bool:
    """True when `head` starts with a plausible MPEG audio frame header (sync 0xFFE, no
    reserved version, layer, bitrate or sample rate)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    bitrate, rate = (head[2] >> 4) & 0xF, (head[2] >> 2) & 0x3
    return version != 1 and layer != 0 and bitrate != 0xF and rate != 3


def id3_size(head: bytes) -> int | None:
    """Length of the ID3v2 tag `head` starts with (header, footer included), None if none."""
    if len(head) < 10 or head[:3] != b"ID3" or head[3] == 0xFF or head[4] == 0xFF:
        return None
    size_bytes = head[6:10]
    if any(b & 0x80 for b in size_bytes):
        return None
    size = (size_bytes[0] << 21) | (size_bytes[1] << 14) | (size_bytes[2] << 7) | size_bytes[3]
    return 10 + size + (10 if head[5] & 0x10 else 0)


def mp3_head_problem(head: bytes) -> str | None:
    """Why the first bytes of a body are not an MP3 (an ID3 tag or an MPEG frame), or None."""
    if id3_size(head) is not None or mpeg_frame_header_ok(head):
        return None
    if len(head) < 4:
        return f"body too short for an MP3 ({len(head)} bytes)"
    return f"body does not start like an MP3 (first bytes {head[:8].hex(' ')})"


# --- talking to servers -------------------------------------------------------------------


class Rejected(Exception):
    """A body or a URL refused for safety: never retried, recorded as `rejected`."""


class DeezerQuota(Exception):
    """Deezer's quota answer (`error.code` 4 inside a 200): wait a window and retry."""


class DeezerBusy(Exception):
    """Deezer's "service busy" answer (`error.code` 700): retried with backoff."""


class DeezerError(GenremapError):
    """Any other Deezer error answer: not retried, the track fails."""


class Cancelled(BaseException):
    """The run is stopping (interrupted, or another worker hit a fatal error)."""


def _judge(exc: BaseException) -> Verdict:
    if isinstance(exc, Rejected | DeezerError | Cancelled):
        return Verdict(FAIL, type(exc).__name__)
    if isinstance(exc, DeadlineExceeded):  # a trickle would trickle again: the track fails, the run goes on
        return Verdict(FAIL, "deadline")
    if isinstance(exc, DeezerBusy):
        return Verdict(RETRY, "deezer busy")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return Verdict(RETRY, "truncated")
    return judge_http(exc)


@dataclass
class _Task:
    index: int
    track_id: str
    artist: str
    title: str
    seconds: float | None
    isrc: str
    preview_url: str
    target: str
    dest: Path | None  # None when no safe path could be made (see error)
    rel: str
    error: str = ""
    previous: PreviewOutcome | None = None


@dataclass
class _StopClock:
    """The run's clock, whose sleeps end early (with Cancelled) once the run is stopping."""

    inner: Clock
    stop: threading.Event

    def monotonic(self) -> float:
        return self.inner.monotonic()

    def sleep(self, seconds: float) -> None:
        if self.stop.is_set():
            raise Cancelled
        if isinstance(self.inner, RealClock):
            if seconds > 0 and self.stop.wait(seconds):
                raise Cancelled
        else:
            self.inner.sleep(seconds)
        if self.stop.is_set():
            raise Cancelled


class _Fetcher:
    """Everything the worker threads share: hosts, limiter, sessions, stats, settings."""

    def __init__(
        self,
        folder: DatasetFolder,
        *,
        api: str,
        hosts: HostPolicy,
        limiter: HostRateLimiter,
        clock: _StopClock,
        retrying: Retrying,
        max_bytes: int,
        min_score: float,
        tolerance: float,
        quota_wait: float,
        retry_missing: bool,
        stop: threading.Event,
    ) -> None:
        self.folder = folder
        self.api = api
        self.hosts = hosts
        self.limiter = limiter
        self.clock = clock
        self.retrying = retrying
        self.max_bytes = max_bytes
        self.min_score = min_score
        self.tolerance = tolerance
        self.quota_wait = quota_wait
        self.retry_missing = retry_missing
        self.stop = stop
        self.run_stats = Stats()
        self._stats_lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._dirs_lock = threading.Lock()  # a target folder is made and removed under it

    # --- plumbing ---------------------------------------------------------------------------
    def session(self) -> requests.Session:
        """This thread's session (requests.Session is not shared between threads)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"User-Agent": f"genremap/{__version__} (+https://github.com/genremap/genremap)"})
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def _retrying(self, service: str) -> Retrying:
        """A Retrying of the caller's policy for one track (its own stats and jitter RNG, so
        threads share nothing and a track's waits do not depend on the others)."""
        return Retrying(service, policy=self.retrying.policy, clock=self.clock, on_wait=self.retrying.on_wait)

    def _merge(self, *parts: Retrying) -> None:
        with self._stats_lock:
            for part in parts:
                self.run_stats.merge(part.stats)
                self.retrying.stats.merge(part.stats)
                part.stats = Stats()

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Cancelled

    # --- the Deezer API ---------------------------------------------------------------------
    def get_json(self, path: str, params: Mapping[str, Any], endpoint: str, retrying: Retrying) -> Any:
        """A Deezer answer as JSON; {} for "no data" (code 800). Quota answers are waited out."""
        url = f"{self.api}/{path}"
        refused = self.hosts.problem(url)
        if refused is not None:  # the API was checked up front: only a path could do this
            raise DeezerError(f"refusing to fetch {url}: {refused}")
        quota_seen = 0

        def judge(exc: BaseException) -> Verdict:
            nonlocal quota_seen
            if isinstance(exc, DeezerQuota):
                quota_seen += 1
                if quota_seen <= QUOTA_WAITS:
                    return Verdict(WAIT, "deezer quota", self.quota_wait)
                return Verdict(RETRY, "deezer quota")
            return _judge(exc)

        def attempt() -> Any:
            self._check_stop()
            self.limiter.wait(_host(url))
            timeout = retrying.policy.timeout
            deadline = Deadline.start(self.clock, retrying.policy.deadline)
            with self.session().get(
                url,
                params=params,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
                headers={"Accept": "application/json"},
            ) as answer:
                if not 200 <= answer.status_code < 300:
                    raise HttpStatusError(answer.status_code, answer.headers, url)
                body = bytearray()
                for chunk in iter_body(answer, deadline, CHUNK):
                    body += chunk
                    if len(body) > API_MAX_BYTES:
                        raise DeezerError(f"{SERVICE} answer larger than {API_MAX_BYTES:,} bytes: {url}")
            try:
                data = json.loads(bytes(body))
            except ValueError:
                raise MalformedBody(f"{SERVICE} answered malformed JSON for {url}") from None
            if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
                error = data["error"]
                code, message = error.get("code"), error.get("message") or error.get("type") or "error"
                if code == 4:
                    raise DeezerQuota(message)
                if code == 700:
                    raise DeezerBusy(message)
                if code == 800:
                    return {}
                raise DeezerError(f"{SERVICE} answered error {code} ({message}) to {endpoint.split('.')[-1]}")
            if not isinstance(data, Mapping):
                raise MalformedBody(f"{SERVICE} answered {type(data).__name__}, not an object, for {url}")
            return data

        return retrying.run(endpoint, attempt, judge)

    def find_on_deezer(self, task: _Task, retrying: Retrying) -> Choice:
        """Deezer's track for `task`: by ISRC when tracks.csv has one and Deezer knows it (with a
        preview and a duration that agrees), else by a search with artist and title."""
        isrc = clean_isrc(task.isrc)
        if isrc:
            body = self.get_json(f"track/isrc:{isrc}", {}, ISRC_ENDPOINT, retrying)
            candidate = Candidate.from_json(body) if body else None
            if (
                candidate is not None
                and candidate.preview
                and _duration_problem(candidate, task.seconds, self.tolerance) is None
            ):
                # The ISRC names the recording: no score threshold, the score is recorded.
                return Choice(candidate, FOUND, match_score(task.artist, task.title, candidate))
        if not task.artist.strip() or not task.title.strip():
            return Choice(None, MISSING, None, "no artist or title to search Deezer with")
        params = {"q": search_query(task.artist, task.title), "limit": SEARCH_LIMIT}
        body = self.get_json("search/track", params, SEARCH_ENDPOINT, retrying)
        items = body.get("data") if isinstance(body, Mapping) else None
        candidates = [c for c in (Candidate.from_json(i) for i in items or []) if c is not None]
        return choose(
            task.artist, task.title, task.seconds, candidates, min_score=self.min_score, tolerance=self.tolerance
        )

    # --- downloads --------------------------------------------------------------------------
    def download(self, url: str, dest: Path, endpoint: str, retrying: Retrying) -> tuple[int, str]:
        """Stream `url` into `dest` (atomically); (bytes, sha256). Raises Rejected, without any
        request when `url` itself is refused."""
        refused = self.hosts.problem(url)
        if refused is not None:
            raise Rejected(f"refused {url}: {refused}")

        def attempt() -> tuple[int, str]:
            current = url
            deadline = Deadline.start(self.clock, retrying.policy.deadline)  # redirects included
            for _ in range(MAX_REDIRECTS + 1):
                self._check_stop()
                refused = self.hosts.problem(current)
                if refused is not None:
                    raise Rejected(f"redirect to {current} refused: {refused}")
                self.limiter.wait(_host(current))
                with self.session().get(
                    current,
                    stream=True,
                    timeout=retrying.policy.timeout,
                    allow_redirects=False,
                    headers={"Accept": "audio/mpeg, audio/*;q=0.9, */*;q=0.1", "Accept-Encoding": "identity"},
                ) as answer:
                    if answer.is_redirect:
                        current = urljoin(current, answer.headers["Location"])
                        continue
                    if not 200 <= answer.status_code < 300:
                        raise HttpStatusError(answer.status_code, answer.headers, current)
                    return self._save(answer, dest, deadline)
            raise Rejected(f"more than {MAX_REDIRECTS} redirects from {url}")

        return retrying.run(endpoint, attempt, _judge)

    def _save(self, answer: requests.Response, dest: Path, deadline: Deadline) -> tuple[int, str]:
        ctype = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in MP3_TYPES and ctype != OCTET_STREAM:
            raise Rejected(f"content type {ctype or '(none)'} is not audio/mpeg")
        length = answer.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > self.max_bytes:
            raise Rejected(f"Content-Length {int(length):,} is over the {self.max_bytes:,}-byte cap")
        with self._dirs_lock:
            dest.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=PARTIAL_SUFFIX, dir=dest.parent)
        temp = Path(name)
        try:
            digest, total, head, checked = hashlib.sha256(), 0, b"", False
            with os.fdopen(handle, "wb") as out:
                for chunk in iter_body(answer, deadline, CHUNK):
                    self._check_stop()
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise Rejected(f"body over the {self.max_bytes:,}-byte cap (stopped at {total:,} bytes)")
                    if not checked:
                        head += chunk[: HEAD_BYTES - len(head)]
                        if len(head) >= HEAD_BYTES:
                            self._check_head(head)
                            checked = True
                    digest.update(chunk)
                    out.write(chunk)
            if not checked:
                self._check_head(head)
            tag = id3_size(head)
            if tag is not None:
                with temp.open("rb") as saved:
                    saved.seek(tag)
                    if not mpeg_frame_header_ok(saved.read(4)):
                        raise Rejected("an ID3 tag not followed by MPEG audio")
            temp.chmod(0o644)
            os.replace(temp, dest)
            return total, digest.hexdigest()
        except BaseException:
            temp.unlink(missing_ok=True)
            with self._dirs_lock, contextlib.suppress(OSError):
                dest.parent.rmdir()  # only when empty: a refused body leaves no trace, not even a folder
            raise

    @staticmethod
    def _check_head(head: bytes) -> None:
        problem = mp3_head_problem(head)
        if problem is not None:
            raise Rejected(problem)

    # --- one track --------------------------------------------------------------------------
    def process(self, task: _Task) -> tuple[PreviewOutcome, str]:
        """The outcome of one track and how it came: "fetched", "skipped" (a found file that
        still checks out) or "kept" (an earlier missing/rejected answer)."""
        self._check_stop()
        previous = task.previous
        if previous is not None and task.dest is not None:
            if (
                previous.status == FOUND
                and previous.sha256
                and previous.path == task.rel
                and _sha256_of(task.dest) == previous.sha256
            ):
                return previous, "skipped"
            if previous.status in (MISSING, REJECTED) and previous.source == _source(task) and not self.retry_missing:
                return previous, "kept"
        if task.dest is None:
            return PreviewOutcome(task.track_id, FAILED, source=_source(task), reason=task.error), "fetched"
        api, cdn = self._retrying(SERVICE), self._retrying(DOWNLOAD_SERVICE)
        try:
            return self._fetch(task, task.dest, api, cdn), "fetched"
        finally:
            self._merge(api, cdn)

    def _fetch(self, task: _Task, dest: Path, api: Retrying, cdn: Retrying) -> PreviewOutcome:
        outcome = PreviewOutcome(task.track_id, FAILED, source=_source(task))
        if task.preview_url:
            url, endpoint = task.preview_url, SPOTIFY_DOWNLOAD
        else:
            try:
                choice = self.find_on_deezer(task, api)
            except (DeezerError, HttpStatusError, requests.RequestException) as exc:
                outcome.reason = f"{SERVICE}: {exc}"
                return outcome
            outcome.score = choice.score
            if choice.candidate is None:
                outcome.status, outcome.reason = choice.status, choice.reason
                return outcome
            url, endpoint = choice.candidate.preview, DEEZER_DOWNLOAD
        try:
            size, sha = self.download(url, dest, endpoint, cdn)
        except Rejected as exc:
            outcome.status, outcome.reason = REJECTED, str(exc)
            return outcome
        except (HttpStatusError, requests.RequestException) as exc:
            outcome.reason = f"download: {exc}"
            return outcome
        except GaveUp as exc:  # this track only: the next may come from another host
            outcome.reason = exc.message.split(";")[0]
            return outcome
        except OSError as exc:
            outcome.reason = f"cannot write {task.rel}: {exc.strerror or exc}"
            return outcome
        outcome.status, outcome.bytes, outcome.sha256 = FOUND, size, sha
        outcome.path, outcome.duration = task.rel, audio_duration(dest)
        return outcome


def _source(task: _Task) -> str:
    return SPOTIFY if task.preview_url else DEEZER


def _sha256_of(path: Path) -> str:
    """The file's sha256, "" when it cannot be read (or is not a regular file)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


def audio_duration(path: Path) -> float | None:
    """Seconds of audio in `path` by soundfile (libsndfile ≥ 1.1 reads MP3), None if unreadable."""
    try:
        import soundfile

        return round(float(soundfile.info(str(path)).duration), 3)
    except Exception:  # an optional nicety: any failure just leaves the duration unknown
        return None


# --- the manifest -------------------------------------------------------------------------


def journal_path(folder: DatasetFolder) -> Path:
    """audio/.manifest.journal: one JSON line per track finished, appended as the run goes, so
    a run killed between two manifest saves loses nothing; merged into manifest.csv at the end."""
    return folder.audio_dir / JOURNAL_NAME


def read_manifest(folder: DatasetFolder) -> dict[str, PreviewOutcome]:
    """The previous run's rows by track id (the first row of an id wins; then what a killed
    run's journal recorded, which is newer); {} when none."""
    path = folder.audio_manifest
    rows: dict[str, PreviewOutcome] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                outcome = PreviewOutcome.from_row(row)
                if outcome.track_id and outcome.status in STATUSES:
                    rows.setdefault(outcome.track_id, outcome)
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = {}  # unreadable: start afresh (files are checked by sha256, never trusted blindly)
    try:
        lines = journal_path(folder).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    for line in lines:
        try:
            outcome = PreviewOutcome.from_row(json.loads(line))
        except (ValueError, TypeError, AttributeError):
            continue  # the line a kill cut short
        if outcome.track_id and outcome.status in STATUSES:
            rows[outcome.track_id] = outcome
    return rows


class _Journal:
    """Appends finished tracks to the journal, each line flushed and synced to disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("a", encoding="utf-8")

    def add(self, outcome: PreviewOutcome) -> None:
        self.handle.write(json.dumps(outcome.row(), sort_keys=True) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self, remove: bool) -> None:
        self.handle.close()
        if remove:
            self.path.unlink(missing_ok=True)


def write_manifest(folder: DatasetFolder, outcomes: Iterable[PreviewOutcome]) -> Path:
    """Write audio/manifest.csv atomically (a temporary file in audio/, then a rename)."""
    path = folder.audio_manifest
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for outcome in outcomes:
                writer.writerow(outcome.row())
        Path(name).chmod(0o644)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return path


def _sweep_partials(audio_dir: Path) -> None:
    """Remove temporary files a killed run may have left in audio/ and audio/<target>/."""
    if not audio_dir.is_dir():
        return
    for folder in [audio_dir, *(p for p in audio_dir.iterdir() if p.is_dir() and not p.is_symlink())]:
        for leftover in folder.glob(f".*{PARTIAL_SUFFIX}"):
            if leftover.is_file():
                with contextlib.suppress(OSError):
                    leftover.unlink()


# --- the run ------------------------------------------------------------------------------


def _text(row: Mapping[Any, Any], key: str) -> str:
    value = row.get(key, "")
    return "" if value is None else str(value).strip()


def _seconds(row: Mapping[Any, Any]) -> float | None:
    try:
        ms = float(row.get("duration_ms"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return ms / 1000 if math.isfinite(ms) and ms > 0 else None


def _plan(folder: DatasetFolder, hosts: HostPolicy) -> list[_Task]:
    """One task per row of tracks.csv; a UsageError (before any request) for plain http."""
    frame = read_tracks(folder)
    tasks: list[_Task] = []
    plain_http: list[str] = []
    ids: dict[str, int] = {}
    paths: dict[Path, str] = {}
    for index, row in enumerate(frame.to_dict("records")):
        track_id, target = _text(row, "track_id"), _text(row, "target")
        url = _text(row, "preview_url")
        if urlsplit(url).scheme.lower() == "http" and hosts.problem(url) is not None:
            plain_http.append(f"{track_id}: {url}")
        task = _Task(
            index=index,
            track_id=track_id,
            artist=_text(row, "artist_name"),
            title=_text(row, "track_name"),
            seconds=_seconds(row),
            isrc=_text(row, "isrc"),
            preview_url=url,
            target=target,
            dest=None,
            rel="",
        )
        try:
            dest = folder.audio_path(target, track_id)
        except UsageError as exc:
            task.error = f"no safe file name: {exc.message}"
        else:
            if track_id in ids:
                task.error = f"duplicate track_id (first in row {ids[track_id] + 2} of tracks.csv)"
            elif dest in paths:
                task.error = f"its file name collides with track {paths[dest]!r}"
            else:
                task.dest = dest
                task.rel = dest.relative_to(folder.root.resolve()).as_posix()
                paths[dest] = track_id
        ids.setdefault(track_id, index)
        tasks.append(task)
    if plain_http:
        more = f" (and {len(plain_http) - 1:,} more)" if len(plain_http) > 1 else ""
        raise UsageError(
            f"{folder.tracks_csv}: refusing plain-http preview_url {plain_http[0]}{more}; only https is fetched "
            "(plain http only to a loopback host given with --allow-host)"
        )
    return tasks


def _check_settings(
    workers: int, max_bytes: int, min_score: float, duration_tolerance: float, rate: tuple[int, float]
) -> None:
    if not 1 <= workers <= 32:
        raise UsageError(f"--workers {workers}: expected 1 to 32 threads")
    if max_bytes <= 0:
        raise UsageError(f"--max-bytes {max_bytes}: expected a positive number of bytes")
    if not 0 <= min_score <= 100:
        raise UsageError(f"--min-score {min_score:g}: expected a score between 0 and 100")
    if duration_tolerance < 0:
        raise UsageError(f"--duration-tolerance {duration_tolerance:g}: expected seconds, 0 or more")
    if rate[0] < 1 or rate[1] <= 0:
        raise UsageError(f"rate {rate[0]} per {rate[1]:g} s: expected at least 1 request per positive period")


def fetch_previews(
    dataset: Path,
    *,
    deezer_api: str = DEFAULT_DEEZER_API,
    allow_hosts: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    workers: int = DEFAULT_WORKERS,
    min_score: float = DEFAULT_MIN_SCORE,
    duration_tolerance: float = DEFAULT_DURATION_TOLERANCE,
    rate: tuple[int, float] = DEFAULT_RATE,
    retry_missing: bool = False,
    retrying: Retrying | None = None,
    clock: Clock | None = None,
    on_track: Callable[[int, int], None] = lambda done, total: None,
) -> PreviewResult:
    """Download a 30-second MP3 preview for every track of a dataset folder.

    A track's preview is the Spotify preview_url of tracks.csv when it has one; otherwise
    Deezer is asked, by ISRC first (when tracks.csv has one), then by a search with both artist
    and title (artist:"X" track:"Y"). A search result is accepted only when its artist and its
    title both score at least --min-score (rapidfuzz, default 85) and its duration is within
    --duration-tolerance seconds (default 10) of the track's; a cover or karaoke version by
    another artist, or another song by the same artist, is rejected with its score. Files are
    saved as DIR/audio/<target>/<track_id>.mp3, exactly the bytes served, and listed in
    DIR/audio/manifest.csv, one row per track: found, missing, rejected or failed, with the
    source, match score, bytes, sha256 and duration.

    Only https is fetched, and only from allowed hosts: api.deezer.com, p.scdn.co, any
    *.dzcdn.net, and each --allow-host (plain http only to a loopback host given with
    --allow-host). A file must be audio/mpeg (octet-stream if it starts like an MP3), start
    with an ID3 tag or an MPEG frame, and stay under --max-bytes (default 5 MB) however its
    size is announced; a refused body leaves nothing behind. --workers threads (default 4)
    share a limit of 50 requests per 5 s per host; Deezer's quota answers are waited out and
    server errors, timeouts and dropped connections retried with backoff, within the bounds
    of the retry policy. A download (or Deezer answer) that does not complete within the
    policy's `deadline` fails its track, with the reason, and is not retried in this run.

    Re-running resumes: a found track whose file still has its recorded sha256 is skipped
    without a request, earlier missing or rejected answers are kept (--retry-missing asks
    again) and failed tracks are tried again. The manifest is saved every 50 tracks and when
    the run stops early, and files are renamed into place only once complete.

    `on_track(done, total)` is called (in the calling thread) before the first track and
    after each one; an exception it raises stops the run, keeping what finished. `retrying`
    gives the retry policy and `on_wait` (called from worker threads) and receives the
    request counts in its `stats`; `clock` (default `retrying.clock`) times every wait.
    """
    _check_settings(workers, max_bytes, min_score, duration_tolerance, rate)
    hosts = HostPolicy.build(allow_hosts)
    api = deezer_api.strip().rstrip("/")
    refused = hosts.problem(api)
    if refused is not None:
        raise UsageError(f"--deezer-api {deezer_api}: {refused}")
    folder = open_dataset(dataset)
    tasks = _plan(folder, hosts)
    previous = read_manifest(folder)
    for task in tasks:
        task.previous = previous.get(task.track_id) if not task.error else None

    retrying = retrying or Retrying(SERVICE)
    stop = threading.Event()
    run_clock = _StopClock(clock or retrying.clock, stop)
    fetcher = _Fetcher(
        folder,
        api=api,
        hosts=hosts,
        limiter=HostRateLimiter(rate[0], rate[1], run_clock),
        clock=run_clock,
        retrying=retrying,
        max_bytes=max_bytes,
        min_score=min_score,
        tolerance=duration_tolerance,
        quota_wait=rate[1],
        retry_missing=retry_missing,
        stop=stop,
    )
    _sweep_partials(folder.audio_dir)
    folder.audio_dir.mkdir(parents=True, exist_ok=True)

    done: dict[int, tuple[PreviewOutcome, str]] = {}

    def manifest_rows() -> list[PreviewOutcome]:
        rows = []
        for task in tasks:
            if task.index in done:
                rows.append(done[task.index][0])
            elif task.previous is not None:
                rows.append(task.previous)  # not reached in this run: what the last run knew
        return rows

    total = len(tasks)
    journal = _Journal(journal_path(folder))
    on_track(0, total)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genremap-previews")
    futures: dict[Future[tuple[PreviewOutcome, str]], int] = {}
    try:
        futures = {executor.submit(fetcher.process, task): task.index for task in tasks}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: futures[f]):
                done[futures[future]] = future.result()
                journal.add(done[futures[future]][0])
                if len(done) % MANIFEST_EVERY == 0:
                    write_manifest(folder, manifest_rows())
                on_track(len(done), total)
    except BaseException:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        for future, index in futures.items():
            if index not in done and future.done() and not future.cancelled() and future.exception() is None:
                done[index] = future.result()
        write_manifest(folder, manifest_rows())
        journal.close(remove=True)
        raise
    finally:
        executor.shutdown(wait=True)
        fetcher.close()

    manifest = write_manifest(folder, manifest_rows())
    journal.close(remove=True)
    result = PreviewResult(stats=fetcher.run_stats, manifest=manifest)
    counts = dict.fromkeys(STATUSES, 0)
    for index in range(total):
        outcome, how = done[index]
        result.outcomes.append(outcome)
        counts[outcome.status] += 1
        result.skipped += how == "skipped"
        result.kept += how == "kept"
    result.found, result.missing = counts[FOUND], counts[MISSING]
    result.rejected, result.failed = counts[REJECTED], counts[FAILED]
    result.requests = dict(fetcher.run_stats.requests)
    return result
