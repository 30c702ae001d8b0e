"""One retrying, rate-limited, size-capped HTTP layer for every source.

genremap owns retries (clients such as spotipy are configured never to retry or sleep on
their own): a 429 or 503 honours `Retry-After` (never retrying sooner) up to `max_wait`,
beyond which the caller is told to stop and resume later; 5xx answers, timeouts, dropped
connections and malformed bodies are retried with exponential backoff and jitter. Every
request is bounded: its attempts, its server-directed waits (their number and their total),
and each attempt's duration (a deadline over the whole answer, so a server that trickles
its body cannot hold a run forever). Every wait and deadline goes through a `Clock`, so
tests can run it without sleeping. Sources are only asked over https (plain http only to
a loopback host, such as a test's fake), so credentials never cross a network in clear.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from genremap.defaults import DEFAULT_DEADLINE
from genremap.errors import GenremapError, UsageError

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
    """How hard and how long to try, per request.

    - `max_wait`: the longest single server-directed wait (a Retry-After) that is honoured. A
      wait of exactly `max_wait` seconds is honoured; only a longer one stops the run at once
      (TooLongToWait), since waiting what was asked is always right up to the user's limit.
    - `max_waits`, `max_total_wait`: a request is given up (GaveUp, "run again later") when the
      server asks to wait more than `max_waits` times, or when honouring the next wait (backoff
      included) would bring its waiting above `max_total_wait` seconds (exactly that is
      allowed), so a server that always answers 429 cannot keep a run waiting forever.
    - `max_attempts`: failed attempts other than server-directed waits before giving up.
    - `timeout`: seconds to connect and for each read; `deadline`: seconds one attempt may
      take in all, from the request to the last byte of its body (exactly that is allowed).
    """

    max_wait: float = 600.0
    max_attempts: int = 6
    max_waits: int = 12
    max_total_wait: float = 1800.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    timeout: float = 15.0
    deadline: float = DEFAULT_DEADLINE
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
        """Add another Stats' counts (a worker thread's, for one track) into these."""
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
        try:
            when = f"after {datetime.now(UTC) + timedelta(seconds=seconds):%Y-%m-%d %H:%M} UTC"
        except OverflowError:  # a Retry-After beyond the calendar
            when = "much later"
        super().__init__(
            f"{service} asks to wait {seconds:,.0f} s (more than --max-wait {max_wait:,.0f} s); "
            f"progress is saved: run the same command again {when}"
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


_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds from a Retry-After header, None if absent or bad (RFC 7231 section 7.1.3).

    Either delta-seconds ("120"; a decimal fraction is tolerated) or an HTTP date, measured
    from `now()` (a date past is 0): IMF-fixdate "Wed, 21 Oct 2015 07:28:00 GMT" and the
    obsolete RFC 850 and asctime forms, which are GMT too. A huge number comes back as is
    (possibly inf): the caller's max_wait turns it into a stop."""
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime (and "-0000"): HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


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
        """Call `call()` until it succeeds; `judge` turns each exception into a Verdict.

        Bounded as the policy says: TooLongToWait for one wait over `max_wait`, GaveUp after
        `max_attempts` failures, more than `max_waits` server-directed waits, or waiting that
        would go over `max_total_wait`."""
        failures = 0  # failed attempts that are not a server-directed wait
        waits = 0  # server-directed waits
        waited = 0.0  # seconds waited for this request, backoff included
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
                    waits += 1
                    if waits > self.policy.max_waits:
                        raise self._gave_up(endpoint, f"asked to wait {waits} times (last: {verdict.kind})") from None
                    delay = verdict.seconds
                else:
                    failures += 1
                    if failures >= self.policy.max_attempts:
                        raise self._gave_up(
                            endpoint, f"failed {failures} times in a row (last: {verdict.kind})"
                        ) from None
                    delay = self.policy.backoff(failures, self._rng)
                if waited + delay > self.policy.max_total_wait:
                    raise self._gave_up(
                        endpoint,
                        f"waited {waited:,.0f} s and asked for {delay:,.0f} s more, over the "
                        f"{self.policy.max_total_wait:,.0f} s allowed for one request (last: {verdict.kind})",
                    ) from None
                waited += delay
                self.stats.retries[endpoint] += 1
                self.stats.waited += delay
                self.on_wait(endpoint, delay, verdict.kind)
                self.clock.sleep(delay)

    def _gave_up(self, endpoint: str, what: str) -> GaveUp:
        return GaveUp(f"{self.service} {endpoint}: {what}; progress is saved, run the same command again later")


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


# --- deadlines ------------------------------------------------------------------------------


class DeadlineExceeded(requests.Timeout):
    """An answer not complete within the policy's deadline (a server trickling its body).

    A requests.Timeout, so callers that handle timeouts handle it; judges may tell it apart."""

    def __init__(self, url: str, seconds: float, received: int) -> None:
        super().__init__(f"no complete answer from {url} within the {seconds:g} s deadline ({received:,} bytes came)")


