"""Audio previews against a loopback fake of Deezer and of a preview host (fake clock for waits)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes.clock import FakeClock
from fakes.deezer import FakeDeezer, FakeTrack
from typer.testing import CliRunner

from genremap.audio.previews import (
    DEEZER_DOWNLOAD,
    DEFAULT_ALLOWED_HOSTS,
    ISRC_ENDPOINT,
    MANIFEST_COLUMNS,
    SEARCH_ENDPOINT,
    SPOTIFY_DOWNLOAD,
    Candidate,
    HostPolicy,
    HostRateLimiter,
    PreviewResult,
    choose,
    clean_isrc,
    fetch_previews,
    id3_size,
    match_score,
    mp3_head_problem,
    mpeg_frame_header_ok,
    search_query,
    short_title,
)
from genremap.cli import app
from genremap.dataset.export import TRACK_COLUMNS
from genremap.errors import UsageError
from genremap.http import GaveUp, Retrying, RetryPolicy, TooLongToWait

COLUMNS = tuple(TRACK_COLUMNS)  # what genremap build writes


_MP3_CACHE: dict[int, bytes] = {}


def mp3(tone: int) -> bytes:
    """A real, short (0.5 s) MP3 of a sine tone; distinct tones give distinct bytes."""
    if tone not in _MP3_CACHE:
        import soundfile

        if "MP3" not in soundfile.available_formats():
            pytest.skip(f"libsndfile {soundfile.__libsndfile_version__} cannot write MP3 (needs >= 1.1)")
        t = np.arange(11025) / 22050
        buffer = io.BytesIO()
        soundfile.write(buffer, 0.3 * np.sin(2 * np.pi * (220 + 37 * tone) * t), 22050, format="MP3")
        _MP3_CACHE[tone] = buffer.getvalue()
    return _MP3_CACHE[tone]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def catalog() -> list[FakeTrack]:
    return [
        FakeTrack(1, "Queen", "Bohemian Rhapsody", 354, mp3(1), isrc="GBUM71029604", version="Remastered 2011"),
        FakeTrack(2, "Queen", "Another One Bites the Dust", 215, mp3(2)),
        FakeTrack(3, "The Cover Band", "Hotel California", 391, mp3(3)),
        FakeTrack(4, "Karaoke Kings", "Smells Like Teen Spirit (Karaoke Version)", 301, mp3(4)),
        FakeTrack(5, "Radiohead", "Karma Police", 264, mp3(5)),
        FakeTrack(6, "Daft Punk", "One More Time", 320, mp3(6)),
        FakeTrack(7, "Miles Davis", "So What", 562, b""),  # no preview on Deezer
        FakeTrack(8, "Nina Simone", "Feeling Good", 178, mp3(8), isrc="USPR36400001"),
        FakeTrack(9, "Nina Simone", "Sinnerman", 622, mp3(9)),
    ]


def row(track_id: str, artist: str, title: str, seconds: float | None = None, **extra: Any) -> dict[str, Any]:
    values = {
        "track_id": track_id,
        "track_name": title,
        "artist_id": f"a-{artist}",
        "artist_name": artist,
        "target": "rock",
        "subgenre": "rock",
        "rule": "rock",
        "split": "train",
        "duration_ms": "" if seconds is None else int(seconds * 1000),
        "preview_url": "",
        "isrc": "",
    }
    values.update(extra)
    return values


def write_dataset(root: Path, rows: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "tracks.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return root


def manifest(root: Path) -> list[dict[str, str]]:
    with (root / "audio" / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def files_under(root: Path) -> list[str]:
    """Every file under DIR/audio (temporary ones included), relative, sorted; an empty folder
    is listed as "name/"."""
    audio = root / "audio"
    found = []
    for folder, dirs, files in os.walk(audio):
        found += [str(Path(folder, f).relative_to(audio)) for f in files]
        if not dirs and not files:
            found.append(f"{Path(folder).relative_to(audio)}/")
    return sorted(found)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeDeezer]:
    with FakeDeezer(catalog(), timer=clock.monotonic, oversize_bytes=60_000, advance=clock.advance) as server:
        yield server


@pytest.fixture
def run(fake: FakeDeezer, clock: FakeClock) -> Callable[..., PreviewResult]:
    def go(root: Path, server: FakeDeezer | None = None, **kw: Any) -> PreviewResult:
        server = server or fake
        policy = kw.pop("policy", {})
        policy.setdefault("seed", 7)
        policy.setdefault("timeout", 5.0)
        kw.setdefault("retrying", Retrying("Deezer", RetryPolicy(**policy), clock=clock))
        kw.setdefault("allow_hosts", ("127.0.0.1",))
        kw.setdefault("max_bytes", 50_000)
        kw.setdefault("workers", 2)
        return fetch_previews(root, deezer_api=server.api, clock=clock, **kw)

    return go


def only(result: PreviewResult) -> Any:
    assert len(result.outcomes) == 1
    return result.outcomes[0]


# --- sources and matching -------------------------------------------------------------------


def test_spotify_preview_url_is_used_without_asking_deezer(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    url = fake.serve("sp1", mp3(20))
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Bohemian Rhapsody", 354, preview_url=url)])
    result = run(root)
    outcome = only(result)
    assert (outcome.status, outcome.source, outcome.score, outcome.reason) == ("found", "spotify", None, "")
    assert fake.counts() == {"preview": 1}
    assert result.requests == {SPOTIFY_DOWNLOAD: 1}
    saved = root / "audio" / "rock" / "t1.mp3"
    assert saved.read_bytes() == mp3(20)  # exactly the bytes served
    assert outcome.sha256 == sha(mp3(20)) and outcome.bytes == len(mp3(20))
    assert outcome.path == "audio/rock/t1.mp3"
    assert outcome.duration == pytest.approx(0.5, abs=0.1)


def test_isrc_lookup_comes_first_and_skips_the_search(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", "Nina Simone", "Feeling Good", 178.2, isrc="usp-r36400001")])
    outcome = only(run(root))
    assert (outcome.status, outcome.source, outcome.score) == ("found", "deezer", 100.0)
    assert fake.counts() == {"isrc": 1, "preview": 1}
    assert fake.paths[0] == "/track/isrc:USPR36400001"
    assert (root / "audio" / "rock" / "t1.mp3").read_bytes() == mp3(8)


def test_unknown_isrc_falls_back_to_the_search(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", "Nina Simone", "Sinnerman", 622, isrc="USXX19999999")])
    result = run(root)
    assert only(result).status == "found"
    assert fake.counts() == {"isrc": 1, "search": 1, "preview": 1}
    assert result.requests == {ISRC_ENDPOINT: 1, SEARCH_ENDPOINT: 1, DEEZER_DOWNLOAD: 1}


def test_search_match_is_accepted_with_its_score(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Bohemian Rhapsody - Remastered 2011", 355)])
    outcome = only(run(root))
    assert (outcome.status, outcome.source, outcome.score) == ("found", "deezer", 100.0)
    assert fake.queries == ['artist:"Queen" track:"Bohemian Rhapsody"']
    assert manifest(root)[0]["score"] == "100.0"
    assert (root / "audio" / "rock" / "t1.mp3").read_bytes() == mp3(1)


@pytest.mark.parametrize(
    ("artist", "title", "seconds", "why"),
    [
        ("Eagles", "Hotel California", 391, "'Hotel California' by 'The Cover Band' scores"),  # a cover
        ("Nirvana", "Smells Like Teen Spirit", 301, "by 'Karaoke Kings' scores"),  # karaoke, another artist
        ("Radiohead", "Creep", 239, "'Karma Police' by 'Radiohead' scores"),  # another song, same artist
    ],
)
def test_covers_karaoke_and_other_songs_are_rejected(
    tmp_path: Path, fake: FakeDeezer, run: Any, artist: str, title: str, seconds: float, why: str
) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", artist, title, seconds)])
    result = run(root)
    outcome = only(result)
    assert (outcome.status, outcome.source) == ("rejected", "deezer")
    assert why in outcome.reason and "(< 85)" in outcome.reason
    assert outcome.score is not None and 0 < outcome.score < 85
    assert manifest(root)[0]["score"] == f"{outcome.score:.1f}"
    assert fake.requests["preview"] == 0 and files_under(root) == ["manifest.csv"]
    assert (result.rejected, result.found) == (1, 0)


def test_duration_mismatch_is_rejected(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", "Daft Punk", "One More Time", 200)])
    outcome = only(run(root, duration_tolerance=10))
    assert outcome.status == "rejected" and outcome.score == 100.0
    assert "lasts 320 s, not 200 s (tolerance 10 s)" in outcome.reason
    assert fake.requests["preview"] == 0
    # Within the tolerance (or with no duration in tracks.csv) the same result is accepted.
    for name, seconds in (("ok", 312), ("unknown", None)):
        other = write_dataset(tmp_path / name, [row("t1", "Daft Punk", "One More Time", seconds)])
        assert only(run(other)).status == "found"


def test_no_result_is_missing_and_no_preview_is_missing(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(
        tmp_path / "ds", [row("t1", "Nobody Known", "Nothing Here", 100), row("t2", "Miles Davis", "So What", 562)]
    )
    result = run(root)
    assert [(o.status, o.score) for o in result.outcomes] == [("missing", None), ("missing", 100.0)]
    assert result.outcomes[0].reason == "no Deezer result"
    assert "no preview" in result.outcomes[1].reason
    assert (result.missing, result.found) == (2, 0)
    assert "2 missing" in result.describe()


# --- quota, retries, faults -----------------------------------------------------------------


def test_quota_answer_is_waited_out_then_the_search_succeeds(
    tmp_path: Path, fake: FakeDeezer, clock: FakeClock, run: Any
) -> None:
    fake.set_faults({("search", 1): "quota", ("search", 2): "quota"})
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215)])
    result = run(root, rate=(50, 5.0))
    assert only(result).status == "found"
    assert fake.requests["search"] == 3
    assert clock.sleeps == [5.0, 5.0]  # one rate window per quota answer
    assert result.stats.throttled[SEARCH_ENDPOINT] == 2 and result.stats.errors["deezer quota"] == 2


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (("search", 1), "503"),
        (("search", 1), "busy"),
        (("search", 1), "malformed"),
        (("preview/dz2", 1), "500"),
        (("preview/dz2", 1), "drop"),
        (("preview/dz2", 1), "truncated"),
        (("preview/dz2", 1), "slow"),
    ],
)
def test_transient_failures_are_retried(
    tmp_path: Path, fake: FakeDeezer, clock: FakeClock, run: Any, fault: tuple[str, int], kind: str
) -> None:
    fake.set_faults({fault: kind})
    fake.slow_seconds = 1.0
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215)])
    result = run(root, policy={"timeout": 0.3})
    outcome = only(result)
    assert outcome.status == "found" and outcome.sha256 == sha(mp3(2))
    assert (root / "audio" / "rock" / "t1.mp3").read_bytes() == mp3(2)
    assert sum(result.stats.retries.values()) == 1 and clock.sleeps  # backed off on the fake clock
    assert files_under(root) == ["manifest.csv", "rock/t1.mp3"]


def test_a_preview_that_keeps_failing_fails_the_track_only(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    fake.set_faults({("preview/dz2", n): "500" for n in range(1, 10)})
    root = write_dataset(
        tmp_path / "ds",
        [row("t1", "Queen", "Another One Bites the Dust", 215), row("t2", "Daft Punk", "One More Time", 320)],
    )
    result = run(root, policy={"max_attempts": 3})
    assert [o.status for o in result.outcomes] == ["failed", "found"]
    assert "failed 3 times" in result.outcomes[0].reason
    assert fake.resources["preview/dz2"] == 3
    assert files_under(root) == ["manifest.csv", "rock/t2.mp3"]


def test_client_errors_fail_the_track_without_retrying(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    url = fake.preview_url("gone")
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "x", 1, preview_url=url)])
    outcome = only(run(root))
    assert outcome.status == "failed" and "HTTP 404" in outcome.reason
    assert fake.requests["preview"] == 1


def test_an_api_error_fails_that_track_only(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    fake.set_faults({("search", 1): "403"})
    root = write_dataset(
        tmp_path / "ds",
        [row("t1", "Queen", "Another One Bites the Dust", 215), row("t2", "Daft Punk", "One More Time", 320)],
    )
    result = run(root, workers=1)
    assert [o.status for o in result.outcomes] == ["failed", "found"]
    assert result.outcomes[0].reason.startswith("Deezer: HTTP 403 from http://127.0.0.1")
    assert fake.requests["search"] == 2  # a client error is not retried
    assert result.describe().endswith("0 rejected, 1 failed; 3 requests")
    # A failed track is tried again by the next run.
    again = run(root)
    assert [o.status for o in again.outcomes] == ["found", "found"] and again.skipped == 1


def test_a_trickling_download_fails_at_the_deadline_and_the_run_goes_on(
    tmp_path: Path, fake: FakeDeezer, run: Any
) -> None:
    """One byte every 2 s (fake time): each read comes in well under the timeout, so only an
    overall deadline ends it, as a failed track with its reason; the next run fetches it."""
    fake.set_faults({("preview/dz2", 1): "trickle"})
    rows = [row("t1", "Queen", "Another One Bites the Dust", 215), row("t2", "Daft Punk", "One More Time", 320)]
    root = write_dataset(tmp_path / "ds", rows)
    result = run(root, workers=1, policy={"deadline": 60.0})
    first = result.outcomes[0]
    assert [o.status for o in result.outcomes] == ["failed", "found"]
    assert first.reason.startswith("download: no complete answer from http://127.0.0.1")
    assert "/preview/dz2.mp3 within the 60 s deadline" in first.reason
    assert fake.resources["preview/dz2"] == 1  # a trickle is not retried within the run
    assert result.stats.errors["deadline"] == 1
    assert files_under(root) == ["manifest.csv", "rock/t2.mp3"]  # nothing half-written
    again = run(root)
    assert [o.status for o in again.outcomes] == ["found", "found"]
    assert (root / "audio" / "rock" / "t1.mp3").read_bytes() == mp3(2)


def test_a_preview_host_that_always_says_wait_fails_the_track_only(
    tmp_path: Path, fake: FakeDeezer, clock: FakeClock, run: Any
) -> None:
    fake.set_faults({("preview/dz2", n): "503-retry-after:1" for n in range(1, 100)})
    clock.max_sleeps = 100  # a client that waits forever fails here instead of hanging
    rows = [row("t1", "Queen", "Another One Bites the Dust", 215), row("t2", "Daft Punk", "One More Time", 320)]
    result = run(write_dataset(tmp_path / "ds", rows), workers=1)
    assert [o.status for o in result.outcomes] == ["failed", "found"]
    assert result.outcomes[0].reason == "preview download deezer.preview: asked to wait 13 times (last: http 503)"
    assert fake.resources["preview/dz2"] == 13


def test_a_deezer_api_that_keeps_failing_stops_the_run(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    fake.set_faults({("search", n): "500" for n in range(1, 20)})
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215)])
    with pytest.raises(GaveUp, match=r"Deezer deezer\.search: failed 3 times in a row"):
        run(root, policy={"max_attempts": 3})
    assert fake.requests["search"] == 3
    assert manifest(root) == [] and files_under(root) == ["manifest.csv"]


def test_retry_after_beyond_max_wait_stops_the_run_keeping_what_finished(
    tmp_path: Path, fake: FakeDeezer, run: Any
) -> None:
    fake.set_faults({("search", 2): "503-retry-after:3600"})
    root = write_dataset(
        tmp_path / "ds",
        [row("t1", "Queen", "Another One Bites the Dust", 215), row("t2", "Daft Punk", "One More Time", 320)],
    )
    with pytest.raises(TooLongToWait):
        run(root, workers=1, policy={"max_wait": 60})
    assert [(r["track_id"], r["status"]) for r in manifest(root)] == [("t1", "found")]
    assert files_under(root) == ["manifest.csv", "rock/t1.mp3"]


# --- safety: size, content, paths, hosts ---------------------------------------------------------


@pytest.mark.parametrize("fault", ["oversize", "oversize-nolength", "oversize-chunked"])
def test_size_cap_is_enforced_while_streaming(tmp_path: Path, fake: FakeDeezer, run: Any, fault: str) -> None:
    fake.set_faults({("preview/dz2", 1): fault})
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215)])
    result = run(root, max_bytes=20_000)
    outcome = only(result)
    assert outcome.status == "rejected" and "20,000-byte cap" in outcome.reason
    assert (outcome.sha256, outcome.path, outcome.bytes) == ("", "", None)
    assert fake.resources["preview/dz2"] == 1  # never retried
    assert files_under(root) == ["manifest.csv"]  # no partial or temporary file anywhere


def test_a_lying_content_length_never_lets_more_than_the_cap_in(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    fake.set_faults({("preview/dz2", 1): "lying-length"})
    fake.lying_length = 1_000  # announced; 60,000 bytes are sent
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215)])
    outcome = only(run(root, max_bytes=20_000))
    # HTTP framing stops at the announced length: what is kept is that much, never more.
    assert files_under(root) in (["manifest.csv"], ["manifest.csv", "rock/t1.mp3"])
    saved = root / "audio" / "rock" / "t1.mp3"
    if saved.exists():
        assert outcome.status == "found" and saved.stat().st_size == 1_000
        assert saved.read_bytes() == mp3(2)[:1_000] and outcome.sha256 == sha(saved.read_bytes())
    else:
        assert outcome.status in ("rejected", "failed")


def test_content_length_over_the_cap_is_refused_before_reading(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215)])
    outcome = only(run(root, max_bytes=len(mp3(2)) - 1))
    assert outcome.status == "rejected" and outcome.reason.startswith("Content-Length")
    assert files_under(root) == ["manifest.csv"]


@pytest.mark.parametrize(
    ("fault", "status", "why"),
    [
        ("html", "rejected", "content type text/html is not audio/mpeg"),
        ("not-mp3", "rejected", "does not start like an MP3"),
        ("octet", "found", ""),
    ],
)
def test_content_type_and_mp3_header_are_checked(
    tmp_path: Path, fake: FakeDeezer, run: Any, fault: str, status: str, why: str
) -> None:
    fake.set_faults({("preview/dz2", 1): fault})
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215)])
    outcome = only(run(root))
    assert outcome.status == status and why in outcome.reason
    assert fake.resources["preview/dz2"] == 1
    assert files_under(root) == (["manifest.csv", "rock/t1.mp3"] if status == "found" else ["manifest.csv"])


def test_octet_stream_that_is_not_mp3_is_rejected(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    url = fake.serve("junk", b"\x00" * 4000, content_type="application/octet-stream")
    bom = fake.serve("bom", "\ufeff<html>hello</html>".encode("utf-16-le"), content_type="application/octet-stream")
    id3_only = fake.serve("id3", b"ID3\x04\x00\x00\x00\x00\x00\x05" + b"\x00" * 5 + b"junkjunk")
    root = write_dataset(
        tmp_path / "ds",
        [row(f"t{i}", "A", "B", preview_url=u) for i, u in enumerate((url, bom, id3_only))],
    )
    result = run(root)
    assert [o.status for o in result.outcomes] == ["rejected"] * 3
    assert "ID3 tag not followed by MPEG audio" in result.outcomes[2].reason
    assert files_under(root) == ["manifest.csv"]


def test_names_come_from_track_ids_and_never_leave_the_folder(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    url = fake.serve("sp", mp3(21))
    root = write_dataset(
        tmp_path / "ds",
        [
            row("../../evil", "A", "../../x", preview_url=url),
            row("ok", "A", "B", preview_url=url, target="../../../etc"),
            row("/abs/path", "A", "B", preview_url=url, target="hip hop/rap"),
            row("..", "A", "B", preview_url=url),
        ],
    )
    result = run(root)
    audio = (root / "audio").resolve()
    found = [o for o in result.outcomes if o.status == "found"]
    assert len(found) == 3
    for outcome in found:
        path = (root / outcome.path).resolve()
        assert path.is_relative_to(audio) and path.read_bytes() == mp3(21)
    assert result.outcomes[3].status == "failed" and "no safe file name" in result.outcomes[3].reason
    assert not any(p.name.endswith(".mp3") for p in tmp_path.rglob("*") if not p.resolve().is_relative_to(audio))
    assert [r["track_id"] for r in manifest(root)] == ["../../evil", "ok", "/abs/path", ".."]


def test_colliding_names_and_duplicate_ids_fail_instead_of_overwriting(
    tmp_path: Path, fake: FakeDeezer, run: Any
) -> None:
    one, two = fake.serve("one", mp3(22)), fake.serve("two", mp3(23))
    root = write_dataset(
        tmp_path / "ds",
        [row("a/b", "A", "B", preview_url=one), row("a_b", "A", "B", preview_url=two), row("a/b", "A", "B")],
    )
    result = run(root)
    assert [o.status for o in result.outcomes] == ["found", "failed", "failed"]
    assert "collides with track 'a/b'" in result.outcomes[1].reason
    assert "duplicate track_id" in result.outcomes[2].reason
    assert (root / "audio" / "rock" / "a_b.mp3").read_bytes() == mp3(22)


def test_plain_http_api_is_refused_before_any_request(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215)])
    with pytest.raises(UsageError, match=r"--deezer-api http://127\.0\.0\.1:\d+: plain http to 127\.0\.0\.1") as raised:
        run(root, allow_hosts=())
    assert "\n" not in raised.value.message and raised.value.exit_code == 2
    with pytest.raises(UsageError, match="plain http"):
        run(root, allow_hosts=("localhost",))  # named, but not the host asked
    with pytest.raises(UsageError, match="plain http"):
        fetch_previews(root, deezer_api="http://api.deezer.com", allow_hosts=("api.deezer.com",))  # not loopback
    assert fake.total_requests == 0
    assert not (root / "audio").exists()


def test_plain_http_preview_url_is_refused_before_any_request(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    url = fake.serve("sp", mp3(24))
    root = write_dataset(
        tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215), row("t2", "A", "B", preview_url=url)]
    )
    with pytest.raises(UsageError, match=r"refusing plain-http preview_url t2: http://127\.0\.0\.1"):
        fetch_previews(root, deezer_api="https://api.deezer.com")
    assert fake.total_requests == 0


def test_cli_plain_http_deezer_api_and_a_bad_deadline_are_refused(tmp_path: Path, fake: FakeDeezer) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", "Queen", "Another One Bites the Dust", 215)])
    runner = CliRunner()
    plain = runner.invoke(app, ["audio", "--dataset", str(root), "--deezer-api", "http://api.deezer.com"])
    assert plain.exit_code == 2 and plain.output.count("\n") == 1
    assert "--deezer-api http://api.deezer.com: plain http to api.deezer.com is refused: https is required" in (
        plain.output
    )
    for bad in ("0", "-1", "nan", "inf"):
        refused = runner.invoke(app, ["audio", "--dataset", str(root), "--deadline", bad])
        assert refused.exit_code == 2 and f"--deadline {bad}: expected a positive number of seconds" in refused.output
    assert fake.total_requests == 0 and not (root / "audio").exists()


BAD_TRACKS = [
    ("latin-1", "t1,Caf\xe9 del Mar,a1,Energy 52,house,train\n".encode("latin-1"), ":2: not valid UTF-8"),
    ("missing columns", b"", "missing column(s) artist_id, artist_name, target, split"),
    ("extra field", b"t1,Song,a1,Artist,rock,train,oops\n", ":2: 7 fields where the header has 6"),
    ("unterminated quote", b't1,"Song,a1,Artist,rock,train\n', ":2: malformed CSV (unexpected end of data)"),
    (
        "stray quote",
        b't1,"Song,a1,Artist,rock,train\nt2,Song,a2,Artist,jazz,test\nt3,Other",a3,Artist,rock,train\n',
        ":2: a quoted field runs over the next line(s) and takes whole rows with it",
    ),
    (
        "stray quote, width changed",
        b't1,"Song,a1,Artist,rock,train\nt2,Song,a2,Artist,jazz,test\nt3,Other",a3,Artist,rock,train,x\n',
        ":2: 7 fields where the header has 6 (the record runs over 3 lines: a stray",
    ),
    (
        "stray quote, then a quote inside a name",
        b't1,"Song,a1,Artist,rock,train\nt2,Say "Hi",a2,Artist,jazz,test\n',
        ":2: malformed CSV",
    ),
]


@pytest.mark.parametrize(("case", "body", "expected"), BAD_TRACKS, ids=[c[0] for c in BAD_TRACKS])
def test_cli_a_malformed_tracks_csv_is_one_line_naming_the_file_and_line(
    tmp_path: Path, case: str, body: bytes, expected: str
) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    header = (
        b"track_id,track_name\n"
        if case == "missing columns"
        else b"track_id,track_name,artist_id,artist_name,target,split\n"
    )
    (root / "tracks.csv").write_bytes(header + body)
    result = CliRunner().invoke(app, ["audio", "--dataset", str(root)], env={"COLUMNS": "400"})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert f"error: {root / 'tracks.csv'}" in result.output and expected in result.output
    assert not (root / "audio").exists()


def test_https_and_allowed_hosts_only(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    assert DEFAULT_ALLOWED_HOSTS == ("api.deezer.com", "p.scdn.co", ".dzcdn.net")
    with pytest.raises(UsageError, match=r"host evil\.example is not allowed"):
        fetch_previews(write_dataset(tmp_path / "x", [row("t1", "A", "B")]), deezer_api="https://evil.example")
    root = write_dataset(
        tmp_path / "ds",
        [
            row("t1", "A", "B", preview_url="https://evil.example/a.mp3"),
            row("t2", "A", "B", preview_url="ftp://p.scdn.co/a.mp3"),
            row("t3", "A", "B", preview_url="https://user:pw@p.scdn.co/a.mp3"),
        ],
    )
    result = run(root)
    assert [o.status for o in result.outcomes] == ["rejected"] * 3
    assert "host evil.example is not allowed" in result.outcomes[0].reason
    assert "only https" in result.outcomes[1].reason
    assert fake.total_requests == 0 and result.requests == {}


def test_redirects_are_checked_against_the_allowed_hosts(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    elsewhere = fake.serve("elsewhere", mp3(25)).replace("127.0.0.1", "localhost")  # a host not named
    fake.set_faults(
        {
            ("preview/a", 1): f"redirect:{fake.preview_url('b')}",  # to an allowed host: followed
            ("preview/c", 1): f"redirect:{elsewhere}",  # to a host not allowed: refused
        }
    )
    rows = [row(name, "A", "B", preview_url=fake.serve(name, mp3(27))) for name in ("a", "c")]
    fake.serve("b", mp3(28))
    root = write_dataset(tmp_path / "ds", rows)
    result = run(root)
    assert [o.status for o in result.outcomes] == ["found", "rejected"]
    assert (root / "audio" / "rock" / "a.mp3").read_bytes() == mp3(28)
    assert "redirect to http://localhost" in result.outcomes[1].reason
    assert fake.resources["preview/elsewhere"] == 0
    assert files_under(root) == ["manifest.csv", "rock/a.mp3"]


def test_bad_settings_are_usage_errors(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", "A", "B")])
    for kw in ({"workers": 0}, {"max_bytes": 0}, {"min_score": 101}, {"duration_tolerance": -1}, {"rate": (0, 5.0)}):
        with pytest.raises(UsageError):
            fetch_previews(root, **kw)
    for bad in ("http://x/", "127.0.0.1:8080", ""):
        with pytest.raises(UsageError, match="--allow-host"):
            fetch_previews(root, allow_hosts=(bad,))
    assert HostPolicy.build(["::1", "[::1]"]).problem("http://[::1]:9/x") is None
    with pytest.raises(UsageError, match=r"no tracks\.csv"):
        fetch_previews(tmp_path)


# --- resuming, interrupting, concurrency -------------------------------------------------------


def mixed_rows(fake: FakeDeezer) -> list[dict[str, Any]]:
    return [
        row("s1", "Queen", "Bohemian Rhapsody", 354, preview_url=fake.serve("s1", mp3(30))),
        row("d1", "Queen", "Another One Bites the Dust", 215, target="metal"),
        row("i1", "Nina Simone", "Feeling Good", 178, isrc="USPR36400001", target="jazz"),
        row("r1", "Eagles", "Hotel California", 391),
        row("m1", "Nobody Known", "Nothing Here", 100),
        row("d2", "Daft Punk", "One More Time", 320, target="house"),
        row("s2", "A", "B", preview_url=fake.serve("s2", mp3(31)), target="jazz"),
        row("d3", "Nina Simone", "Sinnerman", 622, target="jazz"),
    ]


def test_second_run_sends_no_request_and_keeps_the_manifest(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", mixed_rows(fake))
    first = run(root)
    assert (first.found, first.missing, first.rejected, first.failed) == (6, 1, 1, 0)
    text = (root / "audio" / "manifest.csv").read_text(encoding="utf-8")
    sent = fake.total_requests
    second = run(root)
    assert fake.total_requests == sent and second.requests == {}
    assert (root / "audio" / "manifest.csv").read_text(encoding="utf-8") == text
    assert (second.found, second.skipped, second.kept) == (6, 6, 2)
    assert [o.row() for o in second.outcomes] == [o.row() for o in first.outcomes]
    # Earlier missing and rejected answers are asked again only on request.
    third = run(root, retry_missing=True)
    assert third.requests == {SEARCH_ENDPOINT: 2} and (third.missing, third.rejected) == (1, 1)


def test_deleted_or_modified_files_are_fetched_again(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", mixed_rows(fake))
    run(root)
    (root / "audio" / "rock" / "s1.mp3").unlink()
    (root / "audio" / "metal" / "d1.mp3").write_bytes(b"changed")
    before = fake.counts()
    again = run(root)
    after = fake.counts()
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {
        "preview": 2,
        "search": 1,
    }
    assert again.skipped == 4 and again.found == 6
    assert (root / "audio" / "rock" / "s1.mp3").read_bytes() == mp3(30)
    assert (root / "audio" / "metal" / "d1.mp3").read_bytes() == mp3(2)


def test_interrupted_run_keeps_what_finished_and_no_partial_file(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", mixed_rows(fake))
    progress: list[tuple[int, int]] = []

    def stop_after_three(done: int, total: int) -> None:
        progress.append((done, total))
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(root, workers=1, on_track=stop_after_three)
    assert progress == [(0, 8), (1, 8), (2, 8), (3, 8)]
    rows = manifest(root)
    # The three reported are kept, in order; the worker may have finished more before the
    # interrupt reached it (thread timing), and whatever it finished is kept too.
    assert [r["track_id"] for r in rows][:3] == ["s1", "d1", "i1"]
    assert [r["status"] for r in rows][:3] == ["found"] * 3
    found = {r["path"]: r for r in rows if r["status"] == "found"}
    for path, entry in found.items():
        assert sha((root / path).read_bytes()) == entry["sha256"]
    # Nothing half-written: the only files are the manifest and the listed, complete clips.
    saved = [f"audio/{name}" for name in files_under(root) if not name.endswith("/")]
    assert sorted(saved) == sorted([*found, "audio/manifest.csv"])
    sent = fake.counts()
    rest = run(root)
    assert rest.skipped == len(found) and rest.found == 6
    assert (rest.missing, rest.rejected, rest.failed) == (1, 1, 0)
    assert fake.counts()["isrc"] == sent["isrc"]  # what finished was not asked again


def test_interrupting_with_four_workers_leaves_no_partial_file(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    rows = [row(f"t{i}", "A", "B", preview_url=fake.serve(f"p{i}", mp3(40 + i))) for i in range(12)]
    fake.slow_seconds = 0.05
    fake.set_faults({(f"preview/p{i}", 1): "slow" for i in range(12)})
    root = write_dataset(tmp_path / "ds", rows)

    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(root, workers=4, on_track=stop)
    listed = {r["track_id"]: r for r in manifest(root)}
    saved = [name for name in files_under(root) if name != "manifest.csv"]
    assert len(listed) >= 2 and all(name.endswith(".mp3") for name in saved)  # no temporary file
    for track_id, entry in listed.items():
        assert entry["status"] == "found"
        assert sha((root / entry["path"]).read_bytes()) == entry["sha256"]
        assert f"rock/{track_id}.mp3" in saved


def test_a_killed_run_leaves_no_temporary_file_behind_the_next_one(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    root = write_dataset(tmp_path / "ds", [row("t1", "A", "B", preview_url=fake.serve("p", mp3(26)))])
    (root / "audio" / "rock").mkdir(parents=True)
    (root / "audio" / "rock" / ".t1.mp3.abc123.part").write_bytes(b"half")
    (root / "audio" / ".manifest.csv.xyz.part").write_text("half")
    run(root)
    assert files_under(root) == ["manifest.csv", "rock/t1.mp3"]


def test_four_workers_give_the_same_result_as_one(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    rows = mixed_rows(fake) + [row(f"x{i}", "A", "B", preview_url=fake.serve(f"x{i}", mp3(50 + i))) for i in range(8)]
    one = run(write_dataset(tmp_path / "one", rows), workers=1)
    four = run(write_dataset(tmp_path / "four", rows), workers=4)
    assert [o.row() for o in one.outcomes] == [o.row() for o in four.outcomes]
    assert (tmp_path / "one" / "audio" / "manifest.csv").read_text() == (
        tmp_path / "four" / "audio" / "manifest.csv"
    ).read_text()
    assert files_under(tmp_path / "one") == files_under(tmp_path / "four")
    assert one.requests == four.requests


def test_manifest_has_one_row_per_track_with_the_files_sha256(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    rows = mixed_rows(fake)
    root = write_dataset(tmp_path / "ds", rows)
    result = run(root)
    listed = manifest(root)
    targets = {r["track_id"]: r["target"] for r in rows}
    assert tuple(listed[0]) == MANIFEST_COLUMNS
    assert [r["track_id"] for r in listed] == [r["track_id"] for r in rows]
    assert {r["status"] for r in listed} <= {"found", "missing", "rejected", "failed"}
    for entry in listed:
        if entry["status"] == "found":
            assert entry["path"] == f"audio/{targets[entry['track_id']]}/{entry['track_id']}.mp3"
            data = (root / entry["path"]).read_bytes()
            assert entry["sha256"] == sha(data) and int(entry["bytes"]) == len(data)
            assert float(entry["duration"]) == pytest.approx(0.5, abs=0.1)
        else:
            assert entry["sha256"] == "" and entry["path"] == "" and entry["reason"]
    found_files = [name for name in files_under(root) if name.endswith(".mp3")]
    assert len(found_files) == result.found == sum(r["status"] == "found" for r in listed)


def test_requests_to_each_host_keep_to_the_rate(tmp_path: Path, fake: FakeDeezer, clock: FakeClock, run: Any) -> None:
    rows = [row(f"t{i}", "A", "B", preview_url=fake.serve(f"p{i}", mp3(60 + i))) for i in range(7)]
    root = write_dataset(tmp_path / "ds", rows)
    result = run(root, workers=1, rate=(3, 5.0))
    assert result.found == 7
    times = list(fake.request_times)
    assert len(times) == 7
    for first, fourth in zip(times, times[3:], strict=False):
        assert fourth - first >= 5.0
    assert sum(clock.sleeps) >= 10.0


def test_progress_callback_counts_every_track(tmp_path: Path, fake: FakeDeezer, run: Any) -> None:
    seen: list[tuple[int, int]] = []
    root = write_dataset(tmp_path / "ds", mixed_rows(fake))
    run(root, workers=4, on_track=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 8) for i in range(9)]


# --- the pieces --------------------------------------------------------------------------------


def test_host_policy() -> None:
    policy = HostPolicy.build(["127.0.0.1", ".example.org"])
    assert policy.problem("https://api.deezer.com/search/track") is None
    assert policy.problem("https://p.scdn.co/mp3-preview/abc") is None
    assert policy.problem("https://cdnt-preview.dzcdn.net/api/1/1/a.mp3") is None
    assert policy.problem("https://dzcdn.net/x") is not None  # subdomains only
    assert policy.problem("https://evil-dzcdn.net/x") is not None
    assert policy.problem("https://p.scdn.co.evil.com/x") is not None
    assert policy.problem("https://a.example.org/x") is None
    assert policy.problem("http://127.0.0.1:8080/x") is None
    assert policy.problem("http://127.0.0.2/x") is not None  # loopback, but not named
    assert policy.problem("http://a.example.org/x") is not None  # named, but plain http off loopback
    assert policy.problem("http://p.scdn.co/x") is not None
    assert policy.problem("file:///etc/passwd") is not None
    assert policy.problem("https://[::1/x") == "not a valid URL"


def test_host_rate_limiter_is_per_host() -> None:
    clock = FakeClock()
    limiter = HostRateLimiter(2, 5.0, clock)
    for host in ("a", "a", "b", "b"):
        limiter.wait(host)
    assert clock.sleeps == []
    limiter.wait("a")
    assert clock.sleeps == [5.0]


def test_mp3_header_checks() -> None:
    data = mp3(1)
    assert mpeg_frame_header_ok(data[:4]) and mp3_head_problem(data[:10]) is None
    assert mp3_head_problem(b"ID3\x04\x00\x00\x00\x00\x01\x00") is None
    assert id3_size(b"ID3\x04\x00\x00\x00\x00\x01\x00") == 10 + 128
    assert id3_size(b"ID3\x04\x00\x10\x00\x00\x00\x05") == 25  # with a footer
    assert mp3_head_problem(b"<!doctype html>") is not None
    assert mp3_head_problem("\ufeff<h".encode("utf-16-le")) is not None  # FF FE: a sync, but no frame
    assert mp3_head_problem(b"\xff\xfb") is not None  # too short
    assert not mpeg_frame_header_ok(b"\xff\xfb\xf0\x00")  # bitrate index 15


def test_matching_pieces() -> None:
    assert short_title("Yesterday - Remastered 2009") == "Yesterday"
    assert short_title("Song (feat. X) [Live]") == "Song"
    assert search_query('Guns N" Roses', "Sweet Child O' Mine - Remastered") == (
        'artist:"Guns N Roses" track:"Sweet Child O\' Mine"'
    )
    assert clean_isrc("us-rc1-76-12345") == "USRC17612345" and clean_isrc("nope") == ""
    queen = Candidate("1", "Queen", "Bohemian Rhapsody (Remastered 2011)", "Bohemian Rhapsody", 354.0, "u")
    assert match_score("Queen", "Bohemian Rhapsody - Remastered 2011", queen) == 100.0
    assert match_score("The Queen", "bohemian rhapsody", queen) == 100.0
    assert match_score("Queen", "Another One Bites the Dust", queen) < 60
    tribute = Candidate("2", "Queen", "Bohemian Rhapsody (Karaoke Version)", "Bohemian Rhapsody", 354.0, "u")
    choice = choose("Queen", "Bohemian Rhapsody", 354, [tribute])
    assert choice.status == "rejected" and "karaoke" in choice.reason
    best = choose(
        "Queen", "Bohemian Rhapsody", 354, [queen, Candidate("3", "Queen", "Bohemian Rhapsody", "", 360.0, "v")]
    )
    assert best.candidate is queen  # same score: the closer duration wins
    assert choose("Queen", "Bohemian Rhapsody", None, []).status == "missing"


def test_journal_lines_are_merged_and_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    from genremap.audio.dataset import DatasetFolder
    from genremap.audio.previews import PreviewOutcome, journal_path, read_manifest, write_manifest

    folder = DatasetFolder(tmp_path)
    first = PreviewOutcome("t1", "missing", "", None, 0, "", None, "", "no result")
    write_manifest(folder, [first])
    newer = PreviewOutcome("t1", "found", "deezer", 97.0, 10, "ab" * 32, 1.0, "audio/rock/t1.mp3", "")
    other = PreviewOutcome("t2", "rejected", "deezer", 40.0, 0, "", None, "", "another song")
    journal = journal_path(folder)
    journal.write_text(
        json.dumps(newer.row()) + "\n" + json.dumps(other.row()) + "\n" + '{"track_id": "t3", "sta', encoding="utf-8"
    )
    rows = read_manifest(folder)
    assert rows["t1"].status == "found" and rows["t1"].sha256 == "ab" * 32  # the journal is newer than the CSV
    assert rows["t2"].status == "rejected" and "t3" not in rows
