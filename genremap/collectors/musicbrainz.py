"""Fill the genres Spotify leaves empty from MusicBrainz's web service.

For every artist without Spotify genres whose MusicBrainz answer is not cached yet, search
MusicBrainz by name (`/ws/2/artist?query=...`), accept the best candidate only when the
rapidfuzz score of the normalised names (or of one of its aliases) reaches a threshold, and
then fetch that artist's genres with their vote counts (`/ws/2/artist/{mbid}?inc=genres`).
Every answer, "no match" included, is cached in the store with the candidates it rejected,
one transaction per artist, so a second run sends no request and an interrupted run resumes.

All requests share one rate limiter (MusicBrainz allows one request per second per client)
and identify genremap in the `User-Agent`, as MusicBrainz requires.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from rapidfuzz import fuzz

from genremap import __version__
from genremap.defaults import DEFAULT_MB_API, DEFAULT_THRESHOLD
from genremap.errors import GenremapError, UsageError
from genremap.http import HttpStatusError, JsonClient, Retrying, Stats, require_https
from genremap.normalize import normalize_name
from genremap.store import Store
from genremap.vocabulary import is_musicbrainz_genre

PROJECT_URL = "https://github.com/genremap/genremap"
SERVICE = "MusicBrainz"
SEARCH_ENDPOINT = "musicbrainz.search"  # keys of Stats and of the store's request counters
LOOKUP_ENDPOINT = "musicbrainz.lookup"
ISRC_ENDPOINT = "musicbrainz.isrc"
MAX_ISRCS = 3  # ISRC lookups tried per ambiguous artist, at most
SEARCH_LIMIT = 10  # candidates asked for per search
MAX_VOTES = 2**31 - 1  # vote counts are clamped here: a stored count must fit SQLite's integers
OFFICIAL_HOST = "musicbrainz.org"  # and its subdomains: never faster than one request per second

MATCHED, NO_MATCH = "matched", "no match"

# Characters with a meaning in Lucene's query syntax (`&&` and `||` are covered by `&` and `|`).
_LUCENE_SPECIAL = frozenset('+-&|!(){}[]^"~*?:\\/')


def user_agent(contact: str | None = None) -> str:
    """The User-Agent MusicBrainz asks for: application/version ( contact URL or e-mail )."""
    contact = (contact or "").strip() or PROJECT_URL
    return f"genremap/{__version__} ( {contact} )"


def lucene_escape(text: str) -> str:
    """`text` with every Lucene special character backslash-escaped (safe inside a phrase)."""
    return "".join(f"\\{ch}" if ch in _LUCENE_SPECIAL else ch for ch in text)


def search_query(name: str) -> str:
    """The Lucene query for an artist name: its name or one of its aliases, as a phrase."""
    phrase = lucene_escape(" ".join(name.split()))
    return f'artist:"{phrase}" OR alias:"{phrase}"'


@dataclass
class MusicBrainzMatch:
    """What MusicBrainz said about one artist of the store."""

    artist_id: str
    name: str
    status: str  # MATCHED or NO_MATCH
    mbid: str | None = None
    mb_name: str | None = None
    score: float = 0.0  # rapidfuzz score of the accepted candidate, else of the best rejected one
    candidates: list[dict[str, Any]] = field(default_factory=list)  # rejected: mbid, name, score, reason
    genres: list[tuple[str, int]] = field(default_factory=list)  # (genre, votes), most votes first
    method: str = ""  # how the match was made: "name score 100", "alias 'X' score 100", "ISRC ..."


@dataclass
class EnrichResult:
    """What an enrichment run did."""

    looked_up: int = 0  # artists answered (and cached) in this run
    matched: int = 0
    no_match: int = 0
    genres_added: int = 0  # genre rows stored for matched artists
    requests: int = 0  # HTTP requests sent, retries included
    skipped_cached: int = 0  # artists without Spotify genres whose answer was already cached
    pending: int = 0  # artists still to look up after this run (left over by --limit)
    stats: Stats = field(default_factory=Stats)

    def summary(self) -> dict[str, Any]:
        """The counts and the HTTP layer's summary, as plain JSON-ready values."""
        return {
            "looked_up": self.looked_up,
            "matched": self.matched,
            "no_match": self.no_match,
            "genres_added": self.genres_added,
            "requests": self.requests,
            "skipped_cached": self.skipped_cached,
            "pending": self.pending,
            "stats": self.stats.summary(),
        }


# --- matching ------------------------------------------------------------------------------


