"""`build` over an existing dataset folder: old dataset or new one, never a mix (kill -9, full
disk, a kill at every step of the swap), stale files of later stages set aside, one build at a
time, and spreadsheet formulas in tracks.csv."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from genremap.cli import app
from genremap.dataset.build import BuildOptions, build_dataset
from genremap.engine import RuleSet, load_rules
from genremap.store import ArtistRecord, Store, TrackRecord

REPO = Path(__file__).resolve().parent.parent
STAGING = ".genremap-staging"
COMMIT = ".genremap-commit"


def snapshot(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `folder` (relative path → bytes), manifest.json without its timestamp."""
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and not name.startswith(skip):
            data = path.read_bytes()
            if path.name == "manifest.json":
                manifest = json.loads(data)
                manifest.pop("created_at")
                data = json.dumps(manifest, sort_keys=True).encode()
            files[name] = data
    return files


def assert_manifest_matches(folder: Path) -> dict[str, Any]:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tracks_csv_sha256"] == hashlib.sha256((folder / "tracks.csv").read_bytes()).hexdigest()
    assert all((folder / name).is_file() for name in manifest["files"])
    assert len(pd.read_csv(folder / "tracks.csv")) == manifest["counts"]["tracks"]
    return manifest


def build(runner: CliRunner, db: Path, rules: Path, out: Path, *extra: str) -> Any:
    return runner.invoke(app, ["build", "--db", str(db), "--rules", str(rules), "--out", str(out), *extra])


def add_later_stages(out: Path) -> None:
    """What audio, features and evaluate leave in a dataset folder."""
    (out / "audio" / "rock").mkdir(parents=True)
    (out / "audio" / "rock" / "t1.mp3").write_bytes(b"ID3 a clip")
    (out / "features.csv").write_text("track_id,target,split,tempo\nt1,rock,train,120\n", encoding="utf-8")
    (out / "evaluation.json").write_text('{"artist_disjoint": {"accuracy": 0.5}}\n', encoding="utf-8")
    (out / "notes.txt").write_text("the user's own file\n", encoding="utf-8")


@pytest.fixture
def old_dataset(runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path) -> Path:
    """A dataset built with seed 1, with what audio, features and evaluate leave beside it."""
    out = tmp_path / "ds"
    result = build(runner, sample_db, test_rules_dir, out, "--seed", "1")
    assert result.exit_code == 0, result.output
    add_later_stages(out)
    return out


# --- kill -9 and a full disk while the new files are written ----------------------------------

STALLING_BUILD = """\
import os, signal, sys
from pathlib import Path
import pandas as pd

real = pd.DataFrame.to_csv
marker = Path(os.environ["GENREMAP_TEST_MARKER"])

def stalling(self, path_or_buf=None, *args, **kwargs):
    # Write half of tracks.csv, make it durable, say so, then wait for the test's SIGKILL.
    if isinstance(path_or_buf, (str, os.PathLike)) and Path(path_or_buf).name == "tracks.csv":
        text = real(self, None, *args, **kwargs)
        with open(path_or_buf, "w", encoding="utf-8", newline="") as handle:
            handle.write(text[: len(text) // 2])
            handle.flush()
            os.fsync(handle.fileno())
        marker.write_text(str(path_or_buf), encoding="utf-8")
        signal.pause()
    return real(self, path_or_buf, *args, **kwargs)

pd.DataFrame.to_csv = stalling
from genremap.cli import main
sys.argv[0] = "genremap"
main()
"""


