"""Audio features computed locally from the clips in DIR/audio/ (the `features` stage).

Every audio file under `DIR/audio/` (any folder depth; mp3, wav, flac, ogg... anything
librosa reads) is one track: its file stem is the track id, joined to `DIR/tracks.csv`
(`target` and `split` come from there). Three CSV files are written into `DIR`:

- `pitches.csv`: `track_id, segments, p0 … p{12N-1}`. The seed notebook's layout, one row per
  track: the first N segments (default 125) × 12 chroma values, segment after segment
  (`p0..p11` are segment 0's C, C#, … B). Each segment's chroma is the mean of its frames'
  chroma (`librosa.feature.chroma_stft` on the clip's STFT), scaled so that its largest
  pitch class is 1, as Spotify's `pitches` are.
- `timbres.csv`: `track_id, segments, t0 … t{12N-1}`, the same layout for timbre: the first
  12 MFCCs (`n_mfcc=12`, coefficient 0 kept) of a 128-band log-mel spectrogram, averaged
  per segment. Coefficient 0 is the segment's overall level, as Spotify's first timbre
  dimension is loudness; 1-11 describe the spectral shape (brightness, flatness, ...).
- `features.csv`: `track_id, target, split` then per-track summaries (see SUMMARY_COLUMNS).

`segments` is how many segments of the row are real. Clips with fewer than N segments are
padded with zeros (never NaN, never an empty cell) and counted as padded in the result.

Segmentation (`segmentation=`):

- `onset` (default): `librosa.onset.onset_detect` on the onset-strength envelope of the
  log-mel spectrogram, backtracked to the preceding RMS-energy minimum. A segment is the span
  from one onset to the next; the span before the first onset is segment 0, as Spotify's
  segments cover the clip from its start. Rhythmic music gives more, shorter segments.
- `frames`: fixed spans of `frame_seconds` (default 0.24 s, so 125 segments cover a 30 s
  preview exactly). Every clip gets the same time grid, whatever its content.

One pass per clip: the file is read once (its bytes hashed for the cache), decoded once to
the samples `librosa.load(sr=22050, mono=True, duration=30)` gives, and gets one STFT (2048
samples, hop 512: 23 ms) whose magnitude and power feed every feature. The values are those
of one librosa call per feature (tests/test_features_reference.py keeps that code and
compares), without each call recomputing its own spectrogram, normalisation or tuning.

Files are analysed in worker processes (`workers`, default one per CPU; even with one worker,
so a decoder that crashes its process fails that file only), or on a Dask cluster
(`scheduler`, genremap.audio.cluster). A file that cannot be decoded or analysed is reported
(in the result and in `features_errors.csv`) and skipped; it never stops the run. Output is
deterministic: rows sorted by track id, floats written with `%.6g`, so the same files give
byte-identical CSVs whatever the number of workers or where they ran. Each CSV is written to
a temporary file and renamed into place.

Reruns are incremental (genremap.audio.feature_cache): each clip's cells are kept in
`DIR/.features_cache.sqlite` as soon as they are computed, and reused while the file and the
settings are unchanged; the CSVs are always written from those cells, so a rerun writes the
bytes a full recomputation writes. Test hooks (environment variables, for tests only):
GENREMAP_TEST_EXIT_AFTER (`_test_exit_hook`) and GENREMAP_TEST_CRASH_CLIP/_MARKER
(`_test_crash_hook`).

numba: librosa caches its numba-compiled functions on disk (`cache=True`). Processes that
compile them at the same time on an empty cache can write mismatched cache files, after which
every run crashes (numba/numba#10128, librosa/librosa#1998). So before any worker starts, the
whole per-file pipeline runs once on a short synthetic clip, alone in a child process and then
in the parent: the cache is complete before workers exist (see `_prepare_workers`).
"""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from genremap import __version__
from genremap.audio.dataset import DatasetFolder, open_dataset, read_tracks, safe_name
from genremap.audio.extras import CLUSTER_INSTALL, require
from genremap.audio.feature_cache import CACHE_NAME, FeatureCache, Fingerprint, Row, fingerprint_of, settings_key
from genremap.dataset.files import ERRORS_CSV, FEATURES_CSV, PITCHES_CSV, TIMBRES_CSV
from genremap.defaults import DEFAULT_FRAME_SECONDS, DEFAULT_SEGMENTS
from genremap.errors import GenremapError, UsageError

SAMPLE_RATE = 22050
CLIP_SECONDS = 30.0
N_FFT = 2048
HOP = 512
N_MELS = 128
N_COEFFS = 12  # values per segment, in pitches and in timbres
SEGMENTATIONS = ("onset", "frames")

