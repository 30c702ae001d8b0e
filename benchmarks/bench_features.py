"""Clips per second of `compute_features` (the features stage), with one worker and with all cores.

    python benchmarks/bench_features.py                 # 40 synthetic 30 s mp3 clips
    python benchmarks/bench_features.py --clips 100 --repeat 3 --workdir /tmp/fbench --keep
    python benchmarks/bench_features.py --dask          # also on a Dask LocalCluster (needs [cluster])

Generates N synthetic 30 s clips as Spotify previews are (mp3, 44.1 kHz, stereo): low sines
under noise bursts, harmonic tone sequences, clicks at a tempo and a mix of the three, written
with soundfile. Then runs `compute_features --force` (default onset segmentation, 125 segments)
with workers=1 and workers=os.cpu_count(), on the same folder, and prints wall time, clips per
second in total and per core, the speed-up from 1 to N workers, and the split between decoding
(mp3 decode, downmix, resample to 22050 Hz) and feature computation, summed over the workers,
with the CPU time per clip (clips per CPU-second is the rate per core on an idle machine; the
wall-clock rates drop when other jobs share the cores, the load average shows how much).
Then a rerun with nothing changed (every clip reused from the cache). The warm-up (numba's
cache loaded, or compiled on a fresh install) is timed apart, once. It also checks that every
run wrote byte-identical CSVs. The target (issue 11): at least 10 clips/s per core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import soundfile  # noqa: E402

from genremap.audio import features  # noqa: E402
from genremap.audio.features import FeaturesResult, compute_features  # noqa: E402

RATE = 44100
HEADER = "track_id,track_name,artist_id,artist_name,target,subgenre,rule,split,duration_ms,preview_url,isrc"
OUTPUTS = ("pitches.csv", "timbres.csv", "features.csv", "features_errors.csv")


def synth(kind: str, rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A stereo clip (samples, 2) of one of four kinds."""
    t = np.arange(int(seconds * RATE)) / RATE
    if kind == "bass":
        y = sum(0.25 * np.sin(2 * np.pi * f * t) for f in rng.uniform(50, 120, size=2))
        noise = np.convolve(rng.standard_normal(t.size), np.ones(32) / 32, mode="same")
        y = y + 1.5 * noise * (np.sin(2 * np.pi * rng.uniform(1.5, 3) * t) > 0.6)
    elif kind == "tones":
        y = np.zeros_like(t)
        note = rng.uniform(0.2, 0.6)
        for start in np.arange(0, seconds, note):
            span = (t >= start) & (t < start + note)
            f0 = 440.0 * 2 ** (rng.integers(-12, 13) / 12)
            y[span] = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t[span]) for k in range(1, 6))
            y[span] *= np.exp(-4 * (t[span] - start))
    elif kind == "clicks":
        y = 0.01 * rng.standard_normal(t.size)
        for start in np.arange(0.05, seconds, 60.0 / rng.uniform(80, 170)):
            i = int(start * RATE)
            y[i : i + 220] += 0.8 * rng.standard_normal(y[i : i + 220].size)
    else:
        y = 0.5 * synth("bass", rng, seconds)[:, 0] + 0.5 * synth("tones", rng, seconds)[:, 0]
        y += 0.5 * synth("clicks", rng, seconds)[:, 0]
    y = np.clip(np.asarray(y), -1, 1)
    return np.stack([y, np.roll(y, 441)], axis=1)  # a little width: 10 ms between channels


