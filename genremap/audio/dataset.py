"""The dataset folder as later stages see it: DIR/tracks.csv in, files written beside it.

Every stage after `build` reads only the folder (never the store), so a folder can be moved
to another machine and carried on.
"""

from __future__ import annotations

import csv
import io
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
    """tracks.csv with the columns later stages rely on; ids and targets as strings, '' for missing.

    Read strictly: bytes that are not UTF-8, an unterminated quote, a row with more or fewer
    fields than the header (as a stray `"` that swallows line breaks leaves) are a UsageError
    naming the file and line, never a traceback or silently merged rows."""
    path = folder.tracks_csv
    try:
        header, rows = _read_csv(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)}; rebuild it with genremap build")
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    if "duration_ms" in frame.columns:
        frame["duration_ms"] = pd.to_numeric(frame["duration_ms"], errors="coerce")
    return frame


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file, every row as long as the header; blank lines skipped."""
    rebuild = "rebuild it with genremap build"
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: not valid UTF-8; {rebuild}") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] = []
    rows: list[list[str]] = []
    start = 0  # lines read before the record at hand
    try:
        for row in reader:
            if not row:
                pass
            elif not header:
                header = row
            elif len(row) != len(header):
                spans = reader.line_num - start
                hint = f" (the record runs over {spans} lines: a stray '\"'?)" if spans > 1 else ""
                raise UsageError(
                    f"{path}:{start + 1}: {len(row)} fields where the header has {len(header)}{hint}; {rebuild}"
                )
            elif _swallows_rows(row, len(header)):
                raise UsageError(
                    f"{path}:{start + 1}: a quoted field runs over the next line(s) and takes whole rows "
                    f"with it (a stray '\"'?); {rebuild}"
                )
            else:
                rows.append(row)
            start = reader.line_num
    except csv.Error as exc:
        raise UsageError(f"{path}:{start + 1}: malformed CSV ({exc}); {rebuild}") from None
    if not header:
        raise UsageError(f"{path} is empty; {rebuild}")
    return header, rows


def _swallows_rows(row: list[str], width: int) -> bool:
    """True when a field holds a line break followed by a whole row's worth of fields: what a
    stray `"` leaves when a later quote happens to close it (a name with a line break does not)."""
    return any(line.count(",") >= width - 1 for field in row for line in field.splitlines()[1:])