# Suffixes taken as audio (case-insensitive). Anything else under audio/ (manifest.csv...) is ignored.
AUDIO_SUFFIXES = frozenset(
    {".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".au", ".m4a", ".aac", ".wma"}
)


_STATS = ("centroid", "bandwidth", "rolloff", "zcr", "rms")
SUMMARY_COLUMNS: tuple[str, ...] = (
    "duration_s",  # seconds of audio analysed (at most 30)
    "segment_count",  # segments found in the whole clip (pitches/timbres keep the first N)
    "tempo",  # beats per minute, librosa.feature.tempo on the onset envelope
    *(f"{name}_{stat}" for name in _STATS for stat in ("mean", "std")),  # Hz for the first three
    *(f"mfcc{i}_mean" for i in range(N_COEFFS)),
    *(f"mfcc{i}_var" for i in range(N_COEFFS)),
    *(f"chroma{i}_mean" for i in range(N_COEFFS)),  # 0 = C, 1 = C#, … 11 = B
)
FEATURES_HEADER: tuple[str, ...] = ("track_id", "target", "split", *SUMMARY_COLUMNS)
ERRORS_HEADER = ("file", "problem", "detail")
# Part of the cache key: bump the revision when the feature code changes what it computes.
FEATURE_CODE = f"genremap {__version__}, features 2"

Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ClipFeatures:
    """Features of one clip: per-segment pitches and timbres (first N segments) and summaries."""

    pitches: Float32Array  # (real segments, 12), each row's max is 1 (or all 0 for silence)
    timbres: Float32Array  # (real segments, 12)
    segment_count: int  # segments in the whole clip, before keeping the first N
    summary: dict[str, float]  # SUMMARY_COLUMNS -> value, all finite
    load_seconds: float = 0.0  # time to decode and resample
    feature_seconds: float = 0.0  # time to compute the features

    @property
    def segments(self) -> int:
        """How many segments of the N kept are real (the rest of the row is zero padding)."""
        return int(self.pitches.shape[0])


@dataclass
class FeaturesResult:
    """What `compute_features` did; files are named relative to the dataset folder."""

    processed: int = 0  # tracks written to the CSVs
    padded: int = 0  # of those, clips with fewer than N segments (rows padded with zeros)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason): not decoded or analysed
    skipped_unknown: list[str] = field(default_factory=list)  # files whose stem is not in tracks.csv
    skipped_duplicate: list[str] = field(default_factory=list)  # a second file for an id already taken
    no_audio: int = 0  # tracks of tracks.csv with no audio file
    files_written: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole run
    load_seconds: float = 0.0  # summed over files (and workers): decode + resample
    feature_seconds: float = 0.0  # summed over files (and workers): feature computation
    cpu_seconds: float = 0.0  # summed over files (and workers): CPU time of the per-clip work
    workers: int = 1  # processes (local) or worker threads of the Dask cluster
    computed: int = 0  # clips analysed in this run
    reused: int = 0  # clips whose features came from the cache (unchanged file and settings)
    scheduler: str = ""  # the Dask scheduler's address, "" for a local run


@dataclass(frozen=True)
class _Job:
    track_id: str
    target: str
    split: str
    path: Path
    name: str  # path relative to the dataset folder, posix, for messages


def _require_librosa() -> ModuleType:
    """librosa, imported on first use; a UsageError naming the extra when it is missing."""
    require("features", ("librosa", "soundfile"))
    import librosa

    return librosa


def _check_options(segments: int, segmentation: str, frame_seconds: float, workers: int | None) -> None:
    if segments < 1:
        raise UsageError(f"segments must be 1 or more (got {segments})")
    if segmentation not in SEGMENTATIONS:
        raise UsageError(f"segmentation {segmentation!r}: expected one of {', '.join(SEGMENTATIONS)}")
    if not frame_seconds * SAMPLE_RATE >= HOP:  # also refuses NaN
        raise UsageError(f"frame seconds must be at least {HOP / SAMPLE_RATE:.3f} (got {frame_seconds})")
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be 1 or more (got {workers})")


# --------------------------------------------------------------------------- one clip


def load_clip(path: Path, data: bytes | None = None) -> Float32Array:
    """The first 30 s of `path` (or of `data`, its bytes already read), mono, at 22050 Hz:
    decoded once, downmixed, resampled once.

    The same samples as `librosa.load(path, sr=22050, mono=True, duration=30)` (soundfile
    decodes, soxr_hq resamples), without librosa's copies and checks; files soundfile cannot
    open go through librosa.load and its audioread fallback."""
    _require_librosa()
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data) if data is not None else path) as handle:
            native = handle.samplerate
            y = handle.read(frames=int(CLIP_SECONDS * native), dtype="float32", always_2d=False)
    except soundfile.SoundFileRuntimeError:
        return _checked(_librosa_load(path))
    _checked(y)
    return _resampled(_mono(y), native)


def _librosa_load(path: Path) -> Float32Array:
    librosa = _require_librosa()
    with warnings.catch_warnings():
        # librosa warns before falling back from soundfile to audioread; failures are reported anyway.
        warnings.simplefilter("ignore")
        y, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True, duration=CLIP_SECONDS)
    return np.ascontiguousarray(y, dtype=np.float32)


def _checked(y: Float32Array) -> Float32Array:
    if y.size == 0:
        raise ValueError("no audio samples decoded")
    if not np.all(np.isfinite(y)):
        raise ValueError("decoded audio holds NaN or infinite samples")
    return y


def _mono(y: Float32Array) -> Float32Array:
    """(samples, channels) -> (samples,): the channels' mean, as librosa.to_mono computes it."""
    if y.ndim == 1:
        return y
    if y.shape[1] == 2:  # (a + b) / 2 in float32: the same bits as np.mean over the two
        return np.asarray((y[:, 0] + y[:, 1]) / np.float32(2), dtype=np.float32)
    return np.asarray(np.mean(y.T, axis=0), dtype=np.float32)


