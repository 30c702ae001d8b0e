"""A loopback fake of Last.fm's web service (`/2.0/`), for tests.

It answers `GET /2.0/?method=artist.gettoptags&artist=NAME&autocorrect=1&api_key=KEY&format=json`
with Last.fm's JSON shape: `{"toptags": {"tag": [{"count": 100, "name": "rock", "url": ...}],
"@attr": {"artist": NAME}}}`, the name corrected (`autocorrect=1`) through `corrections`. Errors
come as Last.fm sends them, `{"error": N, "message": ...}`: 6 for an unknown artist (HTTP 404),
10 for a wrong key and 26 for a suspended one (HTTP 403), 3 for another method (HTTP 400), 5
without `format=json`. Every request is counted and its parameters and User-Agent kept.
Faults are scripted per request number (1-based): "error:29" (an error object in an HTTP 200,
as Last.fm answers rate limiting), "error:29-as-text" (the code as a string), "error:N", "503", "429", "malformed" (a 200 that is not
JSON), "not-toptags" (a JSON 200 of another shape), "html-403" (a proxy's HTML page),
"echo-url" (a 500 whose body repeats the request, key included), "drop" (hang up).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.loopback import LoopbackServer

GOOD_KEY = "0123456789abcdef0123456789abcdef"
SUSPENDED_KEY = "suspended0000000000000000000000a"

MESSAGES = {
    3: "Invalid Method - No method with that name in this package",
    5: "Invalid format - This service doesn't exist in that format",
    6: "The artist you supplied could not be found",
    10: "Invalid API key - You must be granted a valid key by last.fm",
    11: "Service Offline - This service is temporarily offline. Try again later.",
    26: "Suspended API key - Access for your account has been suspended, please contact Last.fm",
    29: "Rate Limit Exceeded - Your IP has made too many requests in a short period",
}

# Tags as Last.fm weighs them (the top tag 100, the others relative to it).
DEFAULT_CATALOG: dict[str, list[tuple[str, int]]] = {
    "Radiohead": [
        ("alternative", 100),
        ("alternative rock", 89),
        ("rock", 72),
        ("seen live", 55),
        ("british", 34),
        ("electronic", 33),
        ("90s", 9),
        ("favorites", 4),
    ],
    "Amy Winehouse": [("soul", 100), ("jazz", 61), ("female vocalists", 52), ("british", 20), ("rnb", 7)],
    "Daft Punk": [("electronic", 100), ("house", 58), ("french", 31), ("dance", 30), ("seen live", 8)],
    "Noise Only": [("seen live", 100), ("favorites", 70), ("awesome", 40), ("80s", 30)],
    "Obscure Band": [],
}
DEFAULT_CORRECTIONS = {"radiohead": "Radiohead", "amy winehouse": "Amy Winehouse", "daftpunk": "Daft Punk"}

Body = Mapping[str, Any]


def tag_list(name: str, tags: list[tuple[str, int]]) -> Body:
    """An artist.getTopTags answer for `name`."""
    return {
        "toptags": {
            "tag": [
                {"count": count, "name": tag, "url": f"https://www.last.fm/tag/{tag.replace(' ', '+')}"}
                for tag, count in tags
            ],
            "@attr": {"artist": name},
        }
    }


class FakeLastfm(LoopbackServer):
    """A fake Last.fm; `api` is its base URL (`http://127.0.0.1:PORT/2.0/`).

    `timer` stamps `request_times` (pass a fake clock's `monotonic` to see fake time);
    `not_found_status` is the HTTP status of error 6 (404 as Last.fm, or 200)."""

    def __init__(
        self,
        catalog: Mapping[str, list[tuple[str, int]]] | None = None,
        *,
        corrections: Mapping[str, str] | None = None,
        faults: Mapping[int, str] | None = None,
        key: str = GOOD_KEY,
        timer: Callable[[], float] = time.monotonic,
        not_found_status: int = 404,
    ) -> None:
        self.catalog = dict(DEFAULT_CATALOG if catalog is None else catalog)
        self.corrections = dict(DEFAULT_CORRECTIONS if corrections is None else corrections)
        self.faults = dict(faults or {})
        self.key = key
        self.timer = timer
        self.not_found_status = not_found_status
        self.requests = 0
        self.params: list[dict[str, str]] = []
        self.agents: list[str] = []
        self.paths: list[str] = []
        self.request_times: list[float] = []
        self._lock = threading.Lock()
        self.api = ""

    def start(self) -> FakeLastfm:
        self.api = self._serve(_Handler, "fake-lastfm") + "/2.0/"
        return self

    def arrive(self, path: str, params: dict[str, str], agent: str) -> str | None:
        """Count an arrival; the scripted fault for it, if any."""
        with self._lock:
            self.requests += 1
            self.params.append(params)
            self.agents.append(agent)
            self.paths.append(path)
            self.request_times.append(self.timer())
            return self.faults.get(self.requests)

    def answer(self, params: Mapping[str, str]) -> tuple[int, Body]:
        """(HTTP status, JSON body) for a request without a fault."""
        if params.get("format") != "json":
            return 200, {"error": 5, "message": MESSAGES[5]}
        if params.get("api_key") == SUSPENDED_KEY:
            return 403, {"error": 26, "message": MESSAGES[26]}
        if params.get("api_key") != self.key:
            return 403, {"error": 10, "message": MESSAGES[10]}
        if params.get("method", "").lower() != "artist.gettoptags":
            return 400, {"error": 3, "message": MESSAGES[3]}
        name = params.get("artist", "")
        if params.get("autocorrect") == "1":
            name = self.corrections.get(name.casefold(), name)
        if name not in self.catalog:
            return self.not_found_status, {"error": 6, "message": MESSAGES[6]}
        return 200, tag_list(name, self.catalog[name])


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLastfm
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _send(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: Body) -> None:
        self._send(status, json.dumps(body).encode())

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        fake = self.fake
        fault = fake.arrive(parts.path, params, self.headers.get("User-Agent", ""))
        if parts.path != "/2.0/":
            self._send(404, b"<html>not found</html>", "text/html")
            return
        if fault is not None:
            self._fault(fault)
            return
        self._json(*fake.answer(params))

    def _fault(self, fault: str) -> None:
        if fault == "error:29-as-text":
            self._json(200, {"error": "29", "message": MESSAGES[29]})
        elif fault.startswith("error:"):
            code = int(fault.split(":", 1)[1])
            self._json(200, {"error": code, "message": MESSAGES.get(code, "scripted")})
        elif fault == "503":
            self._json(503, {"error": 11, "message": MESSAGES[11]})
        elif fault == "429":
            self._json(429, {"error": 29, "message": MESSAGES[29]})
        elif fault == "malformed":
            self._send(200, b'{"toptags": {"tag": [')
        elif fault == "not-toptags":
            self._json(200, {"results": []})
        elif fault == "html-403":
            self._send(403, b"<html><body>Forbidden</body></html>", "text/html")
        elif fault == "echo-url":
            self._json(400, {"error": 99, "message": f"bad request {self.path}"})
        elif fault == "drop":
            self.close_connection = True
            self.connection.close()
        else:
            raise ValueError(f"unknown fault {fault!r}")
