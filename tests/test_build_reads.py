"""The fast paths of `build` give what the plain ones give: the track keys read on a thread
while the command starts (in the snapshot the build then reads), track ids kept as one
buffer, the table read in its own order, and tracks.csv written by the csv module."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from genremap.cli import app
from genremap.dataset.export import write_csv
from genremap.store import Store, TrackIds
from genremap.store_connect import early_track_keys

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))


def dataset_files(folder: Path) -> dict[str, bytes]:
    """The dataset's files, manifest.json without its timestamp."""
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    manifest = json.loads(files.pop("manifest.json"))
    manifest.pop("created_at")
    files["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    return files


@contextmanager
def no_early_read() -> Iterator[None]:
    """`build` without the early read (the store read as it is opened)."""

    @contextmanager
    def none(path: Path) -> Iterator[None]:
        yield None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("genremap.store_connect.early_track_keys", none)
        yield


def build(runner: CliRunner, db: Path, out: Path, *extra: str) -> dict[str, bytes]:
    result = runner.invoke(app, ["build", "--db", str(db), "--out", str(out), "--allow-short", *extra])
    assert result.exit_code == 0, result.output
    return dataset_files(out)


@pytest.fixture(scope="module")
def generated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store imported from 6,000 tracks of the benchmarks' generator (duplicates by ISRC and by
    title, artists of many genres)."""
    from bench_import import write_csv

    folder = tmp_path_factory.mktemp("generated")
    write_csv(folder / "tracks.csv", 6000, 7)
    db = folder / "store.db"
    result = CliRunner().invoke(app, ["import", str(folder / "tracks.csv"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


@pytest.mark.parametrize("store_name", ["sample_db", "generated_db"])
@pytest.mark.parametrize("options", [(), ("--seed", "9", "--max-per-artist", "2", "--split", "0.6,0.2,0.2")])
def test_fast_reads_give_the_plain_reads_dataset(
    request: pytest.FixtureRequest, store_name: str, options: tuple[str, ...], tmp_path: Path
) -> None:
    db: Path = request.getfixturevalue(store_name)
    runner = CliRunner()
    fast = build(runner, db, tmp_path / "fast", *options)
    with no_early_read(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(Store, "_track_keys_concatenated", lambda self: None)  # rows, one tuple each
        plain = build(runner, db, tmp_path / "plain", *options)
    assert json.loads(fast["manifest.json"])["labelled_tracks"] > 100
    assert fast == plain


def test_early_read_and_build_share_one_snapshot(sample_db: Path) -> None:
    """A track committed after the early read began is seen neither by the keys nor by any
    later read of the build: the store adopts the early read's transaction."""
    with early_track_keys(sample_db) as early:
        assert early is not None
        early.wait()
        with sqlite3.connect(sample_db) as writer:
            writer.execute(
                "INSERT INTO tracks(track_id, name, artist_key, dedupe_key, dedupe_hash, origin, added_at)"
                " SELECT 'zzzz-late', 'Late', artist_key, 'late', 1, 'test', '' FROM artists LIMIT 1"
            )
        with Store.open(sample_db, create=False, readonly=True, early=early) as store, store.snapshot():
            keys = store.track_key_arrays()
            counted = store.conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
            assert len(keys.ids) == counted
            assert "zzzz-late" not in keys.ids.all()
    with Store.open(sample_db, create=False, readonly=True) as store:
        assert store.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == counted + 1


def test_refused_build_stops_the_early_read(sample_db: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "--db", str(sample_db), "--out", str(tmp_path / "d"), "--seed", "-1"])
    assert result.exit_code == 2
    assert "--seed -1" in result.output and "Traceback" not in result.output
    assert not [t for t in threading.enumerate() if t.name == "genremap-track-keys"]
    assert not (tmp_path / "d").exists()


def test_no_early_read_of_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE tracks (track_id TEXT)")
    with early_track_keys(other) as early, early_track_keys(tmp_path / "missing.db") as missing:
        assert early is None and missing is None
    result = CliRunner().invoke(app, ["build", "--db", str(other), "--out", str(tmp_path / "d")])
    assert result.exit_code != 0 and "not a genremap store" in result.output


def test_track_ids_by_position() -> None:
    joined = TrackIds.joined("0Aé\n0Ab\n1zz".encode())
    assert len(joined) == 3 and joined.all() == ["0Aé", "0Ab", "1zz"]
    assert list(joined.take(np.array([2, 0]))) == ["1zz", "0Aé"]
    assert not joined.in_order()  # ids of different byte lengths: not checked here, read again ordered
    assert TrackIds.joined(b"ab\nac\nb0").in_order() and not TrackIds.joined(b"ab\naa").in_order()
    given = TrackIds.of(["a\nb", "", "c"])  # the row read's ids may hold the separator
    assert given.all() == ["a\nb", "", "c"] and not given.in_order()
    assert list(given.take(np.array([], dtype=np.int64))) == []


CELL = st.one_of(
    st.none(),
    st.text(st.sampled_from(["a", "é", " ", ",", '"', "\n", "\r", "'", "=", "\t", "x"]), max_size=6),
    st.text(max_size=4),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(CELL, CELL, st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))), min_size=0, max_size=12
    ),
    as_str=st.booleans(),
)
def test_tracks_csv_written_as_pandas_writes_it(tmp_path: Path, rows: list[tuple], as_str: bool) -> None:
    """Quotes, separators, line breaks, empty and missing cells, 64-bit integers: the csv
    module's tracks.csv is pandas' to_csv byte for byte (text as pandas' str dtype or objects)."""
    frame = pd.DataFrame(
        {
            "track_name": pd.Series([r[0] for r in rows], dtype="str" if as_str else object),
            "artist_name": pd.Series([r[1] for r in rows], dtype=object),
            "duration_ms": pd.array([r[2] for r in rows], dtype="Int64"),
        }
    )
    write_csv(frame, tmp_path / "fast.csv")
    frame.to_csv(tmp_path / "pandas.csv", index=False, lineterminator="\n")
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_tracks_csv_of_other_columns_written_by_pandas(tmp_path: Path) -> None:
    frame = pd.DataFrame({"track_id": ["a", "b"], "score": [0.1, float("nan")], "mixed": ["x", 3]})
    write_csv(frame, tmp_path / "fast.csv")
    assert (tmp_path / "fast.csv").read_text() == frame.to_csv(index=False, lineterminator="\n")