def _resampled(y: Float32Array, native: int) -> Float32Array:
    """y at SAMPLE_RATE (soxr_hq), as librosa.load resamples."""
    if native == SAMPLE_RATE:
        return np.ascontiguousarray(y)
    librosa = _require_librosa()
    out = librosa.resample(y, orig_sr=native, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    return np.ascontiguousarray(out, dtype=np.float32)


def segment_bounds(
    n_frames: int, onsets: npt.NDArray[np.integer[Any]] | None, frame_seconds: float, seconds: float
) -> list[int]:
    """Segment boundaries in STFT frames: from 0, strictly increasing, ending at `n_frames`.

    With `onsets` (onset frames), a segment runs from one onset to the next. Without, segments
    are fixed spans of `frame_seconds`: ceil(seconds / frame_seconds) of them, the last one
    possibly shorter (a 30 s clip gives 125 spans of 0.24 s)."""
    if onsets is not None:
        starts = {0, *(int(f) for f in onsets if 0 < f < n_frames)}
    else:
        count = max(1, int(np.ceil(round(seconds / frame_seconds, 6))))
        step = frame_seconds * SAMPLE_RATE / HOP
        starts = {s for s in (int(round(k * step, 6)) for k in range(count)) if s < n_frames}
    return [*sorted(starts), n_frames]


def _segment_means(values: npt.NDArray[np.floating[Any]], bounds: list[int]) -> npt.NDArray[np.float64]:
    """(n_coeffs, frames) -> (segments, n_coeffs): the mean of each segment's frames."""
    sums = np.add.reduceat(values.astype(np.float64), bounds[:-1], axis=1)
    lengths = np.diff(bounds).astype(np.float64)
    return np.asarray((sums / lengths).T)


def _finite32(values: npt.ArrayLike) -> Float32Array:
    """float32, NaN/inf replaced by 0 and -0 by 0 (so formatting never prints 'nan' or '-0')."""
    return np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0) + np.float32(0.0)


@dataclass(frozen=True)
class _Bases:
    """What depends only on the settings, built once per process: bin frequencies, the mel
    filter bank, and the STFT rows the tuning estimate looks at."""

    freqs: npt.NDArray[np.float64]  # centre frequency of each STFT bin
    mel: Float32Array  # (N_MELS, bins)
    band: slice  # rows of piptrack's 150-4000 Hz band, plus one row either side
    band_offset: int  # STFT row of the band slice's first row


@lru_cache(maxsize=1)
def _bases() -> _Bases:
    librosa = _require_librosa()
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT)
    rows = np.flatnonzero((freqs >= 150.0) & (freqs < 4000.0))  # piptrack's fmin and fmax
    band = slice(int(rows[0]) - 1, int(rows[-1]) + 2)
    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    return _Bases(freqs=freqs, mel=mel, band=band, band_offset=int(rows[0]) - 1)


@lru_cache(maxsize=256)
def _chroma_bank(tuning: float) -> Float32Array:
    """librosa.filters.chroma for this tuning (estimates come in steps of 0.01 semitone)."""
    return _require_librosa().filters.chroma(sr=SAMPLE_RATE, n_fft=N_FFT, tuning=tuning, n_chroma=N_COEFFS)


def _tuning(power: Float32Array) -> float:
    """librosa.estimate_tuning(S=power), computed on the 150-4000 Hz rows only.

    piptrack looks for peaks there alone, and its gradient, parabolic shift and local-maximum
    test at a row read only the rows either side: so the band plus one row either side gives
    the same peaks, frequencies and magnitudes as the whole spectrogram, at a third of the cost."""
    librosa = _require_librosa()
    from librosa.core.pitch import _parabolic_interpolation

    bases = _bases()
    band = power[bases.band]
    ref = 0.1 * np.max(power, axis=-2, keepdims=True)  # piptrack's threshold: 0.1 × the column's peak
    avg = np.gradient(band, axis=-2)
    shift = _parabolic_interpolation(band, axis=-2)
    dskew = 0.5 * avg * shift
    peaks = librosa.util.localmax(band * (band > ref), axis=-2)
    peaks[0] = peaks[-1] = False  # the rows outside the band
    rows, cols = np.nonzero(peaks)
    pitch = ((rows + bases.band_offset + shift[rows, cols]) * float(SAMPLE_RATE) / N_FFT).astype(np.float32)
    mag = band[rows, cols] + dskew[rows, cols]
    positive = pitch > 0
    threshold = np.median(mag[positive]) if positive.any() else 0.0
    return float(librosa.pitch_tuning(pitch[(mag >= threshold) & positive], resolution=0.01, bins_per_octave=12))