def test_build_killed_mid_write_leaves_the_old_dataset_exactly(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path, old_dataset: Path
) -> None:
    out = old_dataset
    before = snapshot(out)
    script = tmp_path / "stalling_build.py"
    script.write_text(STALLING_BUILD, encoding="utf-8")
    marker = tmp_path / "half-written"
    env = {**os.environ, "PYTHONPATH": str(REPO), "GENREMAP_TEST_MARKER": str(marker)}
    command = [sys.executable, str(script), "build", "--db", str(sample_db), "--rules", str(test_rules_dir)]
    process = subprocess.Popen(
        [*command, "--out", str(out), "--seed", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for an event (the marker), not for time to pass
        assert marker.exists(), f"the build never reached tracks.csv: {process.stderr.read() if process.stderr else ''}"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL  # the kill landed: the build did not finish on its own
    half_written = Path(marker.read_text(encoding="utf-8"))
    assert 0 < half_written.stat().st_size < len(before["tracks.csv"])  # killed in the middle of tracks.csv
    assert snapshot(out, skip=(STAGING,)) == before  # exactly the old dataset, later stages included
    assert_manifest_matches(out)
    # the next build discards the half-written staging folder and replaces the dataset
    again = build(runner, sample_db, test_rules_dir, out, "--seed", "2")
    assert again.exit_code == 0, again.output
    assert_manifest_matches(out)
    assert not (out / STAGING).exists() and not (out / COMMIT).exists()
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2


@pytest.mark.parametrize("writer", ["to_csv", "to_parquet"])
def test_full_disk_mid_write_is_one_line_and_leaves_the_old_dataset(
    runner: CliRunner,
    sample_db: Path,
    test_rules_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
    old_dataset: Path,
) -> None:
    out = old_dataset
    before = snapshot(out)
    real = getattr(pd.DataFrame, writer)

    def disk_full(self: pd.DataFrame, path: Any = None, *args: Any, **kwargs: Any) -> Any:
        if Path(path).name in ("tracks.csv", "tracks.parquet"):
            Path(path).write_bytes(b"track_id,track_na")  # what fitted before the disk filled up
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, writer, disk_full)
    result = build(runner, sample_db, test_rules_dir, out, "--seed", "2")
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "No space left on device" in message and "the previous dataset there is unchanged" in message
    assert snapshot(out) == before  # and no staging folder left behind
    assert_manifest_matches(out)
    fresh = build(runner, sample_db, test_rules_dir, tmp_path / "new" / "ds")
    assert fresh.exit_code == 2 and "no dataset was written" in fresh.output
    assert not (tmp_path / "new" / "ds").exists()


# --- a kill at every step of the swap -------------------------------------------------------------


def dataset_view(files: dict[str, bytes]) -> dict[str, bytes]:
    return {name: data for name, data in files.items() if not name.startswith(".previous/")}


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler of the product code catches it."""


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    """Two targets, six artists each, four tracks per artist; some names look like formulas."""
    db = tmp_path / "small.db"
    artists = [
        ArtistRecord(f"{genre[:1]}{i}", name, (genre,))
        for genre in ("rock", "jazz")
        for i, name in enumerate(['=HYPERLINK("http://x")', "-M-", "+44", "@home", "Plain", "Normal"])
    ]
    tracks = [
        TrackRecord(f"{a.artist_id}-{n}", f"{'=1+1' if n == 0 else 'Song'} {a.artist_id} {n}", a.artist_id, a.name)
        for a in artists
        for n in range(4)
    ]
    with Store.open(db) as store:
        store.upsert_artists(artists, "test")
        store.upsert_tracks(tracks, "test")
    return db


def run_build(db: Path, ruleset: RuleSet, rules_dir: Path, out: Path, seed: int) -> None:
    options = BuildOptions(out=out, seed=seed, targets=["rock", "jazz"], split=(0.5, 0.25, 0.25))
    with Store.open(db) as store:
        build_dataset(store, ruleset, ruleset.policy, options, rules_dir)


def test_a_kill_at_any_step_of_the_swap_leaves_old_or_new_and_the_next_build_finishes(
    small_store: Path, test_rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill (raise) at the n-th rename of a rebuild, then at the m-th rename of the build that
    recovers, for every n and m: a manifest always matches its files, the dataset is the old or
    the new one, and the build after that ends in exactly the new folder."""
    ruleset = load_rules(test_rules_dir)
    real_replace = os.replace

    def build_killed_at(out: Path, step: int | None) -> bool:
        calls = 0

        def replace_or_die(src: Any, dst: Any) -> None:
            nonlocal calls
            if calls == step:
                raise Killed
            calls += 1
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace_or_die)
        try:
            run_build(small_store, ruleset, test_rules_dir, out, seed=2)
        except Killed:
            return True
        finally:
            monkeypatch.setattr(os, "replace", real_replace)
        return False

    def check(out: Path, where: str) -> None:
        if (out / "manifest.json").exists():
            assert_manifest_matches(out)  # a manifest always describes the files beside it
            # the old or the new dataset (files being set aside may still be in the commit folder)
            state = dataset_view(snapshot(out, skip=(STAGING, COMMIT)))
            assert state in (dataset_view(old), dataset_view(new)), f"a mix of two builds after a kill {where}"
        else:
            assert (out / COMMIT).is_dir(), where  # committed: the next build finishes moving it in

    template = tmp_path / "template"
    run_build(small_store, ruleset, test_rules_dir, template, seed=1)
    add_later_stages(template)
    (template / ".previous").mkdir()
    (template / ".previous" / "evaluation.json").write_text('{"from": "an earlier rebuild"}\n', encoding="utf-8")
    old = snapshot(template)
    shutil.copytree(template, tmp_path / "reference")
    assert not build_killed_at(tmp_path / "reference", None)
    new = snapshot(tmp_path / "reference")
    assert new["tracks.csv"] != old["tracks.csv"] and ".previous/features.csv" in new
    first = 0
    while True:
        out = shutil.copytree(template, tmp_path / f"killed{first}")
        if not build_killed_at(out, first):
            assert snapshot(out) == new
            break
        check(out, f"at rename {first}")
        second = 0
        while True:
            trial = shutil.copytree(out, tmp_path / f"killed{first}-{second}")
            done = not build_killed_at(trial, second)
            check(trial, f"at rename {first}, then at rename {second} of the next build")
            if not done:
                assert not build_killed_at(trial, None)
            assert snapshot(trial) == new, f"a kill at rename {first} then {second}: not the new dataset"
            if done:
                break
            second += 1
        first += 1
    assert first >= 7  # the commit point, 3 set aside, 2 data files, the manifest, .previous twice


