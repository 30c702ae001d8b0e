"""The one-pass feature code (genremap/audio/features.py) against a copy of the code it replaced.

`reference_load` and `reference_analyse` below are the features stage as it was before issue 11:
`librosa.load`, then one librosa call per feature, each computing its own spectrogram,
normalisation and tuning estimate. The new code must give the same numbers on generated clips of
every kind the benchmark and the stage's tests use (mp3 at 44.1 kHz stereo, wav, flac, mono,
short, silent, detuned tones). Stated tolerance: decoding is bit-identical; every feature
within 1e-5 relative (float32 rounding), and in practice they are bit-identical too (asserted
on the CSV cells, which are what users see).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

librosa = pytest.importorskip("librosa")
soundfile = pytest.importorskip("soundfile")

from genremap.audio import features  # noqa: E402
from genremap.audio.features import HOP, N_COEFFS, N_FFT, N_MELS, SAMPLE_RATE, SUMMARY_COLUMNS  # noqa: E402

RATE = 44100
# librosa's notes on silent and very short clips ("empty frequency set", "n_fft too large") are expected here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def reference_load(path: Path) -> np.ndarray:
    """The old load_clip."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True, duration=30.0)
    return np.ascontiguousarray(y, dtype=np.float32)


def reference_analyse(
    y: np.ndarray, segments: int = 125, segmentation: str = "onset", frame_seconds: float = 0.24
) -> dict[str, Any]:
    """The old analyse_clip: per-segment pitches and timbres, and the summary."""
    sr = SAMPLE_RATE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectrum = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
        power = spectrum**2
        log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=N_MELS))
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_COEFFS)
        chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=N_FFT, hop_length=HOP)
        rms = librosa.feature.rms(S=spectrum, frame_length=N_FFT, hop_length=HOP)[0]
        envelope = librosa.onset.onset_strength(S=log_mel, sr=sr, hop_length=HOP)
        tempo = librosa.feature.tempo(onset_envelope=envelope, sr=sr, hop_length=HOP)
        centroid = librosa.feature.spectral_centroid(S=spectrum, sr=sr, n_fft=N_FFT, hop_length=HOP)[0]
        bandwidth = librosa.feature.spectral_bandwidth(S=spectrum, sr=sr, n_fft=N_FFT, hop_length=HOP)[0]
        rolloff = librosa.feature.spectral_rolloff(S=spectrum, sr=sr, n_fft=N_FFT, hop_length=HOP)[0]
        zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)[0]
        onsets = None
        if segmentation == "onset":
            onsets = librosa.onset.onset_detect(
                onset_envelope=envelope, sr=sr, hop_length=HOP, backtrack=True, energy=rms, units="frames"
            )
    bounds = features.segment_bounds(spectrum.shape[1], onsets, frame_seconds, y.size / sr)
    # Segment means and summaries from the frame-level features: code the change kept as it was.
    series = (centroid, bandwidth, rolloff, zcr, rms)
    clip = features._assemble(features._Frames(chroma, mfcc, series, tempo, envelope), bounds, y.size / sr, segments)
    return {
        "pitches": clip.pitches,
        "timbres": clip.timbres,
        "segment_count": clip.segment_count,
        "summary": clip.summary,
        "series": {"centroid": centroid, "bandwidth": bandwidth, "rolloff": rolloff, "zcr": zcr, "rms": rms},
        "tuning": librosa.estimate_tuning(S=power, sr=sr),
    }


def tone_clip(seconds: float, rate: int, cents: float, rng: np.random.Generator) -> np.ndarray:
    """Harmonic notes tuned `cents` off A440 (so the tuning estimate has work to do), with clicks and noise."""
    t = np.arange(int(seconds * rate)) / rate
    y = 0.01 * rng.standard_normal(t.size)
    for start in np.arange(0, seconds, 0.3):
        span = (t >= start) & (t < start + 0.3)
        f0 = 440.0 * 2 ** ((rng.integers(-12, 13) + cents / 100) / 12)
        y[span] += sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t[span]) for k in range(1, 6)) * np.exp(
            -5 * (t[span] - start)
        )
    return np.clip(y, -1, 1)


