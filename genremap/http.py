"""One retrying, rate-limited, size-capped HTTP layer for every source.

genremap owns retries (clients such as spotipy are configured never to retry or sleep on
their own): a 429 or 503 honours `Retry-After` (never retrying sooner) up to `max_wait`,
beyond which the caller is told to stop and resume later; 5xx answers, timeouts, dropped
connections and malformed bodies are retried with exponential backoff and jitter. Every
wait goes through a `Clock`, so tests can run it without sleeping.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests

from genremap.errors import GenremapError

T = TypeVar("T")

RETRY, WAIT, FAIL = "retry", "wait", "fail"


class Clock(Protocol):
    """Time as the HTTP layer sees it (a fake in tests)."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass
class RetryPolicy:
    """How hard to try. `max_wait` is the longest single Retry-After that is honoured."""

    max_wait: float = 600.0
    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    timeout: float = 15.0
    seed: int | None = None  # jitter RNG seed (tests)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter for the `attempt`-th retry (1-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass
class Stats:
    """What the HTTP layer did, per endpoint."""

    requests: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)  # 429 / 503 with Retry-After
    errors: Counter[str] = field(default_factory=Counter)  # failed attempts, by kind ("http 503", "timeout")
    failed: Counter[str] = field(default_factory=Counter)  # failed attempts, by endpoint
    waited: float = 0.0  # seconds spent honouring Retry-After and backing off

    def merge(self, other: Stats) -> None:
        """Add another run's counts (e.g. from a worker thread) into these."""
        for mine, theirs in (
            (self.requests, other.requests),
            (self.retries, other.retries),
            (self.throttled, other.throttled),
            (self.errors, other.errors),
            (self.failed, other.failed),
        ):
            mine.update(theirs)
        self.waited += other.waited

    def summary(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "retries": sum(self.retries.values()),
            "throttled": sum(self.throttled.values()),
            "errors": dict(self.errors),
            "waited_seconds": round(self.waited, 1),
        }


class TooLongToWait(GenremapError):
    """The server asked for a wait longer than `max_wait`: stop now, progress is saved."""

    exit_code = 3

    def __init__(self, service: str, seconds: float, max_wait: float) -> None:
        resume = datetime.now(UTC) + timedelta(seconds=seconds)
        super().__init__(
            f"{service} asks to wait {seconds:,.0f} s (more than --max-wait {max_wait:,.0f} s); "
            f"progress is saved: run the same command again after {resume:%Y-%m-%d %H:%M} UTC"
        )
        self.seconds = seconds


class GaveUp(GenremapError):
    """A request kept failing after every retry; progress so far is saved."""

    exit_code = 1