# --- files from the previous build ------------------------------------------------------------------


def test_rebuild_sets_aside_what_later_stages_computed_from_the_old_tracks(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, old_dataset: Path
) -> None:
    out = old_dataset
    old_manifest = (out / "manifest.json").read_text(encoding="utf-8")
    same = build(runner, sample_db, test_rules_dir, out, "--seed", "1")  # byte-identical tracks.csv
    assert same.exit_code == 0 and "previous" not in same.output
    assert (out / "features.csv").is_file() and (out / "evaluation.json").is_file()  # still valid: kept
    other = build(runner, sample_db, test_rules_dir, out, "--seed", "2")
    assert other.exit_code == 0, other.output
    assert "moved features.csv, evaluation.json, manifest.json of the previous build to" in other.output
    assert "kept" in other.output and "genremap audio --dataset" in other.output
    assert not (out / "features.csv").exists() and not (out / "evaluation.json").exists()
    assert (out / ".previous" / "features.csv").read_text().startswith("track_id,target,split,tempo")
    assert json.loads((out / ".previous" / "manifest.json").read_text())["seed"] == json.loads(old_manifest)["seed"]
    assert (out / "audio" / "rock" / "t1.mp3").read_bytes() == b"ID3 a clip"  # clips are reusable
    assert (out / "notes.txt").read_text() == "the user's own file\n"  # not ours: untouched
    assert_manifest_matches(out)
    # the next rebuild that sets files aside replaces .previous/ as a whole
    (out / "evaluation.json").write_text("{}\n", encoding="utf-8")
    assert build(runner, sample_db, test_rules_dir, out, "--seed", "3").exit_code == 0
    assert sorted(p.name for p in (out / ".previous").iterdir()) == ["evaluation.json", "manifest.json"]
    assert json.loads((out / ".previous" / "manifest.json").read_text())["seed"] == 2


