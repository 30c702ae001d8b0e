"""Incremental features: a rerun computes only new or changed clips, and writes the bytes a full
recomputation writes; removed clips disappear; --force computes everything; a run killed mid-way
(GENREMAP_TEST_EXIT_AFTER: the process ends at once after N clips, as a kill would) is finished
by the next run without computing again what it stored."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("librosa")
soundfile = pytest.importorskip("soundfile")

from genremap.audio.feature_cache import CACHE_NAME  # noqa: E402
from genremap.audio.features import FeaturesResult, compute_features  # noqa: E402
from genremap.cli import app  # noqa: E402

SR = 22050
OUTPUTS = ("pitches.csv", "timbres.csv", "features.csv", "features_errors.csv")
HEADER = "track_id,track_name,artist_id,artist_name,target,subgenre,rule,split,duration_ms,preview_url,isrc"
REPO = Path(__file__).resolve().parent.parent
CLIPS = 8


def clip(rng: np.random.Generator, seconds: float = 2.0) -> np.ndarray:
    """Notes over a little noise, with clicks: onsets, pitch and timbre that differ per clip."""
    t = np.arange(int(seconds * SR)) / SR
    y = 0.02 * rng.standard_normal(t.size)
    for start in np.arange(0, seconds, rng.uniform(0.2, 0.4)):
        span = (t >= start) & (t < start + 0.2)
        y[span] += 0.3 * np.sin(2 * np.pi * rng.uniform(100, 1500) * t[span]) * np.exp(-8 * (t[span] - start))
    return np.clip(y, -1, 1)


def write_clip(path: Path, y: np.ndarray) -> None:
    kwargs = {"format": "MP3"} if path.suffix == ".mp3" else {}
    soundfile.write(path, y.astype(np.float32), SR, **kwargs)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tracks.csv with CLIPS tracks that have a clip (wav and mp3) and one, `later`, that has none yet."""
    root = tmp_path_factory.mktemp("incremental") / "ds"
    rng = np.random.default_rng(5)
    rows = [HEADER]
    for i in range(CLIPS):
        target = ("drums", "keys")[i % 2]
        (root / "audio" / target).mkdir(parents=True, exist_ok=True)
        write_clip(root / "audio" / target / f"t{i}.{('wav', 'mp3')[i % 2]}", clip(rng))
        rows.append(f"t{i},Song {i},a{i},Artist {i},{target},,,{('train', 'test')[i % 2]},,,")
    rows.append("later,Later,a9,Artist 9,drums,,,train,,,")
    (root / "tracks.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def copy(base: Path, to: Path) -> Path:
    shutil.copytree(base, to, copy_function=shutil.copy2)  # keeps mtimes, as `cp -a` does
    return to


def outputs(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in OUTPUTS}


def full_run(root: Path, tmp: Path, **options: object) -> dict[str, bytes]:
    """What a run from scratch writes for `root` as it is now (on a copy without the cache)."""
    fresh = tmp / f"fresh-{len(list(tmp.iterdir()))}"
    shutil.copytree(root, fresh, ignore=shutil.ignore_patterns(CACHE_NAME + "*", *OUTPUTS))
    result = compute_features(fresh, workers=2, **options)  # type: ignore[arg-type]
    assert result.reused == 0
    return outputs(fresh)


def cached_names(root: Path) -> list[str]:
    with sqlite3.connect(root / CACHE_NAME) as db:
        return sorted(name for (name,) in db.execute("SELECT DISTINCT name FROM clips"))


def test_rerun_computes_nothing_and_writes_the_same_bytes(base: Path, tmp_path: Path) -> None:
    root = copy(base, tmp_path / "ds")
    first = compute_features(root, workers=2)
    assert (first.computed, first.reused, first.processed) == (CLIPS, 0, CLIPS)
    written = outputs(root)
    again = compute_features(root, workers=2)
    assert (again.computed, again.reused, again.processed) == (0, CLIPS, CLIPS)
    assert outputs(root) == written
    moved = copy(root, tmp_path / "moved")  # another folder, the same files: still reused
    assert compute_features(moved, workers=2).reused == CLIPS
    assert outputs(moved) == written


def test_changed_added_removed_and_touched_clips(base: Path, tmp_path: Path) -> None:
    root = copy(base, tmp_path / "ds")
    compute_features(root, workers=2)
    rng = np.random.default_rng(99)
    write_clip(root / "audio" / "drums" / "t0.wav", clip(rng, 3.0))  # changed content
    write_clip(root / "audio" / "drums" / "later.wav", clip(rng))  # a new clip for a known track
    (root / "audio" / "keys" / "t3.mp3").unlink()  # removed
    touched = root / "audio" / "drums" / "t2.wav"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))  # same bytes, new mtime
    tracks = (
        (root / "tracks.csv")
        .read_text()
        .replace("t4,Song 4,a4,Artist 4,drums,,,train", "t4,Song 4,a4,Artist 4,drums,,,test")
    )
    (root / "tracks.csv").write_text(tracks)  # t4 moves to the test split: its clip is unchanged

    result = compute_features(root, workers=2)
    assert (result.computed, result.reused, result.processed) == (2, CLIPS - 2, CLIPS)
    assert outputs(root) == full_run(root, tmp_path)
    features_csv = (root / "features.csv").read_text()
    assert "\nt3," not in features_csv and "\nlater," in features_csv
    assert "\nt4,drums,test," in features_csv
    assert "audio/keys/t3.mp3" not in cached_names(root)  # the removed clip's row is gone too
    assert compute_features(root, workers=2).computed == 0  # the touched clip's new mtime was remembered