def _match_key(name: str) -> str:
    """The normalised form names are compared in; names made only of punctuation ("!!!") keep it."""
    return normalize_name(name) or " ".join(name.casefold().split())


def exact_key(name: str) -> str:
    """The key two names share exactly when `name_score` gives them 100: the normalised form
    without spaces ("" for a blank name). Lets a dump be matched by dictionary look-ups.
    Normalisation casefolds first anyway; doing it here lets plain names take its fast path."""
    return _match_key(name.casefold()).replace(" ", "")


def name_score(a: str, b: str) -> float:
    """Similarity (0–100, one decimal) of two names after normalisation: case, accents,
    punctuation, a leading "The"; spaces are also ignored once (`AC/DC` meets `ACDC`)."""
    left, right = _match_key(a), _match_key(b)
    score = fuzz.ratio(left, right)
    if " " in left or " " in right:
        score = max(score, fuzz.ratio(left.replace(" ", ""), right.replace(" ", "")))
    return round(float(score), 1)


def alias_names(candidate: Mapping[str, Any]) -> list[str]:
    """The names of a MusicBrainz artist's aliases (objects with a `name`, or plain strings)."""
    aliases = candidate.get("aliases")
    if not isinstance(aliases, list):
        return []
    names = []
    for alias in aliases:
        name = alias.get("name") if isinstance(alias, Mapping) else alias
        if isinstance(name, str) and name.strip():
            names.append(name)
    return names


def _mb_score(candidate: Mapping[str, Any]) -> float:
    try:
        return float(candidate.get("score") or 0)
    except (TypeError, ValueError):
        return 0.0


def _name_or_alias_score(name: str, candidate: Mapping[str, Any]) -> tuple[float, str | None]:
    """The best score of `name` against a candidate's name and aliases, and the alias that
    gave it (None when the name itself scores best)."""
    score, via = name_score(name, str(candidate.get("name") or "")), None
    for alias in alias_names(candidate):
        alias_score = name_score(name, alias)
        if alias_score > score:
            score, via = alias_score, alias
    return score, via


def best_match(
    name: str, candidates: Sequence[Mapping[str, Any]], threshold: float = DEFAULT_THRESHOLD
) -> tuple[dict[str, Any] | None, float, list[dict[str, Any]]]:
    """Choose the MusicBrainz candidate that is `name`, if any.

    Each candidate (a search result: `id`, `name`, `score`, `aliases`) is scored by rapidfuzz
    on normalised names, the best of its name and its aliases. Ties go to the higher rapidfuzz
    score, then MusicBrainz's own score, then the smaller mbid. The best candidate is accepted
    only when its score is at least `threshold`.

    Returns (accepted candidate or None, its score or else the best rejected score (0 when
    there is no candidate), the rejected candidates as {"mbid", "name", "score", "reason"}).
    """
    scored: list[tuple[float, float, str, str, str | None, Mapping[str, Any]]] = []
    for candidate in candidates:
        mbid, mb_name = candidate.get("id"), candidate.get("name")
        if not isinstance(mbid, str) or not mbid or not isinstance(mb_name, str):
            continue
        score, via = _name_or_alias_score(name, candidate)
        scored.append((score, _mb_score(candidate), mbid, mb_name, via, candidate))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))

    accepted: dict[str, Any] | None = None
    rejected: list[dict[str, Any]] = []
    for score, _, mbid, mb_name, via, candidate in scored:
        if accepted is None and score >= threshold:
            accepted = dict(candidate)
            continue
        by = f" (alias {via!r})" if via else ""
        if score < threshold:
            reason = f"score {score:g}{by} below threshold {threshold:g}"
        else:
            reason = f"score {score:g}{by} passes, but {accepted and accepted['id']} ranks higher"
        rejected.append({"mbid": mbid, "name": mb_name, "score": score, "reason": reason})
    best = scored[0][0] if scored else 0.0
    return accepted, best, rejected


def parse_genres(body: Any) -> list[tuple[str, int]]:
    """(genre, votes) from an artist lookup with `inc=genres`, most votes first, then by name.

    Genres without a positive vote count (voted down to nothing) are dropped; a `genres` that
    is not a list counts as none, and a count beyond MAX_VOTES (or infinite) as MAX_VOTES."""
    if not isinstance(body, Mapping):
        raise GenremapError(f"{SERVICE} artist lookup answered {type(body).__name__}, not an object")
    votes: dict[str, int] = {}
    genres = body.get("genres")
    for genre in genres if isinstance(genres, list) else []:
        if not isinstance(genre, Mapping):
            continue
        name, count = genre.get("name"), genre.get("count")
        if not isinstance(name, str) or not name.strip():
            continue
        try:
            count = min(int(count or 0), MAX_VOTES)
        except OverflowError:  # an infinite float
            count = MAX_VOTES if isinstance(count, float) and count > 0 else 0
        except (TypeError, ValueError):
            count = 0
        if count > 0:
            votes[name.strip()] = max(count, votes.get(name.strip(), 0))
    return sorted(votes.items(), key=lambda item: (-item[1], item[0]))