@dataclass(frozen=True)
class Deadline:
    """When one attempt must be complete, on a Clock (so tests need not wait for it)."""

    clock: Clock
    seconds: float
    started: float

    @classmethod
    def start(cls, clock: Clock, seconds: float) -> Deadline:
        return cls(clock, seconds, clock.monotonic())

    def check(self, url: str, received: int) -> None:
        """Raise DeadlineExceeded once more than `seconds` have passed since the start."""
        if self.clock.monotonic() - self.started > self.seconds:
            raise DeadlineExceeded(url, self.seconds, received)


def iter_body(answer: requests.Response, deadline: Deadline, chunk: int = 65536) -> Iterator[bytes]:
    """The body of a streamed answer (`stream=True`), decoded, piece by piece as it arrives.

    Each piece is what one read brings (at most `chunk` bytes: a read never waits to fill a
    chunk), and the deadline is checked before every read, so a server that sends one byte
    every few seconds is cut off at the deadline, not after the per-read timeout of every
    byte. urllib3's errors become the requests exceptions `iter_content` would raise."""
    raw = answer.raw
    read = getattr(raw, "read1", None) or raw.read  # read1 (urllib3 >= 2.2) returns what has come
    received = 0
    while True:
        deadline.check(answer.url, received)
        try:
            piece = read(chunk, decode_content=True)
        except urllib3.exceptions.ProtocolError as exc:
            raise requests.exceptions.ChunkedEncodingError(exc) from exc
        except urllib3.exceptions.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ConnectionError(exc) from exc
        except urllib3.exceptions.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
        if not piece:
            return
        received += len(piece)
        yield piece


class DeadlineSession(requests.Session):
    """A requests.Session for clients that read answers themselves (spotipy): every answer not
    asked as a stream is read here, in full, within `deadline` seconds of its request."""

    def __init__(self, clock: Clock, deadline: float) -> None:
        super().__init__()
        self.clock = clock
        self.deadline = deadline

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("stream"):
            return super().send(request, **kwargs)
        deadline = Deadline.start(self.clock, self.deadline)
        answer = super().send(request, **{**kwargs, "stream": True})
        try:
            answer._content = b"".join(iter_body(answer, deadline))
        except BaseException:
            answer.close()
            raise
        answer._content_consumed = True  # read to the end: the connection went back to the pool
        return answer


# --- https only -----------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_https(url: str, option: str) -> str:
    """`url` if a source may be asked there: https, or plain http to a loopback host (a local
    proxy or a test's fake). Otherwise a UsageError naming `option`, before any connection:
    credentials and tokens never travel in clear. The URL is not echoed (it may hold a
    password); its host is."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UsageError(f"{option}: not a valid URL") from None
    scheme = parts.scheme.lower()
    if host and (scheme == "https" or (scheme == "http" and is_loopback(host))):
        return url
    if host and scheme == "http":
        raise UsageError(
            f"{option}: https is required, not plain http to {host} "
            "(plain http only to a loopback host: 127.0.0.0/8, ::1, localhost)"
        )
    raise UsageError(f"{option}: expected an https URL such as https://{host or 'example.org'}/...")


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
    if isinstance(exc, DeadlineExceeded):
        return Verdict(RETRY, "deadline")
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
    """GET JSON from one service: its host only (redirects are refused, not followed), a size
    cap enforced while reading, a deadline per attempt, a rate limit, retries."""

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

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any],
        endpoint: str,
        *,
        accept: frozenset[int] = frozenset(),
        check: Callable[[Any], Any] | None = None,
        judge: Callable[[BaseException], Verdict] = judge_http,
    ) -> Any:
        """The JSON answer to GET `path` with `params`, retried as `judge` says.

        For services that answer errors as JSON objects (Last.fm: `{"error": 6, ...}`, in an
        HTTP 200 or a 4xx), the 4xx statuses in `accept` are read like a 2xx (a body that is not
        JSON stays an HttpStatusError), and `check(body)` runs inside each attempt: what it
        raises is judged like any failure (retried, waited out or final)."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        if urlsplit(url).hostname != self.host:
            raise GenremapError(f"refusing to fetch {url}: not on {self.host}")

        def attempt() -> Any:
            self.limiter.wait()
            policy = self.retrying.policy
            deadline = Deadline.start(self.retrying.clock, policy.deadline)
            with self.session.get(
                url, params=params, timeout=policy.timeout, stream=True, allow_redirects=False
            ) as answer:
                if answer.is_redirect:
                    raise GenremapError(f"{self.service} redirected {url} elsewhere; not followed")
                status = answer.status_code
                if status >= 400 and status not in accept:
                    raise HttpStatusError(status, answer.headers, url)
                body = bytearray()
                for chunk in iter_body(answer, deadline):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise GenremapError(f"{self.service} answer larger than {self.max_bytes} bytes: {url}")
            try:
                parsed = json.loads(bytes(body))
            except ValueError:
                if status >= 400:
                    raise HttpStatusError(status, answer.headers, url) from None
                raise MalformedBody(f"{self.service} answered malformed JSON for {url}") from None
            return parsed if check is None else check(parsed)

        return self.retrying.run(endpoint, attempt, judge)