def _normalised(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
    """librosa.util.normalize(values, norm=1, axis=-2) for non-negative finite values."""
    length = np.sum(values.astype(float), axis=-2, keepdims=True)
    length[length < np.finfo(values.dtype).tiny] = 1.0
    out = np.empty_like(values)
    out[:] = values / length
    return out


_SHAPE_FRAMES = 64  # frames per block in _spectral_shape: its float64 temporaries stay in the CPU's cache


def _spectral_shape(spectrum: Float32Array) -> tuple[npt.NDArray[np.float64], ...]:
    """Spectral centroid, bandwidth and 85% rolloff of each frame (Hz), as librosa computes them,
    with the normalised spectrum and the centroid computed once for all three.

    Computed in blocks of frames: each frame's values come from its own column only, summed in
    the same order, so the blocks give the same bits as the whole array, with less memory traffic."""
    blocks = [_shape_block(spectrum[:, i : i + _SHAPE_FRAMES]) for i in range(0, spectrum.shape[1], _SHAPE_FRAMES)]
    return tuple(np.concatenate(parts) for parts in zip(*blocks, strict=True))


def _shape_block(spectrum: Float32Array) -> tuple[npt.NDArray[np.float64], ...]:
    freqs = _bases().freqs
    shares = _normalised(spectrum)
    centroid = np.sum(freqs[:, None] * shares, axis=-2, keepdims=True)
    deviation = np.abs(np.subtract.outer(centroid[0, :], freqs).swapaxes(-2, -1))
    bandwidth = np.sum(shares * deviation**2, axis=-2, keepdims=True) ** (1.0 / 2)
    total = np.cumsum(spectrum, axis=-2)
    threshold = 0.85 * total[-1:, :]
    rolloff = freqs[np.argmax(total >= threshold, axis=-2)]  # the first bin reaching 85% of the energy
    return centroid[0], bandwidth[0], rolloff


def _rms(power: Float32Array) -> Float32Array:
    """librosa.feature.rms(S=|STFT|): frame energy from the power spectrogram, edge bins halved."""
    x = power.copy(order="K")  # the STFT's memory order: sums run in the same order as librosa's
    x[0, :] *= 0.5
    x[-1, :] *= 0.5  # N_FFT is even
    return np.asarray(np.sqrt(2 * np.sum(x, axis=-2, keepdims=True) / N_FFT**2)[0])


def _zero_crossing_rate(y: Float32Array) -> npt.NDArray[np.float64]:
    """librosa.feature.zero_crossing_rate(y, 2048, 512) from one pass over the signal: sign changes
    between neighbouring samples (|x| ≤ 1e-10 counts as 0, 0 as positive), counted per frame
    with a running sum instead of framing the signal."""
    padded = np.pad(y, N_FFT // 2, mode="edge")
    limit = np.float32(1e-10)
    if float(limit) > 1e-10:  # the largest float32 not above librosa's float64 threshold
        limit = np.nextafter(limit, np.float32(0))
    negative = np.signbit(padded) & (np.abs(padded) > limit)
    running = np.concatenate([[0], np.cumsum(negative[1:] != negative[:-1])])  # crossings in padded[1..i]
    frames = 1 + (padded.size - N_FFT) // HOP
    starts = np.arange(frames) * HOP
    return (running[starts + N_FFT - 1] - running[starts]).astype(np.float64) / N_FFT


def analyse_clip(
    y: Float32Array,
    *,
    segments: int = DEFAULT_SEGMENTS,
    segmentation: str = "onset",
    frame_seconds: float = DEFAULT_FRAME_SECONDS,
) -> ClipFeatures:
    """Features of a decoded clip (mono, 22050 Hz): see the module docstring for each value.

    One STFT; its magnitude and power feed every feature (the values librosa's own calls give,
    without each recomputing its spectrogram, normalisation or tuning)."""
    librosa = _require_librosa()
    sr = SAMPLE_RATE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "n_fft too large" on clips shorter than 93 ms
        spectrum = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
        power = spectrum**2
        mel = np.einsum("...ft,mf->...mt", power, _bases().mel, optimize=True)  # as librosa.feature.melspectrogram
        log_mel = librosa.power_to_db(mel)
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_COEFFS)
        raw_chroma = np.einsum("cf,...ft->...ct", _chroma_bank(_tuning(power)), power, optimize=True)
        chroma = librosa.util.normalize(raw_chroma, norm=np.inf, axis=-2)  # as librosa.feature.chroma_stft
        rms = _rms(power)
        envelope = librosa.onset.onset_strength(S=log_mel, sr=sr, hop_length=HOP)
        tempo = librosa.feature.tempo(onset_envelope=envelope, sr=sr, hop_length=HOP)
        centroid, bandwidth, rolloff = _spectral_shape(spectrum)
        zcr = _zero_crossing_rate(y)
        onsets = None
        if segmentation == "onset":
            onsets = librosa.onset.onset_detect(
                onset_envelope=envelope, sr=sr, hop_length=HOP, backtrack=True, energy=rms, units="frames"
            )

    frame_series: tuple[npt.NDArray[Any], ...] = (centroid, bandwidth, rolloff, zcr, rms)
    frames = _Frames(chroma, mfcc, frame_series, tempo, envelope)
    bounds = segment_bounds(spectrum.shape[1], onsets, frame_seconds, y.size / sr)
    return _assemble(frames, bounds, y.size / sr, segments)


@dataclass(frozen=True)
class _Frames:
    """A clip's frame-level features, before segments and summaries."""

    chroma: npt.NDArray[Any]  # (12, frames)
    mfcc: npt.NDArray[Any]  # (12, frames)
    series: tuple[npt.NDArray[Any], ...]  # one value per frame for each of _STATS
    tempo: npt.NDArray[Any]
    envelope: npt.NDArray[Any]  # onset strength


def _assemble(frames: _Frames, bounds: list[int], seconds: float, segments: int) -> ClipFeatures:
    """Per-segment means (the first `segments`) and the summary of a clip's frame-level features."""
    pitches = _segment_means(frames.chroma, bounds)
    peaks = pitches.max(axis=1, keepdims=True)
    pitches = np.divide(pitches, peaks, out=np.zeros_like(pitches), where=peaks > 0)
    timbres = _segment_means(frames.mfcc, bounds)

    summary: dict[str, float] = {
        "duration_s": seconds,
        "segment_count": float(len(bounds) - 1),
        # no onset at all (silence, a steady tone): no tempo, rather than the estimator's prior
        "tempo": float(np.asarray(frames.tempo).ravel()[0]) if frames.envelope.any() else 0.0,
    }
    for name, series in zip(_STATS, frames.series, strict=True):
        series64 = series.astype(np.float64)
        summary[f"{name}_mean"] = float(series64.mean())
        summary[f"{name}_std"] = float(series64.std())
    mfcc64 = frames.mfcc.astype(np.float64)
    for i, (mean, var) in enumerate(zip(mfcc64.mean(axis=1), mfcc64.var(axis=1), strict=True)):
        summary[f"mfcc{i}_mean"] = float(mean)
        summary[f"mfcc{i}_var"] = float(var)
    for i, mean in enumerate(frames.chroma.astype(np.float64).mean(axis=1)):
        summary[f"chroma{i}_mean"] = float(mean)
    summary = {key: float(np.nan_to_num(summary[key], nan=0.0, posinf=0.0, neginf=0.0)) for key in SUMMARY_COLUMNS}

    return ClipFeatures(
        pitches=_finite32(pitches[:segments]),
        timbres=_finite32(timbres[:segments]),
        segment_count=len(bounds) - 1,
        summary=summary,
    )


def clip_features(
    path: Path,
    segments: int = DEFAULT_SEGMENTS,
    segmentation: str = "onset",
    frame_seconds: float = DEFAULT_FRAME_SECONDS,
) -> ClipFeatures:
    """Decode `path` and compute its features (pure: reads the file, writes nothing).

    Raises whatever decoding or analysis raises; `compute_features` reports such files."""
    _check_options(segments, segmentation, frame_seconds, None)
    started = time.perf_counter()
    y = load_clip(path)
    loaded = time.perf_counter()
    clip = analyse_clip(y, segments=segments, segmentation=segmentation, frame_seconds=frame_seconds)
    done = time.perf_counter()
    return ClipFeatures(
        clip.pitches, clip.timbres, clip.segment_count, clip.summary, load_seconds=loaded - started,
        feature_seconds=done - loaded,
    )  # fmt: skip


# --------------------------------------------------------------------------- workers

# (index, path, relative name, segments, segmentation, frame_seconds)
_Task = tuple[int, str, str, int, str, float]


@dataclass(frozen=True)
class _Done:
    """A clip a worker analysed: its CSV cells, the content they came from, and the time taken."""

    row: Row
    fingerprint: Fingerprint
    load_seconds: float
    feature_seconds: float
    cpu_seconds: float  # CPU time of the thread that did it (what other jobs on the machine do not inflate)


# (index, the analysed clip or None, problem, detail)
_Outcome = tuple[int, _Done | None, str, str]


def _reason(exc: BaseException, path: str, name: str) -> str:
    """One line: the exception (and what it interrupted, when it says nothing), path made relative."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 3:
        text = str(seen).strip()
        parts.append(f"{type(seen).__name__}: {text}" if text else type(seen).__name__)
        if text:
            break
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(parts).replace(path, name).replace("\n", " ")


def _row_of(clip: ClipFeatures) -> Row:
    """The clip's cells as the CSV files hold them (floats with %.6g; padding is added on writing)."""
    return Row(
        segments=clip.segments,
        pitches=",".join(_fmt(v) for v in clip.pitches.ravel().tolist()),
        timbres=",".join(_fmt(v) for v in clip.timbres.ravel().tolist()),
        summary=",".join(_fmt(clip.summary[c]) for c in SUMMARY_COLUMNS),
    )


def _work(task: _Task, quiet: bool = True) -> _Outcome:
    """Run in a worker: one file's features, or the reason it failed (never raises).

    The file is read once; its bytes are hashed (the cache's fingerprint) and decoded from memory."""
    index, path, name, segments, segmentation, frame_seconds = task
    _init_worker()
    _test_crash_hook(name)
    started, cpu = time.perf_counter(), time.thread_time()
    try:
        with _quiet_stderr() if quiet else nullcontext(), open(path, "rb") as handle:
            data = handle.read()
            fingerprint = fingerprint_of(data, os.fstat(handle.fileno()))
            y = load_clip(Path(path), data)
    except Exception as exc:
        return index, None, "decode_failed", _reason(exc, path, name)
    loaded = time.perf_counter()
    try:
        clip = analyse_clip(y, segments=segments, segmentation=segmentation, frame_seconds=frame_seconds)
        row = _row_of(clip)
    except Exception as exc:
        return index, None, "analysis_failed", _reason(exc, path, name)
    done = time.perf_counter()
    return index, _Done(row, fingerprint, loaded - started, done - loaded, time.thread_time() - cpu), "", ""


def _test_crash_hook(name: str) -> None:
    """For tests of crashing workers: the process dies on the file named by
    GENREMAP_TEST_CRASH_CLIP, once, the first time the file GENREMAP_TEST_CRASH_MARKER is created."""
    if os.environ.get("GENREMAP_TEST_CRASH_CLIP") != name:
        return
    marker = os.environ.get("GENREMAP_TEST_CRASH_MARKER", "")
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except OSError:
        return  # crashed once already
    os._exit(13)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (in a worker): the decoders print notes such as mpg123's
    "Illegal Audio-MPEG-Header ... Trying to resync" straight to it, over the progress bar.
    A file that fails is reported with its reason anyway."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _single_threaded() -> AbstractContextManager[Any]:
    """BLAS limited to one thread (processes are the parallelism; also keeps sums identical)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn, in [audio]
        return nullcontext()
    return threadpool_limits(limits=1)


_limited = False  # _init_worker has run in this process


def _init_worker() -> None:
    """BLAS limited to one thread for the life of this process (a pool's or a Dask worker's)."""
    global _limited
    if not _limited:
        _single_threaded()  # the limit stays for the life of the worker
        _limited = True


def _warm_up() -> None:
    """Run the whole per-file pipeline once, in this process, on a short synthetic file."""
    import soundfile

    rate = 44100  # not 22050, so resampling is exercised too
    t = np.arange(rate, dtype=np.float64) / rate
    signal = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * (np.sin(2 * np.pi * 3.0 * t) > 0.9)
    with tempfile.TemporaryDirectory(prefix="genremap-warm-") as tmp:
        path = Path(tmp) / "warm.wav"
        soundfile.write(path, signal.astype(np.float32), rate)
        with _single_threaded():
            clip_features(path, DEFAULT_SEGMENTS, "onset", DEFAULT_FRAME_SECONDS)  # onset runs every librosa call


_warmed = False  # _prepare_workers has run in this process


def _prepare_workers() -> None:
    """Fill numba's on-disk cache before any worker exists (once per process).

    librosa's numba functions are cached on disk; processes compiling them at the same time on
    an empty cache can write mismatched files, and every later run then crashes
    (numba/numba#10128, librosa/librosa#1998; reproduced here with two workers on a fresh
    NUMBA_CACHE_DIR). So the pipeline first runs alone in one child process: it compiles and
    writes the cache with no one racing it, and if an already corrupt cache crashes it, the run
    stops with a message rather than a segfault. It then runs here, so forked workers inherit
    the compiled code (spawned ones read the complete cache and write nothing)."""
    global _warmed
    if _warmed:
        return
    with ProcessPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(_warm_up).result()
        except BrokenProcessPool:
            raise GenremapError(
                "librosa crashed on a test tone before any file was read. The usual cause is a corrupt numba "
                f"cache (numba/numba#10128): delete the *.nbi and *.nbc files under {_numba_cache_dir()}, or set "
                "NUMBA_CACHE_DIR to an empty folder, and run again"
            ) from None
        except Exception as exc:
            raise GenremapError(f"audio features do not work here: librosa failed on a test tone ({exc})") from exc
    _warm_up()
    _warmed = True


def _numba_cache_dir() -> str:
    """Where numba caches librosa's compiled functions."""
    configured = os.environ.get("NUMBA_CACHE_DIR")
    if configured:
        return configured
    return str(Path(_require_librosa().__file__ or "librosa").parent / "**" / "__pycache__")


def _suspects(pending: list[int], workers: int) -> list[int]:
    """Tasks that may have been running when a pool broke: the earliest not finished.

    A ProcessPoolExecutor hands tasks out in submission order and holds at most
    workers + 1 beyond those running, so the culprit is among the first 2 × workers + 1."""
    return sorted(pending)[: 2 * workers + 1]


def _run_pool(tasks: dict[int, _Task], workers: int) -> Generator[_Outcome, None, None]:
    """Run `tasks` over `workers` processes, yielding outcomes as they finish.

    If a worker dies (a decoder crashing the process), the tasks that may have been running
    are rerun one process each, so the one that kills its process is reported as failed,
    and the rest go on in a fresh pool."""
    pending = dict(tasks)
    while pending:
        lost: list[int] = []
        size = min(workers, len(pending))
        pool = ProcessPoolExecutor(max_workers=size, initializer=_init_worker)
        try:
            futures: dict[Future[_Outcome], int] = {pool.submit(_work, pending[i]): i for i in sorted(pending)}
            waiting = set(futures)
            while waiting:
                finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=futures.__getitem__):
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        lost.append(futures[future])
                        continue
                    del pending[outcome[0]]
                    yield outcome
        finally:
            # Stopped early (an error, Ctrl-C, the caller closing us): drop the queued files.
            pool.shutdown(wait=True, cancel_futures=True)
        if not lost:
            continue
        for index in _suspects(lost, size):
            yield _run_alone(pending.pop(index))


