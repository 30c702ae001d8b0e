"""The store under concurrency: readers see one snapshot while another connection writes, and
several commands creating or migrating the same store at once all succeed."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genremap.dataset.labels import Labelling, label_store, labelled_tracks
from genremap.engine import RuleSet
from genremap.store import MIGRATIONS, SCHEMA_VERSION, ArtistRecord, Store, TrackRecord

BANDS = [
    ArtistRecord("ac", "AC/DC", ("australian rock", "hard rock", "rock")),
    ArtistRecord("bs", "Black Sabbath", ("album rock", "hard rock", "metal", "rock", "stoner rock")),
    ArtistRecord("md", "Miles Davis", ("bebop", "cool jazz", "jazz", "jazz fusion")),
    ArtistRecord("ar", "Aretha Franklin", ("classic soul", "jazz blues", "soul", "southern soul")),
    ArtistRecord("ne", "Nas", ("conscious hip hop", "east coast hip hop", "hip hop", "rap")),
]
TRACKS = [
    TrackRecord("t-ac-1", "Back In Black", "ac", "AC/DC"),
    TrackRecord("t-bs-1", "Paranoid", "bs", "Black Sabbath"),
    TrackRecord("t-md-1", "So What", "md", "Miles Davis"),
    TrackRecord("t-ar-1", "Respect", "ar", "Aretha Franklin"),
    TrackRecord("t-ne-1", "N.Y. State of Mind", "ne", "Nas"),
]


def _newcomer(i: int) -> tuple[ArtistRecord, TrackRecord]:
    """An artist (with a genre only it has) and its track, as a concurrent import would add them."""
    artist = ArtistRecord(f"new{i}", f"Newcomer {i}", (f"newcomer wave {i}", "garage rock"))
    return artist, TrackRecord(f"t-new{i}", f"First Single {i}", artist.artist_id, artist.name)


def _seeded(path: Path) -> Path:
    with Store.open(path) as store:
        store.upsert_artists(BANDS, "test")
        store.upsert_tracks(TRACKS, "test")
    return path


def assert_one_snapshot(labelling: Labelling) -> None:
    """Every genre row points at an artist and a genre of the same read, and a newcomer's artist
    and its own genre (written in one transaction) are both there or both absent."""
    rows = labelling.rows
    assert np.all((rows.artist >= 0) & (rows.artist < len(labelling.artists_in)))
    assert np.all((rows.genre >= 0) & (rows.genre < len(labelling.genre_names)))
    artists = set(labelling.artists_in["artist_id"])
    genres = set(labelling.genre_names)
    newcomers_by_artist = {a[3:] for a in artists if a.startswith("new")}
    newcomers_by_genre = {g.rsplit(" ", 1)[1] for g in genres if g.startswith("newcomer wave")}
    assert newcomers_by_artist == newcomers_by_genre


def test_labelling_reads_one_snapshot_while_another_connection_writes(
    tmp_path: Path, test_rules: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that lands between labelling's reads (artists, then genres, then genre rows) is not
    seen by any of them: before, the genre rows named an artist key the artists frame lacked."""
    path = _seeded(tmp_path / "s.db")
    with Store.open(path, create=False, readonly=True) as reader, Store.open(path) as writer:
        read_artists = reader.artists_frame

        def artists_then_concurrent_import(with_counts: bool = True) -> Any:
            frame = read_artists(with_counts=with_counts)
            artist, track = _newcomer(1)
            writer.upsert_artists([artist], "concurrent import")
            writer.upsert_tracks([track], "concurrent import")
            return frame

        monkeypatch.setattr(reader, "artists_frame", artists_then_concurrent_import)
        labelling = label_store(reader, test_rules)
        assert_one_snapshot(labelling)
        assert sorted(labelling.artists_in["artist_id"]) == sorted(a.artist_id for a in BANDS)
        assert set(labelled_tracks(reader, labelling)["track_id"]) == {t.track_id for t in TRACKS}
        monkeypatch.undo()
        # The next labelling sees the newcomer: the write was not lost, only not mixed in.
        assert "new1" in set(label_store(reader, test_rules).artists_in["artist_id"])


def test_tracks_joined_after_labelling_skip_artists_newer_than_the_labelling(
    tmp_path: Path, test_rules: RuleSet
) -> None:
    """Tracks read after labelling may belong to artists imported since: they are not labelled
    by it (before, their artist keys indexed past the labelling's arrays: IndexError)."""
    path = _seeded(tmp_path / "s.db")
    with Store.open(path, create=False, readonly=True) as reader, Store.open(path) as writer:
        labelling = label_store(reader, test_rules)
        for i in range(3):
            artist, track = _newcomer(i)
            writer.upsert_artists([artist], "concurrent import")
            writer.upsert_tracks([track], "concurrent import")
        chosen = labelled_tracks(reader, labelling)
    assert set(chosen["track_id"]) == {t.track_id for t in TRACKS}
    assert chosen["artist"].between(0, len(labelling.artists_in) - 1).all()


