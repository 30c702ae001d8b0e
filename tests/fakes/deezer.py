"""A loopback fake of Deezer's public API and of a preview host, for tests.

One stdlib ThreadingHTTPServer on 127.0.0.1 (a daemon thread) answers:

- `GET /search/track?q=artist:"X" track:"Y"&limit=N` from a small catalog. Like Deezer's
  fuzzy search it is lenient: a track matching the artist phrase *or* the title phrase is a
  result (both first), so covers and other songs of the artist reach the client's matching.
  A query not of that form is a 400, so tests prove the query is built right.
- `GET /track/isrc:<ISRC>`: the track object with its "isrc", or Deezer's 200 answer
  `{"error": {"type": "DataException", "message": "no data", "code": 800}}`.
- `GET /preview/<name>.mp3`: bytes served with `audio/mpeg` (catalog tracks are `dz<id>`;
  others are added with `serve`).

Faults are scripted per request: `{(key, n): fault}` acts on the n-th (1-based) request of
`key`, where key is a kind ("search", "isrc", "preview") or a resource ("preview/<name>",
"isrc/<ISRC>"). Faults: "quota" (error code 4 inside a 200), "busy" (code 700), an HTTP
status such as "404" or "500", "503-retry-after:N", "malformed" (broken JSON), "slow"
(answer after `slow_seconds`), "drop" (close without answering), and for previews "html"
(text/html), "redirect:<URL>" (a 302 to URL), "octet" (the right bytes as application/octet-stream), "not-mp3" (audio/mpeg
that is not MP3), "truncated" (Content-Length announced, half sent), "oversize",
"oversize-nolength" (no Content-Length, read until close), "oversize-chunked" (chunked),
"lying-length" (Content-Length smaller than the oversize body sent) and "trickle" (the file,
one byte every `trickle_seconds` of fake time: see `fakes.loopback.trickle`; pass a fake
clock's `advance`). Oversize bodies are the file padded to `oversize_bytes`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fakes.loopback import LoopbackServer, trickle

QUERY = re.compile(r'^artist:"(?P<artist>[^"]*)" track:"(?P<track>[^"]*)"$')
QUOTA_ERROR = {"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}}
BUSY_ERROR = {"error": {"type": "Exception", "message": "The service is busy", "code": 700}}
NO_DATA_ERROR = {"error": {"type": "DataException", "message": "no data", "code": 800}}
NOT_MP3 = b"This is not an MP3 file, whatever its content type says.\n" * 20
HTML = b"<!doctype html><html><body><h1>Preview unavailable</h1></body></html>\n"


@dataclass
class FakeTrack:
    """One Deezer track of the fake's catalog; `audio` b"" means Deezer has no preview."""

    id: int
    artist: str
    title: str
    duration: int  # seconds, as Deezer gives it
    audio: bytes = b""
    isrc: str = ""
    version: str = ""  # e.g. "Remastered 2011": the title becomes "Title (Remastered 2011)"
    album: str = "An Album"
    rank: int = 500_000


