"""What every loopback fake shares: a quiet threaded HTTP server on 127.0.0.1 and its lifecycle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, BinaryIO, Self


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or hang up mid-answer are expected here: stay quiet."""


class LoopbackServer:
    """Serves a handler class (bound to this fake as `handler.fake`) on a free port, on a daemon thread."""

    _server: QuietServer | None = None
    _thread: threading.Thread | None = None

    def _serve(self, handler: type[BaseHTTPRequestHandler], name: str) -> str:
        """Start serving; returns the base URL, e.g. http://127.0.0.1:PORT."""
        bound = type("Handler", (handler,), {"fake": self})
        server = QuietServer(("127.0.0.1", 0), bound)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True
        )
        self._thread.start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def trickle(out: BinaryIO, body: bytes, *, step: float, advance: Callable[[float], None], pause: float) -> None:
    """Send `body` one byte at a time, "one byte every `step` seconds" in fake time: before each
    byte, `advance(step)` (a fake clock's) and a real `pause` (so the client reads the bytes one
    by one). Stops quietly when the client hangs up."""
    for byte in body:
        advance(step)
        time.sleep(pause)
        try:
            out.write(bytes([byte]))
            out.flush()
        except OSError:
            return
