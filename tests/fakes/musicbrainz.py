"""A loopback fake of MusicBrainz's web service (`/ws/2`), for tests.

It answers artist searches (`GET /ws/2/artist?query=artist:"NAME" OR alias:"NAME"&fmt=json`)
from a small catalog, with MusicBrainz-like relevance scores (an exact name scores 100, a name
that merely contains the phrase less), and artist lookups (`GET /ws/2/artist/MBID?inc=genres`)
with genres and vote counts. Its query parser is stricter than MusicBrainz's: an unescaped
Lucene special character inside a phrase is a 400, so tests prove names are escaped.
Requests whose User-Agent lacks "genremap/" get a 403, as anonymous clients may in reality.
Searches carry each candidate's `tags` ([{count, name}], genres and free-form tags alike, left
out when there are none) as MusicBrainz's do, unless `search_tags=False`. ISRC lookups
(`GET /ws/2/isrc/ISRC?inc=artist-credits`) answer the recordings with that ISRC and their artist
credits (404 for an unknown ISRC). Every request is counted per kind ("search", "lookup",
"isrc"). Faults are scripted per request: `{("search", 1): "503-retry-after:5", ("lookup", 2): "drop"}`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fakes.loopback import LoopbackServer

LUCENE_SPECIAL = frozenset('+-&|!(){}[]^"~*?:\\/')
FIELDS = ("artist", "alias")


def mbid(key: str) -> str:
    """A stable, MusicBrainz-looking id for a catalog entry."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-musicbrainz:{key}"))


