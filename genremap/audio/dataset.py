"""The dataset folder as later stages see it: DIR/tracks.csv in, files written beside it.

Every stage after `build` reads only the folder (never the store), so a folder can be moved
to another machine and carried on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from genremap.dataset.balance import SPLITS
from genremap.errors import UsageError

__all__ = ["SPLITS", "DatasetFolder", "open_dataset", "read_tracks", "safe_name"]

REQUIRED = ("track_id", "track_name", "artist_id", "artist_name", "target", "split")


@dataclass(frozen=True)
class DatasetFolder:
    """Paths of a dataset folder."""

    root: Path

    @property
    def tracks_csv(self) -> Path:
        return self.root / "tracks.csv"

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    @property
    def audio_manifest(self) -> Path:
        return self.audio_dir / "manifest.csv"

    def audio_path(self, target: str, track_id: str, suffix: str = ".mp3") -> Path:
        """audio/<target>/<track_id>.mp3, refusing anything that would leave the folder."""
        safe_target = safe_name(target)
        safe_id = safe_name(track_id)
        path = (self.audio_dir / safe_target / f"{safe_id}{suffix}").resolve()
        if not path.is_relative_to(self.audio_dir.resolve()):
            raise UsageError(f"refusing a path outside {self.audio_dir}: {target}/{track_id}")
        return path


def safe_name(text: str) -> str:
    """A file or folder name from an id or a target: letters, digits, `-`, `_`, `.` and spaces
    kept; anything else (path separators, `..`) replaced, so no name can escape its folder."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_ ." else "_" for ch in str(text)).strip(" .")
    if not cleaned or set(cleaned) <= {"."}:
        raise UsageError(f"cannot make a file name from {text!r}")
    return cleaned


def open_dataset(path: Path) -> DatasetFolder:
    """Check that `path` is a dataset folder made by `genremap build`."""
    if not path.is_dir():
        raise UsageError(f"dataset folder not found: {path} (make one with: genremap build --out {path})")
    folder = DatasetFolder(path)
    if not folder.tracks_csv.is_file():
        raise UsageError(f"{path} has no tracks.csv: make the folder with `genremap build --out {path}`")
    return folder


def read_tracks(folder: DatasetFolder) -> pd.DataFrame:
    """tracks.csv with the columns later stages rely on; ids and targets as strings, '' for missing."""
    try:
        with folder.tracks_csv.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except OSError as exc:
        raise UsageError(f"{folder.tracks_csv}: cannot read ({exc.strerror})") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UsageError(f"{folder.tracks_csv}: missing column(s) {', '.join(missing)}; rebuild it with genremap build")
    frame = pd.read_csv(folder.tracks_csv, dtype=str, keep_default_na=False)
    if "duration_ms" in frame.columns:
        frame["duration_ms"] = pd.to_numeric(frame["duration_ms"], errors="coerce")
    return frame
