"""Write the dataset folder: tracks.csv (and .parquet), manifest.json.

Later stages (audio, features, evaluate) read only this folder, so it carries everything
they need and a manifest that says how it was made.
"""

from __future__ import annotations

import csv
import hashlib
import json
import platform
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_string_dtype

from genremap import __version__
from genremap.dataset.balance import SPLITS
from genremap.dataset.columns import TRACK_COLUMNS
from genremap.store import now


@dataclass
class ExportResult:
    out: Path
    files: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def _versions() -> dict[str, str]:
    versions = {"genremap": __version__, "python": platform.python_version(), "pandas": pd.__version__}
    for module in ("rapidfuzz", "yaml", "pyarrow"):
        mod = sys.modules.get(module)
        if mod is not None:
            versions[module] = str(getattr(mod, "__version__", ""))
    return versions


SPREADSHEET_CSV = "tracks_spreadsheet.csv"
# A spreadsheet runs a cell beginning with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

SPOTIFY_FEATURES_DROPPED = ("type", "uri", "track_href", "analysis_url")  # as the notebook dropped them


def write_spotify_audio(
    out: Path,
    tracks: pd.DataFrame,
    features: dict[str, dict[str, Any]],
    analysis: dict[str, tuple[int, list[float], list[float]]],
    segments: int = 125,
) -> list[str]:
    """Spotify's own audio features and analysis of the dataset's tracks, where the store has
    them (extended-quota apps), in the original notebook's layout: spotify_features.csv, and
    tracksPitches.csv / tracksTimbres.csv / tracksMeta.csv indexed by track id with `genre` last.
    Only tracks with at least `segments` analysed segments get pitch/timbre rows, as in the notebook."""
    written: list[str] = []
    if not features and not analysis:  # the usual case (development-mode apps): nothing to lay out
        return written
    ordered = tracks.sort_values("track_id", kind="stable")
    records = [
        {"track_id": str(t), "track_name": n, "artist_name": a, "target": g}
        for t, n, a, g in zip(
            ordered["track_id"], ordered["track_name"], ordered["artist_name"], ordered["target"], strict=True
        )
    ]
    rows = [
        {
            "track_name": r["track_name"],
            "track_artists": r["artist_name"],
            "genre": r["target"],
            **{k: v for k, v in features[r["track_id"]].items() if k not in SPOTIFY_FEATURES_DROPPED},
        }
        for r in records
        if r["track_id"] in features
    ]
    if rows:
        pd.DataFrame(rows).to_csv(out / "spotify_features.csv", index=False, lineterminator="\n")
        written.append("spotify_features.csv")
    width = 12 * segments
    full = [r for r in records if r["track_id"] in analysis and analysis[r["track_id"]][0] >= segments]
    if full:
        ids = [str(r["track_id"]) for r in full]
        genres = [r["target"] for r in full]
        pitches = [analysis[i][1][:width] for i in ids]
        timbres = [analysis[i][2][:width] for i in ids]
        for name, matrix in (("tracksPitches.csv", pitches), ("tracksTimbres.csv", timbres)):
            values = pd.DataFrame(matrix, index=pd.Index(ids), columns=list(range(width)))
            values["genre"] = genres
            values.to_csv(out / name, lineterminator="\n")
            written.append(name)
        meta = pd.DataFrame(
            {
                "track_name": [r["track_name"] for r in full],
                "track_artists": [r["artist_name"] for r in full],
                "genre": genres,
            },
            index=pd.Index(ids),
        )
        meta.to_csv(out / "tracksMeta.csv", lineterminator="\n")
        written.append("tracksMeta.csv")
    return written


def formula_like(frame: pd.DataFrame) -> pd.DataFrame:
    """Which text cells a spreadsheet could run as a formula (they begin with = + - @, tab or CR)."""
    text = frame.select_dtypes(include=["object", "string"])
    return text.apply(lambda column: column.astype("string").str.startswith(FORMULA_STARTS).fillna(False))


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` for people: formula-like text cells prefixed with `'` (shown as text)."""
    risky = formula_like(frame)
    safe = frame.copy()
    for column in risky.columns:
        rows = risky[column].to_numpy(dtype=bool)
        safe.loc[rows, column] = "'" + safe.loc[rows, column].astype(str)
    return safe