def test_other_settings_and_force(base: Path, tmp_path: Path) -> None:
    root = copy(base, tmp_path / "ds")
    default = compute_features(root, workers=2)
    written = outputs(root)
    other = compute_features(root, workers=2, segments=20, segmentation="frames")
    assert (other.computed, other.reused) == (CLIPS, 0)  # other settings: other features
    assert outputs(root) == full_run(root, tmp_path, segments=20, segmentation="frames")
    back = compute_features(root, workers=2)
    assert (back.computed, back.reused) == (0, CLIPS)  # both kept: switching back costs nothing
    assert outputs(root) == written
    forced = compute_features(root, workers=2, force=True)
    assert (forced.computed, forced.reused) == (default.computed, 0)
    assert outputs(root) == written


def run_cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "genremap", "features", "--dataset", str(root), "--workers", "1", *args]
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)


def test_killed_run_resumes_without_recomputing(base: Path, tmp_path: Path) -> None:
    root = copy(base, tmp_path / "ds")
    killed = run_cli(root, env={"GENREMAP_TEST_EXIT_AFTER": "3"})
    assert killed.returncode == 75, killed.stderr[-2000:]
    assert not [name for name in OUTPUTS if (root / name).exists()]  # nothing half-written
    assert not list(root.glob("*.tmp"))
    assert len(cached_names(root)) == 3  # what it finished is kept

    result: FeaturesResult = compute_features(root, workers=2)
    assert (result.computed, result.reused, result.processed) == (CLIPS - 3, 3, CLIPS)
    assert outputs(root) == full_run(root, tmp_path)


def test_damaged_cache_is_one_line_and_force_rebuilds_it(base: Path, tmp_path: Path) -> None:
    root = copy(base, tmp_path / "ds")
    (root / CACHE_NAME).write_bytes(b"this is not a database" * 100)
    refused = CliRunner().invoke(app, ["features", "--dataset", str(root), "--workers", "2"])
    assert refused.exit_code == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and CACHE_NAME in lines[0] and "--force" in lines[0], refused.stderr
    assert not (root / "features.csv").exists()
    rebuilt = CliRunner().invoke(app, ["features", "--dataset", str(root), "--workers", "2", "--force"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"{CLIPS} computed, 0 unchanged and reused" in rebuilt.stdout
    assert outputs(root) == full_run(root, tmp_path)