@dataclass(frozen=True)
class Verdict:
    """How to treat a failed attempt: retry after backoff, wait `seconds` then retry, or fail."""

    action: str
    kind: str
    seconds: float = 0.0


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if absent or bad."""
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


@dataclass
class Retrying:
    """Runs calls under a RetryPolicy, counting what happens in `stats`."""

    service: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=RealClock)
    stats: Stats = field(default_factory=Stats)
    on_wait: Callable[[str, float, str], None] = lambda endpoint, seconds, why: None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.policy.seed)

    def run(self, endpoint: str, call: Callable[[], T], judge: Callable[[BaseException], Verdict]) -> T:
        """Call `call()` until it succeeds; `judge` turns each exception into a Verdict."""
        failures = 0  # consecutive failures that are not a server-directed wait
        while True:
            self.stats.requests[endpoint] += 1
            try:
                return call()
            except BaseException as exc:  # judged below; KeyboardInterrupt is never swallowed
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                verdict = judge(exc)
                self.stats.errors[verdict.kind] += 1
                self.stats.failed[endpoint] += 1
                if verdict.action == FAIL:
                    raise
                if verdict.action == WAIT:
                    self.stats.throttled[endpoint] += 1
                    if verdict.seconds > self.policy.max_wait:
                        raise TooLongToWait(self.service, verdict.seconds, self.policy.max_wait) from None
                    delay = verdict.seconds
                else:
                    failures += 1
                    if failures >= self.policy.max_attempts:
                        raise GaveUp(
                            f"{self.service} {endpoint}: failed {failures} times in a row (last: {verdict.kind}); "
                            "progress is saved, run the same command again later"
                        ) from None
                    delay = self.policy.backoff(failures, self._rng)
                self.stats.retries[endpoint] += 1
                self.stats.waited += delay
                self.on_wait(endpoint, delay, verdict.kind)
                self.clock.sleep(delay)


class RateLimiter:
    """At most one request per `interval` seconds, across the whole run."""

    def __init__(self, interval: float, clock: Clock) -> None:
        self.interval = interval
        self.clock = clock
        self._last: float | None = None

    def wait(self) -> None:
        now = self.clock.monotonic()
        if self._last is not None:
            remaining = self._last + self.interval - now
            if remaining > 0:
                self.clock.sleep(remaining)
                now = self.clock.monotonic()
        self._last = now


class HttpStatusError(Exception):
    """A non-2xx answer, with what the retry judge needs."""

    def __init__(self, status: int, headers: Mapping[str, str], url: str) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status = status
        self.headers = headers


class MalformedBody(Exception):
    """A 2xx answer whose body is not the JSON the caller expects."""


def judge_http(exc: BaseException) -> Verdict:
    """The standard judgement for plain HTTP calls (used by JsonClient)."""
    if isinstance(exc, HttpStatusError):
        if exc.status in (429, 503):
            seconds = retry_after_seconds(exc.headers)
            if seconds is not None:
                return Verdict(WAIT, f"http {exc.status}", seconds)
            return Verdict(RETRY, f"http {exc.status}")
        if exc.status >= 500:
            return Verdict(RETRY, f"http {exc.status}")
        return Verdict(FAIL, f"http {exc.status}")
    if isinstance(exc, requests.Timeout):
        return Verdict(RETRY, "timeout")
    if isinstance(exc, requests.ConnectionError):
        return Verdict(RETRY, "connection")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return Verdict(RETRY, "truncated")
    if isinstance(exc, MalformedBody | ValueError):
        return Verdict(RETRY, "malformed")
    return Verdict(FAIL, type(exc).__name__)


class JsonClient:
    """GET JSON from one service: allowed hosts only, a size cap, a rate limit, retries."""

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        user_agent: str,
        retrying: Retrying,
        min_interval: float = 0.0,
        max_bytes: int = 5_000_000,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).hostname
        self.service = service
        self.retrying = retrying
        self.limiter = RateLimiter(min_interval, retrying.clock)
        self.max_bytes = max_bytes
        self.session = session or requests.Session()
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})

    def get_json(self, path: str, params: Mapping[str, Any], endpoint: str) -> Any:
        url = f"{self.base_url}/{path.lstrip('/')}"
        if urlsplit(url).hostname != self.host:
            raise GenremapError(f"refusing to fetch {url}: not on {self.host}")

        def attempt() -> Any:
            self.limiter.wait()
            with self.session.get(
                url, params=params, timeout=self.retrying.policy.timeout, stream=True, allow_redirects=False
            ) as answer:
                if answer.is_redirect:
                    raise GenremapError(f"{self.service} redirected {url} elsewhere; not followed")
                if answer.status_code >= 400:
                    raise HttpStatusError(answer.status_code, answer.headers, url)
                body = bytearray()
                for chunk in answer.iter_content(65536):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise GenremapError(f"{self.service} answer larger than {self.max_bytes} bytes: {url}")
            try:
                return json.loads(bytes(body))
            except ValueError:
                raise MalformedBody(f"{self.service} answered malformed JSON for {url}") from None

        return self.retrying.run(endpoint, attempt, judge_http)
