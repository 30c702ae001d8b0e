"""The whole folder pipeline through the CLI: build → audio (loopback Deezer) → features → evaluate."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from fakes.deezer import FakeDeezer, FakeTrack
from typer.testing import CliRunner

from genremap.cli import app

soundfile = pytest.importorskip("soundfile", reason="the [audio] extra (soundfile) is needed to write test MP3s")
pytest.importorskip("librosa", reason="the [audio] extra (librosa) is needed for features")
pytest.importorskip("sklearn", reason="the [audio] extra (scikit-learn) is needed for evaluate")

SR = 22050


def clip(target: str, seed: int, seconds: float = 4.0) -> bytes:
    """A short MP3 whose spectrum depends on the class: bass and kicks, bright noise, or harmonic tones."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    if target == "hip hop":
        signal = 0.5 * np.sin(2 * np.pi * (55 + 10 * rng.random()) * t)
        signal += 0.4 * (np.sin(2 * np.pi * 1.5 * t) > 0.95) * rng.normal(0, 1, t.size)
    elif target == "rock":
        signal = 0.3 * rng.normal(0, 1, t.size) * (1 + np.sign(np.sin(2 * np.pi * 4 * t))) / 2
        signal += 0.2 * np.sign(np.sin(2 * np.pi * (330 + 40 * rng.random()) * t))
    else:  # classical
        base = 440 + 50 * rng.random()
        signal = sum(0.3 / k * np.sin(2 * np.pi * base * k * t) for k in (1, 2, 3))
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(signal, -1, 1).astype(np.float32), SR, format="MP3")
    return buffer.getvalue()


def test_build_audio_features_evaluate(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    built = runner.invoke(
        app,
        ["build", "--db", str(sample_db), "--rules", str(test_rules_dir), "--out", str(out), "--targets",
         "rock,hip hop,classical", "--per-class", "15", "--split", "0.6,0.2,0.2", "--seed", "3"],
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    tracks = list(csv.DictReader((out / "tracks.csv").open()))
    catalog = [
        FakeTrack(
            id=i + 1,
            artist=t["artist_name"],
            title=t["track_name"],
            duration=round(int(t["duration_ms"]) / 1000),
            audio=clip(t["target"], i),
        )
        for i, t in enumerate(tracks)
    ]
    with FakeDeezer(catalog) as deezer:
        fetched = runner.invoke(
            app,
            ["audio", "--dataset", str(out), "--deezer-api", deezer.api, "--allow-host", "127.0.0.1", "--format", "json"],
        )  # fmt: skip
        assert fetched.exit_code == 0, fetched.output
        summary = json.loads(fetched.stdout)
        assert summary["found"] == len(tracks) == 45
        again = runner.invoke(
            app, ["audio", "--dataset", str(out), "--deezer-api", deezer.api, "--allow-host", "127.0.0.1"]
        )
        assert again.exit_code == 0 and sum(deezer.requests.values()) == 2 * len(tracks)  # search + preview, once each
    manifest = list(csv.DictReader((out / "audio" / "manifest.csv").open()))
    assert [r["track_id"] for r in manifest] == [t["track_id"] for t in tracks]
    served = {t.title: hashlib.sha256(t.audio).hexdigest() for t in catalog}
    for track, row in zip(tracks, manifest, strict=True):
        path = out / "audio" / track["target"] / f"{track['track_id']}.mp3"
        assert row["status"] == "found" and row["sha256"] == served[track["track_name"]]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]  # exactly the bytes served

    features = runner.invoke(app, ["features", "--dataset", str(out), "--workers", "2"])
    assert features.exit_code == 0, features.output
    with (out / "features.csv").open() as handle:
        assert handle.readline().startswith("track_id,target,split,")
    with (out / "pitches.csv").open() as handle:
        header = next(csv.reader(handle))
    assert header[:2] == ["track_id", "segments"] and len(header) == 2 + 1500

    evaluated = runner.invoke(app, ["evaluate", "--dataset", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    assert "artist-disjoint" in evaluated.stdout and "Confusion matrix" in evaluated.stdout
    report = json.loads((out / "evaluation.json").read_text())
    for split in ("artist_disjoint", "mixed"):
        assert 0 <= report[split]["accuracy"] <= 1 and 0 <= report[split]["macro_f1"] <= 1
    assert report["artist_disjoint"]["accuracy"] >= 2 * report["chance"]  # classes that differ are told apart
    assert (out / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")


def _journaled(journal: Path) -> set[str]:
    """Track ids an `audio` run recorded as found in its journal (a line cut by the kill is skipped)."""
    found = set()
    for line in journal.read_text(encoding="utf-8").splitlines() if journal.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("status") == "found":
            found.add(entry["track_id"])
    return found


def test_audio_killed_with_sigkill_resumes_without_refetching(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "ds"
    built = runner.invoke(
        app,
        ["build", "--db", str(sample_db), "--rules", str(test_rules_dir), "--out", str(out), "--targets",
         "rock,jazz", "--per-class", "10", "--seed", "5"],
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    tracks = list(csv.DictReader((out / "tracks.csv").open()))
    catalog = [
        FakeTrack(id=i + 1, artist=t["artist_name"], title=t["track_name"], duration=round(int(t["duration_ms"]) / 1000),
                  audio=clip("rock" if t["target"] == "rock" else "classical", i, seconds=1.0))
        for i, t in enumerate(tracks)
    ]  # fmt: skip
    # every 3rd preview answers slowly, so the kill lands while downloads are in flight
    faults = {("preview", n): "slow" for n in range(1, len(tracks) + 1, 3)}
    with FakeDeezer(catalog, faults, slow_seconds=0.4) as deezer:
        command = [sys.executable, "-m", "genremap", "audio", "--dataset", str(out), "--deezer-api", deezer.api,
                   "--allow-host", "127.0.0.1", "--workers", "2"]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while deezer.requests["preview"] < len(tracks) // 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, "the run ended on its own before the kill"
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL  # the kill landed
        first_run = deezer.requests["preview"]
        assert first_run < len(tracks), "the kill came too late to test anything"
        recorded = _journaled(out / "audio" / ".manifest.journal")  # what the killed run had recorded as found
        assert recorded, "the kill came before any track was recorded"
        before = dict(deezer.resources)
        finished = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), check=False)
        assert finished.returncode == 0, finished.stderr
        # Files recorded before the kill are not downloaded again; every other track (in flight, or
        # done but not yet recorded, however many thread timing left) is downloaded exactly once.
        again = {name: n - before.get(name, 0) for name, n in deezer.resources.items() if n > before.get(name, 0)}
        expected = {f"preview/dz{i + 1}": 1 for i, t in enumerate(tracks) if t["track_id"] not in recorded}
        assert again == expected
    manifest = list(csv.DictReader((out / "audio" / "manifest.csv").open()))
    assert len(manifest) == len(tracks) and all(r["status"] == "found" for r in manifest)
    leftovers = [p for p in (out / "audio").rglob("*") if p.is_file() and p.suffix not in (".mp3", ".csv")]
    assert leftovers == []
    for track, row in zip(tracks, manifest, strict=True):
        saved = out / "audio" / track["target"] / f"{track['track_id']}.mp3"
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == row["sha256"]