def genres_from_tags(candidate: Mapping[str, Any]) -> list[tuple[str, int]] | None:
    """(genre, votes) from a search result's `tags`, keeping the tags on MusicBrainz's genre
    list (that is what a genre is); None when the candidate carries no `tags` list."""
    tags = candidate.get("tags")
    if not isinstance(tags, list):
        return None
    genres = [t for t in tags if isinstance(t, Mapping) and isinstance(t.get("name"), str)]
    return parse_genres({"genres": [t for t in genres if is_musicbrainz_genre(t["name"])]})


def how_matched(name: str, accepted: Mapping[str, Any]) -> str:
    """How `name` matched a candidate by name: "name score S" or "alias 'A' score S"."""
    score, via = _name_or_alias_score(name, accepted)
    return f"alias {via!r} score {score:g}" if via else f"name score {score:g}"


# --- choosing and saving, shared by the web service and the dump ---------------------------


def check_enrich_options(threshold: float, limit: int | None) -> None:
    """Refuse a --threshold outside 0–100 and a negative --limit, before any work."""
    if not 0 <= threshold <= 100:
        raise UsageError(f"--threshold {threshold:g}: expected a score between 0 and 100")
    if limit is not None and limit < 0:
        raise UsageError(f"--limit {limit}: expected a number of artists, 0 or more")


def artists_to_enrich(store: Store, result: EnrichResult, *, limit: int | None, refresh: bool) -> list[tuple[str, str]]:
    """(artist_id, name) to answer in this run: the artists without Spotify genres, minus those
    answered before unless `refresh`, the first `limit` of them. Fills `result`'s
    skipped_cached and pending."""
    todo = store.artists_for_musicbrainz(refresh=refresh)
    result.skipped_cached = 0 if refresh else store.musicbrainz_cached_count()
    chosen = todo if limit is None else todo[:limit]
    result.pending = len(todo) - len(chosen)
    return chosen


def save_match(store: Store, match: MusicBrainzMatch, result: EnrichResult, origin: str = "musicbrainz") -> None:
    """Cache one artist's answer (genres with their votes for a match) and count it in `result`."""
    store.save_musicbrainz_lookup(
        match.artist_id,
        match.name,
        status=match.status,
        mbid=match.mbid,
        mb_name=match.mb_name,
        score=match.score,
        candidates=match.candidates,
        genres=match.genres,
        origin=origin,
        method=match.method,
    )
    result.looked_up += 1
    if match.status == MATCHED:
        result.matched += 1
        result.genres_added += len(match.genres)
    else:
        result.no_match += 1


# --- talking to MusicBrainz ---------------------------------------------------------------


def _check_api(api: str) -> str:
    """The API base without a trailing slash; https only (plain http to a loopback host only)."""
    return require_https(api, "--mb-api").strip().rstrip("/")


def _is_official(api: str) -> bool:
    host = (urlsplit(api).hostname or "").lower()
    return host == OFFICIAL_HOST or host.endswith("." + OFFICIAL_HOST)


def musicbrainz_client(
    api: str = DEFAULT_MB_API,
    *,
    contact: str | None = None,
    retrying: Retrying | None = None,
    min_interval: float = 1.0,
) -> JsonClient:
    """A JsonClient for MusicBrainz: one rate limiter for every call, genremap's User-Agent.

    Against musicbrainz.org the interval is never below one second, whatever is asked."""
    api = _check_api(api)
    if _is_official(api):
        min_interval = max(min_interval, 1.0)
    return JsonClient(
        api,
        service=SERVICE,
        user_agent=user_agent(contact),
        retrying=retrying or Retrying(SERVICE),
        min_interval=min_interval,
    )


def _get(client: JsonClient, path: str, params: Mapping[str, Any], endpoint: str, artist: str) -> Any:
    """get_json, with an HTTP status nothing should be retried on turned into a user error."""
    try:
        return client.get_json(path, params, endpoint)
    except HttpStatusError as exc:
        raise GenremapError(
            f"{SERVICE} answered HTTP {exc.status} to {endpoint.split('.')[-1]} for artist {artist!r} "
            f"({exc}); nothing was recorded for this artist, earlier ones are saved"
        ) from exc