def make_dataset(root: Path, clips: int, seconds: float) -> float:
    """DIR/tracks.csv and DIR/audio/<kind>/<id>.mp3; seconds spent generating."""
    started = time.perf_counter()
    rng = np.random.default_rng(2024)
    kinds = ["bass", "tones", "clicks", "mix"]
    rows = [HEADER]
    for i in range(clips):
        kind = kinds[i % len(kinds)]
        track_id = f"track{i:05d}"
        folder = root / "audio" / kind
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / f"{track_id}.mp3", synth(kind, rng, seconds).astype(np.float32), RATE, format="MP3")
        rows.append(f"{track_id},Song {i},artist{i},Artist {i},{kind},,,{('train', 'validation', 'test')[i % 3]},,,")
    (root / "tracks.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return time.perf_counter() - started


def profile(root: Path) -> None:
    """CPU time per clip of each step of the per-clip work, each step timed alone, one core."""
    import io

    import librosa
    from threadpoolctl import threadpool_limits

    from genremap.audio.feature_cache import fingerprint_of

    steps: dict[str, float] = {}
    files = sorted(root.glob("audio/*/*.mp3"))

    def tick(name: str, since: float) -> float:
        now = time.process_time()
        steps[name] = steps.get(name, 0.0) + now - since
        return now

    f = features
    with threadpool_limits(limits=1):
        for path in files:
            t = time.process_time()
            data = path.read_bytes()
            fingerprint_of(data, path.stat())
            t = tick("read + sha256", t)
            with soundfile.SoundFile(io.BytesIO(data)) as handle:
                native = handle.samplerate
                y = handle.read(frames=int(30 * native), dtype="float32", always_2d=False)
            t = tick("mp3 decode", t)
            y = f._mono(y)
            t = tick("downmix", t)
            y = f._resampled(y, native)
            t = tick("resample to 22,050 Hz", t)
            spectrum = np.abs(librosa.stft(y, n_fft=f.N_FFT, hop_length=f.HOP))
            power = spectrum**2
            t = tick("STFT, magnitude, power", t)
            log_mel = librosa.power_to_db(np.einsum("...ft,mf->...mt", power, f._bases().mel, optimize=True))
            librosa.feature.mfcc(S=log_mel, n_mfcc=f.N_COEFFS)
            t = tick("mel, log, MFCC", t)
            tuning = f._tuning(power)
            t = tick("tuning estimate", t)
            raw = np.einsum("cf,...ft->...ct", f._chroma_bank(tuning), power, optimize=True)
            librosa.util.normalize(raw, norm=np.inf, axis=-2)
            t = tick("chroma", t)
            rms = f._rms(power)
            envelope = librosa.onset.onset_strength(S=log_mel, sr=f.SAMPLE_RATE, hop_length=f.HOP)
            librosa.onset.onset_detect(
                onset_envelope=envelope, sr=f.SAMPLE_RATE, hop_length=f.HOP, backtrack=True, energy=rms, units="frames"
            )
            t = tick("rms, onset strength, onsets", t)
            librosa.feature.tempo(onset_envelope=envelope, sr=f.SAMPLE_RATE, hop_length=f.HOP)
            t = tick("tempo", t)
            f._spectral_shape(spectrum)
            t = tick("centroid, bandwidth, rolloff", t)
            f._zero_crossing_rate(y)
            t = tick("zero-crossing rate", t)
            clip = f.analyse_clip(y)  # the steps above together: not timed again
            t = time.process_time()
            f._row_of(clip)
            tick("CSV cells (%.6g)", t)
    total = sum(steps.values())
    print("\n| step | CPU ms per clip | share |\n|---|---:|---:|")
    for name, seconds in sorted(steps.items(), key=lambda item: -item[1]):
        print(f"| {name} | {seconds / len(files) * 1000:.1f} | {seconds / total:.0%} |")
    print(f"| total | {total / len(files) * 1000:.1f} | |")


def run(root: Path, workers: int, repeat: int, scheduler: str | None = None) -> tuple[float, FeaturesResult]:
    """Best wall time of `repeat` runs computing every clip, and the result of the best."""
    best: tuple[float, FeaturesResult] | None = None
    for _ in range(repeat):
        result = compute_features(root, workers=workers, force=True, scheduler=scheduler)
        if best is None or result.seconds < best[0]:
            best = (result.seconds, result)
    assert best is not None
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=40, help="synthetic clips to generate (default 40)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each clip (default 30)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per worker count; the best is kept")
    parser.add_argument("--workdir", type=Path, help="folder for the dataset (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    parser.add_argument("--reuse-clips", action="store_true", help="keep the clips a kept --workdir already has")
    parser.add_argument("--dask", action="store_true", help="also time --scheduler local (a Dask LocalCluster)")
    parser.add_argument("--profile", action="store_true", help="also time each step of the per-clip work")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genremap-fbench-"))
    root = workdir / "dataset"
    reuse = args.reuse_clips and len(list(root.glob("audio/*/*.mp3"))) == args.clips
    if root.exists() and not reuse:
        shutil.rmtree(root)
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"cores: {cores}   load average: {load:.2f}   NUMBA_CACHE_DIR: {os.environ.get('NUMBA_CACHE_DIR', '-')}")
        if reuse:
            print(f"reusing the {args.clips} clips in {root}")
        else:
            made = make_dataset(root, args.clips, args.seconds)
            print(f"generated {args.clips} clips of {args.seconds:g} s (mp3, 44.1 kHz stereo) in {made:.1f} s")

        started = time.perf_counter()
        features._prepare_workers()
        print(f"warm-up (numba cache, child check + this process): {time.perf_counter() - started:.1f} s, once")

        if args.profile:
            profile(root)
        rows = []
        written: dict[str, dict[str, bytes]] = {}
        for workers in sorted({1, cores}):
            seconds, result = run(root, workers, args.repeat)
            if result.failed or result.processed != args.clips:
                print(f"workers={workers}: {result.processed} processed, failed: {result.failed}")
                return 1
            written[f"{workers} worker(s)"] = {name: (root / name).read_bytes() for name in OUTPUTS}
            rows.append((str(workers), seconds, result))
        if args.dask:
            seconds, result = run(root, cores, args.repeat, scheduler="local")
            written["Dask LocalCluster"] = {name: (root / name).read_bytes() for name in OUTPUTS}
            rows.append((f"{cores} (Dask)", seconds, result))

        print()
        print(
            "| workers | wall s | clips/s | clips/s per core | decode s/clip | features s/clip | decode share "
            "| CPU s/clip | clips per CPU-second |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, seconds, result in rows:
            n = result.processed
            work = result.load_seconds + result.feature_seconds
            print(
                f"| {label} | {seconds:.2f} | {n / seconds:.2f} | {n / seconds / result.workers:.2f} "
                f"| {result.load_seconds / n:.3f} | {result.feature_seconds / n:.3f} "
                f"| {result.load_seconds / work:.0%} | {result.cpu_seconds / n:.3f} | {n / result.cpu_seconds:.1f} |"
            )
        if cores > 1:
            speedup = rows[0][1] / rows[1][1]
            print(f"\nspeed-up from 1 to {cores} workers: {speedup:.2f}x ({speedup / cores:.0%} of linear)")
        started = time.perf_counter()
        rerun = compute_features(root, workers=cores)
        print(f"rerun with nothing changed: {time.perf_counter() - started:.2f} s ({rerun.reused} clips reused)")
        written["rerun"] = {name: (root / name).read_bytes() for name in OUTPUTS}
        same = all(w == written["1 worker(s)"] for w in written.values())
        print(f"CSV bytes identical across runs ({', '.join(written)}): {'yes' if same else 'NO'}")
        rate = rows[1 if cores > 1 else 0][2].processed / rows[1 if cores > 1 else 0][1]
        print(f"at this rate 15,000 previews take {15000 / rate / 60:.0f} min on {cores} cores")
        per_core = rows[0][2].processed / rows[0][1]
        per_cpu = rows[0][2].processed / rows[0][2].cpu_seconds
        verdict = "PASS" if per_core >= 10 else "FAIL"
        print(f"target >= 10 clips/s per core (1 worker, wall): {verdict} ({per_core:.2f})")
        print(f"  per CPU-second (what other jobs on the machine do not change): {per_cpu:.2f}")
        return 0 if same else 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        elif args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
