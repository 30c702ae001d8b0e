"""A fake clock for the HTTP layer's `Clock`: time passes only when slept on or advanced."""

from __future__ import annotations

import threading


class FakeClock:
    """Time that passes only when slept (every sleep recorded, never spent) or advanced by a
    fake server ("one byte every 2 s" in fake time). Thread-safe.

    `max_sleeps` turns a client that would wait forever into a test failure instead of a hang."""

    def __init__(self, max_sleeps: int = 10_000) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.max_sleeps = max_sleeps
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)
            if len(self.sleeps) > self.max_sleeps:
                raise AssertionError(f"slept {len(self.sleeps)} times: the client would wait forever")

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
