"""`build`: determinism, seeds, artist-disjoint splits, class balance, caps, duplicates, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from genremap.cli import app
from genremap.dataset.balance import SPLITS, balance, dedupe, parse_split
from genremap.dataset.build import BuildOptions, check_build_options
from genremap.engine import load_rules
from genremap.errors import UsageError
from genremap.store import Store, TrackRecord


def _build(runner: CliRunner, db: Path, rules: Path, out: Path, *extra: str) -> pd.DataFrame:
    result = runner.invoke(app, ["build", "--db", str(db), "--rules", str(rules), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "tracks.csv", keep_default_na=False)


def test_build_writes_dataset_with_contract_columns(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    tracks = _build(runner, sample_db, test_rules_dir, tmp_path / "ds")
    assert list(tracks.columns)[:8] == [
        "track_id",
        "track_name",
        "artist_id",
        "artist_name",
        "target",
        "subgenre",
        "rule",
        "split",
    ]
    assert {"duration_ms", "preview_url"} <= set(tracks.columns)
    counts = tracks["target"].value_counts()
    assert set(counts.index) == {"rock", "metal", "jazz", "blues", "disco", "house", "classical", "hip hop", "country"}
    assert counts.nunique() == 1  # balanced to the smallest class
    assert tracks["track_id"].is_unique
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    for key in ("rules", "policy", "seed", "counts", "versions", "command", "duplicates_dropped", "class_sizes"):
        assert key in manifest
    assert manifest["counts"]["tracks"] == len(tracks)
    assert manifest["counts"]["per_class"] == {t: int(n) for t, n in counts.sort_index().items()}
    assert len(manifest["rules"]["sha256"]) == 64
    assert (tmp_path / "ds" / "tracks.parquet").exists()


def test_same_seed_is_byte_identical_and_other_seed_differs(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    _build(runner, sample_db, test_rules_dir, tmp_path / "a", "--seed", "7")
    _build(runner, sample_db, test_rules_dir, tmp_path / "b", "--seed", "7")
    _build(runner, sample_db, test_rules_dir, tmp_path / "c", "--seed", "8")
    a = (tmp_path / "a" / "tracks.csv").read_bytes()
    assert a == (tmp_path / "b" / "tracks.csv").read_bytes()
    assert a != (tmp_path / "c" / "tracks.csv").read_bytes()
    ma = json.loads((tmp_path / "a" / "manifest.json").read_text())
    mb = json.loads((tmp_path / "b" / "manifest.json").read_text())
    ma.pop("created_at"), mb.pop("created_at")
    ma.pop("command"), mb.pop("command")
    assert ma == mb


def test_splits_are_artist_disjoint_and_cover_every_class(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    tracks = _build(runner, sample_db, test_rules_dir, tmp_path / "ds", "--split", "0.6,0.2,0.2")
    splits_per_artist = tracks.groupby("artist_id")["split"].nunique()
    assert (splits_per_artist == 1).all()
    per_class = tracks.groupby("target")["split"].apply(set)
    assert all(s == {"train", "validation", "test"} for s in per_class)
    share = tracks["split"].value_counts(normalize=True)
    assert share["train"] > share["validation"]


def test_max_per_artist(runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path) -> None:
    uncapped = _build(runner, sample_db, test_rules_dir, tmp_path / "a")
    assert uncapped.groupby("artist_id").size().max() > 3
    capped = _build(runner, sample_db, test_rules_dir, tmp_path / "b", "--max-per-artist", "3")
    assert capped.groupby("artist_id").size().max() <= 3


def test_per_class_unreachable_lists_class_sizes(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "build",
            "--db",
            str(sample_db),
            "--rules",
            str(test_rules_dir),
            "--out",
            str(tmp_path / "x"),
            "--per-class",
            "100000",
        ],
    )
    assert result.exit_code == 2
    assert "--per-class 100000 is not reachable: class sizes are" in result.output
    assert "rock" in result.output and "Traceback" not in result.output
    short = _build(runner, sample_db, test_rules_dir, tmp_path / "y", "--per-class", "100000", "--allow-short")
    assert short["target"].value_counts().nunique() > 1


def test_targets_subset(runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path) -> None:
    tracks = _build(runner, sample_db, test_rules_dir, tmp_path / "ds", "--targets", "rock,jazz")
    assert set(tracks["target"]) == {"rock", "jazz"}
    bad = runner.invoke(app, ["build", "--db", str(sample_db), "--rules", str(test_rules_dir), "--targets", "rok"])
    assert bad.exit_code == 2 and "unknown target" in bad.output


@pytest.mark.parametrize(
    "split",
    [
        "0.8,0.1",
        "0.5,0.5,0.5",
        "a,b,c",
        "0,0.5,0.5",
        "nan,0,1",  # NaN compares false with everything: it used to pass every check
        "1,nan,0",
        "nan,nan,nan",
        "inf,-inf,1",
        "1.5,-0.5,0",
        "0.8,0.1,0.1,0",
        "1e400,0,0",
    ],
)
def test_bad_split(split: str) -> None:
    with pytest.raises(UsageError, match="--split"):
        parse_split(split)


def test_split_fractions_are_checked_for_library_callers_too(sample_db: Path, test_rules_dir: Path) -> None:
    options = BuildOptions(out=sample_db.parent / "ds", split=(float("nan"), 0.0, 1.0))
    with pytest.raises(UsageError, match="--split"):
        check_build_options(options, load_rules(test_rules_dir))
    assert not options.out.exists()


def _artists_per_split(tracks: pd.DataFrame, artist: str = "artist") -> dict[str, frozenset[str]]:
    return {s: frozenset(tracks.loc[tracks["split"] == s, artist]) for s in SPLITS}


def test_split_shuffle_follows_the_seed() -> None:
    """40 artists with 5 tracks each in one class: every track is kept whatever the seed, so only
    the split assignment (largest artists first, random order among equals) can differ."""
    frame = pd.DataFrame(
        {"track_id": [f"t{i:03d}" for i in range(200)], "artist": [f"a{i // 5:02d}" for i in range(200)]}
    ).assign(target="rock")
    runs = {seed: balance(frame, ["rock"], seed=seed).tracks for seed in (1, 2, 3)}
    assert all(set(run["track_id"]) == set(frame["track_id"]) for run in runs.values())  # same tracks
    assert _artists_per_split(balance(frame, ["rock"], seed=1).tracks) == _artists_per_split(runs[1])
    splits = {seed: _artists_per_split(run) for seed, run in runs.items()}
    assert splits[1] != splits[2] and splits[1] != splits[3] and splits[2] != splits[3]
    assert all(len(s["test"]) == 4 for s in splits.values())  # 10% of 40 artists each time


def test_build_splits_follow_the_seed(runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path) -> None:
    every_track = ("--per-class", "100000", "--allow-short")  # the same tracks whatever the seed
    one = _build(runner, sample_db, test_rules_dir, tmp_path / "a", "--seed", "1", *every_track)
    again = _build(runner, sample_db, test_rules_dir, tmp_path / "b", "--seed", "1", *every_track)
    other = _build(runner, sample_db, test_rules_dir, tmp_path / "c", "--seed", "2", *every_track)
    assert set(one["track_id"]) == set(other["track_id"])
    assert _artists_per_split(one, "artist_id") == _artists_per_split(again, "artist_id")
    assert _artists_per_split(one, "artist_id") != _artists_per_split(other, "artist_id")


def test_duplicates_are_dropped_before_balancing(store: Store) -> None:
    store.upsert_tracks(
        [
            TrackRecord("t1", "Heroes", "a", "Bowie", isrc="GB1"),
            TrackRecord("t2", "Heroes - 2017 Remaster", "a", "Bowie", isrc="GB2"),  # same song, other ISRC
            TrackRecord("t3", "Heroes (Single Version)", "a", "Bowie", isrc="GB1"),  # same ISRC
            TrackRecord("t4", "Heroes - Live", "a", "Bowie"),  # a different recording
            TrackRecord("t5", "Heroes", "b", "Other Band"),  # another artist's song
        ],
        "test",
    )
    result = dedupe(store.track_keys())
    assert sorted(result.tracks["track_id"]) == ["t1", "t4", "t5"]
    assert (result.dropped_isrc, result.dropped_title) == (1, 1)


def test_balance_is_seeded_and_respects_classes() -> None:
    frame = pd.DataFrame(
        {
            "track_id": [f"t{i:03d}" for i in range(300)],
            "artist": [f"a{i % 30}" for i in range(300)],
            "target": ["rock" if i % 30 < 20 else "jazz" for i in range(300)],
        }
    )
    one = balance(frame, ["rock", "jazz"], seed=1)
    two = balance(frame, ["rock", "jazz"], seed=1)
    other = balance(frame, ["rock", "jazz"], seed=2)
    assert one.tracks.equals(two.tracks)
    assert not one.tracks["track_id"].equals(other.tracks["track_id"])
    assert one.per_class == 100 and one.class_sizes == {"rock": 200, "jazz": 100}
    assert one.tracks["target"].value_counts().to_dict() == {"jazz": 100, "rock": 100}


def test_warns_when_a_class_has_too_few_artists() -> None:
    frame = pd.DataFrame(
        {
            "track_id": ["t1", "t2", "t3", "t4"],
            "artist": ["a", "a", "b", "c"],
            "target": ["rock", "rock", "jazz", "jazz"],
        }
    )
    result = balance(frame, ["rock", "jazz"], seed=0)
    assert any("class 'rock' has 1 artist(s)" in w for w in result.warnings)
    assert any("class 'jazz' has 2 artist(s)" in w for w in result.warnings)


def test_build_sample_flag_runs_on_an_empty_store(runner: CliRunner, tmp_path: Path, test_rules_dir: Path) -> None:
    db = tmp_path / "fresh.db"
    tracks = _build(runner, db, test_rules_dir, tmp_path / "ds", "--sample")
    assert len(tracks) > 100
    again = _build(runner, db, test_rules_dir, tmp_path / "ds2", "--sample")  # idempotent load
    assert again.equals(tracks)
    with Store.open(db) as store:
        sample_tracks = (Path(__file__).parent.parent / "genremap" / "data" / "sample_tracks.csv").read_text()
        assert store.summary().tracks == len(sample_tracks.splitlines()) - 1


def test_build_on_store_without_tracks_says_what_to_do(runner: CliRunner, tmp_path: Path, test_rules_dir: Path) -> None:
    with Store.open(tmp_path / "empty.db"):
        pass  # a store with no tracks (a missing store is refused before: see test_newcomer.py)
    result = runner.invoke(app, ["build", "--db", str(tmp_path / "empty.db"), "--rules", str(test_rules_dir)])
    assert result.exit_code == 2
    assert "no labelled tracks" in result.output and "--sample" in result.output


def test_build_json_summary_is_the_manifest(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "build",
            "--db",
            str(sample_db),
            "--rules",
            str(test_rules_dir),
            "--out",
            str(tmp_path / "ds"),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert printed["counts"]["per_split"]["train"] > printed["counts"]["per_split"]["test"] > 0


def test_interrupted_import_leaves_the_store_consistent(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = "\n".join(f"t{i},Song {i},Artist {i % 7}" for i in range(50))
    (tmp_path / "t.csv").write_text("track_id,track_name,artist_name\n" + rows + "\n")
    db = tmp_path / "s.db"
    real = Store.upsert_track_columns  # what a CSV's tracks are written with (upsert_tracks too)

    def interrupted(self: Store, tracks: object, origin: str, *dedupe: object) -> object:
        with self.transaction() as conn:
            conn.execute("INSERT INTO genres(name) VALUES ('written inside the interrupted transaction')")
            raise KeyboardInterrupt
        return real(self, tracks, origin, *dedupe)  # pragma: no cover

    monkeypatch.setattr(Store, "upsert_track_columns", interrupted)
    result = runner.invoke(app, ["import", str(tmp_path / "t.csv"), "--db", str(db)])
    assert result.exit_code == 130
    assert "interrupted: the store is consistent" in result.output and "Traceback" not in result.output
    monkeypatch.setattr(Store, "upsert_track_columns", real)
    with Store.open(db) as store:
        assert store.summary().tracks == 0
        assert store.genres_frame().empty  # the interrupted transaction was rolled back
        assert store.summary().artists == 0  # one transaction per file: its artists were rolled back too
    again = runner.invoke(app, ["import", str(tmp_path / "t.csv"), "--db", str(db)])
    assert again.exit_code == 0
    with Store.open(db) as store:
        assert store.summary().tracks == 50 and store.summary().artists == 7
