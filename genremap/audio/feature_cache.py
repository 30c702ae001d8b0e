"""What the features stage already computed, per clip, so a rerun computes only what changed.

`DIR/.features_cache.sqlite` holds one row per clip file and feature settings: the file's
sha256, size and mtime when it was analysed, and the clip's CSV cells exactly as written
(formatted text). A clip is reused when its settings key matches (segments, segmentation,
frame seconds, sample rate, STFT sizes, and the versions of genremap's feature code, librosa
and NumPy) and its content is the same: same size and mtime, or, when those moved (a copy, a
`touch`), the same sha256, which is the hash `audio/manifest.csv` records for downloaded clips.
Since the outputs are written from these cells whether they were computed now or earlier,
a rerun writes the same bytes a full recomputation does.

Each clip's row is committed as soon as its features arrive, so a run that is killed keeps
what it finished; the next run picks up the rest. The cache is only ever a shortcut: delete
it (or pass `--force`) and everything is computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from genremap.errors import UsageError

CACHE_NAME = ".features_cache.sqlite"
FORMAT = 1  # of this file's tables
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    name TEXT NOT NULL,        -- the file, relative to the dataset folder (posix)
    settings TEXT NOT NULL,    -- settings_key() of the run that computed it
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    segments INTEGER NOT NULL, -- real segments kept (the rest of the row is zero padding)
    pitches TEXT NOT NULL,     -- the real segments' cells of pitches.csv, comma-separated
    timbres TEXT NOT NULL,
    summary TEXT NOT NULL,     -- the SUMMARY_COLUMNS cells of features.csv
    PRIMARY KEY (name, settings)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Fingerprint:
    """The content a clip's features were computed from."""

    sha256: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Row:
    """One clip's cells in the three CSV files, formatted as written."""

    segments: int
    pitches: str
    timbres: str
    summary: str


def settings_key(**settings: object) -> str:
    """A stable text key for the settings that change what a clip's features are."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def file_sha256(path: Path) -> str:
    """The file's sha256 as `genremap audio` records it in audio/manifest.csv ("" if unreadable)."""
    from genremap.audio.previews import _sha256_of

    return _sha256_of(path)


class FeatureCache:
    """The clips' rows for one settings key, in `DIR/.features_cache.sqlite`."""

    def __init__(self, path: Path, settings: str, *, fresh: bool = False) -> None:
        self.path = path
        self.settings = settings
        if fresh:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        try:
            self.db = sqlite3.connect(path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            found = self.db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if found is None:
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT),))
            elif found[0] != str(FORMAT):
                raise UsageError(f"{path}: a features cache of another genremap version; run with --force")
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{path}: not a readable features cache ({exc}); run with --force to rebuild it") from None

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.db.close()

    def reusable(self, name: str, path: Path) -> bool:
        """Whether the row stored for `name` was computed from the file now at `path`."""
        found = self.db.execute(
            "SELECT sha256, size, mtime_ns FROM clips WHERE name = ? AND settings = ?", (name, self.settings)
        ).fetchone()
        if found is None:
            return False
        try:
            stat = path.stat()
            if (stat.st_size, stat.st_mtime_ns) == (found[1], found[2]):
                return True
            if stat.st_size != found[1] or file_sha256(path) != found[0]:  # "" never matches
                return False
        except OSError:
            return False
        with self.db:  # same bytes, touched or copied: remember the new mtime
            self.db.execute(
                "UPDATE clips SET mtime_ns = ? WHERE name = ? AND settings = ?", (stat.st_mtime_ns, name, self.settings)
            )
        return True

    def store(self, name: str, fingerprint: Fingerprint, row: Row) -> None:
        """Keep one clip's row (committed at once: a kill after this keeps it)."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO clips VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, self.settings, fingerprint.sha256, fingerprint.size, fingerprint.mtime_ns,
                 row.segments, row.pitches, row.timbres, row.summary),
            )  # fmt: skip

    def row(self, name: str) -> Row:
        found = self.db.execute(
            "SELECT segments, pitches, timbres, summary FROM clips WHERE name = ? AND settings = ?",
            (name, self.settings),
        ).fetchone()
        if found is None:
            raise UsageError(f"{self.path}: the row of {name} went missing during the run; run again")
        return Row(*found)

    def prune(self, names: set[str]) -> int:
        """Drop the rows of files that are gone (any settings); how many were dropped."""
        stored = {name for (name,) in self.db.execute("SELECT DISTINCT name FROM clips")}
        gone = sorted(stored - names)
        with self.db:
            self.db.executemany("DELETE FROM clips WHERE name = ?", [(name,) for name in gone])
        return len(gone)


def fingerprint_of(data: bytes, stat: os.stat_result) -> Fingerprint:
    return Fingerprint(hashlib.sha256(data).hexdigest(), stat.st_size, stat.st_mtime_ns)
