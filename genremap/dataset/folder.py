"""Replace the build's files in a dataset folder so that the folder holds the old dataset or the
new one, never a mix, even when the build is killed or the disk fills up.

POSIX cannot replace several files in one step, so the build works in three phases:

1. **Stage** (the long part): every new file is written into `OUT/.genremap-staging/` and
   fsynced. OUT itself is untouched: a kill or a full disk here leaves exactly the old dataset
   (the next build deletes the half-written staging folder).
2. **Commit point**: a plan (`commit.json`: which files come in, which are set aside) is
   written into the staging folder, which is then renamed to `OUT/.genremap-commit/`: one
   atomic rename. From here on the new dataset is complete on disk and wins.
3. **Move in** (a few renames, no data written): the old `manifest.json` is removed first,
   then each data file is renamed over its old version, then the new `manifest.json` is renamed
   in last. Every name always points at a complete file, and a `manifest.json`, whenever
   present, describes exactly the files beside it (its `tracks_csv_sha256` matches). A kill
   during these renames leaves a folder without `manifest.json` and the `.genremap-commit/`
   folder; the next `genremap build` on OUT finishes moving it in before doing anything else.

Files computed by later stages from the old `tracks.csv` (`features.csv`, `evaluation.json`,
...) would silently describe another dataset: when `tracks.csv` changes they are moved, with
the old `manifest.json` and old build files the new build does not write (a spreadsheet copy,
Spotify exports), into `OUT/.previous/` (replacing what an earlier rebuild put there). When
`tracks.csv` is byte-identical they all stay: they still describe it. `audio/` always stays:
clips are named by track id, so the new dataset reuses the ones it shares with the old. Files
the build knows nothing about are left alone. One build at a time writes a folder (a lock on
the folder, which the kernel releases when a build dies).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from genremap.dataset.export import SPREADSHEET_CSV
from genremap.dataset.files import (
    CONFUSION_PNG,
    ERRORS_CSV,
    EVALUATION_JSON,
    FEATURES_CSV,
    PER_CLASS_PNG,
    PITCHES_CSV,
    TIMBRES_CSV,
)
from genremap.errors import UsageError
from genremap.store import sync_file

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None  # type: ignore[assignment]

STAGING_DIR = ".genremap-staging"  # being written: discarded by the next build
COMMIT_DIR = ".genremap-commit"  # complete: moved in by the next build if a kill interrupted it
PREVIOUS_DIR = ".previous"
PLAN_FILE = "commit.json"
MANIFEST = "manifest.json"
TRACKS = "tracks.csv"
AUDIO_DIR = "audio"

# Files `build` writes (any of them may be absent from one build).
BUILD_FILES = (
    TRACKS,
    "tracks.parquet",
    SPREADSHEET_CSV,
    "spotify_features.csv",
    "tracksPitches.csv",
    "tracksTimbres.csv",
    "tracksMeta.csv",
    MANIFEST,
)
# Files later stages compute from tracks.csv: stale once tracks.csv changes.
DERIVED_FILES = (
    FEATURES_CSV,
    PITCHES_CSV,
    TIMBRES_CSV,
    ERRORS_CSV,
    EVALUATION_JSON,
    CONFUSION_PNG,
    PER_CLASS_PNG,
)


@dataclass
class Staging:
    """The staging folder a build writes into, and what the swap did (for the user)."""

    out: Path
    path: Path
    notes: list[str] = field(default_factory=list)


@dataclass
class CommitPlan:
    """What the move-in does, fixed before the commit point so a rerun repeats it exactly."""

    files: list[str]  # the new build's files (manifest.json among them, moved last)
    set_aside: list[str]  # files of OUT moved into .previous/
    tracks_changed: bool = False  # an old tracks.csv was there and differs from the new one


def check_out(out: Path) -> None:
    """Refuse an --out that cannot become a folder we can write (before anything is written)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, not a folder; choose a folder")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is a file, not a folder; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {existing} is not writable; choose another --out or fix its permissions")