def test_a_second_build_into_the_same_folder_waits_its_turn(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "ds"
    assert build(runner, sample_db, test_rules_dir, out, "--seed", "1").exit_code == 0
    before = snapshot(out)
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running build holds
        result = build(runner, sample_db, test_rules_dir, out, "--seed", "2")
    finally:
        os.close(fd)
    assert result.exit_code == 2
    assert "another `genremap build` is writing this folder" in result.output
    assert snapshot(out) == before


# --- spreadsheets -------------------------------------------------------------------------------------


def test_formula_like_cells_stay_exact_in_tracks_csv_and_are_neutralised_on_request(
    runner: CliRunner, small_store: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    plain = build(runner, small_store, test_rules_dir, out, "--targets", "rock,jazz", "--split", "0.5,0.25,0.25")
    assert plain.exit_code == 0, plain.output
    tracks = pd.read_csv(out / "tracks.csv", dtype=str, keep_default_na=False)
    with Store.open(small_store) as store:
        names = store.track_details(tracks["track_id"].tolist()).set_index("track_id")["track_name"]
    assert tracks.set_index("track_id")["track_name"].equals(names.reindex(tracks["track_id"]))  # exact
    assert {'=HYPERLINK("http://x")', "-M-", "+44", "@home"} <= set(tracks["artist_name"])
    risky = tracks.apply(lambda c: c.str.match(r"[=+\-@\t\r]")).to_numpy().sum()
    manifest = assert_manifest_matches(out)
    assert risky > 0 and manifest["formula_like_cells"] == risky
    assert any("begin with =, +, -, @" in w for w in manifest["warnings"])
    assert "--spreadsheet-safe" in plain.output
    assert not (out / "tracks_spreadsheet.csv").exists()

    safe = build(runner, small_store, test_rules_dir, out, "--targets", "rock,jazz", "--split", "0.5,0.25,0.25",
                 "--spreadsheet-safe")  # fmt: skip
    assert safe.exit_code == 0, safe.output
    assert pd.read_csv(out / "tracks.csv", dtype=str, keep_default_na=False).equals(tracks)  # unchanged
    sheet = pd.read_csv(out / "tracks_spreadsheet.csv", dtype=str, keep_default_na=False)
    assert sheet.shape == tracks.shape
    assert not sheet.apply(lambda c: c.str.match(r"[=+\-@\t\r]")).to_numpy().any()
    differs = (sheet != tracks).to_numpy()
    changed = list(zip(sheet.to_numpy()[differs], tracks.to_numpy()[differs], strict=True))
    assert len(changed) == risky and all(shown == "'" + exact for shown, exact in changed)
    assert "tracks_spreadsheet.csv" in assert_manifest_matches(out)["files"]
    args = ["--targets", "rock,jazz", "--split", "0.5,0.25,0.25"]
    assert build(runner, small_store, test_rules_dir, out, *args).exit_code == 0  # the same tracks again
    assert (out / "tracks_spreadsheet.csv").is_file() and not (out / ".previous").exists()  # still matches
    assert build(runner, small_store, test_rules_dir, out, *args, "--seed", "7").exit_code == 0  # other splits
    assert not (out / "tracks_spreadsheet.csv").exists()
    assert (out / ".previous" / "tracks_spreadsheet.csv").read_bytes().startswith(b"track_id,")


# --- refused before anything is written -----------------------------------------------------------


def _refused(runner: CliRunner, args: list[str], tmp_path: Path, rules: Path) -> str:
    db = tmp_path / "new.db"
    result = runner.invoke(app, ["build", "--db", str(db), "--rules", str(rules), *args])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message
    assert not db.exists()  # nothing written, not even a new store
    return message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--seed", "-1"], "--seed -1: expected a whole number from 0 to"),
        (["--seed", str(2**63)], "expected a whole number from 0 to 9223372036854775807"),
        (["--targets", "rock,rock"], "--targets: rock given more than once"),
        (["--targets", "rock,jazz,jazz,rock"], "--targets: jazz, rock given more than once"),
        (["--targets", "rock,rok"], "--targets: unknown target 'rok' (did you mean 'rock'?)"),
        (["--targets", ","], "--targets names no target"),
        (["--split", "nan,0,1"], "--split 'nan,0,1': expected three fractions between 0 and 1"),
        (["--split", "inf,-inf,1"], "--split 'inf,-inf,1'"),
        (["--split", "1.5,-0.5,0"], "--split '1.5,-0.5,0'"),
        (["--per-class", "0"], "--per-class 0: must be at least 1"),
        (["--max-per-artist", "-2"], "--max-per-artist -2: must be at least 1"),
    ],
)
def test_bad_build_options_are_one_line_exit_2_and_write_nothing(
    runner: CliRunner, test_rules_dir: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    out = tmp_path / "ds"
    assert expected in _refused(runner, [*args, "--out", str(out)], tmp_path, test_rules_dir)
    assert not out.exists()


def test_out_under_a_regular_file_is_refused(runner: CliRunner, test_rules_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder\n")
    message = _refused(runner, ["--out", str(tmp_path / "file" / "sub")], tmp_path, test_rules_dir)
    assert f"{tmp_path / 'file'} is a file, not a folder" in message
    message = _refused(runner, ["--out", str(tmp_path / "file")], tmp_path, test_rules_dir)
    assert "is a file, not a folder" in message
    assert (tmp_path / "file").read_text() == "not a folder\n"


def test_unwritable_out_is_refused(runner: CliRunner, test_rules_dir: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: folder permissions do not stop root from writing (see the FILE/sub test)")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        message = _refused(runner, ["--out", str(locked / "ds")], tmp_path, test_rules_dir)
    finally:
        locked.chmod(0o755)
    assert f"{locked} is not writable" in message
    assert list(locked.iterdir()) == []


def test_build_with_a_bad_seed_in_a_subprocess_prints_no_traceback(tmp_path: Path, test_rules_dir: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "genremap",
        "build",
        "--db",
        str(tmp_path / "x.db"),
        "--rules",
        str(test_rules_dir),
    ]
    finished = subprocess.run(
        [*command, "--out", str(tmp_path / "ds"), "--seed", "-1"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [
        "error: --seed -1: expected a whole number from 0 to 9223372036854775807"
    ]
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "ds").exists()