def isrc_artists(client: JsonClient, isrc: str, artist: str) -> set[str]:
    """The mbids credited on the recordings MusicBrainz knows under `isrc` (one request to
    `/isrc/{isrc}?inc=artist-credits`); empty when MusicBrainz does not know the ISRC (404)."""
    path = f"isrc/{quote(isrc, safe='')}"
    try:
        body = client.get_json(path, {"inc": "artist-credits", "fmt": "json"}, ISRC_ENDPOINT)
    except HttpStatusError as exc:
        if exc.status == 404:
            return set()
        raise GenremapError(
            f"{SERVICE} answered HTTP {exc.status} to the ISRC lookup {isrc} for artist {artist!r} ({exc}); "
            "nothing was recorded for this artist, earlier ones are saved"
        ) from exc
    recordings = body.get("recordings") if isinstance(body, Mapping) else None
    found: set[str] = set()
    for recording in recordings if isinstance(recordings, list) else []:
        credits = recording.get("artist-credit") if isinstance(recording, Mapping) else None
        for credit in credits if isinstance(credits, list) else []:
            who = credit.get("artist") if isinstance(credit, Mapping) else None
            if isinstance(who, Mapping) and isinstance(who.get("id"), str):
                found.add(who["id"])
    return found


def lookup_artist(
    client: JsonClient,
    artist_id: str,
    name: str,
    threshold: float = DEFAULT_THRESHOLD,
    isrcs: Sequence[str] = (),
) -> MusicBrainzMatch:
    """Search MusicBrainz for one artist (one request) and decide from its answer. Writes nothing.

    The accepted candidate's genres come from the search answer's `tags` (those on
    MusicBrainz's genre list), so most artists cost this one request. The artist lookup
    (`/artist/{mbid}?inc=genres`, a second request) is still sent when the answer cannot say:
    when no candidate of the answer carries a `tags` list (a server that leaves tags out of
    searches). A candidate without `tags` in an answer where others have them has no tags
    (MusicBrainz leaves empty lists out). When several candidates pass the threshold and the
    artist has ISRCs (`isrcs`, from its tracks), up to MAX_ISRCS ISRC lookups name the exact one."""
    if not name.strip():
        return MusicBrainzMatch(artist_id, name, NO_MATCH)
    params = {"query": search_query(name), "fmt": "json", "limit": SEARCH_LIMIT}
    body = _get(client, "artist", params, SEARCH_ENDPOINT, name)
    artists = body.get("artists") if isinstance(body, Mapping) else None
    if not isinstance(artists, list):
        raise GenremapError(f"{SERVICE} search answered without an `artists` list for artist {name!r}")
    candidates = [a for a in artists if isinstance(a, Mapping)]
    answer_has_tags = any(isinstance(c.get("tags"), list) for c in candidates)

    def genres_of(accepted: Mapping[str, Any]) -> list[tuple[str, int]]:
        from_tags = genres_from_tags(accepted)
        if from_tags is not None or answer_has_tags:
            return from_tags or []
        path = f"artist/{quote(str(accepted['id']), safe='')}"
        return parse_genres(_get(client, path, {"inc": "genres", "fmt": "json"}, LOOKUP_ENDPOINT, name))

    def by_isrc(passing: Sequence[str]) -> tuple[str, str] | None:
        for isrc in list(isrcs)[:MAX_ISRCS]:
            named = isrc_artists(client, isrc, name) & set(passing)
            if len(named) == 1:
                return named.pop(), isrc
        return None

    return decide_match(artist_id, name, candidates, threshold, genres_of, by_isrc if isrcs else None)