def _run_alone(task: _Task) -> _Outcome:
    """One task in a process of its own: a crash fails this file only."""
    with ProcessPoolExecutor(max_workers=1, initializer=_init_worker) as pool:
        try:
            return pool.submit(_work, task).result()
        except BrokenProcessPool:
            return task[0], None, "worker_crashed", "the process decoding this file died (a crash in the decoder?)"


# --------------------------------------------------------------------------- dataset


def _audio_files(audio_dir: Path) -> list[Path]:
    """Audio files under audio/, any depth, hidden files and folders left out, sorted."""
    found = []
    for path in audio_dir.rglob("*"):
        relative = path.relative_to(audio_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(audio_dir).as_posix())


def _plan(folder: DatasetFolder, files: list[Path]) -> tuple[list[_Job], list[str], list[str], int]:
    """Jobs sorted by track id; files not in tracks.csv; duplicate files; tracks with no file.

    A stem matches a track id as is, or as `safe_name(id)` (the file name `genremap audio`
    gives it). When an id has several files, the one in its target's folder wins, then the
    first by path; the others are reported as duplicates."""
    tracks = read_tracks(folder)
    by_stem: dict[str, tuple[str, str, str]] = {}
    for track_id, target, split in zip(tracks["track_id"], tracks["target"], tracks["split"], strict=True):
        row = (str(track_id), str(target), str(split))
        by_stem.setdefault(row[0], row)
        with suppress(UsageError):  # an id no file can be named after: matched as is only
            by_stem.setdefault(safe_name(row[0]), row)
    candidates: dict[str, list[tuple[bool, str, Path]]] = {}
    unknown: list[str] = []
    for path in files:
        name = path.relative_to(folder.root).as_posix()
        match = by_stem.get(path.stem)
        if match is None:
            unknown.append(name)
            continue
        elsewhere = path.parent.name != match[1] and not _same_folder(path.parent.name, match[1])
        candidates.setdefault(match[0], []).append((elsewhere, name, path))
    jobs: list[_Job] = []
    duplicates: list[str] = []
    rows = {row[0]: row for row in by_stem.values()}
    for track_id in sorted(candidates):
        ranked = sorted(candidates[track_id], key=lambda c: (c[0], c[1]))
        _, name, path = ranked[0]
        _, target, split = rows[track_id]
        jobs.append(_Job(track_id, target, split, path, name))
        duplicates.extend(c[1] for c in ranked[1:])
    no_audio = len(set(tracks["track_id"].astype(str))) - len(jobs)
    return jobs, unknown, sorted(duplicates), no_audio


