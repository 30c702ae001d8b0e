"""`genremap enrich --dump`: MusicBrainz's JSON artist dump read offline, as a stream.

The dumps here are written in the real layout (`artist.tar.xz` holding `mbdump/artist` beside
COPYING, README, TIMESTAMP..., one JSON artist a line with aliases, genres with vote counts
and tags), from the same catalog the loopback fake MusicBrainz serves, so the web service's
answers and the dump's can be compared in the store.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import json
import lzma
import os
import subprocess
import sys
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes.clock import FakeClock
from fakes.musicbrainz import DEFAULT_CATALOG, FakeMusicBrainz, entry, mbid
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from genremap.cli import app
from genremap.collectors import mbdump
from genremap.collectors.mbdump import (
    MEMBER,
    READ_BYTES,
    DumpIndex,
    DumpResult,
    enrich_from_dump,
    iter_lines,
    scan_dump,
)
from genremap.collectors.musicbrainz import SEARCH_LIMIT, enrich_musicbrainz, exact_key, name_score
from genremap.errors import UsageError
from genremap.http import Retrying, RetryPolicy
from genremap.store import ArtistRecord, Store

# Store artists (id, name, Spotify genres: () Spotify gave none, None never asked): the cases
# matching must get right, each answered from the catalog below.
STORE_ARTISTS: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("sp:beatles", "Beatles", ()),  # "The" dropped
    ("sp:beyonce", "BEYONCÉ", None),  # case and accent
    ("sp:diddy", "Puff Daddy", ()),  # an alias of Diddy
    ("sp:acdc", "AC/DC", ()),
    ("sp:motley", "Motley Crue", ()),
    ("sp:sunn", "Sunn O)))", ()),
    ("sp:chk", "!!!", ()),
    ("sp:nirvana", "Nirvana", ()),  # two MusicBrainz artists of that name
    ("sp:obscure", "Obscure Band", ()),  # matched, no genres
    ("sp:nobody", "Nobody Anywhere", ()),  # no match
    ("sp:blank", "   ", ()),  # a blank name: never matched
    ("sp:known", "Known Band", ("rock",)),  # has Spotify genres: not looked up
]
NOISE_TAGS = [("seen live", 4), ("british", 2), ("favorites", 1)]  # tags that are not genres


def dump_record(key: str, record: dict[str, Any]) -> dict[str, Any]:
    """One line of `mbdump/artist` for a catalog entry, shaped as MusicBrainz writes it."""
    genres = list(record.get("genres") or [])
    return {
        "id": key,
        "name": record["name"],
        "sort-name": record.get("sort-name", record["name"]),
        "type": record.get("type", "Group"),
        "type-id": "e431f5f6-b5d2-343d-8b36-72607fffb74b",
        "disambiguation": record.get("disambiguation", ""),
        "gender": None,
        "country": None,
        "area": None,
        "begin-area": None,
        "end-area": None,
        "life-span": {"begin": None, "end": None, "ended": False},
        "ipis": [],
        "isnis": [],
        "aliases": [
            {"name": a, "sort-name": a, "type": "Artist name", "locale": None, "primary": None, "ended": False}
            for a in record.get("aliases") or []
        ],
        "genres": [{"id": mbid(f"genre:{g}"), "name": g, "count": c, "disambiguation": ""} for g, c in genres],
        "tags": [{"name": g, "count": c} for g, c in genres + NOISE_TAGS],
        "rating": {"value": None, "votes-count": 0},
    }


def dump_bytes(catalog: dict[str, dict[str, Any]] | None = None, extra: list[bytes] | None = None) -> bytes:
    chosen = DEFAULT_CATALOG if catalog is None else catalog
    lines = [json.dumps(dump_record(k, v), ensure_ascii=False).encode() for k, v in chosen.items()]
    return b"\n".join(lines + (extra or [])) + b"\n"


def tar_bytes(members: list[tuple[str, bytes]], fmt: int = tarfile.GNU_FORMAT, compression: str = "xz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=f"w:{compression}", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def real_layout(data: bytes) -> list[tuple[str, bytes]]:
    """The members of a real artist.tar.xz, the artists last."""
    return [
        ("COPYING", b"CC0 1.0 Universal\n"),
        ("README", b"The MusicBrainz JSON data dumps\n"),
        ("JSON_DUMPS_SCHEMA_NUMBER", b"1\n"),
        ("SCHEMA_SEQUENCE", b"30\n"),
        ("REPLICATION_SEQUENCE", b"175000\n"),
        ("TIMESTAMP", b"2026-05-23 00:10:02.123456+00\n"),
        (MEMBER, data),
    ]


WRITERS: dict[str, Callable[[bytes], bytes]] = {
    "artist": lambda data: data,
    "artist.gz": gzip.compress,
    "artist.xz": lzma.compress,
    "artist.bz2": bz2.compress,
    "artist.tar.xz": lambda data: tar_bytes(real_layout(data)),
    "artist.tar.gz": lambda data: tar_bytes(real_layout(data), compression="gz"),
}


def write_dump(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(WRITERS[name](data))
    return path


def add_store_artists(store: Store, artists: list[tuple[str, str, tuple[str, ...] | None]] = STORE_ARTISTS) -> None:
    store.upsert_artists([ArtistRecord(i, n, genres=g) for i, n, g in artists], origin="test")


def answers(store: Store) -> dict[str, dict[str, Any]]:
    """Every cached answer: status, mbid, name, score, candidates, and the genres with votes."""
    out = {}
    for artist_id, *_ in store.conn.execute("SELECT artist_id FROM musicbrainz_lookups ORDER BY artist_id"):
        lookup = store.musicbrainz_lookup(artist_id) or {}
        lookup.pop("fetched_at")
        rows = store.conn.execute(
            """SELECT n.name, g.votes FROM artist_genres g JOIN artists a USING (artist_key)
               JOIN genres n USING (genre_key) WHERE a.artist_id = ? AND g.source = 'musicbrainz'
               ORDER BY g.position""",
            (artist_id,),
        ).fetchall()
        out[artist_id] = {**lookup, "genres": [(str(n), v) for n, v in rows]}
    return out


def web_service_answers(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """What the web-service path stores for STORE_ARTISTS, against the fake serving the catalog."""
    clock = FakeClock()
    with Store.open(tmp_path / "api.db") as store, FakeMusicBrainz(timer=clock.monotonic) as fake:
        add_store_artists(store)
        retrying = Retrying("MusicBrainz", policy=RetryPolicy(seed=7, timeout=5.0), clock=clock)
        enrich_musicbrainz(store, api=fake.api, retrying=retrying)
        return answers(store)


# --- the same answers as the web service ---------------------------------------------------


@pytest.mark.parametrize("name", list(WRITERS))
def test_dump_stores_what_the_web_service_stores(tmp_path: Path, name: str) -> None:
    dump = write_dump(tmp_path, name, dump_bytes())
    with Store.open(tmp_path / "dump.db") as store:
        add_store_artists(store)
        result = enrich_from_dump(store, dump)
        from_dump = answers(store)
        origins = dict(
            store.conn.execute(
                "SELECT a.artist_id, s.origin FROM artist_genre_sources s JOIN artists a USING (artist_key) "
                "WHERE s.source = 'musicbrainz'"
            ).fetchall()
        )
    from_api = web_service_answers(tmp_path)

    assert result.requests == 0 and result.lines == len(DEFAULT_CATALOG) and result.malformed == 0
    assert (result.looked_up, result.matched, result.no_match) == (11, 9, 2)
    assert set(from_dump) == set(from_api) == {i for i, _, g in STORE_ARTISTS if not g}
    for artist_id, api in from_api.items():
        dumped = from_dump[artist_id]
        # The same choice, score and genres with their votes ...
        assert {k: dumped[k] for k in ("status", "mbid", "mb_name", "score", "genres")} == {
            k: api[k] for k in ("status", "mbid", "mb_name", "score", "genres")
        }, artist_id
        # ... and the same rejected candidates, but for the web service's near names below the
        # threshold, which a dump never offers (documented).
        assert dumped["candidates"] == [c for c in api["candidates"] if c["score"] >= 90], artist_id
    assert from_dump["sp:beatles"]["genres"] == [("rock", 30), ("pop", 25), ("psychedelic rock", 12)]
    assert from_dump["sp:diddy"]["mb_name"] == "Diddy"
    nirvanas = sorted(k for k, v in DEFAULT_CATALOG.items() if v["name"] == "Nirvana")
    assert from_dump["sp:nirvana"]["mbid"] == nirvanas[0]
    assert from_dump["sp:nirvana"]["candidates"] == [
        {
            "mbid": nirvanas[1],
            "name": "Nirvana",
            "score": 100.0,
            "reason": f"score 100 passes, but {nirvanas[0]} ranks higher",
        }
    ]
    assert from_dump["sp:obscure"]["status"] == "matched" and from_dump["sp:obscure"]["genres"] == []
    assert from_dump["sp:nobody"] == {
        "status": "no match",
        "mbid": None,
        "mb_name": None,
        "score": 0.0,
        "candidates": [],
        "genres": [],
    }
    # Tags that are not genres ("seen live", "british") never become genres.
    assert not {g for a in from_dump.values() for g, _ in a["genres"]} & {t for t, _ in NOISE_TAGS}
    assert set(origins.values()) == {f"musicbrainz-dump:{name}"}


def test_an_artist_named_so_ranks_over_one_with_that_alias(tmp_path: Path) -> None:
    catalog = dict(
        [entry("Diddy", [("hip hop", 7)], aliases=["Puff Daddy"]), entry("Puff Daddy", [("trip hop", 1)], key="zz")]
    )
    dump = write_dump(tmp_path, "artist", dump_bytes(catalog))
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store, [("a", "Puff Daddy", ())])
        enrich_from_dump(store, dump)
        lookup = store.musicbrainz_lookup("a") or {}
    assert lookup["mb_name"] == "Puff Daddy" and lookup["mbid"] == mbid("zz")
    assert [c["name"] for c in lookup["candidates"]] == ["Diddy"]
    assert "alias 'Puff Daddy'" in lookup["candidates"][0]["reason"]


PIECES = [
    "the ",
    "The",
    "THE ",
    "a",
    "B",
    "é",
    "E\u0301",
    " ",
    "-",
    "/",
    "!",
    "&",
    "and",
    "n",
    "'",
    "ß",
    "SS",
    "İ",
    "ﬁ",
    "dnb",
    "ø",
    "_",
]


@given(st.lists(st.sampled_from(PIECES), max_size=8), st.lists(st.sampled_from(PIECES), max_size=8))
def test_exact_key_is_the_key_of_a_full_score(left: list[str], right: list[str]) -> None:
    a, b = "".join(left), "".join(right)
    assert (exact_key(a) == exact_key(b)) == (name_score(a, b) == 100.0)


# --- no request ----------------------------------------------------------------------------


def dump_and_store(folder: Path, name: str, data: bytes) -> tuple[Path, Path]:
    """A dump named `name` holding `data`, and a store file with STORE_ARTISTS."""
    db = folder / "s.db"
    with Store.open(db) as store:
        add_store_artists(store)
    return write_dump(folder, name, data), db


def test_cli_sends_no_request_even_with_a_web_service_given(tmp_path: Path, runner: CliRunner) -> None:
    dump, db = dump_and_store(tmp_path, "artist.tar.xz", dump_bytes())
    with FakeMusicBrainz() as fake:
        result = runner.invoke(
            app, ["enrich", "--source", "musicbrainz", "--dump", str(dump), "--db", str(db), "--mb-api", fake.api]
        )
        assert fake.total_requests == 0
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"MusicBrainz dump {dump}: 11 artists read; 11 artists answered, 9 matched (16 genres stored), "
        "2 without a match; 0 answered before, 0 left; no request sent"
    )
    # A second run has nothing to answer and does not even open the dump.
    dump.write_bytes(b"")
    again = runner.invoke(app, ["enrich", "--dump", str(dump), "--db", str(db), "-f", "json"])
    data = json.loads(again.stdout)
    assert (data["looked_up"], data["skipped_cached"], data["lines"], data["requests"]) == (0, 11, 0, 0)


def test_cli_with_a_closed_port_as_web_service_still_works(tmp_path: Path, runner: CliRunner) -> None:
    dump, db = dump_and_store(tmp_path, "artist.gz", dump_bytes())
    with FakeMusicBrainz() as fake:
        closed = fake.api
    result = runner.invoke(app, ["enrich", "--dump", str(dump), "--db", str(db), "--mb-api", closed, "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["matched"], data["requests"], data["stats"]["requests"]) == (9, 0, {})


# --- rerun, --all, interruptions -----------------------------------------------------------


def test_rerun_skips_answered_artists_and_all_asks_again(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, "artist.xz", dump_bytes())
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        first = enrich_from_dump(store, dump, limit=4)
        assert (first.looked_up, first.pending) == (4, 7)
        second = enrich_from_dump(store, dump)
        assert (second.looked_up, second.skipped_cached, second.pending) == (7, 4, 0)
        third = enrich_from_dump(store, dump)
        assert (third.looked_up, third.lines) == (0, 0)
        refreshed = enrich_from_dump(store, dump, refresh=True)
        assert (refreshed.looked_up, refreshed.matched, refreshed.skipped_cached) == (11, 9, 0)


def test_the_web_service_path_takes_all_too(tmp_path: Path) -> None:
    clock = FakeClock()
    with Store.open(tmp_path / "s.db") as store, FakeMusicBrainz(timer=clock.monotonic) as fake:
        add_store_artists(store, [("a", "The Beatles", ()), ("b", "Nobody Anywhere", ())])
        retrying = Retrying("MusicBrainz", policy=RetryPolicy(seed=7, timeout=5.0), clock=clock)
        assert enrich_musicbrainz(store, api=fake.api, retrying=retrying).looked_up == 2
        assert enrich_musicbrainz(store, api=fake.api, retrying=retrying).requests == 0
        again = enrich_musicbrainz(store, api=fake.api, retrying=retrying, refresh=True)
        # Two searches: the Beatles' genres come with the search answer's tags, no lookup.
        assert (again.looked_up, again.requests, again.skipped_cached) == (2, 2, 0)


def test_asking_again_never_erases_a_match(tmp_path: Path) -> None:
    """The web service matches "Lynard Skynyrd" to "Lynyrd Skynyrd" (a near name); the dump
    cannot, and `--all` from the dump must not turn that match into a "no match"."""
    # The fake finds phrases, not near names as MusicBrainz's search does: an alias holding the
    # misspelling makes it offer the band, and best_match accepts its name at 92.9.
    catalog = dict([entry("Lynyrd Skynyrd", [("southern rock", 12)], aliases=["Lynard Skynyrd Tribute"])])
    clock = FakeClock()
    with Store.open(tmp_path / "s.db") as store, FakeMusicBrainz(catalog, timer=clock.monotonic) as fake:
        add_store_artists(store, [("a", "Lynard Skynyrd", ())])
        retrying = Retrying("MusicBrainz", policy=RetryPolicy(seed=7, timeout=5.0), clock=clock)
        assert enrich_musicbrainz(store, api=fake.api, retrying=retrying).matched == 1
        before = answers(store)
        dump = write_dump(tmp_path, "artist.xz", dump_bytes(catalog))
        again = enrich_from_dump(store, dump, refresh=True)
        assert (again.looked_up, again.no_match) == (1, 1)
        assert answers(store) == before
        assert (before["a"]["status"], before["a"]["score"]) == ("matched", 92.9)
        assert before["a"]["genres"] == [("southern rock", 12)]


def test_an_interrupted_save_keeps_the_finished_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dump = write_dump(tmp_path, "artist", dump_bytes())
    monkeypatch.setattr(mbdump, "SAVE_BATCH", 3)
    saved: list[str] = []
    real_save = mbdump.save_match

    def save_then_interrupt(store: Store, match: Any, result: Any, origin: str) -> None:
        if len(saved) == 7:
            raise KeyboardInterrupt
        real_save(store, match, result, origin)
        saved.append(match.artist_id)

    monkeypatch.setattr(mbdump, "save_match", save_then_interrupt)
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        with pytest.raises(KeyboardInterrupt):
            enrich_from_dump(store, dump)
        kept = set(answers(store))
        assert kept == set(saved[:6])  # two whole batches; the third was rolled back
        monkeypatch.setattr(mbdump, "save_match", real_save)
        rest = enrich_from_dump(store, dump)
        assert (rest.looked_up, rest.skipped_cached) == (5, 6)
        assert len(answers(store)) == 11


def test_an_interrupted_read_saves_nothing(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, "artist", dump_bytes() * 2000)  # several blocks of READ_BYTES

    def interrupt(done: int, total: int) -> None:
        if done > READ_BYTES:
            raise KeyboardInterrupt

    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        with pytest.raises(KeyboardInterrupt):
            enrich_from_dump(store, dump, on_bytes=interrupt)
        assert answers(store) == {}


# --- hostile and broken input --------------------------------------------------------------


def test_malformed_lines_are_reported_with_their_numbers_and_skipped(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mbdump, "MAX_LINE_BYTES", 4096)
    bad = [
        b'{"id": "x", "name": "Broken',  # line 12: cut short
        b"[1, 2, 3]",  # 13: not an object
        b'{"name": "No Id"}',  # 14
        b"",  # 15: blank, not a problem
        b'{"id": "y", "name": "\xff\xfe"}',  # 16: not UTF-8
        b"[" * 4000,  # 17: too deep for the JSON parser
        b'{"id": "z", "name": "' + b"A" * 10_000 + b'"}',  # 18: too long
    ]
    data = dump_bytes(extra=bad) + json.dumps(dump_record(mbid("late"), {"name": "Nobody Anywhere"})).encode() + b"\n"
    dump, db = dump_and_store(tmp_path, "artist.xz", data)
    result = runner.invoke(app, ["enrich", "--dump", str(dump), "--db", str(db), "-f", "json"])
    assert result.exit_code == 0, result.output
    warnings = result.stderr.splitlines()
    assert [w.split(":", 2)[1].strip() for w in warnings] == [f"{dump} line {n}" for n in (12, 13, 14, 16, 17, 18)]
    assert "line 12: not JSON" in warnings[0] and warnings[0].endswith("; skipped")
    assert "line 13: a JSON list, not an artist object" in warnings[1]
    assert "line 17: not JSON (maximum recursion depth exceeded" in warnings[4]
    data_out = json.loads(result.stdout)
    assert (data_out["malformed"], data_out["malformed_lines"], data_out["lines"]) == (6, [12, 13, 14, 16, 17, 18], 19)
    with Store.open(db) as store:
        found = answers(store)
    assert found["sp:nobody"]["status"] == "matched"  # the line after the bad ones was read
    assert found["sp:beatles"]["genres"][0] == ("rock", 30)


def test_hostile_values_on_matching_lines_never_crash(tmp_path: Path) -> None:
    lines = [
        b'{"id": "%s", "name": "Puff Daddy", "genres": 5}' % mbid("a").encode(),
        b'{"id": "%s", "name": "Nobody Anywhere", "genres": [{"name": "jazz", "count": Infinity},'
        b' {"name": "soul", "count": 1e400}, {"name": "funk", "count": 1000000000000000000000000000000},'
        b' {"name": "blues", "count": -Infinity}, {"name": "x" , "count": NaN}]}' % mbid("b").encode(),
        b'{"id": "%s", "name": "AC/DC"}' % (b"f" * 5000),
        json.dumps({"id": mbid("c"), "name": "Someone Else", "aliases": ["Motley Crue"] * 20_000}).encode(),
    ]
    dump = write_dump(tmp_path, "artist", dump_bytes({}, lines))
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        result = enrich_from_dump(store, dump)
        found = answers(store)
    assert result.malformed == 1 and result.malformed_lines == [3]  # the 5,000-character id
    assert (found["sp:diddy"]["status"], found["sp:diddy"]["genres"]) == ("matched", [])
    most = 2**31 - 1
    assert found["sp:nobody"]["genres"] == [("funk", most), ("jazz", most), ("soul", most)]
    assert found["sp:acdc"]["status"] == "no match"
    assert found["sp:motley"]["mb_name"] == "Someone Else"


def test_a_line_too_long_is_never_held_whole() -> None:
    sizes: list[int] = []

    class Spy(io.BytesIO):
        def readline(self, size: int | None = -1) -> bytes:
            sizes.append(size if size is not None else -1)
            return super().readline(size)

    stream = Spy(b"short\n" + b"x" * 1000 + b"\nafter\nlast without end")
    lines = list(iter_lines(stream, max_bytes=100))
    assert lines == [(1, b"short\n"), (2, None), (3, b"after\n"), (4, b"last without end")]
    assert set(sizes) == {101}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name,genres\nBeatles,rock\n", "line 1: not JSON"),
        (b'{"id": "r1", "title": "Abbey Road", "media": []}\n', "line 1: not a MusicBrainz artist (no `id` or `name`)"),
        (b"", "no artist in it"),
        (b"\n\n", "no artist in it"),
    ],
)
def test_a_file_that_is_not_an_artist_dump_is_refused(
    tmp_path: Path, runner: CliRunner, content: bytes, expected: str
) -> None:
    dump = tmp_path / "artist"
    dump.write_bytes(content)
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        add_store_artists(store)
    result = runner.invoke(app, ["enrich", "--dump", str(dump), "--db", str(db)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {dump}") and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    with Store.open(db) as store:
        assert answers(store) == {}


@pytest.mark.parametrize("name", ["artist.xz", "artist.gz", "artist.bz2", "artist.tar.xz"])
def test_a_truncated_download_is_refused_and_saves_nothing(tmp_path: Path, name: str) -> None:
    dump = write_dump(tmp_path, name, dump_bytes() * 50)
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        with pytest.raises(UsageError, match=r"unreadable.*Download it again; nothing was saved"):
            enrich_from_dump(store, dump)
        assert answers(store) == {}


def test_a_zstd_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    dump = tmp_path / "artist.zst"
    dump.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 20)
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        with pytest.raises(UsageError, match=r"zstd-compressed.*`zstd -d`"):
            enrich_from_dump(store, dump)


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_a_tar_with_other_members_and_path_tricks_is_read_without_extracting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tricks = [
        ("../escaped", b"outside"),
        ("/tmp/absolute-genremap-test", b"absolute"),
        ("mbdump/../../up", b"up"),
        ("mbdump/artist.bak", b"{not a dump\n"),
    ]
    work = tmp_path / "work"
    work.mkdir()
    dump = work / "artist.tar.xz"
    dump.write_bytes(tar_bytes(tricks + real_layout(dump_bytes())))
    monkeypatch.chdir(work)
    before = _listing(tmp_path)
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        result = enrich_from_dump(store, dump)
    assert result.matched == 9 and result.malformed == 0
    assert _listing(tmp_path) - before <= {"s.db", "s.db-wal", "s.db-shm"}
    assert not Path("/tmp/absolute-genremap-test").exists()


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (
            [("mbdump/release", b"{}\n"), ("COPYING", b"")],
            "no mbdump/artist in this archive (it holds 'mbdump/release', 'COPYING')",
        ),
        ([("../mbdump/artist", b"{}\n")], "no mbdump/artist in this archive"),
        ([("/mbdump/artist", b"{}\n")], "no mbdump/artist in this archive"),
        # Too many members before it: tarfile keeps every member it has read, so the search stops.
        ([(f"f{i}", b"") for i in range(mbdump.MAX_MEMBERS)] + [(MEMBER, b"{}\n")], "no mbdump/artist in this archive"),
    ],
)
def test_a_tar_without_the_artists_is_refused(tmp_path: Path, members: list[tuple[str, bytes]], expected: str) -> None:
    dump = tmp_path / "artist.tar.xz"
    dump.write_bytes(tar_bytes(members))
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        with pytest.raises(UsageError) as refused:
            enrich_from_dump(store, dump)
        assert expected in str(refused.value)
        assert answers(store) == {}


def test_a_link_named_like_the_artists_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:xz") as tar:
        link = tarfile.TarInfo(MEMBER)
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    dump = tmp_path / "artist.tar.xz"
    dump.write_bytes(out.getvalue())
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        with pytest.raises(UsageError, match="is not a regular file"):
            enrich_from_dump(store, dump)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_an_oversized_tar_header_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: int
) -> None:
    monkeypatch.setattr(mbdump, "MAX_HEADER_BYTES", 200)
    dump = tmp_path / "artist.tar.xz"
    dump.write_bytes(tar_bytes([("x" * 300, b""), *real_layout(dump_bytes())], fmt=fmt))
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        with pytest.raises(UsageError, match=r"unreadable \(.*extended header \(at most 200\)"):
            enrich_from_dump(store, dump)
        monkeypatch.setattr(mbdump, "MAX_HEADER_BYTES", 1024 * 1024)
        assert enrich_from_dump(store, dump).matched == 9  # the same archive, within the bound


def test_an_unreadable_file_is_refused_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dump = write_dump(tmp_path, "artist.xz", dump_bytes())

    def denied(path: Path) -> str:  # what open() raises without read permission (the tests may run as root)
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(mbdump, "_compression", denied)
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store)
        with pytest.raises(UsageError, match=r"artist.xz: cannot be read \(Permission denied\); nothing was saved"):
            enrich_from_dump(store, dump)


def test_cli_refusals_are_one_line_without_traceback(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        add_store_artists(store)
    text = tmp_path / "artist.tar.xz"
    text.write_bytes(lzma.compress(b"not a tar at all, and not JSON either\n"))
    corrupt = tmp_path / "artist.xz"
    corrupt.write_bytes(b"\xfd7zXZ\x00" + bytes(range(256)) * 4)
    cases = [
        (text, "line 1: not JSON"),
        (corrupt, "unreadable"),
        (tmp_path / "missing.tar.xz", "no such file"),
        (tmp_path, "not a file"),
    ]
    for dump, expected in cases:
        done = subprocess.run(
            [sys.executable, "-m", "genremap", "enrich", "--dump", str(dump), "--db", str(db)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")
        assert "Traceback" not in done.stderr and done.stdout == "" and expected in done.stderr


# --- bounded by the store, not by the dump -------------------------------------------------

BIG_LINES = 200_000
SAME_NAME = 3_000  # MusicBrainz artists all called "John Smith"


def big_dump(path: Path) -> Path:
    """BIG_LINES artists, SAME_NAME of them "John Smith", the 50 store artists' own at the end."""

    def template(name: str, genre: str, aliases: list[str]) -> str:
        return json.dumps(dump_record("@ID@", {"name": name, "aliases": aliases, "genres": [(genre, 7)]})) + "\n"

    filler = template("Filler Artist @N@", "rock", ["Filler @N@"])
    smith = template("John Smith", "folk", [])
    with path.open("w", encoding="utf-8") as out:
        for i in range(BIG_LINES - 50 - SAME_NAME):
            out.write(filler.replace("@ID@", mbid(f"filler{i}")).replace("@N@", str(i)))
        for i in range(SAME_NAME):
            out.write(smith.replace("@ID@", mbid(f"smith{i}")))
        for i in range(50):
            out.write(template(f"Wanted {i}", "jazz", []).replace("@ID@", mbid(f"wanted{i}")))
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_dump(tmp_path_factory.mktemp("big") / "artist")