def fold(text: str) -> list[str]:
    """Words of `text` as the fake indexes them: lowercase, no accents, no punctuation."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^\w]+", " ", plain).split()


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


class FakeDeezer(LoopbackServer):
    """Deezer's API and a preview host on 127.0.0.1. Use as a context manager.

    `requests` counts every arrival by kind ("search", "isrc", "preview", "other"),
    `resources` by resource ("preview/<name>", "isrc/<ISRC>"); `queries` holds every search's
    `q`; `request_times` stamps arrivals with `timer` (pass a fake clock's `monotonic`).
    """

    def __init__(
        self,
        catalog: Iterable[FakeTrack] = (),
        faults: Mapping[tuple[str, int], str] | None = None,
        *,
        timer: Callable[[], float] = time.monotonic,
        slow_seconds: float = 1.0,
        oversize_bytes: int = 200_000,
        lying_length: int = 1_000,
        advance: Callable[[float], None] = lambda seconds: None,
        trickle_seconds: float = 2.0,
        trickle_pause: float = 0.003,
    ) -> None:
        self.faults: dict[tuple[str, int], str] = dict(faults or {})
        self.timer = timer
        self.advance = advance
        self.trickle_seconds = trickle_seconds
        self.trickle_pause = trickle_pause
        self.slow_seconds = slow_seconds
        self.oversize_bytes = oversize_bytes
        self.lying_length = lying_length
        self.tracks: dict[int, FakeTrack] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: Counter[str] = Counter()
        self.resources: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.queries: list[str] = []
        self.paths: list[str] = []
        self.request_times: list[float] = []
        self._lock = threading.Lock()
        self.base = ""
        for track in catalog:
            self.add(track)

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeDeezer:
        self.base = self._serve(_Handler, "fake-deezer")
        return self

    # --- catalog and files ------------------------------------------------------------------
    @property
    def api(self) -> str:
        """The base URL to pass as --deezer-api."""
        return self.base

    def preview_url(self, name: str) -> str:
        return f"{self.base}/preview/{name}.mp3"

    def add(self, track: FakeTrack) -> None:
        with self._lock:
            self.tracks[track.id] = track
            if track.audio:
                self.files[f"dz{track.id}"] = (track.audio, "audio/mpeg")

    def serve(self, name: str, data: bytes, content_type: str = "audio/mpeg") -> str:
        """Serve `data` at /preview/<name>.mp3; returns its URL."""
        with self._lock:
            self.files[name] = (data, content_type)
        return self.preview_url(name)

    def set_faults(self, faults: Mapping[tuple[str, int], str]) -> None:
        """Replace the scripted faults (counts go on from where they are)."""
        with self._lock:
            self.faults = dict(faults)

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self.requests.items() if v}

    # --- answers ----------------------------------------------------------------------------
    def arrive(self, kind: str, resource: str, path: str) -> str | None:
        """Count an arrival; the scripted fault for it, if any."""
        with self._lock:
            self.requests[kind] += 1
            self.paths.append(path)
            self.request_times.append(self.timer())
            fault = self.faults.get((kind, self.requests[kind]))
            if resource:
                self.resources[resource] += 1
                fault = self.faults.get((resource, self.resources[resource]), fault)
            return fault

    def track_json(self, track: FakeTrack, *, with_isrc: bool = False) -> dict[str, Any]:
        title = f"{track.title} ({track.version})" if track.version else track.title
        body: dict[str, Any] = {
            "id": track.id,
            "readable": True,
            "title": title,
            "title_short": track.title,
            "title_version": f"({track.version})" if track.version else "",
            "link": f"https://www.deezer.com/track/{track.id}",
            "duration": track.duration,
            "rank": track.rank,
            "explicit_lyrics": False,
            "preview": self.preview_url(f"dz{track.id}") if track.audio else "",
            "artist": {"id": 1000 + track.id, "name": track.artist, "type": "artist"},
            "album": {"id": 2000 + track.id, "title": track.album, "type": "album"},
            "type": "track",
        }
        if with_isrc:
            body["isrc"] = track.isrc
        return body

    def search(self, artist: str, title: str, limit: int) -> dict[str, Any]:
        wanted_artist, wanted_title = fold(artist), fold(title)
        with self._lock:
            tracks = list(self.tracks.values())
        hits: list[tuple[int, int, int, FakeTrack]] = []
        for track in tracks:
            by_artist = _contains(fold(track.artist), wanted_artist)
            by_title = _contains(fold(f"{track.title} {track.version}"), wanted_title)
            if by_artist or by_title:
                hits.append((-(by_artist + by_title), -track.rank, track.id, track))
        hits.sort(key=lambda h: h[:3])
        data = [self.track_json(h[3]) for h in hits[:limit]]
        answer: dict[str, Any] = {"data": data, "total": len(hits)}
        if len(hits) > limit:
            answer["next"] = f"{self.base}/search/track?index={limit}"
        return answer

    def by_isrc(self, isrc: str) -> dict[str, Any]:
        with self._lock:
            found = next((t for t in self.tracks.values() if t.isrc and t.isrc == isrc), None)
        return NO_DATA_ERROR if found is None else self.track_json(found, with_isrc=True)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDeezer
    server_version = "FakeDeezer/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def _count(self, status: int) -> None:
        with self.fake._lock:
            self.fake.statuses[status] += 1

    def _send(
        self,
        status: int,
        body: Any = None,
        *,
        content_type: str = "application/json; charset=utf-8",
        headers: Mapping[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode("utf-8")
        self._count(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        kind, resource = "other", ""
        if path == "/search/track":
            kind = "search"
        elif path.startswith("/track/isrc:"):
            kind, resource = "isrc", f"isrc/{path.split(':', 1)[1]}"
        elif path.startswith("/preview/") and path.endswith(".mp3"):
            kind, resource = "preview", f"preview/{path[len('/preview/') : -len('.mp3')]}"
        fault = fake.arrive(kind, resource, self.path)
        if fault is not None and self._fault(fault, resource):
            return
        if kind == "search":
            query = params.get("q", "")
            with fake._lock:
                fake.queries.append(query)
            match = QUERY.match(query)
            if match is None:
                self._send(400, {"error": {"type": "QueryException", "message": f"unexpected query {query!r}"}})
                return
            limit = max(1, min(100, int(params.get("limit", "25"))))
            self._send(200, fake.search(match["artist"], match["track"], limit))
        elif kind == "isrc":
            self._send(200, fake.by_isrc(resource.split("/", 1)[1]))
        elif kind == "preview":
            with fake._lock:
                file = fake.files.get(resource.split("/", 1)[1])
            if file is None:
                self._send(404, b"not found", content_type="text/plain")
            else:
                self._send(200, file[0], content_type=file[1])
        else:
            self._send(404, {"error": {"type": "DataException", "message": "no data", "code": 800}})

    def _file(self, resource: str) -> bytes:
        with self.fake._lock:
            file = self.fake.files.get(resource.split("/", 1)[-1])
        return file[0] if file else b""

    def _fault(self, fault: str, resource: str) -> bool:
        """Act out a scripted fault; False when it only delays the normal answer."""
        fake = self.fake
        if fault == "quota":
            self._send(200, QUOTA_ERROR)
        elif fault == "busy":
            self._send(200, BUSY_ERROR)
        elif fault.startswith("503-retry-after:"):
            self._send(503, {"error": "rate limited"}, headers={"Retry-After": fault.split(":", 1)[1]})
        elif fault.isdigit():
            self._send(int(fault), {"error": f"scripted {fault}"})
        elif fault.startswith("redirect:"):
            self._send(302, b"", content_type="text/plain", headers={"Location": fault.split(":", 1)[1]})
        elif fault == "malformed":
            self._send(200, b'{"data": [')
        elif fault == "drop":
            self.close_connection = True
        elif fault == "slow":
            time.sleep(fake.slow_seconds)
            return False
        elif fault == "html":
            self._send(200, HTML, content_type="text/html; charset=utf-8")
        elif fault == "octet":
            self._send(200, self._file(resource), content_type="application/octet-stream")
        elif fault == "not-mp3":
            self._send(200, NOT_MP3, content_type="audio/mpeg")
        elif fault == "truncated":
            body = self._file(resource)
            self._send(200, body[: len(body) // 2], content_type="audio/mpeg", length=len(body))
            self.close_connection = True
        elif fault.startswith("oversize") or fault == "lying-length":
            self._oversize(fault, self._file(resource))
        elif fault == "trickle":
            body = self._file(resource)
            self._count(200)
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            trickle(self.wfile, body, step=fake.trickle_seconds, advance=fake.advance, pause=fake.trickle_pause)
        else:
            raise ValueError(f"unknown fault {fault!r}")
        return True

    def _oversize(self, fault: str, audio: bytes) -> None:
        body = audio + bytes(max(0, self.fake.oversize_bytes - len(audio)))
        self._count(200)
        self.close_connection = True
        if fault == "oversize-chunked":
            self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        if fault == "oversize":
            self.send_header("Content-Length", str(len(body)))
        elif fault == "lying-length":
            self.send_header("Content-Length", str(self.fake.lying_length))
        elif fault == "oversize-chunked":
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        step = 16_384
        for start in range(0, len(body), step):
            piece = body[start : start + step]
            if fault == "oversize-chunked":
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            else:
                self.wfile.write(piece)
        if fault == "oversize-chunked":
            self.wfile.write(b"0\r\n\r\n")