def _same_folder(folder_name: str, target: str) -> bool:
    try:
        return folder_name == safe_name(target)
    except UsageError:
        return False


# --------------------------------------------------------------------------- output


def _fmt(value: float) -> str:
    return format(value, ".6g")


class _Outputs:
    """The CSV files, written to temporary files beside their final names, renamed at the end."""

    def __init__(self, root: Path, segments: int) -> None:
        self.root = root
        self.segments = segments
        self.padding = ["0"] * (segments * N_COEFFS)
        self.temps: dict[str, Path] = {}
        self.handles: dict[str, io.TextIOWrapper] = {}
        self.writers: dict[str, Any] = {}
        width = range(segments * N_COEFFS)
        self._open(PITCHES_CSV, ["track_id", "segments", *(f"p{i}" for i in width)])
        self._open(TIMBRES_CSV, ["track_id", "segments", *(f"t{i}" for i in width)])
        self._open(FEATURES_CSV, list(FEATURES_HEADER))
        self._open(ERRORS_CSV, list(ERRORS_HEADER))

    def _open(self, name: str, header: list[str]) -> None:
        temp = self.root / f".{name}.{os.getpid()}.tmp"
        self.temps[name] = temp
        self.handles[name] = temp.open("w", encoding="utf-8", newline="")
        self.writers[name] = csv.writer(self.handles[name], lineterminator="\n")
        self.writers[name].writerow(header)

    def _cells(self, cells: str, count: int) -> list[str]:
        return [*cells.split(","), *self.padding[count * N_COEFFS :]]

    def track(self, job: _Job, row: Row) -> None:
        self.writers[PITCHES_CSV].writerow([job.track_id, row.segments, *self._cells(row.pitches, row.segments)])
        self.writers[TIMBRES_CSV].writerow([job.track_id, row.segments, *self._cells(row.timbres, row.segments)])
        self.writers[FEATURES_CSV].writerow([job.track_id, job.target, job.split, *row.summary.split(",")])

    def problems(self, rows: list[tuple[str, str, str]]) -> None:
        self.writers[ERRORS_CSV].writerows(sorted(rows))

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()

    def commit(self) -> list[str]:
        """Close and move every file into place; the names written."""
        self.close()
        for name, temp in self.temps.items():
            os.replace(temp, self.root / name)
        return list(self.temps)

    def discard(self) -> None:
        self.close()
        for temp in self.temps.values():
            temp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the stage


