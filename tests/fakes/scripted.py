"""A loopback server that answers each path from a script, for tests of the HTTP layer itself.

`ScriptedServer({"/a": [Reply(503, headers={"Retry-After": "1"}), Reply(200, b"{}")]})`: the
n-th request of a path gets the n-th reply of its list (the last one repeats); other paths
get a 404. A reply with `trickle` > 0 sends its body one byte at a time: before each byte it
calls `advance(trickle)` (pass a fake clock's `advance`: "one byte every `trickle` seconds"
in fake time) and pauses `pause` real seconds, so the client reads the bytes one by one; it
stops when the client hangs up. `hits` counts requests per path.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from fakes.loopback import LoopbackServer, trickle


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b"{}"
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    trickle: float = 0.0  # fake seconds per byte; 0 sends the body at once


class ScriptedServer(LoopbackServer):
    """Answers from `script` on 127.0.0.1. Use as a context manager; `url(path)` for a path."""

    def __init__(
        self,
        script: Mapping[str, Sequence[Reply]],
        *,
        advance: Callable[[float], None] = lambda seconds: None,
        pause: float = 0.003,
    ) -> None:
        self.script = {path: list(replies) for path, replies in script.items()}
        self.advance = advance
        self.pause = pause
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.base = ""

    def start(self) -> ScriptedServer:
        self.base = self._serve(_Handler, "fake-scripted")
        return self

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def reply_for(self, path: str) -> Reply | None:
        with self._lock:
            self.hits[path] += 1
            replies = self.script.get(path)
            return replies[min(self.hits[path], len(replies)) - 1] if replies else None


class _Handler(BaseHTTPRequestHandler):
    fake: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def do_GET(self) -> None:
        reply = self.fake.reply_for(urlsplit(self.path).path) or Reply(404, b'{"error": "not scripted"}')
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.trickle:
            trickle(self.wfile, reply.body, step=reply.trickle, advance=self.fake.advance, pause=self.fake.pause)
        else:
            self.wfile.write(reply.body)
