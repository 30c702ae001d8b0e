"""The features stage: pitches.csv, timbres.csv and features.csv from clips in DIR/audio/.

The audio is generated here: three classes whose spectra differ by design (low sines with
rumble, high harmonic tones, broadband clicks at a tempo), plus a short clip, a silent one,
a corrupt file, a file for an unknown id and a duplicate, in mp3, wav, flac and ogg.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("librosa")
soundfile = pytest.importorskip("soundfile")

from genremap.audio import features  # noqa: E402
from genremap.audio.features import FeaturesResult, clip_features, compute_features  # noqa: E402
from genremap.errors import GenremapError, UsageError  # noqa: E402

SR = 22050
SECONDS = 5.0
OUTPUTS = ("pitches.csv", "timbres.csv", "features.csv", "features_errors.csv")
HEADER = "track_id,track_name,artist_id,artist_name,target,subgenre,rule,split,duration_ms,preview_url,isrc"
REPO = Path(__file__).resolve().parent.parent


def bass(rng: np.random.Generator, seconds: float = SECONDS) -> np.ndarray:
    """Low sines (55-110 Hz) under low-passed noise bursts: energy below ~300 Hz."""
    t = np.arange(int(seconds * SR)) / SR
    y = sum(0.25 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in rng.uniform(55, 110, size=2))
    noise = np.convolve(rng.standard_normal(t.size), np.ones(64) / 64, mode="same")  # crude low-pass
    bursts = (np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * t) > 0.6).astype(float)
    return np.asarray(y + 2.0 * noise * bursts)


def tones(rng: np.random.Generator, seconds: float = SECONDS) -> np.ndarray:
    """Harmonic tones (fundamental 700-1200 Hz, 4 harmonics), a new note every 0.5 s."""
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for start in np.arange(0, seconds, 0.5):
        f0 = rng.uniform(700, 1200)
        span = (t >= start) & (t < start + 0.5)
        envelope = np.exp(-3 * (t[span] - start))
        y[span] = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t[span]) for k in range(1, 5)) * envelope
    return y


def click_times(bpm: float, seconds: float) -> np.ndarray:
    return np.arange(0.1, seconds - 0.05, 60.0 / bpm)


def clicks(rng: np.random.Generator, seconds: float = SECONDS, bpm: float = 120.0) -> np.ndarray:
    """Broadband clicks (5 ms of white noise) at `bpm` over faint white noise."""
    n = int(seconds * SR)
    y = 0.01 * rng.standard_normal(n)
    for start in click_times(bpm, seconds):
        i = int(start * SR)
        y[i : i + 110] += 0.8 * rng.standard_normal(len(y[i : i + 110]))
    return y


CLASSES = {"bass": bass, "tones": tones, "clicks": clicks}
# A format per clip of each class; mp3 is what `genremap audio` writes, the others are dropped-in files.
FORMATS = {"mp3": {"format": "MP3"}, "wav": {}, "flac": {}, "ogg": {"format": "OGG", "subtype": "VORBIS"}}
CLIP_FORMATS = ["mp3", "wav", "flac", "ogg"]
BPM = [100.0, 115.0, 125.0, 140.0]  # of clicks0..clicks3


# compute_features' result, the folder it wrote, the progress calls it made
OnsetRun = tuple[FeaturesResult, Path, list[tuple[int, int]]]


@dataclass
class Dataset:
    root: Path
    unwritable: dict[str, str] = field(default_factory=dict)  # format -> why soundfile could not write it
    files: dict[str, str] = field(default_factory=dict)  # track id -> format written

    def copy(self, to: Path) -> Path:
        shutil.copytree(self.root, to)
        return to


def write_clip(path: Path, y: np.ndarray, fmt: str) -> None:
    soundfile.write(path, np.clip(y, -1, 1).astype(np.float32), SR, **FORMATS[fmt])


def make_dataset(root: Path, per_class: int = 4) -> Dataset:
    """tracks.csv and audio/<target>/<id>.<ext>: per_class clips per class, plus the odd files."""
    dataset = Dataset(root)
    rng = np.random.default_rng(7)
    rows = [HEADER]
    for target, make in CLASSES.items():
        (root / "audio" / target).mkdir(parents=True)
        for i in range(per_class):
            track_id = f"{target}{i}"
            fmt = CLIP_FORMATS[i % len(CLIP_FORMATS)]
            y = clicks(rng, bpm=BPM[i]) if make is clicks else make(rng)
            try:
                write_clip(root / "audio" / target / f"{track_id}.{fmt}", y, fmt)
            except Exception as exc:  # this libsndfile cannot write the format: fall back to wav
                dataset.unwritable[fmt] = f"{type(exc).__name__}: {exc}"
                fmt = "wav"
                write_clip(root / "audio" / target / f"{track_id}.{fmt}", y, fmt)
            dataset.files[track_id] = fmt
            rows.append(f"{track_id},Song {i},artist{i},Artist {i},{target},,,{('train', 'test')[i % 2]},,,")
    write_clip(root / "audio" / "tones" / "short.wav", tones(rng, 2.0), "wav")  # 2 s: few segments
    write_clip(root / "audio" / "bass" / "silent.flac", np.zeros(int(SR * 3.0)), "flac")
    (root / "audio" / "clicks" / "corrupt.mp3").write_bytes(rng.bytes(20_000))
    write_clip(root / "audio" / "clicks" / "stranger.wav", clicks(rng, 1.0), "wav")  # not in tracks.csv
    write_clip(root / "audio" / "bass" / "tones0.wav", bass(rng, 1.0), "wav")  # tones0 again, wrong folder
    (root / "audio" / "manifest.csv").write_text("track_id,status\n")  # not audio: ignored
    rows += ["short,Short,a,A,tones,,,train,,,", "silent,Silence,a,A,bass,,,validation,,,"]
    rows += ["corrupt,Bad,a,A,clicks,,,train,,,", "nofile,Missing,a,A,clicks,,,test,,,"]
    (root / "tracks.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return dataset


def outputs(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return make_dataset(tmp_path_factory.mktemp("features") / "ds")


@pytest.fixture(scope="module")
def onset_run(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> OnsetRun:
    """One run with two workers, on a copy of the dataset, with every progress call recorded."""
    root = dataset.copy(tmp_path_factory.mktemp("onset") / "ds")
    calls: list[tuple[int, int]] = []
    result = compute_features(root, workers=2, on_file=lambda done, total: calls.append((done, total)))
    return result, root, calls


@pytest.fixture(scope="module")
def tables(onset_run: OnsetRun) -> dict[str, pd.DataFrame]:
    root = onset_run[1]
    return {name: pd.read_csv(root / name, dtype={"track_id": str}, keep_default_na=False) for name in OUTPUTS}


def test_files_and_shapes(onset_run: OnsetRun, tables: dict[str, pd.DataFrame]) -> None:
    result, root, _ = onset_run
    assert result.files_written == list(OUTPUTS)
    assert not [p.name for p in root.iterdir() if p.name.endswith(".tmp")]
    expected = sorted([f"{c}{i}" for c in CLASSES for i in range(4)] + ["short", "silent"])
    assert result.processed == len(expected)
    for name, prefix in (("pitches.csv", "p"), ("timbres.csv", "t")):
        frame = tables[name]
        assert frame.shape == (len(expected), 2 + 1500)
        assert list(frame.columns) == ["track_id", "segments", *(f"{prefix}{i}" for i in range(1500))]
        assert frame["track_id"].tolist() == expected  # sorted by track id, one row per track
    features_csv = (root / "features.csv").read_text()
    assert features_csv.startswith("track_id,target,split,")
    assert list(tables["features.csv"].columns) == list(features.FEATURES_HEADER)
    assert tables["features.csv"]["track_id"].tolist() == expected
    targets = dict(zip(tables["features.csv"]["track_id"], tables["features.csv"]["target"], strict=True))
    assert targets["tones0"] == "tones" and targets["silent"] == "bass"  # from tracks.csv, not the folder
    assert tables["features.csv"].set_index("track_id").loc["silent", "split"] == "validation"


def test_no_empty_cells_and_finite_values(onset_run: OnsetRun) -> None:
    root = onset_run[1]
    for name in ("pitches.csv", "timbres.csv", "features.csv"):
        with (root / name).open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            first_value = 3 if name == "features.csv" else 1
            for row in reader:
                assert len(row) == len(header)
                assert all(cell != "" for cell in row)
                values = np.array([float(cell) for cell in row[first_value:]])
                assert np.isfinite(values).all(), (name, row[0])


def test_pitches_are_normalised_per_segment(tables: dict[str, pd.DataFrame]) -> None:
    pitches = tables["pitches.csv"].set_index("track_id")
    values = pitches.drop(columns="segments").to_numpy()
    assert values.min() >= 0 and values.max() <= 1
    for track_id, row in pitches.iterrows():
        segs = row.to_numpy()[1:].astype(float).reshape(-1, 12)[: int(row["segments"])]
        if track_id != "silent":
            assert np.allclose(segs.max(axis=1), 1.0), track_id  # each real segment's loudest pitch class is 1


def test_short_clip_is_padded_with_zeros(onset_run: OnsetRun, tables: dict[str, pd.DataFrame]) -> None:
    result = onset_run[0]
    assert result.padded == result.processed  # 2-5 s clips never reach 125 segments
    for name in ("pitches.csv", "timbres.csv"):
        values = tables[name].set_index("track_id").loc["short"].to_numpy().astype(float)
        real = int(values[0])  # the segments column
        assert 1 <= real < 125
        values = values[1:]
        assert (values[real * 12 :] == 0).all()
        assert (values[: real * 12] != 0).any()
    silent = tables["pitches.csv"].set_index("track_id").loc["silent"]
    assert silent["segments"] == 1 and (silent.to_numpy()[1:] == 0).all()  # no onsets: one segment, no pitch


def test_problems_reported_and_skipped(onset_run: OnsetRun) -> None:
    result, root, _ = onset_run
    assert [f for f, _ in result.failed] == ["audio/clicks/corrupt.mp3"]
    assert result.failed[0][1].startswith("decode_failed: ")
    assert result.skipped_unknown == ["audio/clicks/stranger.wav"]
    assert result.skipped_duplicate == ["audio/bass/tones0.wav"]  # the file in the target's folder wins
    assert result.no_audio == 1  # nofile
    errors = pd.read_csv(root / "features_errors.csv", keep_default_na=False)
    assert list(errors.columns) == ["file", "problem", "detail"]
    assert errors[["file", "problem"]].values.tolist() == [
        ["audio/bass/tones0.wav", "duplicate_track"],
        ["audio/clicks/corrupt.mp3", "decode_failed"],
        ["audio/clicks/stranger.wav", "unknown_track"],
    ]
    assert str(root) not in (root / "features_errors.csv").read_text()  # paths relative to the folder


def test_progress_callback(onset_run: OnsetRun) -> None:
    calls = onset_run[2]
    total = 15  # 12 class clips, short, silent, corrupt: every file with a known id, once
    assert calls == [(done, total) for done in range(total + 1)]


@pytest.mark.parametrize("fmt", CLIP_FORMATS)
def test_formats(fmt: str, dataset: Dataset, tables: dict[str, pd.DataFrame]) -> None:
    if fmt in dataset.unwritable:
        pytest.skip(f"soundfile cannot write {fmt} here: {dataset.unwritable[fmt]}")
    ids = [track_id for track_id, written in dataset.files.items() if written == fmt]
    assert ids
    assert set(ids) <= set(tables["features.csv"]["track_id"])


def test_class_separation(tables: dict[str, pd.DataFrame]) -> None:
    """Per-class mean spectral centroid follows the design: bass < tones < clicks."""
    frame = tables["features.csv"]
    frame = frame[frame["track_id"].str.match(r"^(bass|tones|clicks)\d$")]
    centroid = frame.groupby("target")["centroid_mean"].mean()
    assert centroid["bass"] < centroid["tones"] < centroid["clicks"]
    assert centroid["bass"] < 1000 < centroid["tones"] < 3000 < 4000 < centroid["clicks"]
    assert (
        frame[frame["target"] == "tones"]["centroid_mean"] > frame[frame["target"] == "bass"]["centroid_mean"].max()
    ).all()


def test_onsets_follow_the_clicks(tables: dict[str, pd.DataFrame]) -> None:
    """Onset segmentation: one segment per click (plus the span before the first); tempo near the design."""
    frame = tables["features.csv"].set_index("track_id")
    pitches = tables["pitches.csv"].set_index("track_id")
    for i, bpm in enumerate(BPM):
        clicks_in_clip = len(click_times(bpm, SECONDS))
        found = int(frame["segment_count"][f"clicks{i}"])
        assert found in (clicks_in_clip, clicks_in_clip + 1)
        assert int(pitches["segments"][f"clicks{i}"]) == found
        assert float(frame["tempo"][f"clicks{i}"]) == pytest.approx(bpm, rel=0.12)
    assert float(frame["tempo"]["silent"]) == 0 and int(frame["segment_count"]["silent"]) == 1


def test_deterministic_across_runs_and_workers(dataset: Dataset, onset_run: OnsetRun, tmp_path: Path) -> None:
    reference = outputs(onset_run[1])
    again = dataset.copy(tmp_path / "again")
    compute_features(again, workers=2)
    assert outputs(again) == reference
    single = dataset.copy(tmp_path / "single")
    compute_features(single, workers=1)
    assert outputs(single) == reference


def test_fixed_frames(dataset: Dataset, tmp_path: Path) -> None:
    root = dataset.copy(tmp_path / "frames")
    result = compute_features(root, segmentation="frames", frame_seconds=0.5, segments=20, workers=2)
    assert result.processed == 14
    pitches = pd.read_csv(root / "pitches.csv", dtype={"track_id": str}).set_index("track_id")
    assert pitches.shape[1] == 1 + 20 * 12
    # 0.5 s spans: a 5 s clip fills 10 (11 with the mp3 encoder's padding), the 2 s clip 4, all within 20
    assert pitches.loc["short", "segments"] == 4
    assert set(pitches["segments"].drop(["short", "silent"])) <= {10, 11}
    assert pitches.loc["silent", "segments"] == 6


def test_clip_features_directly(dataset: Dataset) -> None:
    clip = clip_features(
        dataset.root / "audio" / "tones" / "short.wav", segments=3, segmentation="frames", frame_seconds=0.25
    )
    assert clip.pitches.shape == (3, 12) and clip.timbres.shape == (3, 12)
    assert clip.segment_count == 8 and clip.segments == 3
    assert list(clip.summary) == list(features.SUMMARY_COLUMNS)
    assert clip.summary["duration_s"] == pytest.approx(2.0)


def test_failed_run_leaves_previous_files(dataset: Dataset, onset_run: OnsetRun, tmp_path: Path) -> None:
    root = dataset.copy(tmp_path / "interrupted")
    for name in OUTPUTS:
        shutil.copy(onset_run[1] / name, root / name)

    def interrupt(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compute_features(root, workers=2, on_file=interrupt)
    assert outputs(root) == outputs(onset_run[1])
    assert not [p.name for p in root.iterdir() if p.name.endswith(".tmp")]


def crash_on_short(task: tuple) -> tuple:
    """Stands in for features._work in forked workers: the process dies on short.wav."""
    if task[2].endswith("short.wav"):
        os._exit(3)
    return REAL_WORK(task)


REAL_WORK = features._work


@pytest.mark.skipif(sys.platform == "win32" or os.name != "posix", reason="needs fork to patch the workers")
def test_crashing_worker_fails_one_file(dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("workers are not forked: the patch would not reach them")
    root = dataset.copy(tmp_path / "crash")
    monkeypatch.setattr(features, "_work", crash_on_short)
    result = compute_features(root, workers=2)
    assert (
        "audio/tones/short.wav",
        "worker_crashed: the process decoding this file died (a crash in the decoder?)",
    ) in result.failed
    assert result.processed == 13
    frame = pd.read_csv(root / "features.csv", dtype={"track_id": str})
    assert "short" not in set(frame["track_id"]) and len(frame) == 13


def crash_warm_up() -> None:
    os._exit(11)


def test_crash_on_warm_up_is_a_clear_error(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("workers are not forked: the patch would not reach them")
    monkeypatch.setattr(features, "_warmed", False)
    monkeypatch.setattr(features, "_warm_up", crash_warm_up)
    with pytest.raises(GenremapError, match=r"corrupt numba cache.*NUMBA_CACHE_DIR"):
        compute_features(dataset.root, workers=2)
    assert not (dataset.root / "pitches.csv").exists()


def test_usage_errors(dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="segmentation 'beats'"):
        compute_features(dataset.root, segmentation="beats")
    with pytest.raises(UsageError, match="segments must be 1 or more"):
        compute_features(dataset.root, segments=0)
    with pytest.raises(UsageError, match="workers must be 1 or more"):
        compute_features(dataset.root, workers=0)
    with pytest.raises(UsageError, match="frame seconds"):
        compute_features(dataset.root, segmentation="frames", frame_seconds=0.001)
    empty = tmp_path / "empty"
    (empty / "audio").mkdir(parents=True)
    (empty / "tracks.csv").write_text(HEADER + "\n")
    with pytest.raises(UsageError, match="no audio files"):
        compute_features(empty)
    shutil.rmtree(empty / "audio")
    with pytest.raises(UsageError, match="genremap audio"):
        compute_features(empty)
    with pytest.raises(UsageError, match=r"no tracks\.csv"):
        compute_features(tmp_path)
    monkeypatch.setitem(sys.modules, "librosa", None)  # as if the [audio] extra were not installed
    with pytest.raises(UsageError, match=r"pip install 'genremap\[audio\]'"):
        compute_features(dataset.root)


def test_fresh_numba_cache_with_two_workers(tmp_path: Path) -> None:
    """On an empty NUMBA_CACHE_DIR, two workers must not compile librosa's cached functions at
    the same time (numba#10128: mismatched cache files, then segfaults); warm-up prevents it."""
    root = tmp_path / "ds"
    rng = np.random.default_rng(3)
    (root / "audio" / "x").mkdir(parents=True)
    rows = [HEADER]
    for i, make in enumerate([bass, tones, clicks, tones]):
        write_clip(root / "audio" / "x" / f"t{i}.wav", make(rng, 2.0), "wav")
        rows.append(f"t{i},S,a,A,x,,,train,,,")
    (root / "tracks.csv").write_text("\n".join(rows) + "\n")
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from genremap.audio.features import compute_features
        result = compute_features(Path({str(root)!r}), workers=2)
        assert result.processed == 4 and not result.failed, result
        """
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(cache.rglob("*.nbi")), "numba wrote no cache: NUMBA_CACHE_DIR was not used"
    fresh = outputs(root)
    compute_features(root, workers=1)  # this process, its own warm cache: same numbers
    assert outputs(root) == fresh