def compute_features(
    dataset: Path,
    *,
    segments: int = DEFAULT_SEGMENTS,
    segmentation: str = "onset",
    frame_seconds: float = DEFAULT_FRAME_SECONDS,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    on_file: Callable[[int, int], None] = lambda done, total: None,
    on_cluster: Callable[[str], None] = lambda dashboard: None,
) -> FeaturesResult:
    """Compute audio features of every clip in DIR/audio/ and write pitches.csv, timbres.csv
    and features.csv into DIR.

    Each audio file (mp3, wav, flac, ogg... its name is the track id) gives one row per CSV,
    joined to tracks.csv for target and split. pitches.csv and timbres.csv hold the first N
    segments × 12 chroma / MFCC values (the original notebook's layout) with a `segments`
    column counting the real ones (shorter clips are zero-padded); features.csv holds per-track
    summaries (tempo, spectral centroid, bandwidth, rolloff, zero-crossing rate, RMS, MFCC means
    and variances, chroma means). Segments come from onset detection or from fixed frames.
    Files that cannot be decoded, and files whose name is not a track of tracks.csv, are listed
    in features_errors.csv and skipped. Needs the [audio] extra.

    Incremental: clips whose file and settings are unchanged since an earlier run are taken from
    DIR/.features_cache.sqlite (see genremap.audio.feature_cache), the rest are computed and
    added to it one by one; `force` computes everything again. `scheduler` runs the clips on a
    Dask cluster (an address such as tcp://host:8786, or "local" for a LocalCluster of
    `workers` processes; needs the [cluster] extra); the files written are the same bytes.

    `on_file(done, total)` is called as clips to compute finish (and once with done=0 before
    the first); `on_cluster(dashboard)` once the Dask cluster is reached.
    """
    started = time.perf_counter()
    _require_librosa()
    _check_options(segments, segmentation, frame_seconds, workers)
    if scheduler is not None:
        require_cluster()
    folder = open_dataset(dataset)
    if not folder.audio_dir.is_dir():
        raise UsageError(f"{folder.audio_dir} not found: fetch clips with `genremap audio` or put audio files there")
    files = _audio_files(folder.audio_dir)
    if not files:
        raise UsageError(f"no audio files under {folder.audio_dir} ({', '.join(sorted(AUDIO_SUFFIXES))})")
    jobs, unknown, duplicates, no_audio = _plan(folder, files)
    result = FeaturesResult(skipped_unknown=unknown, skipped_duplicate=duplicates, no_audio=no_audio)
    problems = [(name, "unknown_track", "file name is not a track_id of tracks.csv") for name in unknown]
    problems += [(name, "duplicate_track", "another file for this track id was used") for name in duplicates]

    settings = settings_key(
        segments=segments, segmentation=segmentation, frame_seconds=frame_seconds, sample_rate=SAMPLE_RATE,
        n_fft=N_FFT, hop=HOP, n_mels=N_MELS, code=FEATURE_CODE, **_library_versions(),
    )  # fmt: skip
    with FeatureCache(folder.root / CACHE_NAME, settings, fresh=force) as cache:
        todo = [i for i, job in enumerate(jobs) if not cache.reusable(job.name, job.path)]
        result.reused = len(jobs) - len(todo)
        tasks: dict[int, _Task] = {
            i: (i, str(jobs[i].path.absolute()), jobs[i].name, segments, segmentation, frame_seconds) for i in todo
        }
        failed = _compute(tasks, jobs, cache, result, workers, scheduler, on_file, on_cluster)
        problems += [(jobs[i].name, problem, detail) for i, (problem, detail) in failed.items()]
        result.failed = sorted((jobs[i].name, f"{problem}: {detail}") for i, (problem, detail) in failed.items())
        outputs = _Outputs(folder.root, segments)
        try:
            for i, job in enumerate(jobs):
                if i not in failed:
                    row = cache.row(job.name)
                    outputs.track(job, row)
                    result.processed += 1
                    result.padded += row.segments < segments
            outputs.problems(problems)
            result.files_written = outputs.commit()
        except BaseException:
            outputs.discard()
            raise
        cache.prune({job.name for job in jobs})  # removed files' rows go
    result.seconds = time.perf_counter() - started
    return result


