"""The HTTP layer itself (genremap/http.py) against a scripted loopback server and a fake clock:
size cap, redirects, deadlines, Retry-After (seconds and HTTP dates), the bounds on waiting,
and the https rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from fakes.clock import FakeClock
from fakes.scripted import Reply, ScriptedServer

from genremap.errors import GenremapError, UsageError
from genremap.http import (
    Deadline,
    DeadlineExceeded,
    DeadlineSession,
    GaveUp,
    JsonClient,
    Retrying,
    RetryPolicy,
    TooLongToWait,
    require_https,
    retry_after_seconds,
)

BODY = json.dumps({"artists": [{"id": f"a{i}", "name": f"Artist {i}"} for i in range(60)]}).encode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(max_sleeps=100)


def client(server: ScriptedServer, clock: FakeClock, **policy: Any) -> JsonClient:
    policy.setdefault("seed", 1)
    policy.setdefault("timeout", 5.0)
    retrying = Retrying("Test", RetryPolicy(**policy), clock=clock)
    return JsonClient(server.base, service="Test", user_agent="genremap-tests", retrying=retrying, max_bytes=1000)


def serve(script: dict[str, list[Reply]], clock: FakeClock) -> ScriptedServer:
    return ScriptedServer(script, advance=clock.advance)


def padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    body = json.dumps({"pad": "x" * (size - len(json.dumps({"pad": ""})))}).encode()
    assert len(body) == size
    return body


# --- the JSON client: size cap and redirects -------------------------------------------------------


def test_json_client_takes_a_body_at_the_cap_and_refuses_one_byte_more(clock: FakeClock) -> None:
    script = {"/at": [Reply(body=padded(1000))], "/over": [Reply(body=padded(1001))]}
    with serve(script, clock) as server:
        api = client(server, clock)  # max_bytes=1000
        assert api.get_json("at", {}, "at") == json.loads(padded(1000))
        with pytest.raises(GenremapError, match="Test answer larger than 1000 bytes"):
            api.get_json("over", {}, "over")
        assert server.hits["/over"] == 1  # refused, not retried


def test_json_client_refuses_redirects_without_following_them(clock: FakeClock) -> None:
    script = {
        "/moved": [Reply(302, b'{"moved": true}', headers={"Location": "/elsewhere"})],
        "/elsewhere": [Reply(body=b'{"followed": true}')],
    }
    with serve(script, clock) as server:
        with pytest.raises(GenremapError, match=r"Test redirected .*/moved elsewhere; not followed"):
            client(server, clock).get_json("moved", {}, "moved")
        assert server.hits == {"/moved": 1}


# --- deadlines ---------------------------------------------------------------------------------------


def test_deadline_allows_exactly_its_seconds() -> None:
    clock = FakeClock()
    deadline = Deadline.start(clock, 30.0)
    clock.advance(30.0)
    deadline.check("http://x/", 0)  # exactly the deadline: still in time
    clock.advance(0.001)
    with pytest.raises(DeadlineExceeded, match=r"no complete answer from http://x/ within the 30 s deadline"):
        deadline.check("http://x/", 5)


def test_a_trickling_answer_is_cut_at_the_deadline_and_retried_as_such(clock: FakeClock) -> None:
    """One byte every 2 s (fake time): a per-read timeout never fires, the deadline does."""
    with serve({"/slow": [Reply(body=BODY, trickle=2.0)]}, clock) as server:
        api = client(server, clock, deadline=30.0, max_attempts=2)
        with pytest.raises(GaveUp, match=r"Test slow: failed 2 times in a row \(last: deadline\)"):
            api.get_json("slow", {}, "slow")
        assert server.hits["/slow"] == 2
    assert api.retrying.stats.errors == {"deadline": 2}


def test_a_deadline_session_reads_whole_answers_within_the_deadline(clock: FakeClock) -> None:
    script = {"/slow": [Reply(body=BODY, trickle=2.0)], "/fast": [Reply(body=BODY)]}
    with serve(script, clock) as server:
        session = DeadlineSession(clock, 30.0)
        assert session.get(server.url("/fast"), timeout=5).json() == json.loads(BODY)
        with pytest.raises(DeadlineExceeded, match="within the 30 s deadline"):
            session.get(server.url("/slow"), timeout=5)
        streamed = session.get(server.url("/fast"), timeout=5, stream=True)  # a stream is the caller's to read
        assert streamed.raw.read() == BODY


# --- Retry-After ---------------------------------------------------------------------------------------


NOW = datetime(2015, 10, 21, 7, 26, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 120.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 120.0),  # RFC 850
        ("Wed Oct 21 07:28:00 2015", 120.0),  # asctime
        ("Wed, 21 Oct 2015 07:20:00 GMT", 0.0),  # a date past: no wait
        ("-5", None),
        ("inf", None),
        ("nan", None),
        ("soon", None),
        ("Wed, 31 Feb 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_values(value: str, seconds: float | None) -> None:
    assert retry_after_seconds({"Retry-After": value}, now=lambda: NOW) == seconds


def _http_date(offset: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=offset), usegmt=True)


def test_retry_after_as_an_http_date_is_honoured_over_the_wire(clock: FakeClock) -> None:
    script = {
        "/later": [Reply(503, headers={"Retry-After": _http_date(7200)})],
        "/past": [Reply(429, headers={"Retry-After": _http_date(-60)}), Reply(body=b'{"ok": 1}')],
    }
    with serve(script, clock) as server:
        api = client(server, clock, max_wait=600)
        with pytest.raises(TooLongToWait) as raised:
            api.get_json("later", {}, "later")
        assert 7000 < raised.value.seconds <= 7200 and clock.sleeps == []
        assert api.get_json("past", {}, "past") == {"ok": 1}
    assert clock.sleeps == [0.0]  # waited what the date said (nothing), not a backoff


def test_a_wait_of_exactly_max_wait_is_honoured_and_one_second_more_is_not(clock: FakeClock) -> None:
    script = {
        "/at": [Reply(429, headers={"Retry-After": "600"}), Reply(body=b'{"ok": 1}')],
        "/over": [Reply(429, headers={"Retry-After": "601"}), Reply(body=b'{"ok": 1}')],
    }
    with serve(script, clock) as server:
        api = client(server, clock, max_wait=600)
        assert api.get_json("at", {}, "at") == {"ok": 1}
        assert clock.sleeps == [600.0]
        with pytest.raises(TooLongToWait, match=r"asks to wait 601 s \(more than --max-wait 600 s\)"):
            api.get_json("over", {}, "over")
        assert clock.sleeps == [600.0] and server.hits["/over"] == 1


def test_an_absurd_retry_after_stops_with_one_line() -> None:
    error = TooLongToWait("Test", float(retry_after_seconds({"Retry-After": "9" * 400}) or 0), 600)
    assert "run the same command again much later" in error.message and "\n" not in error.message


# --- bounds on waiting ----------------------------------------------------------------------------------


def test_a_server_that_always_says_wait_is_given_up_after_max_waits(clock: FakeClock) -> None:
    with serve({"/busy": [Reply(429, headers={"Retry-After": "1"})]}, clock) as server:
        api = client(server, clock, max_waits=12)
        with pytest.raises(GaveUp, match=r"Test busy: asked to wait 13 times \(last: http 429\); progress is saved"):
            api.get_json("busy", {}, "busy")
        assert server.hits["/busy"] == 13
    assert clock.sleeps == [1.0] * 12


def test_total_waiting_per_request_is_bounded_and_exactly_the_bound_is_allowed(clock: FakeClock) -> None:
    wait = Reply(503, headers={"Retry-After": "600"})
    script = {"/three": [wait, wait, wait, Reply(body=b'{"ok": 1}')], "/four": [wait] * 4 + [Reply(body=b"{}")]}
    with serve(script, clock) as server:
        api = client(server, clock, max_wait=600, max_total_wait=1800)
        assert api.get_json("three", {}, "three") == {"ok": 1}  # 3 x 600 s = the 1,800 s allowed
        assert clock.sleeps == [600.0] * 3
        with pytest.raises(GaveUp, match=r"waited 1,800 s and asked for 600 s more, over the 1,800 s allowed"):
            api.get_json("four", {}, "four")
        assert server.hits["/four"] == 4 and clock.sleeps == [600.0] * 6


# --- https only ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://api.spotify.com/v1/",
        "https://musicbrainz.org/ws/2",
        "http://127.0.0.1:8080/v1/",
        "http://127.3.4.5/x",
        "http://[::1]:9/x",
        "http://localhost:9/x",
        "http://LOCALHOST/x",
    ],
)
def test_https_or_loopback_is_accepted(url: str) -> None:
    assert require_https(url, "--api-base") == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://accounts.spotify.com/api/token", "https is required, not plain http to accounts.spotify.com"),
        ("http://10.0.0.5/x", "https is required"),
        ("http://128.0.0.1/x", "https is required"),
        ("http://localhost.evil.example/x", "https is required"),
        ("http://127.0.0.1.nip.io/x", "https is required"),
        ("http://127.0.0.1@evil.example/x", "not plain http to evil.example"),
        ("ftp://musicbrainz.org/ws/2", "expected an https URL"),
        ("musicbrainz.org/ws/2", "expected an https URL"),
        ("https://[::1/x", "not a valid URL"),
    ],
)
def test_plain_http_elsewhere_is_refused_without_echoing_the_url(url: str, why: str) -> None:
    with pytest.raises(UsageError, match=r"^--auth-url: ") as raised:
        require_https(url.replace("evil.example/x", "evil.example/x?secret=hunter2"), "--auth-url")
    assert why in raised.value.message and raised.value.exit_code == 2
    assert "hunter2" not in raised.value.message and "\n" not in raised.value.message
