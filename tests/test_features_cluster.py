"""`features --scheduler`: the per-clip work on a Dask distributed cluster (two worker processes
on loopback) writes the same bytes as a local run, a worker that dies mid-clip has the clip
retried elsewhere, and a missing [cluster] extra or an unreachable scheduler is one line."""

from __future__ import annotations

import logging
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("librosa")
soundfile = pytest.importorskip("soundfile")
distributed = pytest.importorskip("distributed")

from genremap.audio import cluster as cluster_module  # noqa: E402
from genremap.audio.features import compute_features  # noqa: E402
from genremap.cli import app  # noqa: E402
from genremap.errors import UsageError  # noqa: E402

SR = 22050
OUTPUTS = ("pitches.csv", "timbres.csv", "features.csv", "features_errors.csv")
HEADER = "track_id,track_name,artist_id,artist_name,target,subgenre,rule,split,duration_ms,preview_url,isrc"
CRASHING = "audio/b/t1.mp3"  # the clip whose first worker dies


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six short clips (mp3 and wav) and one corrupt file, which must fail the same way on the cluster."""
    root = tmp_path_factory.mktemp("cluster") / "ds"
    rng = np.random.default_rng(21)
    rows = [HEADER]
    for i in range(6):
        target = ("a", "b")[i % 2]
        (root / "audio" / target).mkdir(parents=True, exist_ok=True)
        t = np.arange(int(1.5 * SR)) / SR
        y = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 900) * t) * (np.sin(2 * np.pi * rng.uniform(2, 4) * t) > 0)
        y += 0.02 * rng.standard_normal(t.size)
        kwargs = {"format": "MP3"} if i % 2 else {}
        soundfile.write(root / "audio" / target / f"t{i}.{('wav', 'mp3')[i % 2]}", y.astype(np.float32), SR, **kwargs)
        rows.append(f"t{i},Song {i},a{i},Artist {i},{target},,,train,,,")
    (root / "audio" / "a" / "broken.mp3").write_bytes(rng.bytes(5000))
    rows.append("broken,Broken,a9,Artist 9,a,,,test,,,")
    (root / "tracks.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def local(base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The files a local run writes."""
    root = tmp_path_factory.mktemp("local") / "ds"
    shutil.copytree(base, root)
    compute_features(root, workers=2)
    return {name: (root / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A LocalCluster of two worker processes on loopback, whose workers die on CRASHING once."""
    marker = tmp_path_factory.mktemp("crash") / "crashed"
    with pytest.MonkeyPatch.context() as patch:  # the workers (and their restarts) inherit these
        patch.setenv("GENREMAP_TEST_CRASH_CLIP", CRASHING)
        patch.setenv("GENREMAP_TEST_CRASH_MARKER", str(marker))
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        )  # fmt: skip
    with cluster:
        yield cluster.scheduler_address, marker


def test_cluster_writes_the_same_bytes_and_retries_a_dead_workers_clip(
    base: Path, local: dict[str, bytes], scheduler: tuple[str, Path], tmp_path: Path
) -> None:
    address, marker = scheduler
    root = tmp_path / "ds"
    shutil.copytree(base, root)
    result = compute_features(root, scheduler=address)
    assert marker.exists()  # a worker died on CRASHING...
    assert [name for name, _ in result.failed] == ["audio/a/broken.mp3"]  # ...and its clip was done elsewhere
    assert result.failed[0][1].startswith("decode_failed: ")
    assert (result.processed, result.computed, result.scheduler) == (6, 6, address)
    assert {name: (root / name).read_bytes() for name in OUTPUTS} == local


def test_scheduler_local_from_the_command_line(base: Path, local: dict[str, bytes], tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(base, root)
    done = CliRunner().invoke(app, ["features", "--dataset", str(root), "--scheduler", "local", "--workers", "2"])
    assert done.exit_code == 0, done.output
    assert "Dask dashboard: http://127.0.0.1:" in done.stderr
    assert "6 computed, 0 unchanged and reused" in done.stdout and "on tcp://127.0.0.1:" in done.stdout
    assert {name: (root / name).read_bytes() for name in OUTPUTS} == local


def test_without_the_cluster_extra(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if `genremap[cluster]` were not installed
    with pytest.raises(
        UsageError,
        match=r"--scheduler needs dask and distributed; missing: distributed\. .*pip install 'genremap\[cluster\]'",
    ):
        compute_features(base, scheduler="local")
    done = CliRunner().invoke(app, ["features", "--dataset", str(base), "--scheduler", "local"])
    assert done.exit_code == 2
    assert done.stderr.strip().count("\n") == 0 and "genremap[cluster]" in done.stderr
    assert not (base / "features.csv").exists()


def test_unreachable_scheduler(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(cluster_module, "CONNECT_SECONDS", 1)
    root = tmp_path / "ds"
    shutil.copytree(base, root)
    with pytest.raises(
        UsageError, match=rf"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:{port} .*--scheduler local"
    ):
        compute_features(root, scheduler=f"tcp://127.0.0.1:{port}")
    assert not (root / "features.csv").exists()


def test_scheduler_without_workers(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_module, "CONNECT_SECONDS", 1)
    root = tmp_path / "ds"
    shutil.copytree(base, root)
    with (
        distributed.LocalCluster(
            n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR
        ) as empty,
        pytest.raises(
            UsageError, match=r"no Dask worker joined tcp://127\.0\.0\.1:\d+ within 1 s: start some with `dask worker"
        ),
    ):
        compute_features(root, scheduler=empty.scheduler_address)
    assert not (root / "features.csv").exists()