def _compute(
    tasks: dict[int, _Task],
    jobs: list[_Job],
    cache: FeatureCache,
    result: FeaturesResult,
    workers: int | None,
    scheduler: str | None,
    on_file: Callable[[int, int], None],
    on_cluster: Callable[[str], None],
) -> dict[int, tuple[str, str]]:
    """Run `tasks`, storing each clip's row in the cache as it arrives; the failed ones' problems."""
    wanted = workers if workers is not None else (os.cpu_count() or 1)
    result.workers = max(1, min(wanted, len(tasks)))
    if tasks:
        _prepare_workers()  # also before a local Dask cluster: its workers find numba's cache complete
    outcomes: Generator[_Outcome, None, None]
    if scheduler is None:
        outcomes = _run_pool(tasks, result.workers)
    else:
        from genremap.audio.cluster import run_on_cluster

        outcomes = run_on_cluster(tasks, scheduler, wanted, result, on_cluster)
    failed: dict[int, tuple[str, str]] = {}
    try:
        on_file(0, len(tasks))
        for finished, (index, done, problem, detail) in enumerate(outcomes, start=1):
            if done is None:
                failed[index] = (problem, detail)
            else:
                cache.store(jobs[index].name, done.fingerprint, done.row)
                result.computed += 1
                result.load_seconds += done.load_seconds
                result.feature_seconds += done.feature_seconds
                result.cpu_seconds += done.cpu_seconds
                _test_exit_hook(result.computed)
            on_file(finished, len(tasks))
    except BaseException:
        outcomes.close()  # stops the workers; what was stored stays for the next run
        raise
    return failed


def _test_exit_hook(computed: int) -> None:
    """For the kill-and-resume test: GENREMAP_TEST_EXIT_AFTER=N kills this process and its worker
    processes at once (no cleanup, as `kill -9` on the process group would) once N clips are
    computed and stored."""
    limit = os.environ.get("GENREMAP_TEST_EXIT_AFTER")
    if limit and computed >= int(limit):
        import multiprocessing

        for child in multiprocessing.active_children():
            child.kill()
        os._exit(75)


def _library_versions() -> dict[str, str]:
    """librosa's and NumPy's versions: a new release may change the numbers, so the cache key holds them."""
    return {"librosa": _require_librosa().__version__, "numpy": np.__version__}


def require_cluster() -> None:
    """The [cluster] extra, or a UsageError naming it."""
    require("--scheduler", ("dask", "distributed"), install=CLUSTER_INSTALL)