def test_a_large_dump_is_streamed_with_the_memory_of_the_store(
    big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = big.stat().st_size
    progress: list[int] = []
    read_when_first_offered: list[int] = []
    kept_most = [0]
    real_offer = DumpIndex.offer

    def offer(index: DumpIndex, record: dict[str, Any]) -> None:
        if not read_when_first_offered:
            read_when_first_offered.append(progress[-1])
        real_offer(index, record)
        kept_most[0] = max(kept_most[0], *(len(v) for v in index.found.values()), 0)

    monkeypatch.setattr(DumpIndex, "offer", offer)
    with Store.open(tmp_path / "s.db") as store:
        add_store_artists(store, [(f"sp{i}", f"Wanted {i}", ()) for i in range(49)] + [("sp:smith", "John Smith", ())])
        result = enrich_from_dump(store, big, on_bytes=lambda done, total: progress.append(done))
        found = answers(store)

    assert result.lines == result.artists_read == BIG_LINES and result.matched == 50
    # Read in blocks, the first artist handled after the first block, not after the whole file.
    assert progress == sorted(progress) and progress[-1] == size and len(progress) >= size // READ_BYTES
    assert read_when_first_offered[0] <= READ_BYTES < size // 10
    # Candidates are bounded per store artist, whatever the number of same-name artists.
    assert kept_most[0] <= 2 * SEARCH_LIMIT
    assert len(found["sp:smith"]["candidates"]) == SEARCH_LIMIT - 1
    assert found["sp48"]["genres"] == [("jazz", 7)]


def test_peak_memory_does_not_grow_with_the_dump(big: Path, tmp_path: Path) -> None:
    """Python's own allocations (tracemalloc) while reading 50,000 lines stay a small fraction of
    the file, and about what a tenth of them needs."""

    def peak(lines: int) -> int:
        path = tmp_path / f"artist{lines}"
        with big.open("rb") as src, path.open("wb") as out:
            for _ in range(lines):
                out.write(src.readline())
        with Store.open(tmp_path / f"s{lines}.db") as store:
            add_store_artists(store, [(f"sp{i}", f"Filler Artist {i * 97}", ()) for i in range(50)])
            tracemalloc.start()
            try:
                enrich_from_dump(store, path)
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    small, large = peak(5_000), peak(50_000)
    assert large < (tmp_path / "artist50000").stat().st_size // 4
    assert large < 2 * small


def test_scan_dump_reads_an_unseekable_stream(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: Any) -> int:
            return self._data.readinto(buffer)

    index = DumpIndex(frozenset({exact_key("Beatles")}))
    result = DumpResult(dump="pipe")
    scan_dump(io.BufferedReader(Pipe(dump_bytes())), index, result)
    assert result.artists_read == len(DEFAULT_CATALOG)
    assert [c["name"] for c in index.candidates("The Beatles")] == ["The Beatles"]


def test_the_bar_counts_bytes_on_a_terminal() -> None:
    from rich.console import Console

    from genremap.progress import bytes_read

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with bytes_read(console, "reading artist.tar.xz") as on_bytes:
        on_bytes(3_000_000, 12_000_000)
        console.print("")  # a refresh of the live display
    assert "reading artist.tar.xz" in screen.getvalue() and "3.0/12.0 MB" in screen.getvalue()