def entry(
    name: str,
    genres: list[tuple[str, int]] | None = None,
    *,
    aliases: list[str] | None = None,
    key: str | None = None,
    sort_name: str | None = None,
    disambiguation: str = "",
    kind: str = "Group",
    tags: list[tuple[str, int]] | None = None,
    isrcs: list[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(mbid, catalog record) for one artist; `key` tells apart artists of the same name.
    `tags` are free-form tags that are not genres (searches return them with the genres);
    `isrcs` are the ISRCs of the artist's recordings (answered by the ISRC endpoint)."""
    return mbid(key or name), {
        "tags": list(tags or []),
        "isrcs": list(isrcs or []),
        "name": name,
        "aliases": list(aliases or []),
        "genres": list(genres or []),
        "sort-name": sort_name or name,
        "disambiguation": disambiguation,
        "type": kind,
    }


# A small catalog with the cases matching has to get right.
DEFAULT_CATALOG: dict[str, dict[str, Any]] = dict(
    [
        entry("The Beatles", [("rock", 30), ("pop", 25), ("psychedelic rock", 12)], sort_name="Beatles, The"),
        entry("The Beatles Revival Band", [("rock", 1)], sort_name="Beatles Revival Band, The"),
        entry("Beyoncé", [("contemporary r&b", 9), ("pop", 9), ("hip hop", 3)], kind="Person"),
        entry("Diddy", [("hip hop", 7), ("east coast hip hop", 2)], aliases=["Puff Daddy", "P. Diddy"], kind="Person"),
        entry("AC/DC", [("hard rock", 20), ("rock", 8)]),
        entry("Mötley Crüe", [("glam metal", 11), ("heavy metal", 6)]),
        entry("Sunn O)))", [("drone metal", 5), ("doom metal", 2)]),
        entry("!!!", [("dance-punk", 4)]),
        entry(
            "Nirvana",
            [("grunge", 40)],
            key="nirvana-us",
            disambiguation="US grunge band",
            tags=[("seattle", 6), ("90s", 4)],
            isrcs=["USGF19942501"],
        ),
        entry(
            "Nirvana",
            [("psychedelic pop", 3)],
            key="nirvana-uk",
            disambiguation="60s band from the UK",
            isrcs=["GBAAA6700001"],
        ),
        entry("Obscure Band", [], kind="Group"),
    ]
)

FaultKey = tuple[str, int]


def fold(text: str) -> list[str]:
    """Words of `text` as the fake indexes them: lowercase, no accents, no punctuation."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = re.sub(r"[^\w]+", " ", plain).split()
    return words or text.casefold().split()


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


class QueryError(ValueError):
    """A query the fake (strictly) refuses, as MusicBrainz answers 400."""


def parse_query(query: str) -> list[tuple[str, str]]:
    """`artist:"A" OR alias:"B"` → [("artist", "A"), ("alias", "B")]; QueryError when malformed
    or when a Lucene special character inside a phrase is not backslash-escaped."""
    clauses: list[tuple[str, str]] = []
    pos = 0
    while True:
        match = re.compile(r"\s*([a-z]+):\"").match(query, pos)
        if not match:
            raise QueryError(f'expected field:"phrase" at {pos}: {query!r}')
        field = match.group(1)
        if field not in FIELDS:
            raise QueryError(f"unknown field {field!r}")
        pos = match.end()
        phrase: list[str] = []
        while True:
            if pos >= len(query):
                raise QueryError(f"unterminated phrase: {query!r}")
            ch = query[pos]
            if ch == "\\":
                if pos + 1 >= len(query):
                    raise QueryError("dangling backslash")
                phrase.append(query[pos + 1])
                pos += 2
                continue
            pos += 1
            if ch == '"':
                break
            if ch in LUCENE_SPECIAL:
                raise QueryError(f"unescaped {ch!r} in phrase: {query!r}")
            phrase.append(ch)
        clauses.append((field, "".join(phrase)))
        rest = re.compile(r"\s+OR\s+").match(query, pos)
        if rest:
            pos = rest.end()
            continue
        if query[pos:].strip():
            raise QueryError(f"unexpected text after phrase: {query[pos:]!r}")
        return clauses


class FakeMusicBrainz(LoopbackServer):
    """MusicBrainz's web service on 127.0.0.1, on a daemon thread. Use as a context manager.

    `catalog`: {mbid: {"name", "aliases", "genres": [(name, count)], ...}}.
    `faults`: {("search"|"lookup", n): fault} for the n-th (1-based) request of that kind, where
    fault is "503", "503-retry-after:N", "malformed", "drop" (close without answering),
    "slow" (answer after `slow_seconds`) or any HTTP status such as "400".
    `timer` stamps `request_times` (pass a fake clock's `monotonic` to see fake time).
    """

    def __init__(
        self,
        catalog: Mapping[str, Mapping[str, Any]] | None = None,
        faults: Mapping[FaultKey, str] | None = None,
        *,
        timer: Callable[[], float] = time.monotonic,
        slow_seconds: float = 1.0,
        required_agent: str = "genremap/",
        search_tags: bool = True,
    ) -> None:
        self.search_tags = search_tags
        self.catalog: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (catalog or DEFAULT_CATALOG).items()}
        self.faults: dict[FaultKey, str] = dict(faults or {})
        self.timer = timer
        self.slow_seconds = slow_seconds
        self.required_agent = required_agent
        self.requests: Counter[str] = Counter()  # "search", "lookup", "other": every arrival
        self.statuses: Counter[int] = Counter()
        self.request_times: list[float] = []
        self.user_agents: list[str] = []
        self.queries: list[str] = []  # the `query` of every search, as received
        self.lookups: list[str] = []  # the mbid of every lookup
        self.isrcs: list[str] = []  # the ISRC of every ISRC lookup
        self._lock = threading.Lock()
        self.api = ""

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeMusicBrainz:
        self.api = self._serve(_Handler, "fake-musicbrainz") + "/ws/2"
        return self

    # --- helpers for tests ------------------------------------------------------------------
    def add(self, mbid_: str, record: Mapping[str, Any]) -> None:
        with self._lock:
            self.catalog[mbid_] = dict(record)

    def mbid_of(self, name: str) -> str:
        """The mbid of the (first) catalog artist named exactly `name`."""
        return next(k for k, v in sorted(self.catalog.items()) if v["name"] == name)

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    # --- answers ----------------------------------------------------------------------------
    def arrive(self, kind: str, agent: str) -> str | None:
        """Count an arrival; the scripted fault for it, if any."""
        with self._lock:
            self.requests[kind] += 1
            self.request_times.append(self.timer())
            self.user_agents.append(agent)
            return self.faults.get((kind, self.requests[kind]))

    def search(self, query: str, limit: int) -> dict[str, Any]:
        clauses = parse_query(query)
        found: list[tuple[int, str, str]] = []
        with self._lock:
            catalog = list(self.catalog.items())
        for key, record in catalog:
            best = 0
            for field, phrase in clauses:
                wanted = fold(phrase)
                names = [record["name"]] if field == "artist" else list(record.get("aliases") or [])
                for name in names:
                    words = fold(name)
                    if words == wanted:
                        score = 100 if field == "artist" else 95
                    elif _contains(words, wanted):
                        score = max(1, round(100 * len(wanted) / len(words)))
                    else:
                        continue
                    best = max(best, score)
            if best:
                found.append((best, record["name"], key))
        found.sort(key=lambda f: (-f[0], f[1], f[2]))
        artists = []
        for score, _, key in found[:limit]:
            record = self.catalog[key]
            item: dict[str, Any] = {
                "id": key,
                "type": record.get("type", "Group"),
                "score": score,
                "name": record["name"],
                "sort-name": record.get("sort-name", record["name"]),
                "disambiguation": record.get("disambiguation", ""),
            }
            tags = [{"count": c, "name": g} for g, c in [*record.get("genres", []), *record.get("tags", [])]]
            if tags and self.search_tags:
                item["tags"] = tags
            if record.get("aliases"):
                item["aliases"] = [
                    {"name": a, "sort-name": a, "type": "Artist name", "locale": None, "primary": None}
                    for a in record["aliases"]
                ]
            artists.append(item)
        return {"created": "2024-01-01T00:00:00.000Z", "count": len(found), "offset": 0, "artists": artists}

    def lookup(self, key: str, inc: str) -> dict[str, Any] | None:
        with self._lock:
            record = self.catalog.get(key)
        if record is None:
            return None
        body: dict[str, Any] = {
            "id": key,
            "name": record["name"],
            "sort-name": record.get("sort-name", record["name"]),
            "type": record.get("type", "Group"),
            "disambiguation": record.get("disambiguation", ""),
        }
        if "genres" in inc.split("+"):
            body["genres"] = [
                {"id": mbid(f"genre:{g}"), "name": g, "count": c, "disambiguation": ""}
                for g, c in record.get("genres", [])
            ]
        return body

    def isrc(self, isrc: str) -> dict[str, Any] | None:
        """The ISRC lookup's answer: one recording per catalog artist with `isrc`, or None."""
        with self._lock:
            catalog = sorted(self.catalog.items())
        recordings = [
            {
                "id": mbid(f"recording:{isrc}:{key}"),
                "title": f"Recording {isrc}",
                "length": 240000,
                "video": False,
                "disambiguation": "",
                "artist-credit": [
                    {
                        "name": record["name"],
                        "joinphrase": "",
                        "artist": {
                            "id": key,
                            "name": record["name"],
                            "sort-name": record.get("sort-name", record["name"]),
                            "disambiguation": record.get("disambiguation", ""),
                            "type": record.get("type", "Group"),
                        },
                    }
                ],
            }
            for key, record in catalog
            if isrc in record.get("isrcs", [])
        ]
        return {"isrc": isrc, "recordings": recordings} if recordings else None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeMusicBrainz
    server_version = "FakeMusicBrainz/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def _send(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode("utf-8")
        with self.fake._lock:
            self.fake.statuses[status] += 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/")
        if path == "/ws/2/artist":
            kind = "search"
        elif path.startswith("/ws/2/artist/"):
            kind = "lookup"
        elif path.startswith("/ws/2/isrc/"):
            kind = "isrc"
        else:
            kind = "other"
        agent = self.headers.get("User-Agent", "")
        fault = fake.arrive(kind, agent)
        if fake.required_agent not in agent:
            self._send(403, {"error": "Your requests are blocked: send a meaningful User-Agent."})
            return
        if fault is not None and self._fault(fault):
            return
        if kind == "other":
            self._send(404, {"error": "Not Found"})
            return
        if params.get("fmt") != "json":
            self._send(400, {"error": "this fake only speaks JSON: pass fmt=json"})
            return
        if kind == "search":
            query = params.get("query", "")
            with fake._lock:
                fake.queries.append(query)
            try:
                limit = max(1, min(100, int(params.get("limit", "25"))))
                answer = fake.search(query, limit)
            except (QueryError, ValueError) as exc:
                self._send(400, {"error": f"Invalid query: {exc}"})
                return
            self._send(200, answer)
            return
        key = unquote(path.rsplit("/", 1)[1])
        with fake._lock:
            (fake.isrcs if kind == "isrc" else fake.lookups).append(key)
        found = fake.isrc(key) if kind == "isrc" else fake.lookup(key, params.get("inc", ""))
        if found is None:
            self._send(404, {"error": "Not Found"})
        else:
            self._send(200, found)

    def _fault(self, fault: str) -> bool:
        """Act out a scripted fault; False when it only delays the normal answer."""
        if fault == "503":
            self._send(503, {"error": "Your requests are exceeding the allowable rate limit."})
        elif fault.startswith("503-retry-after:"):
            seconds = fault.split(":", 1)[1]
            self._send(503, {"error": "rate limited"}, {"Retry-After": seconds})
        elif fault == "malformed":
            self._send(200, b'{"created": "2024-01-01", "artists": [')
        elif fault == "drop":
            self.close_connection = True
        elif fault == "slow":
            time.sleep(self.fake.slow_seconds)
            return False
        elif fault.isdigit():
            self._send(int(fault), {"error": f"scripted {fault}"})
        else:
            raise ValueError(f"unknown fault {fault!r}")
        return True