def write(path: Path, y: np.ndarray, rate: int, **kwargs: Any) -> Path:
    soundfile.write(path, y.astype(np.float32), rate, **kwargs)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Clips of every shape the stage meets: previews (mp3, 44.1 kHz stereo), dropped-in files."""
    root = tmp_path_factory.mktemp("reference")
    rng = np.random.default_rng(11)
    stereo = tone_clip(5.0, RATE, 30, rng)
    made = [
        write(root / "preview.mp3", np.stack([stereo, np.roll(stereo, 441)], axis=1), RATE, format="MP3"),
        write(root / "mono22k.wav", tone_clip(6.0, SAMPLE_RATE, -40, rng), SAMPLE_RATE),
        write(root / "flat48k.flac", tone_clip(4.0, 48000, 0, rng), 48000),
        write(root / "six_channels.wav", np.stack([tone_clip(3.0, RATE, 10, rng)] * 6, axis=1), RATE),
        write(root / "short.wav", tone_clip(0.05, SAMPLE_RATE, 0, rng), SAMPLE_RATE),  # fewer samples than one frame
        write(root / "silent.flac", np.zeros(SAMPLE_RATE * 2), SAMPLE_RATE),
    ]
    return made


@pytest.mark.parametrize("segmentation", ["onset", "frames"])
def test_same_values_as_the_old_code(clips: list[Path], segmentation: str) -> None:
    for path in clips:
        y = features.load_clip(path)
        old_y = reference_load(path)
        assert y.dtype == old_y.dtype and np.array_equal(y, old_y), path.name  # decoding: bit-identical
        new = features.analyse_clip(y, segmentation=segmentation)
        old = reference_analyse(old_y, segmentation=segmentation)
        assert new.segment_count == old["segment_count"], path.name
        np.testing.assert_allclose(new.pitches, old["pitches"], rtol=1e-5, atol=1e-6, err_msg=path.name)
        np.testing.assert_allclose(new.timbres, old["timbres"], rtol=1e-5, atol=1e-5, err_msg=path.name)
        for column in SUMMARY_COLUMNS:
            assert new.summary[column] == pytest.approx(old["summary"][column], rel=1e-5, abs=1e-9), (path.name, column)


def test_frame_series_and_tuning_match_librosa(clips: list[Path]) -> None:
    """The pieces computed without librosa's own calls, frame by frame."""
    for path in clips:
        y = features.load_clip(path)
        old = reference_analyse(y)
        spectrum = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
        assert features._tuning(spectrum**2) == old["tuning"], path.name
        centroid, bandwidth, rolloff = features._spectral_shape(spectrum)
        np.testing.assert_allclose(centroid, old["series"]["centroid"], rtol=1e-6)
        np.testing.assert_allclose(bandwidth, old["series"]["bandwidth"], rtol=1e-6)
        np.testing.assert_array_equal(rolloff, old["series"]["rolloff"])
        np.testing.assert_array_equal(features._zero_crossing_rate(y), old["series"]["zcr"])
        np.testing.assert_allclose(features._rms(spectrum**2), old["series"]["rms"], rtol=1e-6)


def test_one_decode_and_one_spectrogram_per_clip(clips: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each clip is decoded once and gets one STFT; nothing recomputes it (no centroid inside the
    bandwidth, no tuning estimate over the whole spectrogram, no framing of the signal for zero crossings)."""
    calls: dict[str, int] = {}

    def counting(owner: Any, name: str) -> None:
        real = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    counting(librosa, "stft")
    counting(librosa, "load")
    counting(soundfile.SoundFile, "read")
    for name in (
        "spectral_centroid",
        "spectral_bandwidth",
        "spectral_rolloff",
        "chroma_stft",
        "zero_crossing_rate",
        "rms",
    ):
        counting(librosa.feature, name)
    counting(librosa, "estimate_tuning")
    counting(librosa, "piptrack")
    counting(librosa.core.pitch, "piptrack")
    preview = clips[0]
    features.clip_features(preview)
    assert calls == {"read": 1, "stft": 1}
