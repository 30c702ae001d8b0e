"""Fill the genres no other source gave from Last.fm's artist top tags.

For every artist of the store that has no genres yet (from any source) and whose Last.fm
answer is not cached yet, ask `artist.getTopTags` (`autocorrect=1`, `format=json`) and keep
the tags whose weight (`count`, 0-100) reaches `min_weight` as the artist's genres from the
source `lastfm`, with their weights as votes. Every answer is cached in the store, "artist
not found" (Last.fm error 6) included, one transaction per artist: a second run sends no
request and an interrupted run resumes.

Last.fm's rules: at most five requests per second (one rate limiter for the run), a real
User-Agent, errors as JSON objects `{"error": N, "message": ...}` (in an HTTP 200 as well
as in a 4xx): 29 (rate limit) and the temporary ones (8, 11, 16) are retried with backoff
through genremap's HTTP layer, like 5xx answers; 10 and 26 (invalid or suspended key) stop
the run with one line. The API key comes from LASTFM_API_KEY (or --env-file) and is never
printed, logged or stored: every message that could carry it (an exception naming the
request URL) has it blanked out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from genremap.collectors.musicbrainz import EnrichResult, user_agent
from genremap.defaults import DEFAULT_LASTFM_API, DEFAULT_LASTFM_MIN_WEIGHT
from genremap.errors import GenremapError, UsageError
from genremap.http import FAIL, RETRY, HttpStatusError, JsonClient, Retrying, Verdict, judge_http, require_https
from genremap.store import Store
from genremap.text import escape_unprintable

SERVICE = "Last.fm"
ENDPOINT = "lastfm.toptags"  # key of Stats and of the store's request counters
KEY_VAR = "LASTFM_API_KEY"
OFFICIAL_HOST = "ws.audioscrobbler.com"
MIN_INTERVAL = 0.2  # five requests per second, Last.fm's limit
NOT_FOUND = 6  # "The artist you supplied could not be found"
KEY_ERRORS = {10: "invalid API key", 26: "suspended API key"}
TEMPORARY = {8: "operation failed", 11: "service offline", 16: "temporary error", 29: "rate limit exceeded"}
# The 4xx statuses Last.fm answers its JSON errors with (error 6 comes as a 404, 10 as a 403).
ERROR_STATUSES = frozenset({400, 401, 403, 404})

TAGGED, NO_TAGS, NO_MATCH = "tagged", "no tags", "no match"


class LastfmError(Exception):
    """An error object in a Last.fm answer: `{"error": code, "message": ...}`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Last.fm error {code}: {message}")
        self.code = code
        self.message = message


@dataclass
class LastfmAnswer:
    """What Last.fm said about one artist of the store."""

    artist_id: str
    name: str
    status: str  # TAGGED, NO_TAGS or NO_MATCH
    lastfm_name: str = ""  # the name Last.fm answered for (autocorrected)
    tags: list[tuple[str, int]] = field(default_factory=list)  # (tag, weight) kept, heaviest first


# --- the key --------------------------------------------------------------------------------


def read_api_key(env_file: Path | None = None) -> str:
    """The API key from LASTFM_API_KEY (a --env-file wins); a UsageError when there is none."""
    from genremap.envfile import read_env_file

    values = dict(os.environ)
    if env_file is not None:
        values.update(read_env_file(env_file))
    key = values.get(KEY_VAR, "").strip()
    if not key:
        raise UsageError(
            f"Last.fm API key missing: set {KEY_VAR} in the environment (or in a file passed with --env-file); "
            "get a key at https://www.last.fm/api/account/create"
        )
    return key


