"""Write the dataset folder: tracks.csv (and .parquet), manifest.json.

Later stages (audio, features, evaluate) read only this folder, so it carries everything
they need and a manifest that says how it was made.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from genremap import __version__
from genremap.dataset.balance import SPLITS
from genremap.errors import UsageError
from genremap.store import now

TRACK_COLUMNS = [
    "track_id",
    "track_name",
    "artist_id",
    "artist_name",
    "target",
    "subgenre",
    "rule",
    "split",
    "duration_ms",
    "preview_url",
    "isrc",
]


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


def write_dataset(out: Path, tracks: pd.DataFrame, manifest: dict[str, Any]) -> ExportResult:
    """Write tracks.csv (+ tracks.parquet when pyarrow is there) and manifest.json into `out`."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a folder, not a file: {out}")
    out.mkdir(parents=True, exist_ok=True)
    frame = tracks.copy()
    split_rank = {s: i for i, s in enumerate(SPLITS)}
    frame["_split_rank"] = frame["split"].map(split_rank)
    frame = frame.sort_values(["target", "_split_rank", "track_id"], kind="stable")[TRACK_COLUMNS]
    frame["duration_ms"] = frame["duration_ms"].astype("Int64")
    result = ExportResult(out)
    csv_path = out / "tracks.csv"
    frame.to_csv(csv_path, index=False, lineterminator="\n")
    result.files.append("tracks.csv")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        frame.reset_index(drop=True).to_parquet(out / "tracks.parquet", index=False)
        result.files.append("tracks.parquet")
    per_class_split = {
        str(t): {s: int(n) for s, n in group["split"].value_counts().reindex(list(SPLITS), fill_value=0).items()}
        for t, group in frame.groupby("target")
    }
    full = {
        **manifest,
        "created_at": now(),
        "files": [*result.files, "manifest.json"],
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