def test_a_snapshot_holds_for_every_read_inside_it(tmp_path: Path) -> None:
    path = _seeded(tmp_path / "s.db")
    with Store.open(path, create=False, readonly=True) as reader, Store.open(path) as writer:
        with reader.snapshot():
            before = reader.summary()
            artist, track = _newcomer(1)
            writer.upsert_artists([artist], "concurrent import")
            writer.upsert_tracks([track], "concurrent import")
            assert reader.summary() == before
            assert len(reader.track_keys()) == len(TRACKS)
        assert reader.summary().tracks == len(TRACKS) + 1


# --- a real writer process racing a reader ------------------------------------------------------


def _keep_importing(path: str, started: Any, stop: Any) -> None:
    """Import newcomers one transaction at a time until told to stop (a concurrent `import`)."""
    with Store.open(Path(path)) as store:
        i = 0
        while not stop.is_set():
            artist, track = _newcomer(i)
            store.upsert_artists([artist], "concurrent import")
            store.upsert_tracks([track], "concurrent import")
            i += 1
            started.set()


def test_labelling_while_a_writer_process_imports(sample_db: Path, test_rules: RuleSet) -> None:
    """Label the sample store over and over while another process keeps importing artists with
    new genres: no labelling fails and each is consistent (one snapshot)."""
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    writer = context.Process(target=_keep_importing, args=(str(sample_db), started, stop), daemon=True)
    writer.start()
    try:
        assert started.wait(60), "the writer process never wrote"
        with Store.open(sample_db, create=False, readonly=True) as reader:
            seen: set[int] = set()
            for done in range(1, 1000):  # at least 25 labellings, and until 3 states of the store were seen
                labelling = label_store(reader, test_rules)
                assert_one_snapshot(labelling)
                labelled_tracks(reader, labelling)
                seen.add(len(labelling.artists_in))
                if done >= 25 and len(seen) >= 3:
                    break
    finally:
        stop.set()
        writer.join(60)
    assert writer.exitcode == 0
    assert len(seen) >= 3, "the writer did not write while labelling ran"


# --- several processes creating or migrating one store at once --------------------------------

WORKERS = 6
ROUNDS = 4


def _open_together(paths: list[str], barrier: Any, index: int, results: Any) -> None:
    """For each path: wait for every worker, then open (create or migrate) and write one artist."""
    for path in paths:
        barrier.wait()
        try:
            with Store.open(Path(path)) as store:
                store.upsert_artists([ArtistRecord(f"w{index}", f"Worker {index}", ("garage rock",))], "race")
            results.put((path, index, "ok"))
        except BaseException as exc:  # reported to the parent, which fails the test
            results.put((path, index, f"{type(exc).__name__}: {exc}"))


def make_v1_store(path: Path) -> None:
    """A store as genremap 0.x (schema version 1, no application id) left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript("BEGIN;" + MIGRATIONS[0] + ";PRAGMA user_version=1;COMMIT;")
    conn.execute(
        "INSERT INTO artists(artist_id, name, origin, updated_at) VALUES ('old', 'Old Band', 'import', '2024-01-01')"
    )
    conn.close()


def test_several_processes_create_and_migrate_the_same_store_at_once(tmp_path: Path) -> None:
    """Six processes, released together, open the same new store (and, in other rounds, the same
    old store that needs a migration): every one succeeds and the store is whole."""
    new = [tmp_path / f"new{r}.db" for r in range(ROUNDS)]
    old = [tmp_path / f"old{r}.db" for r in range(ROUNDS)]
    for path in old:
        make_v1_store(path)
    paths = [str(p) for pair in zip(new, old, strict=True) for p in pair]
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WORKERS), context.Queue()
    workers = [
        context.Process(target=_open_together, args=(paths, barrier, i, results), daemon=True) for i in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=300) for _ in range(WORKERS * len(paths))]
    for worker in workers:
        worker.join(60)
    failures = [o for o in outcomes if o[2] != "ok"]
    assert not failures, failures
    for path in new + old:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        workers_written = {r[0] for r in conn.execute("SELECT artist_id FROM artists WHERE origin = 'race'")}
        assert workers_written == {f"w{i}" for i in range(WORKERS)}
        conn.close()
    assert not list(tmp_path.glob(".*")), "temporary files were left behind"
