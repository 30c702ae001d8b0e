"""The artists report: every artist with its label, what decided it and its tracks.

A dataset's label noise is decided per artist (every track takes its artist's label), so
this is the list to read when judging the rules: `genremap artists`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from genremap.dataset.labels import Labelling
from genremap.engine.policy import ARTIST_STATUSES
from genremap.errors import UsageError
from genremap.text import escape_unprintable

ARTIST_COLUMNS = ("artist_id", "artist", "status", "target", "subgenre", "rule", "share", "source", "tracks")


@dataclass(frozen=True)
class ArtistFilter:
    """Which artists to list: every given condition must hold (None: any)."""

    target: str | None = None  # canonical target name
    status: str | None = None  # labelled, ambiguous, unlabelled or ignored
    source: str | None = None  # the genre source used (spotify, musicbrainz...), or "none"
    name: str | None = None  # case-insensitive substring of the artist's name
    top: int | None = None  # at most this many, most tracks first


def check_filter(wanted: ArtistFilter, labelling: Labelling) -> None:
    """Refuse a status or source no artist can have, naming the allowed values."""
    if wanted.status is not None and wanted.status not in ARTIST_STATUSES:
        raise UsageError(f"--status {escape_unprintable(wanted.status)!r}: expected {', '.join(ARTIST_STATUSES)}")
    if wanted.source is not None:
        known = sorted({*_sources(labelling), "spotify", "musicbrainz", "none"})
        if wanted.source not in known:
            raise UsageError(f"--source {escape_unprintable(wanted.source)!r}: expected one of {', '.join(known)}")
    if wanted.top is not None and wanted.top < 0:
        raise UsageError("--top must be 0 (all) or more")


def _sources(labelling: Labelling) -> list[str]:
    return [str(s) for s in pd.unique(labelling.artists["genre_source"].dropna())]


def artist_rows(labelling: Labelling, wanted: ArtistFilter = ArtistFilter()) -> tuple[list[dict[str, Any]], int]:
    """The artists that pass `wanted`, most tracks first (then by name and id), one dict per
    artist with ARTIST_COLUMNS: share is the winning target's share of the votes (None when
    not labelled), source the genre source whose genres were used (None: no genres); and how
    many artists passed before `top` cut the list."""
    check_filter(wanted, labelling)
    frame = labelling.artists
    keep = np.ones(len(frame), dtype=bool)
    if wanted.target is not None:
        keep &= (frame["target"] == wanted.target).to_numpy()
    if wanted.status is not None:
        keep &= (frame["status"] == wanted.status).to_numpy()
    if wanted.source is not None:
        source = frame["genre_source"]
        keep &= (source.isna() if wanted.source == "none" else source == wanted.source).to_numpy()
    if wanted.name:
        names = frame["name"].astype(str).str.casefold()
        keep &= names.str.contains(wanted.name.casefold(), regex=False).to_numpy()
    chosen = frame.loc[keep]
    tracks = chosen["tracks"].fillna(0).astype(np.int64)
    order = np.lexsort((chosen["artist_id"].astype(str).to_numpy(), chosen["name"].astype(str).to_numpy(), -tracks))
    if wanted.top:
        order = order[: wanted.top]
    picked = chosen.iloc[order]
    share = picked["share"].to_numpy(dtype=np.float64).tolist()
    columns = [
        _objects(picked["artist_id"]),
        _objects(picked["name"]),
        _objects(picked["status"]),
        _objects(picked["target"]),
        _objects(picked["subgenre"]),
        _objects(picked["rule"]),
        [None if s != s else round(s, 4) for s in share],  # NaN (not labelled) → None
        _objects(picked["genre_source"]),
        tracks.to_numpy()[order].tolist(),
    ]
    return [dict(zip(ARTIST_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)], len(chosen)


def _objects(values: pd.Series) -> list[Any]:
    """A column as Python values, None where missing (pandas may hold None as NaN)."""
    return [None if v is None or (isinstance(v, float) and v != v) else v for v in values.tolist()]