def _blank(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` replaced by `***`."""
    return text.replace(secret, "***") if secret else text


class _Blanked(logging.Filter):
    """Blanks the key out of log records (urllib3 logs each request line, query and key included)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret and self.secret in message:
            record.msg, record.args = _blank(message, self.secret), ()
        return True


# The loggers that write request URLs (urllib3 at DEBUG: `"GET /2.0/?...&api_key=... HTTP/1.1" 200`).
URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


@contextmanager
def key_out_of_logs(key: str) -> Iterator[None]:
    """While inside, records of URL_LOGGERS carry `***` where the key was, whatever logging the
    program around genremap set up."""
    blanked = _Blanked(key)
    loggers = [logging.getLogger(name) for name in URL_LOGGERS]
    for logger in loggers:
        logger.addFilter(blanked)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(blanked)


# --- one answer ---------------------------------------------------------------------------------


def _weight(value: Any) -> int | None:
    """A tag's `count` as an integer weight clamped to 0-100 (Last.fm sends a number, old
    answers a string); None when it is not a number."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if number != number:  # NaN
        return None
    return int(max(0.0, min(100.0, number)))


def parse_top_tags(body: Any, min_weight: int) -> tuple[str, list[tuple[str, int]]]:
    """(the artist name Last.fm answered for, [(tag, weight)] with weight >= `min_weight`,
    heaviest first then by name) from an `artist.getTopTags` answer.

    `toptags.tag` may be a list, a single object (one tag) or missing (no tags); tags without
    a name or a numeric count are skipped; a repeated tag keeps its heaviest weight. An answer
    that is not a `toptags` object raises GenremapError."""
    toptags = body.get("toptags") if isinstance(body, Mapping) else None
    if not isinstance(toptags, Mapping):
        raise GenremapError(f"{SERVICE} answered without a `toptags` object")
    attr = toptags.get("@attr")
    answered = attr.get("artist") if isinstance(attr, Mapping) else None
    raw = toptags.get("tag")
    entries = raw if isinstance(raw, list) else [raw] if isinstance(raw, Mapping) else []
    kept: dict[str, int] = {}
    for tag in entries:
        if not isinstance(tag, Mapping) or not isinstance(tag.get("name"), str) or not tag["name"].strip():
            continue
        weight = _weight(tag.get("count"))
        name = " ".join(tag["name"].split())
        if weight is not None and weight >= min_weight:
            kept[name] = max(weight, kept.get(name, 0))
    return (answered if isinstance(answered, str) else ""), sorted(kept.items(), key=lambda t: (-t[1], t[0]))


def _check_error(body: Any) -> Any:
    """Raise LastfmError for an answer that is an error object (`{"error": N}`); else the body."""
    if isinstance(body, Mapping) and "error" in body:
        code = body.get("error")
        message = body.get("message")
        text = escape_unprintable(message) if isinstance(message, str) else ""
        if isinstance(code, str) and code.strip().isdigit():  # some proxies send the code as a string
            code = int(code)
        raise LastfmError(code if isinstance(code, int) and not isinstance(code, bool) else -1, text)
    return body


def judge_lastfm(exc: BaseException) -> Verdict:
    """Rate limiting (29) and temporary errors are retried with backoff, like a 5xx; other
    Last.fm errors are final; everything else as any HTTP call."""
    if isinstance(exc, LastfmError):
        return Verdict(RETRY if exc.code in TEMPORARY else FAIL, f"lastfm error {exc.code}")
    return judge_http(exc)


# --- the client -----------------------------------------------------------------------------


def _is_official(api: str) -> bool:
    return (urlsplit(api).hostname or "").lower() == OFFICIAL_HOST


def lastfm_client(
    api: str = DEFAULT_LASTFM_API,
    *,
    contact: str | None = None,
    retrying: Retrying | None = None,
    min_interval: float = MIN_INTERVAL,
) -> JsonClient:
    """A JsonClient for Last.fm: one rate limiter (never faster than five requests a second
    against ws.audioscrobbler.com), genremap's User-Agent."""
    api = require_https(api, "--lastfm-api").strip()
    if _is_official(api):
        min_interval = max(min_interval, MIN_INTERVAL)
    return JsonClient(
        api.rstrip("/"),
        service=SERVICE,
        user_agent=user_agent(contact),
        retrying=retrying or Retrying(SERVICE),
        min_interval=min_interval,
    )


def top_tags(client: JsonClient, key: str, artist_id: str, name: str, min_weight: int) -> LastfmAnswer:
    """Ask Last.fm for one artist's top tags (one request, retried as Last.fm's rules say) and
    decide from the answer. Writes nothing. Messages never carry the key."""
    if not name.strip():
        return LastfmAnswer(artist_id, name, NO_MATCH)
    params = {"method": "artist.gettoptags", "artist": name, "autocorrect": 1, "api_key": key, "format": "json"}
    try:
        body = client.get_json("", params, ENDPOINT, accept=ERROR_STATUSES, check=_check_error, judge=judge_lastfm)
    except LastfmError as exc:
        if exc.code == NOT_FOUND:
            return LastfmAnswer(artist_id, name, NO_MATCH)
        if exc.code in KEY_ERRORS:
            raise UsageError(
                f"Last.fm refused the API key (error {exc.code}, {KEY_ERRORS[exc.code]}): check {KEY_VAR}; "
                "earlier artists are saved"
            ) from None
        said = _blank(exc.message, key)[:200]  # blanked before cut: no piece of the key survives
        raise GenremapError(
            f"Last.fm error {exc.code} ({said}) for artist {name!r}; nothing was recorded for this artist, "
            "earlier ones are saved"
        ) from None
    except HttpStatusError as exc:
        raise GenremapError(
            _blank(
                f"{SERVICE} answered HTTP {exc.status} for artist {name!r}; nothing was recorded for this artist, "
                "earlier ones are saved",
                key,
            )
        ) from None
    except GenremapError as exc:  # GaveUp, TooLongToWait, a refused redirect: kept, unless it names the key
        if key and key in exc.message:
            raise GenremapError(_blank(exc.message, key), exc.exit_code) from None
        raise
    except Exception as exc:  # an error genremap did not expect may still name the URL, key included
        raise GenremapError(_blank(f"{SERVICE}: {type(exc).__name__}: {exc}", key)[:300]) from None
    answered, tags = parse_top_tags(body, min_weight)
    return LastfmAnswer(artist_id, name, TAGGED if tags else NO_TAGS, answered, tags)


# --- the run ----------------------------------------------------------------------------------


def check_min_weight(min_weight: int) -> None:
    if not 0 <= min_weight <= 100:
        raise UsageError(f"--min-weight {min_weight}: expected a tag weight between 0 and 100")


def enrich_lastfm(
    store: Store,
    key: str,
    *,
    api: str = DEFAULT_LASTFM_API,
    contact: str | None = None,
    min_weight: int = DEFAULT_LASTFM_MIN_WEIGHT,
    limit: int | None = None,
    refresh: bool = False,
    retrying: Retrying | None = None,
    min_interval: float = MIN_INTERVAL,
    on_artist: Callable[[int, int], None] = lambda done, total: None,
    on_answer: Callable[[LastfmAnswer], None] | None = None,
) -> EnrichResult:
    """Fill genres from Last.fm's top tags for the artists that have none yet.

    Only artists without genres from any source whose Last.fm answer is not cached are asked
    (`refresh`, the CLI's --all, asks again about those answered before). Tags with a weight
    of at least `min_weight` are stored as the artist's genres from source `lastfm`, their
    weights as votes; an answer with none (not found, or no tag heavy enough) is cached as
    such and never erases tags known from an earlier answer. `api` must be https (plain http
    only to a loopback host), checked before any request. On an exception, the answers saved
    so far stay saved, and `retrying.stats` (when given) tells what was sent."""
    check_min_weight(min_weight)
    if limit is not None and limit < 0:
        raise UsageError(f"--limit {limit}: expected a number of artists, 0 or more")
    retrying = retrying or Retrying(SERVICE)
    client = lastfm_client(api, contact=contact, retrying=retrying, min_interval=min_interval)
    before = sum(retrying.stats.requests.values())

    result = EnrichResult(stats=retrying.stats)
    todo = store.artists_for_lastfm(refresh=refresh)
    result.skipped_cached = 0 if refresh else store.lastfm_cached_count()
    chosen = todo if limit is None else todo[:limit]
    result.pending = len(todo) - len(chosen)
    with key_out_of_logs(key):
        on_artist(0, len(chosen))
        for done, (artist_id, name) in enumerate(chosen, start=1):
            answer = top_tags(client, key, artist_id, name, min_weight)
            store.save_lastfm_answer(artist_id, name, answer.status, answer.tags)
            result.looked_up += 1
            if answer.tags:
                result.matched += 1
                result.genres_added += len(answer.tags)
            else:
                result.no_match += 1
            result.requests = sum(retrying.stats.requests.values()) - before
            if on_answer is not None:
                on_answer(answer)
            on_artist(done, len(chosen))
    result.requests = sum(retrying.stats.requests.values()) - before
    return result
