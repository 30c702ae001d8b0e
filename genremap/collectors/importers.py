"""Import artist and track tables (CSV, JSON, JSONL, Parquet, the seed's pickle) into the store.

Column names are recognised with common aliases; where ids are absent, stable ids are
derived from names. Genre lists may be real lists, Python list literals (parsed with
`ast.literal_eval`, never `eval`), JSON lists, or `;`/`|`-separated strings. Bad rows are
counted with their line (or item) number; `strict` makes any of them fatal before anything
is written.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import math
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genremap.errors import UsageError
from genremap.store import ArtistRecord, Store, TrackRecord

ALIASES: dict[str, tuple[str, ...]] = {
    "track_id": ("track_id", "id", "spotify_id", "track_uri", "uri"),
    "track_name": ("track_name", "name", "title", "track", "song", "song_name"),
    "artist_name": ("artist_name", "artist", "artists", "track_artists", "artist_names", "primary_artist"),
    "artist_id": ("artist_id", "artist_ids", "artist_uri"),
    "genres": ("genres", "genre", "artist_genres", "subgenres", "genre_list"),
    "track_count": ("count", "track_count", "tracks", "n_tracks", "num_tracks"),
    "duration_ms": ("duration_ms", "duration"),
    "preview_url": ("preview_url", "preview"),
    "isrc": ("isrc",),
    "album": ("album", "album_name"),
    "release_date": ("release_date", "year"),
    "popularity": ("popularity",),
}
FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".pickle": "pickle",
    ".pkl": "pickle",
}
MAX_PICKLE_BYTES = 512 * 1024 * 1024
BATCH = 20_000


@dataclass
class BadRow:
    """A row that could not be imported: where it is and why."""

    where: str
    reason: str


@dataclass
class ImportResult:
    """What an import did."""

    path: str
    table: str  # 'tracks' or 'artists'
    rows: int = 0
    tracks_new: int = 0
    tracks_updated: int = 0
    artists_new: int = 0
    artists_updated: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    # Rows of an artist table naming an artist already seen: merged, the later row wins.
    duplicates: list[BadRow] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)


def derive_id(kind: str, *names: str) -> str:
    """A stable id from names, for sources that carry none (prefixed so it cannot pass for Spotify's)."""
    digest = hashlib.sha1("\x1f".join((kind, *names)).encode("utf-8")).hexdigest()
    return f"{kind[0]}:{digest[:20]}"


_PLAIN_TYPES = {"set": set, "frozenset": frozenset, "list": list, "dict": dict, "tuple": tuple, "str": str}


class RestrictedUnpickler(pickle.Unpickler):
    """Admits only plain containers, strings and numbers: any other class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        # Old protocols name the builtin container types; nothing else is ever resolved.
        if module in ("builtins", "__builtin__") and name in _PLAIN_TYPES:
            return _PLAIN_TYPES[name]
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent reference")


def safe_unpickle(data: bytes) -> Any:
    """Unpickle `data` with RestrictedUnpickler: plain dicts, lists, tuples, sets, str, numbers."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


# --- value parsing -------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _literal_list(text: str) -> list[Any]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(f"cannot parse list {text[:60]!r}") from None
    if isinstance(value, tuple | set):
        value = list(value)
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def parse_genres(value: Any) -> tuple[str, ...]:
    """A genre list from a list, a list literal, a JSON list or a `;`/`|`/`,`-separated string."""
    if _blank(value):
        return ()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{", "(")):
            value = _literal_list(text)
        else:
            sep = next((s for s in (";", "|", ",") if s in text), None)
            value = text.split(sep) if sep else [text]
    if not isinstance(value, list | tuple):
        raise ValueError(f"genres must be a list of strings, got {type(value).__name__}")
    genres = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"genre {item!r} is not a string")
        if item.strip():
            genres.append(item.strip())
    return tuple(genres)


def _names_and_ids(value: Any) -> tuple[list[str], list[str | None]]:
    """Artist names (and ids when given) from a string, a list literal, or a list of objects."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str):
        text = value.strip()
        value = [text]
        if text.startswith("[") and text.endswith("]"):
            # "['A', 'B']" is a list of artists; "[bsd.u]" is one artist's name.
            try:
                value = _literal_list(text)
            except ValueError:
                value = [text]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError(f"artist must be a name or a list of names, got {type(value).__name__}")
    names: list[str] = []
    ids: list[str | None] = []
    for item in value:
        if isinstance(item, dict):
            name, ident = item.get("name"), item.get("id")
        else:
            name, ident = item, None
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"artist name {name!r} is not a non-empty string")
        names.append(name.strip())
        ids.append(str(ident) if ident else None)
    if not names:
        raise ValueError("no artist")
    return names, ids


def _int(value: Any, column: str) -> int | None:
    if _blank(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{column} {value!r} is not a number") from None
    if math.isnan(number) or number < 0:
        raise ValueError(f"{column} {value!r} is not a non-negative number")
    return round(number)


def _text(value: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, dict):
        value = value.get("name")
        return str(value) if value else None
    return str(value).strip()


def _spotify_id(value: Any) -> str | None:
    text = _text(value)
    if text and text.startswith("spotify:"):
        text = text.rsplit(":", 1)[-1]
    return text


# --- reading -------------------------------------------------------------------------------


def _records(path: Path, fmt: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) pairs; `where` is what a person needs to find the row."""
    name = path.name
    if fmt == "csv":
        delimiter = "\t" if path.suffix == ".tsv" else ","
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            if not reader.fieldnames:
                return
            start = reader.line_num + 1
            for row in reader:
                yield f"{name}:{start}", dict(row)
                start = reader.line_num + 1
    elif fmt == "jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield f"{name}:{number}", {"__error__": f"invalid JSON ({exc.msg})"}
                    continue
                yield f"{name}:{number}", item if isinstance(item, dict) else {"__error__": "not a JSON object"}
    elif fmt == "json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UsageError(f"{name}: invalid JSON: {exc}") from None
        yield from _container_records(data, name)
    elif fmt == "parquet":
        import pyarrow.parquet as pq  # a dependency; imported here to keep start-up fast

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise UsageError(f"{name}: not a readable Parquet file ({exc})") from None
        for number, row in enumerate(table.to_pylist(), 1):
            yield f"{name}: row {number}", row
    elif fmt == "pickle":
        size = path.stat().st_size
        if size > MAX_PICKLE_BYTES:
            raise UsageError(f"{name}: pickle of {size} bytes is larger than the {MAX_PICKLE_BYTES} bytes allowed")
        try:
            data = safe_unpickle(path.read_bytes())
        except pickle.UnpicklingError as exc:
            raise UsageError(
                f"{name}: {exc}: genremap loads only pickles of plain dicts, lists and strings "
                "(such as the original notebook's track dictionary); convert other data to CSV or JSON"
            ) from None
        except Exception as exc:
            raise UsageError(f"{name}: not a readable pickle ({type(exc).__name__}: {exc})") from None
        yield from _container_records(data, name)


def _container_records(data: Any, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Records from a list of objects, {"tracks"/"artists"/"items": [...]}, or {id: object}."""
    if isinstance(data, dict):
        for key in ("tracks", "artists", "items", "data"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            if data and all(isinstance(v, dict) for v in data.values()):
                # The seed notebook's shape: {track_id: {track_name, track_artists, genres}}
                for number, (key, value) in enumerate(data.items(), 1):
                    record = dict(value)
                    record.setdefault("track_id", key)
                    yield f"{name}: entry {number} ({key})", record
                return
    if not isinstance(data, list):
        raise UsageError(f"{name}: expected a list of records or a mapping of id to record, got {type(data).__name__}")
    for number, item in enumerate(data, 1):
        yield f"{name}: item {number}", item if isinstance(item, dict) else {"__error__": "not an object"}


def _column_map(keys: list[str]) -> dict[str, str]:
    """Our field → the source's column, by alias (case-insensitive, first alias present wins)."""
    lower = {k.lower().strip(): k for k in keys}
    mapping: dict[str, str] = {}
    for fieldname, aliases in ALIASES.items():
        for alias in aliases:
            if alias in lower and lower[alias] not in mapping.values():
                mapping[fieldname] = lower[alias]
                break
    return mapping


def _table_kind(columns: dict[str, str]) -> str:
    """'tracks' when rows are tracks (a title and an artist), 'artists' when rows are artists."""
    if "artist_name" in columns and "track_name" in columns:
        return "tracks"
    if "artist_name" in columns or ("track_name" in columns and "genres" in columns):
        if "artist_name" not in columns:
            columns["artist_name"] = columns.pop("track_name")
        if columns.get("track_id") and "artist_id" not in columns:
            columns["artist_id"] = columns.pop("track_id")
        return "artists"
    raise UsageError(
        "cannot tell what the rows are: need an artist column "
        f"({'/'.join(ALIASES['artist_name'])}) and, for tracks, a title column ({'/'.join(ALIASES['track_name'])})"
    )


def _artist_row(record: dict[str, Any], cols: dict[str, str], source: str) -> ArtistRecord:
    names, ids = _names_and_ids(record.get(cols["artist_name"]))
    given_id = _spotify_id(record.get(cols["artist_id"])) if "artist_id" in cols else None
    name = names[0]
    genres = parse_genres(record.get(cols["genres"])) if "genres" in cols else None
    return ArtistRecord(
        artist_id=given_id or ids[0] or derive_id("artist", name),
        name=name,
        genres=genres,
        genre_source=source,
        track_count=_int(record.get(cols["track_count"]), "count") if "track_count" in cols else None,
    )


def _track_row(record: dict[str, Any], cols: dict[str, str], source: str) -> tuple[TrackRecord, list[ArtistRecord]]:
    title = _text(record.get(cols["track_name"]))
    if not title:
        raise ValueError("no track name")
    names, ids = _names_and_ids(record.get(cols["artist_name"]))
    if "artist_id" in cols and not _blank(record.get(cols["artist_id"])):
        raw_ids = record.get(cols["artist_id"])
        given = _literal_list(raw_ids) if isinstance(raw_ids, str) and raw_ids.strip().startswith("[") else raw_ids
        given_list = list(given) if isinstance(given, list | tuple) else [given]
        ids = [_spotify_id(g) for g in given_list] + ids[len(given_list) :]
    artist_ids = [i or derive_id("artist", n) for n, i in zip(names, ids + [None] * len(names), strict=False)]
    genres = parse_genres(record.get(cols["genres"])) if "genres" in cols else None
    artists = [ArtistRecord(artist_ids[0], names[0], genres, source)]
    artists += [ArtistRecord(a, n) for a, n in zip(artist_ids[1:], names[1:], strict=False)]
    track_id = _spotify_id(record.get(cols["track_id"])) if "track_id" in cols else None
    album = record.get(cols["album"]) if "album" in cols else None
    track = TrackRecord(
        track_id=track_id or derive_id("track", artist_ids[0], title),
        name=title,
        artist_id=artist_ids[0],
        artist_name=names[0],
        artist_ids=tuple(artist_ids),
        album=_text(album),
        release_date=_text(record.get(cols["release_date"])) if "release_date" in cols else None,
        duration_ms=_int(record.get(cols["duration_ms"]), "duration_ms") if "duration_ms" in cols else None,
        preview_url=_text(record.get(cols["preview_url"])) if "preview_url" in cols else None,
        isrc=_isrc(record, cols),
        popularity=_int(record.get(cols["popularity"]), "popularity") if "popularity" in cols else None,
    )
    return track, artists


def _isrc(record: dict[str, Any], cols: dict[str, str]) -> str | None:
    value = record.get(cols["isrc"]) if "isrc" in cols else (record.get("external_ids") or {}).get("isrc")
    text = _text(value)
    return text.upper().replace("-", "") if text else None


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in FORMATS:
            return FORMATS[suffix]
    raise UsageError(f"{path.name}: unknown file type; use one of {', '.join(sorted(FORMATS))} or pass --format")


def import_file(
    store: Store,
    path: Path,
    *,
    strict: bool = False,
    source: str = "spotify",
    fmt: str | None = None,
    on_rows: Callable[[int], None] = lambda n: None,
) -> ImportResult:
    """Import one table into the store (idempotent: ids are stable, writes are upserts).

    `on_rows(n)` reports progress: n more rows read (then written).
    """
    if not path.exists():
        raise UsageError(f"file not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file")
    kind_fmt = detect_format(path, fmt)
    records = _records(path, kind_fmt)
    result = ImportResult(path=str(path), table="")
    artists: dict[str, ArtistRecord] = {}
    tracks: dict[str, TrackRecord] = {}
    cols: dict[str, str] | None = None
    for where, record in records:
        result.rows += 1
        if result.rows % 5000 == 0:
            on_rows(5000)
        if "__error__" in record:
            result.bad_rows.append(BadRow(where, str(record["__error__"])))
            continue
        if cols is None:
            cols = _column_map(list(record))
            result.table = _table_kind(cols)
            result.columns = dict(cols)
        try:
            if result.table == "artists":
                artist = _artist_row(record, cols, source)
                if artist.artist_id in artists:
                    result.duplicates.append(
                        BadRow(where, f"artist {artist.name!r} appears again: merged into one artist (this row wins)")
                    )
                artists[artist.artist_id] = _merge_artist(artists.get(artist.artist_id), artist)
            else:
                track, track_artists = _track_row(record, cols, source)
                tracks[track.track_id] = track
                for artist in track_artists:
                    artists[artist.artist_id] = _merge_artist(artists.get(artist.artist_id), artist)
        except (ValueError, TypeError, KeyError) as exc:
            result.bad_rows.append(BadRow(where, str(exc)))
    if cols is None:
        raise UsageError(f"{path.name}: no rows to import")
    if strict and result.bad_rows:
        first = result.bad_rows[0]
        raise UsageError(
            f"{first.where}: {first.reason} ({len(result.bad_rows)} bad row(s); nothing imported because of --strict)"
        )
    on_rows(result.rows % 5000)
    origin = f"import:{path.name}"
    artist_list = list(artists.values())
    for start in range(0, len(artist_list), BATCH):
        written = store.upsert_artists(artist_list[start : start + BATCH], origin)
        result.artists_new += written.new
        result.artists_updated += written.updated
    track_list = list(tracks.values())
    for start in range(0, len(track_list), BATCH):
        written = store.upsert_tracks(track_list[start : start + BATCH], origin)
        result.tracks_new += written.new
        result.tracks_updated += written.updated
    return result


def _merge_artist(old: ArtistRecord | None, new: ArtistRecord) -> ArtistRecord:
    """Keep genres and counts seen on an earlier row when a later row of the same artist lacks them."""
    if old is None:
        return new
    return ArtistRecord(
        artist_id=new.artist_id,
        name=new.name,
        genres=new.genres if new.genres is not None else old.genres,
        genre_source=new.genre_source if new.genres is not None else old.genre_source,
        track_count=new.track_count if new.track_count is not None else old.track_count,
    )