@contextmanager
def staged_replace(out: Path) -> Iterator[Staging]:
    """Yield an empty staging folder inside `out`; on a clean exit swap its files in (see the
    module's docstring), on an error delete it and leave `out` as it was.

    OSError (a full disk, a permission problem) becomes a UsageError saying the old dataset is
    unchanged. Holds an exclusive lock on `out` throughout, so two builds cannot interleave."""
    check_out(out)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    before = "no dataset was written" if created else "the previous dataset there is unchanged"
    with _locked(out):
        staging = Staging(out, out / STAGING_DIR)
        _recover(out, staging.notes)
        committed = False
        try:
            staging.path.mkdir()
            yield staging
            plan = _plan(out, staging.path)
            _write_plan(staging.path, plan)
            os.replace(staging.path, out / COMMIT_DIR)  # the commit point
            committed = True
            _fsync_dir(out)
            _move_in(out)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if committed:
                raise UsageError(
                    f"{out}: the new dataset is complete but could not be moved in ({reason}); "
                    "run the same build again to finish"
                ) from None
            raise UsageError(f"{out}: cannot write the dataset ({reason}); {before}") from None
        finally:
            if not committed:
                shutil.rmtree(staging.path, ignore_errors=True)
                if created:
                    with suppress(OSError):
                        out.rmdir()  # only if empty: the folder this build made
        staging.notes.extend(_notes(out, plan))


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock on the folder itself (released by the kernel if killed)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{out}: another `genremap build` is writing this folder; wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def _recover(out: Path, notes: list[str]) -> None:
    """Finish moving in what a killed build had committed; discard what it had only staged."""
    try:
        if (out / COMMIT_DIR).is_dir():
            _move_in(out)
            notes.append(f"finished moving in the dataset of an interrupted build of {out} before this one")
        staging = out / STAGING_DIR
        if staging.is_dir() and not staging.is_symlink():
            shutil.rmtree(staging)
        elif staging.exists() or staging.is_symlink():
            staging.unlink()
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(
            f"{out}: cannot finish or discard what an interrupted build left there ({exc}); "
            f"move {out / COMMIT_DIR} and {out / STAGING_DIR} away and build again"
        ) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plan(out: Path, staged: Path) -> CommitPlan:
    """Sync the staged files and decide what the old folder sets aside."""
    files = sorted(p.name for p in staged.iterdir())
    for name in files:
        sync_file(staged / name)
    old_tracks = out / TRACKS
    if not (old_tracks.is_file() and _sha256(old_tracks) != _sha256(staged / TRACKS)):
        return CommitPlan(files, [])  # the same tracks: what was computed from them still holds
    # old build files the new build does not write, and what later stages computed
    stale = [n for n in BUILD_FILES if n not in files and n != MANIFEST] + list(DERIVED_FILES)
    set_aside = [n for n in stale if (out / n).is_file()]
    if set_aside and (out / MANIFEST).is_file():
        set_aside.append(MANIFEST)  # says which build the set-aside files came from
    return CommitPlan(files, set_aside, tracks_changed=True)


def _write_plan(staged: Path, plan: CommitPlan) -> None:
    path = staged / PLAN_FILE
    path.write_text(json.dumps({"files": plan.files, "set_aside": plan.set_aside}), encoding="utf-8")
    sync_file(path)
    _fsync_dir(staged)


def _move_in(out: Path) -> None:
    """Move a committed build into `out`: the old manifest out first, the new one in last.

    Every step checks whether it was already done, so after a kill it can simply run again."""
    commit = out / COMMIT_DIR
    raw = json.loads((commit / PLAN_FILE).read_text(encoding="utf-8"))
    plan = CommitPlan(list(raw["files"]), list(raw["set_aside"]))
    aside = commit / "previous"
    if (commit / MANIFEST).exists():  # the new manifest is not in yet: the old one must go first
        if MANIFEST in plan.set_aside and (out / MANIFEST).exists():
            aside.mkdir(exist_ok=True)
            os.replace(out / MANIFEST, aside / MANIFEST)
        else:
            (out / MANIFEST).unlink(missing_ok=True)
        _fsync_dir(out)
    for name in plan.set_aside:
        if name != MANIFEST and (out / name).exists():  # (the manifest in OUT may be the new one by now)
            aside.mkdir(exist_ok=True)
            os.replace(out / name, aside / name)
    for name in plan.files:
        if name != MANIFEST and (commit / name).exists():
            os.replace(commit / name, out / name)
    _fsync_dir(out)
    if (commit / MANIFEST).exists():
        os.replace(commit / MANIFEST, out / MANIFEST)
        _fsync_dir(out)
    if aside.is_dir():
        if (out / PREVIOUS_DIR).exists():
            os.replace(out / PREVIOUS_DIR, commit / "discarded")
        os.replace(aside, out / PREVIOUS_DIR)
    shutil.rmtree(commit)
    _fsync_dir(out)


def _notes(out: Path, plan: CommitPlan) -> list[str]:
    """What the user should know about files from the previous build."""
    notes: list[str] = []
    if plan.set_aside:
        notes.append(
            f"moved {', '.join(plan.set_aside)} of the previous build to {out / PREVIOUS_DIR} "
            "(they describe the old tracks.csv)"
        )
    if plan.tracks_changed and (out / AUDIO_DIR).is_dir():
        notes.append(
            f"kept {out / AUDIO_DIR} (clips are named by track id): run `genremap audio --dataset {out}` "
            "for the new tracks' clips, then `genremap features` again"
        )
    return notes


def _fsync_dir(path: Path) -> None:
    """Make renames in `path` durable (not possible on every platform: best effort)."""
    with suppress(OSError):
        sync_file(path)