def decide_match(
    artist_id: str,
    name: str,
    candidates: Sequence[Mapping[str, Any]],
    threshold: float,
    genres_of: Callable[[Mapping[str, Any]], list[tuple[str, int]]],
    by_isrc: Callable[[Sequence[str]], tuple[str, str] | None] | None = None,
) -> MusicBrainzMatch:
    """The answer for one artist from its MusicBrainz candidates (a search page or a dump's
    same-name artists): `best_match` chooses, `genres_of` gives the accepted one's genres.

    When several candidates pass the threshold and `by_isrc` is given, it receives their
    mbids and may name the right one (mbid, ISRC): that one is accepted instead of the best
    by name, and the others are rejected with the ISRC as the reason."""
    accepted, score, rejected = best_match(name, candidates, threshold)
    if accepted is None:
        return MusicBrainzMatch(artist_id, name, NO_MATCH, score=score, candidates=rejected)
    method = how_matched(name, accepted)
    passing = [c["mbid"] for c in rejected if c["score"] >= threshold]
    chosen = by_isrc([str(accepted["id"]), *passing]) if by_isrc and passing else None
    if chosen is not None:
        accepted, score, rejected = _prefer(name, chosen[0], candidates, accepted, score, rejected)
        method = f"ISRC {chosen[1]} names {chosen[0]} among {len(passing) + 1} candidates passing the threshold"
        for c in rejected:
            if c["score"] >= threshold:
                c["reason"] = f"score {c['score']:g} passes, but ISRC {chosen[1]} names {chosen[0]}"
    return MusicBrainzMatch(
        artist_id,
        name,
        MATCHED,
        mbid=str(accepted["id"]),
        mb_name=str(accepted.get("name")),
        score=score,
        candidates=rejected,
        genres=genres_of(accepted),
        method=method,
    )


def _prefer(
    name: str,
    mbid: str,
    candidates: Sequence[Mapping[str, Any]],
    accepted: dict[str, Any],
    score: float,
    rejected: list[dict[str, Any]],
) -> tuple[dict[str, Any], float, list[dict[str, Any]]]:
    """(accepted, score, rejected) with the candidate `mbid` accepted in place of `accepted`,
    which joins the rejected ones (unchanged when `mbid` is the accepted one already)."""
    if mbid == accepted["id"]:
        return accepted, score, rejected
    winner = next(c for c in candidates if c.get("id") == mbid)
    former = {"mbid": accepted["id"], "name": accepted.get("name"), "score": score}
    return dict(winner), _name_or_alias_score(name, winner)[0], [former, *(c for c in rejected if c["mbid"] != mbid)]


def enrich_musicbrainz(
    store: Store,
    *,
    api: str = DEFAULT_MB_API,
    contact: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int | None = None,
    refresh: bool = False,
    retrying: Retrying | None = None,
    min_interval: float = 1.0,
    on_artist: Callable[[int, int], None] = lambda done, total: None,
    on_match: Callable[[MusicBrainzMatch], None] | None = None,
) -> EnrichResult:
    """Fill genres from MusicBrainz for artists that Spotify left without any.

    Only artists with no Spotify genres (Spotify answered [] or was never asked) whose
    MusicBrainz answer is not cached yet are searched. Names are compared after normalisation
    (case, accents, punctuation, a leading "The"), by rapidfuzz against each candidate's name
    and aliases; a match needs a score of at least --threshold (default 90), and its genres
    are stored, with their vote counts, under the source `musicbrainz`. Every answer is
    cached, "no match" included (with the rejected candidates and their scores, for
    `explain`), one artist at a time: a second run sends no request, and an interrupted run
    resumes where it stopped (`refresh`, the CLI's --all, asks again about artists answered
    before). MusicBrainz allows one request per second (each artist costs one
    search; the lookup of a matched artist's genres only when the search answer lacks its tags;
    ISRC lookups only for artists whose name several MusicBrainz artists pass) and asks for a User-Agent with a contact
    (--contact, default the project URL). A 503 is waited out (its Retry-After exactly, up to
    --max-wait), other failures are retried with backoff, within the retry policy's bounds.
    `api` must be https (plain http only to a loopback host), checked before any request.

    `on_artist(done, total)` is called before the first artist and after each one;
    `on_match` receives each artist's answer once it is saved. On an exception, the answers
    saved so far stay saved, and `retrying.stats` (when given) tells what was sent.
    """
    check_enrich_options(threshold, limit)
    retrying = retrying or Retrying(SERVICE)
    client = musicbrainz_client(api, contact=contact, retrying=retrying, min_interval=min_interval)
    before = sum(retrying.stats.requests.values())

    result = EnrichResult(stats=retrying.stats)
    chosen = artists_to_enrich(store, result, limit=limit, refresh=refresh)
    on_artist(0, len(chosen))
    for done, (artist_id, name) in enumerate(chosen, start=1):
        match = lookup_artist(client, artist_id, name, threshold, store.artist_isrcs(artist_id, MAX_ISRCS))
        result.requests = sum(retrying.stats.requests.values()) - before
        save_match(store, match, result)
        if on_match is not None:
            on_match(match)
        on_artist(done, len(chosen))
    result.requests = sum(retrying.stats.requests.values()) - before
    return result