def tracks_csv_order(tracks: pd.DataFrame) -> pd.DataFrame:
    """The rows in tracks.csv's order: by target, then split (train, validation, test), then track_id."""
    rank = tracks["split"].map({s: i for i, s in enumerate(SPLITS)}).rename("_split_rank")
    target = tracks["target"]
    if is_string_dtype(target) and target.notna().all() and tracks["track_id"].is_monotonic_increasing:
        # Rows already by track_id (a build's are) need only a stable sort of two small codes:
        # a tenth of sorting three columns of text.
        codes, names = pd.factorize(target)
        name_rank = np.argsort(np.argsort(np.asarray(names, dtype=object), kind="stable"), kind="stable")
        return tracks.iloc[np.lexsort((rank.to_numpy(dtype=np.float64), name_rank[codes]))]
    keyed = pd.concat([tracks, rank], axis=1)
    return keyed.sort_values(["target", "_split_rank", "track_id"], kind="stable").drop(columns="_split_rank")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """`frame.to_csv(path, index=False, lineterminator="\\n")`, byte for byte, in half the time
    where every column is text or Int64 (the csv module gets the cells as they are, missing
    ones as ""); other frames are written by pandas."""
    cells = [_csv_cells(frame[name]) for name in frame.columns]
    if any(column is None for column in cells):
        frame.to_csv(path, index=False, lineterminator="\n")
        return
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow([str(name) for name in frame.columns])
        writer.writerows(zip(*cells, strict=True))


def _csv_cells(column: pd.Series) -> list[str] | None:
    """A column's cells as pandas' to_csv writes them, where that is plain: text as it is,
    Int64 in decimal, missing values empty; None for other columns."""
    if isinstance(column.dtype, pd.Int64Dtype):
        missing = column.isna().to_numpy().tolist()
        numbers = column.to_numpy(dtype=object, na_value=0).tolist()
        return ["" if gap else str(n) for n, gap in zip(numbers, missing, strict=True)]
    if not is_string_dtype(column):
        return None
    values = column.to_numpy(dtype=object, na_value="")
    if len(values) and infer_dtype(values, skipna=False) != "string":  # one C pass, not one per cell
        return None
    cells: list[str] = values.tolist()
    return cells


def write_dataset(
    out: Path,
    tracks: pd.DataFrame,
    manifest: dict[str, Any],
    extra_files: Sequence[str] = (),
    *,
    spreadsheet_copy: bool = False,
) -> ExportResult:
    """Write tracks.csv, tracks.parquet and manifest.json into the existing folder `out`
    (`extra_files`: files already written there, listed in the manifest).

    tracks.csv keeps every value exactly (later stages and ML code read it); `spreadsheet_copy`
    adds tracks_spreadsheet.csv, where formula-like cells are neutralised for spreadsheets."""
    frame = tracks_csv_order(tracks)[list(TRACK_COLUMNS)]
    frame["duration_ms"] = frame["duration_ms"].astype("Int64")
    result = ExportResult(out)
    csv_path = out / "tracks.csv"
    with ThreadPoolExecutor(1, thread_name_prefix="genremap-parquet") as pool:
        # Arrow writes Parquet without Python's lock: it runs beside the CSV writer, which holds it.
        parquet = pool.submit(frame.reset_index(drop=True).to_parquet, out / "tracks.parquet", index=False)
        write_csv(frame, csv_path)
        parquet.result()
    result.files += ["tracks.csv", "tracks.parquet"]
    if spreadsheet_copy:
        spreadsheet_safe(frame).to_csv(out / SPREADSHEET_CSV, index=False, lineterminator="\n")
        result.files.append(SPREADSHEET_CSV)
    per_class_split = {
        str(t): {s: int(n) for s, n in group["split"].value_counts().reindex(list(SPLITS), fill_value=0).items()}
        for t, group in frame.groupby("target")
    }
    full = {
        **manifest,
        "created_at": now(),
        "files": [*result.files, *extra_files, "manifest.json"],
        "tracks_csv_sha256": hashlib.sha256(csv_path.read_bytes()).hexdigest(),
        "counts": {
            "tracks": len(frame),
            "artists": int(frame["artist_id"].nunique()),
            "per_class": {str(t): int(n) for t, n in frame["target"].value_counts().sort_index().items()},
            "per_split": {s: int((frame["split"] == s).sum()) for s in SPLITS},
            "per_class_split": per_class_split,
        },
        "versions": _versions(),
    }
    (out / "manifest.json").write_text(json.dumps(full, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    result.files.append("manifest.json")
    result.manifest = full
    return result
