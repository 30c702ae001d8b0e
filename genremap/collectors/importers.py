"""Import artist and track tables (CSV, JSON, JSONL, Parquet, the seed's pickle) into the store.

Column names are recognised with common aliases; where ids are absent, stable ids are
derived from names. Genre lists may be real lists, Python list literals (parsed with
`ast.literal_eval`, never `eval`), JSON lists, or `;`/`|`-separated strings.

Guarantees (see docs/import.md):
- A blank genres cell (empty, null, a missing key or column value) means "not known" and
  never erases genres the store or an earlier row of the file holds; only an explicit empty
  list (`[]`) means "no genres". Within a file, the last non-missing value of each field wins.
- Every value is validated before anything is written (integers within SQLite's range and
  finite, text one line of valid Unicode of at most 1,000 characters); a bad value makes a
  bad row, counted with its line (or item) number. `strict` refuses the file on any bad row.
- A file is written in one transaction: it is imported whole or not at all.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import Decimal
from numbers import Integral
from pathlib import Path
from typing import Any

from genremap.collectors.readers import (
    ALIASES,
    ERROR,
    CsvTable,
    SourceFile,
    check_file,
    check_files,
    column_map,
    read_csv_table,
    records,
    short,
)
from genremap.collectors.safe_pickle import RestrictedUnpickler, safe_unpickle
from genremap.dedupe import dedupe_aside
from genremap.errors import UsageError
from genremap.store import ArtistRecord, Store, TrackColumns, TrackRecord, _gc_paused

__all__ = [
    "BadRow",
    "ImportResult",
    "RestrictedUnpickler",
    "SourceFile",
    "check_files",
    "derive_id",
    "import_file",
    "import_files",
    "import_into",
    "import_source",
    "parse_genres",
    "safe_unpickle",
]

BATCH = 20_000
INT_MAX = 2**63 - 1  # SQLite's largest INTEGER
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_GENRE_CACHE_MAX_CHARS = 4096  # genre cells up to this long are parsed once per distinct text
# Longer names, titles, ids and genres are bad rows: no real one comes near, and the title
# normalisation used for de-duplication slows down more than linearly on long hostile text.
MAX_TEXT_CHARS = 1000


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


# --- value parsing -------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _clean(text: str, column: str) -> str:
    """`text` if it can be stored as one line of valid Unicode of at most MAX_TEXT_CHARS, else ValueError."""
    if len(text) <= MAX_TEXT_CHARS and text.isascii() and "\n" not in text and "\r" not in text:
        return text  # the common case: one check each
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{column} of {len(text):,} characters is longer than the {MAX_TEXT_CHARS:,} accepted")
    if "\n" in text or "\r" in text:
        raise ValueError(
            f"{column} {short(text)} contains a line break (in a CSV, a stray quote makes one field "
            "swallow the lines after it)"
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{column} {short(text)} is not valid Unicode (a lone surrogate)") from None
    return text


# A list literal of plain strings, as Python and pandas write genre lists (`['a', "b's"]`): read
# without the parser. No escapes, line breaks or NULs, so each item is its text between quotes.
_PLAIN_ITEM = r"'[^'\\\r\n\x00]*'" + "|" + r'"[^"\\\r\n\x00]*"'
_PLAIN_LIST = re.compile(rf"\[(?:(?:{_PLAIN_ITEM})(?:, (?:{_PLAIN_ITEM}))*)?\]")
_PLAIN_STRING = re.compile(r"'([^'\\\r\n\x00]*)'" + "|" + r'"([^"\\\r\n\x00]*)"')


def _plain_list(text: str) -> list[str] | None:
    """The items of a list literal of plain strings, exactly as `ast.literal_eval` reads them; None
    for any other text."""
    if not _PLAIN_LIST.fullmatch(text):
        return None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the parser refuses the text
            return None
    return [single or double for single, double in _PLAIN_STRING.findall(text)]


def _literal_list(text: str) -> list[Any]:
    plain = _plain_list(text)
    if plain is not None:
        return plain
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError(f"cannot parse list {short(text)}") from None
    if isinstance(value, tuple | set):
        value = list(value)
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _genre_items(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"genres must be a list of strings, got {type(value).__name__}")
    genres = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"genre {short(item)} is not a string")
        if item.strip():
            genres.append(_clean(item.strip(), "genre"))
    return tuple(genres)


def _genre_text(text: str) -> tuple[str, ...] | None:
    if text.startswith(("[", "{", "(")):
        plain = _plain_list(text)
        if plain is not None and len(text) <= MAX_TEXT_CHARS and text.isascii():
            # Items of a short ASCII list without line breaks: what _genre_items keeps of them.
            return tuple(filter(None, map(str.strip, plain)))
        return _genre_items(_literal_list(text))
    sep = next((s for s in (";", "|", ",") if s in text), None)
    genres = tuple(_clean(g.strip(), "genre") for g in (text.split(sep) if sep else [text]) if g.strip())
    return genres or None  # separators without a genre say nothing: missing, not "none"


_cached_genre_text = functools.lru_cache(maxsize=8192)(_genre_text)


def parse_genres(value: Any) -> tuple[str, ...] | None:
    """A genre list from a list, a list literal, a JSON list or a `;`/`|`/`,`-separated string.

    None when the value is missing (blank, null): nothing is known. An empty tuple only for an
    explicit empty list: the source says the artist has no genres.
    """
    if _blank(value):
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str):
        text = value.strip()
        # Many rows share a genre cell (an artist's tracks): parse each distinct text once.
        return _cached_genre_text(text) if len(text) <= _GENRE_CACHE_MAX_CHARS else _genre_text(text)
    return _genre_items(value)


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
            raise ValueError(f"artist name {short(name)} is not a non-empty string")
        names.append(_clean(name.strip(), "artist"))
        ids.append(_text(ident, "artist id"))
    if not names:
        raise ValueError("no artist")
    return names, ids


def _int(value: Any, column: str) -> int | None:
    """A non-negative integer the store can hold (rounded if fractional); None when blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if type(value) is int or isinstance(value, Integral):
        number = int(value)
    else:
        text = value.strip() if isinstance(value, str) else None
        if text is not None and _INTEGER.fullmatch(text):
            number = int(text)
        else:
            if text is not None and len(text) > 60:
                raise ValueError(f"{column} {short(value)} is not a number")
            try:
                real = float(value)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"{column} {short(value)} is not a number") from None
            if not math.isfinite(real):
                raise ValueError(f"{column} {short(value)} is not a finite number")
            if abs(real) >= 2.0**63:
                raise ValueError(f"{column} {short(value)} is larger than {INT_MAX:,}, the most the store holds")
            number = round(real)
    if number < 0:
        raise ValueError(f"{column} {short(value)} is negative")
    if number > INT_MAX:
        raise ValueError(f"{column} {short(value)} is larger than {INT_MAX:,}, the most the store holds")
    return number


def _text(value: Any, column: str) -> str | None:
    """One line of text from a string, a number, a date or an object's "name"; None when blank."""
    if type(value) is str:  # the common case first
        text = value.strip()
        return _clean(text, column) if text else None
    if isinstance(value, dict):
        value = value.get("name")
    if _blank(value):
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, Integral) and abs(int(value)) > INT_MAX:
        raise ValueError(f"{column} {short(value)} is too large a number for text")
    elif isinstance(value, int | float | Decimal | date):
        text = str(value)
    else:
        raise ValueError(f"{column} {short(value)} is not text")
    return _clean(text, column) or None


def _spotify_id(value: Any, column: str) -> str | None:
    text = _text(value, column)
    if text and text.startswith("spotify:"):
        text = text.rsplit(":", 1)[-1]
    return text


# --- rows ----------------------------------------------------------------------------------


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


_ABSENT = "\x00no such column"  # the column of a field the file does not have: record.get gives None


def _every_field(cols: dict[str, str]) -> dict[str, str]:
    """`cols` with every field present (absent ones map to _ABSENT), for lookups without branches."""
    return {fieldname: cols.get(fieldname, _ABSENT) for fieldname in ALIASES}


def _artist_row(record: dict[str, Any], cols: dict[str, str], source: str) -> ArtistRecord:
    names, ids = _names_and_ids(record.get(cols["artist_name"]))
    given_id = _spotify_id(record.get(cols["artist_id"]), "artist_id")
    name = names[0]
    return ArtistRecord(
        artist_id=given_id or ids[0] or derive_id("artist", name),
        name=name,
        genres=parse_genres(record.get(cols["genres"])),
        genre_source=source,
        track_count=_int(record.get(cols["track_count"]), "count"),
    )


def _track_artists(artist: Any, raw_ids: Any) -> tuple[list[str], list[str]]:
    """A track's artist names and ids (as given, else derived from the names) from its artist and
    artist_id values."""
    names, ids = _names_and_ids(artist)
    if not _blank(raw_ids):
        given = _literal_list(raw_ids) if isinstance(raw_ids, str) and raw_ids.strip().startswith("[") else raw_ids
        given_list = list(given) if isinstance(given, list | tuple) else [given]
        ids = [_spotify_id(g, "artist_id") for g in given_list] + ids[len(given_list) :]
    return names, [i or derive_id("artist", n) for n, i in zip(names, ids + [None] * len(names), strict=False)]


def _track_row(record: dict[str, Any], cols: dict[str, str], source: str) -> tuple[TrackRecord, list[ArtistRecord]]:
    title = _text(record.get(cols["track_name"]), "track_name")
    if not title:
        raise ValueError("no track name")
    names, artist_ids = _track_artists(record.get(cols["artist_name"]), record.get(cols["artist_id"]))
    genres = parse_genres(record.get(cols["genres"]))
    artists = [ArtistRecord(artist_ids[0], names[0], genres, source)]
    artists += [ArtistRecord(a, n) for a, n in zip(artist_ids[1:], names[1:], strict=False)]
    track_id = _spotify_id(record.get(cols["track_id"]), "track_id")
    track = TrackRecord(
        track_id=track_id or derive_id("track", artist_ids[0], title),
        name=title,
        artist_id=artist_ids[0],
        artist_name=names[0],
        artist_ids=tuple(artist_ids),
        album=_text(record.get(cols["album"]), "album"),
        release_date=_text(record.get(cols["release_date"]), "release_date"),
        duration_ms=_int(record.get(cols["duration_ms"]), "duration_ms"),
        preview_url=_text(record.get(cols["preview_url"]), "preview_url"),
        isrc=_isrc(record, cols),
        popularity=_int(record.get(cols["popularity"]), "popularity"),
    )
    return track, artists


def _isrc(record: dict[str, Any], cols: dict[str, str]) -> str | None:
    if cols["isrc"] is not _ABSENT:
        value = record.get(cols["isrc"])
    else:
        external = record.get("external_ids")
        value = external.get("isrc") if isinstance(external, dict) else None
    text = _text(value, "isrc")
    return text.upper().replace("-", "") if text else None


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


_OPTIONAL_TRACK_FIELDS = tuple(
    f.name for f in fields(TrackRecord) if f.name not in ("track_id", "name", "artist_id", "artist_name", "artist_ids")
)


def _merge_track(old: TrackRecord | None, new: TrackRecord) -> TrackRecord:
    """A later row of the same track wins field by field: its blank fields keep the earlier values."""
    if old is None:
        return new
    kept = {name: getattr(old, name) for name in _OPTIONAL_TRACK_FIELDS if getattr(new, name) is None}
    return replace(new, **kept) if kept else new


# What validating a value raises: the row is bad.
_ROW_ERRORS = (ValueError, TypeError, KeyError, OverflowError, RecursionError)


def _row_problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "a value nested more deeply than genremap reads"
    return str(exc)


# --- files ---------------------------------------------------------------------------------


@dataclass
class _Table:
    """A file read and validated, not written yet."""

    result: ImportResult
    artists: dict[str, ArtistRecord] = field(default_factory=dict)
    tracks: dict[str, TrackRecord] = field(default_factory=dict)
    track_columns: TrackColumns | None = None  # a CSV's tracks, validated a column at a time

    def add(self, where: str, record: dict[str, Any], cols: dict[str, str], source: str) -> None:
        """Validate one row and merge it in (ValueError and the like for a bad row)."""
        if self.result.table == "artists":
            artist = _artist_row(record, cols, source)
            if artist.artist_id in self.artists:
                note = f"artist {artist.name!r} appears again: merged into one artist (this row wins)"
                self.result.duplicates.append(BadRow(where, note))
            self.artists[artist.artist_id] = _merge_artist(self.artists.get(artist.artist_id), artist)
            return
        track, track_artists = _track_row(record, cols, source)
        self.tracks[track.track_id] = _merge_track(self.tracks.get(track.track_id), track)
        for artist in track_artists:
            self.artists[artist.artist_id] = _merge_artist(self.artists.get(artist.artist_id), artist)


def _read_table(src: SourceFile, source: str, on_rows: Callable[[int], None]) -> _Table:
    if src.fmt == "csv":
        return _read_csv(src, source, on_rows)
    table = _Table(ImportResult(path=str(src.path), table=""))
    result = table.result
    cols: dict[str, str] | None = None
    try:
        # The collector would scan the growing heap of records over and over (a third of
        # the time); records and the plain data they come from have no cycles.
        with _gc_paused():
            for where, record in records(src):
                result.rows += 1
                if result.rows % 5000 == 0:
                    on_rows(5000)
                if ERROR in record:
                    result.bad_rows.append(BadRow(where, str(record[ERROR])))
                    continue
                if cols is None:
                    cols = column_map(record)
                    result.table = _table_kind(cols)
                    result.columns = dict(cols)
                    every = _every_field(cols)
                try:
                    table.add(where, record, every, source)
                except _ROW_ERRORS as exc:
                    result.bad_rows.append(BadRow(where, _row_problem(exc)))
    except (OSError, EOFError) as exc:  # a truncated gzip stream, a read error
        raise UsageError(f"{src.name}: cannot read the file ({type(exc).__name__}: {str(exc)[:200]})") from None
    on_rows(result.rows % 5000)
    if cols is None:
        if result.bad_rows:
            first = result.bad_rows[0]
            raise UsageError(f"{first.where}: {first.reason} (no row of {src.name} could be read)")
        raise UsageError(f"{src.name}: no rows to import")
    return table


# --- CSV: a column at a time ------------------------------------------------------------------
#
# A CSV's cells are all text (or None for a short row), so a column is validated with a few
# list passes, and values that repeat (artists, genre lists, numbers) are converted once per
# distinct value by the same functions as above. A row that any cheap check flags (a line break
# in a field, text over the cap or not plain ASCII, a value those functions refuse, a missing
# title) goes through the per-row path above instead, which gives it the exact same outcome,
# or the exact same bad-row message, as the other formats.


def _read_csv(src: SourceFile, source: str, on_rows: Callable[[int], None]) -> _Table:
    result = ImportResult(path=str(src.path), table="")
    try:
        with _gc_paused():
            csv = read_csv_table(src, on_rows)
    except (OSError, EOFError) as exc:  # a truncated gzip stream, a read error
        raise UsageError(f"{src.name}: cannot read the file ({type(exc).__name__}: {str(exc)[:200]})") from None
    result.rows = len(csv)
    if len(csv.errors) == len(csv):
        if csv.errors:
            first = min(csv.errors)
            raise UsageError(f"{csv.where(first)}: {csv.errors[first]} (no row of {src.name} could be read)")
        raise UsageError(f"{src.name}: no rows to import")
    cols = column_map(dict.fromkeys(csv.header))
    result.table = _table_kind(cols)
    result.columns = dict(cols)
    table = _Table(result)
    with _gc_paused():
        if result.table == "tracks":
            _csv_tracks(table, csv, cols, source)
            return table
        every = _every_field(cols)
        for where, record in csv.records():
            if ERROR in record:
                result.bad_rows.append(BadRow(where, str(record[ERROR])))
                continue
            try:
                table.add(where, record, every, source)
            except _ROW_ERRORS as exc:
                result.bad_rows.append(BadRow(where, _row_problem(exc)))
    return table


@dataclass
class _Cells:
    """A field of every record, computed once per distinct value: record i's is values[codes[i]]."""

    values: list[Any]
    codes: Any  # numpy int64 array, one code per record

    def put(self, record: int, value: Any) -> None:
        """Give one record a value of its own."""
        self.codes[record] = len(self.values)
        self.values.append(value)

    def of(self, records: Any) -> Any:
        """The values of the given records, as a numpy object array."""
        return _objects(self.values)[self.codes[records]]

    def listed(self, records: Any) -> list[Any]:
        """The values of the given records, as a list."""
        if len(records) == len(self.values) == len(self.codes):  # a value per record, and every record
            return list(self.values)
        return self.of(records).tolist()

    def none_records(self) -> Any:
        """The records whose value is None."""
        import numpy as np

        return np.flatnonzero((_objects(self.values) == None)[self.codes])  # noqa: E711 (element-wise)


@dataclass
class _TrackCells:
    """A CSV's track fields, one _Cells each; `artists` holds (names, ids) tuples."""

    track_id: _Cells
    title: _Cells
    artists: _Cells
    genres: _Cells
    album: _Cells
    release_date: _Cells
    duration_ms: _Cells
    preview_url: _Cells
    isrc: _Cells
    popularity: _Cells

    def put(self, record: int, track: TrackRecord, artists: list[ArtistRecord]) -> None:
        """Give a record the values the per-row path validated."""
        self.track_id.put(record, track.track_id)
        self.title.put(record, track.name)
        self.artists.put(record, (tuple(a.name for a in artists), tuple(a.artist_id for a in artists)))
        self.genres.put(record, artists[0].genres)
        for name in ("album", "release_date", "duration_ms", "preview_url", "isrc", "popularity"):
            getattr(self, name).put(record, getattr(track, name))


def _csv_tracks(table: _Table, csv: CsvTable, cols: dict[str, str], source: str) -> None:
    """Validate a track table a column at a time; rows a check flags go row by row (see above)."""
    import numpy as np

    count = len(csv)
    odd = np.zeros(count, dtype=bool)
    odd[list(csv.errors)] = True

    def column(fieldname: str) -> Any:
        """The field's cells: a pyarrow array when pyarrow read the file, else a list (None: absent)."""
        if fieldname not in cols:
            return None
        return csv.array(cols[fieldname]) if csv.arrays else csv.column(cols[fieldname])

    def texts(fieldname: str) -> _Cells:
        cells, refused = _texts(column(fieldname), fieldname, count)
        odd[refused] = True
        return cells

    def converted(convert: Callable[..., Any], *fieldnames: str) -> _Cells:
        cells, refused = _per_distinct([column(f) for f in fieldnames], convert, count)
        odd[refused] = True
        return cells

    def integers(fieldname: str) -> _Cells:
        plain = _plain_ints(column(fieldname))
        if plain is None:
            return converted(lambda v: _int(v, fieldname), fieldname)
        return _Cells(plain, np.arange(count, dtype=np.int64))

    cells = _TrackCells(
        track_id=_spotify_ids(texts("track_id"), column("track_id")),
        title=texts("track_name"),
        artists=converted(_artist_tuples, "artist_name", "artist_id"),
        genres=converted(parse_genres, "genres"),
        album=texts("album"),
        release_date=texts("release_date"),
        duration_ms=integers("duration_ms"),
        preview_url=texts("preview_url"),
        isrc=_isrc_codes(texts("isrc"), column("isrc")),
        popularity=integers("popularity"),
    )
    odd[cells.title.none_records()] = True  # no title: a bad row
    valid = ~odd
    every = _every_field(cols)
    for index in np.flatnonzero(odd).tolist():
        record = csv.record(index)
        try:
            if ERROR in record:
                raise ValueError(record[ERROR])
            track, artists = _track_row(record, every, source)
        except _ROW_ERRORS as exc:
            table.result.bad_rows.append(BadRow(csv.where(index), _row_problem(exc)))
            continue
        cells.put(index, track, artists)  # not seen: what a column check flags, the row refuses
        valid[index] = True
    rows = np.flatnonzero(valid)
    table.artists = _csv_artists(cells, rows, source)
    table.track_columns = _merged_tracks(cells, rows)


def _texts(values: Any, fieldname: str, count: int) -> tuple[_Cells, list[int]]:
    """`_text` of every cell of a column (a list, a pyarrow array, or None for an absent column),
    and the records it refuses."""
    import numpy as np

    if values is None:
        return _Cells([None], np.zeros(count, dtype=np.int64)), []
    if not isinstance(values, list):
        return _arrow_texts(values, fieldname)
    out = [(v.strip() or None) if v else None for v in values]
    present = list(filter(None, out))
    joined = "".join(present)
    refused: list[int] = []
    if not joined.isascii() or "\n" in joined or "\r" in joined or max(map(len, present), default=0) > MAX_TEXT_CHARS:
        for index, value in enumerate(out):
            if value is not None and not (len(value) <= MAX_TEXT_CHARS and value.isascii()):
                try:
                    _clean(value, fieldname)
                except ValueError:
                    refused.append(index)
            elif value is not None and ("\n" in value or "\r" in value):
                refused.append(index)
    return _Cells(out, np.arange(count, dtype=np.int64)), refused


# ASCII whitespace as str.strip() sees it at either end of a cell, or a line break anywhere.
_ASCII_EDGE_SPACE = r"^[\t-\r\x1c- ]|[\t-\r\x1c- ]$|[\r\n]"


def _arrow_texts(array: Any, fieldname: str) -> tuple[_Cells, list[int]]:
    """`_texts` of a pyarrow string array: the cells that are plain ASCII of at most
    MAX_TEXT_CHARS without surrounding space are taken as they are (empty: None) without a
    Python pass; the few others (non-ASCII, long, spaced) are stripped and checked one by one."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    length = pc.binary_length(array)
    odd = pc.or_(
        pc.or_(pc.invert(pc.string_is_ascii(array)), pc.greater(length, MAX_TEXT_CHARS)),
        pc.match_substring_regex(array, _ASCII_EDGE_SPACE),
    )
    out = pc.if_else(pc.equal(length, 0), pa.scalar(None, pa.string()), array).to_pylist()
    refused: list[int] = []
    for index in np.flatnonzero(odd.to_numpy(zero_copy_only=False)).tolist():
        value = out[index].strip() or None
        out[index] = value
        if value is None:
            continue
        try:
            _clean(value, fieldname)
        except ValueError:
            refused.append(index)
    return _Cells(out, np.arange(len(out), dtype=np.int64)), refused


def _plain_ints(values: Any) -> list[int | None] | None:
    """`_int` of every cell of a column whose cells are all blank ('' or None) or 1 to 18 ASCII
    digits (so within the store's range): one pass instead of a conversion per distinct value.
    None for any other column (absent, or with a cell that needs `_int`'s checks)."""
    if values is None:
        return None
    if not isinstance(values, list):
        return _arrow_plain_ints(values)
    present = [v for v in values if v]
    joined = "".join(present)
    if joined and not (joined.isascii() and joined.isdigit() and max(map(len, present)) <= 18):
        return None
    return [int(v) if v else None for v in values]


def _arrow_plain_ints(array: Any) -> list[int | None] | None:
    """`_plain_ints` of a pyarrow string array, converted by pyarrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pc.all(pc.match_substring_regex(array, r"^[0-9]{0,18}$")).as_py():
        return None
    blank = pc.equal(pc.binary_length(array), 0)
    numbers: list[int | None] = pc.cast(pc.if_else(blank, pa.scalar(None, pa.string()), array), pa.int64()).to_pylist()
    return numbers


def _factorized(cells: Any) -> tuple[Any, list[Any]]:
    """Codes (numbered in order of first appearance) and the distinct values of a list or a
    pyarrow array."""
    import numpy as np
    import pandas as pd

    if isinstance(cells, list):
        part, uniques = pd.factorize(np.asarray(cells, dtype=object), use_na_sentinel=False)
        return part, list(uniques)
    if hasattr(cells, "combine_chunks"):  # one dictionary for the whole column
        cells = cells.combine_chunks()
    encoded = cells.dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def _per_distinct(columns: list[Any], convert: Callable[..., Any], count: int) -> tuple[_Cells, Any]:
    """convert(*cells) of every record, computed once per distinct combination of cells, and a mask
    of the records where it raised (their value is None). Columns are lists, pyarrow arrays or
    None (absent)."""
    import numpy as np
    import pandas as pd

    codes = np.zeros(count, dtype=np.int64)
    factorized = [None if c is None else _factorized(c) for c in columns]
    present = [f for f in factorized if f is not None]
    for part, uniques in present:
        codes = codes * len(uniques) + part
    if len(present) > 1:
        codes = pd.factorize(codes)[0]
    values: list[Any] = []
    failed = np.zeros(int(codes.max(initial=-1)) + 1, dtype=bool)
    for code, row in enumerate(_first_records(codes).tolist()):
        try:
            values.append(convert(*(None if f is None else f[1][f[0][row]] for f in factorized)))
        except _ROW_ERRORS:
            values.append(None)
            failed[code] = True
    return _Cells(values, codes), failed[codes]


def _first_records(codes: Any) -> Any:
    """The first record of each code, for codes numbered in order of first appearance."""
    import numpy as np

    if not len(codes):
        return codes
    running = np.maximum.accumulate(codes)
    return np.flatnonzero(np.concatenate(([True], running[1:] > running[:-1])))


def _objects(values: Sequence[Any]) -> Any:
    """`values` as a numpy object array (tuples stay items, as they would not with np.array)."""
    import numpy as np

    return np.fromiter(values, dtype=object, count=len(values))


def _artist_tuples(artist: Any, raw_ids: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if _plain_cell(artist) and _plain_cell(raw_ids):  # one artist, its id given: as _track_artists reads them
        return (artist,), (raw_ids,)
    names, ids = _track_artists(artist, raw_ids)
    return tuple(names), tuple(ids)


def _plain_cell(value: Any) -> bool:
    """A non-blank one-line ASCII text within the cap, without surrounding space, that is neither a
    list (`[`) nor a `spotify:` URI: what the per-row path takes as it is."""
    return (
        type(value) is str
        and 0 < len(value) <= MAX_TEXT_CHARS
        and value.isascii()
        and value == value.strip()
        and not value.startswith(("[", "spotify:"))
        and "\n" not in value
        and "\r" not in value
    )


def _spotify_ids(cells: _Cells, raw: Any) -> _Cells:
    """Track ids as `_spotify_id` reads them: `spotify:track:ID` is ID (`raw`: the column's cells,
    read by pyarrow, looked at first)."""
    if not isinstance(raw, list | None):
        import pyarrow.compute as pc

        if not pc.any(pc.match_substring(raw, "spotify:")).as_py():
            return cells
    if any(t.startswith("spotify:") for t in cells.values if t):
        cells.values = [t.rsplit(":", 1)[-1] if t and t.startswith("spotify:") else t for t in cells.values]
    return cells


def _isrc_codes(cells: _Cells, raw: Any) -> _Cells:
    """ISRCs as `_isrc` writes them: upper case, without hyphens (`raw`: the column's cells, read
    by pyarrow: ASCII without lower case letters and hyphens needs no change)."""
    if not isinstance(raw, list | None):
        import pyarrow.compute as pc

        if pc.all(pc.string_is_ascii(raw)).as_py() and not pc.any(pc.match_substring_regex(raw, "[a-z-]")).as_py():
            return cells
    cells.values = [t.upper().replace("-", "") if t else None for t in cells.values]
    return cells


def _csv_artists(cells: _TrackCells, rows: Any, source: str) -> dict[str, ArtistRecord]:
    """The artists of the given records, merged as `_merge_artist` merges them: in order of first
    mention, each with the name of its last mention and the genres of its last record as primary
    artist that has any. Works on distinct artist cells, ordered by their first or last record."""
    import numpy as np

    pairs = cells.artists.values
    codes = cells.artists.codes[rows]
    distinct, first = np.unique(codes, return_index=True)
    order = dict.fromkeys(a for code in distinct[np.argsort(first)].tolist() for a in pairs[code][1])
    distinct, from_end = np.unique(codes[::-1], return_index=True)
    name_of: dict[str, str] = {}
    for code in distinct[np.argsort(-from_end)].tolist():  # by last record
        name_of.update(zip(pairs[code][1], pairs[code][0], strict=True))
    has_genres = np.fromiter((g is not None for g in cells.genres.values), bool, len(cells.genres.values))
    known = rows[has_genres[cells.genres.codes[rows]]]
    primary = _objects([p[1][0] if p else None for p in pairs])
    genres_of = dict(zip(primary[cells.artists.codes[known]].tolist(), cells.genres.of(known).tolist(), strict=True))
    return {a: ArtistRecord(a, name_of[a], genres_of.get(a), source) for a in order}


def _merged_tracks(cells: _TrackCells, rows: Any) -> TrackColumns:
    """The given records as columns, track ids derived where absent, and records of one track id
    merged as `_merge_track` merges them."""
    import pandas as pd

    pairs = cells.artists.values
    artist_codes = cells.artists.codes[rows]
    columns = TrackColumns(
        track_id=cells.track_id.listed(rows),
        name=cells.title.listed(rows),
        artist_id=_objects([p[1][0] if p else None for p in pairs])[artist_codes].tolist(),
        artist_name=_objects([p[0][0] if p else None for p in pairs])[artist_codes].tolist(),
        artist_ids=_objects([p[1] if p else None for p in pairs])[artist_codes].tolist(),
        album=cells.album.listed(rows),
        release_date=cells.release_date.listed(rows),
        duration_ms=cells.duration_ms.listed(rows),
        preview_url=cells.preview_url.listed(rows),
        isrc=cells.isrc.listed(rows),
        popularity=cells.popularity.listed(rows),
    )
    ids = columns.track_id
    for index in [i for i, track_id in enumerate(ids) if not track_id]:
        ids[index] = derive_id("track", columns.artist_id[index], columns.name[index])
    if len(set(ids)) == len(ids):
        return columns
    repeated = pd.Series(ids, dtype=object).duplicated(keep=False).to_numpy()
    merged: dict[str, TrackRecord] = {}
    names = [f.name for f in fields(TrackRecord)]
    for index in repeated.nonzero()[0].tolist():
        track = TrackRecord(*(getattr(columns, name)[index] for name in names))
        merged[track.track_id] = _merge_track(merged.get(track.track_id), track)
    keep = (~repeated).nonzero()[0].tolist()
    extra = TrackColumns.from_records(list(merged.values()))
    return TrackColumns(*([values[i] for i in keep] + getattr(extra, name) for name, values in vars(columns).items()))


def _write_table(store: Store, src: SourceFile, table: _Table) -> None:
    """All of a file's artists and tracks in one transaction: the file is in the store whole or not at all."""
    origin = f"import:{src.name}"
    result = table.result
    columns = table.track_columns or TrackColumns.from_records([])
    # The tracks' dedupe keys are computed (on a second core when there is one) while the
    # artists are written and the tracks' other columns put in order.
    with store.bulk_transaction(), dedupe_aside(columns.artist_name, columns.name, columns.isrc) as dedupe:
        for batch in _batches(list(table.artists.values())):
            written = store.upsert_artists(batch, origin)
            result.artists_new += written.new
            result.artists_updated += written.updated
        if table.track_columns is not None:
            written = store.upsert_track_columns(table.track_columns, origin, dedupe.result)
            result.tracks_new += written.new
            result.tracks_updated += written.updated
        for tracks in _batches(list(table.tracks.values())):
            written = store.upsert_tracks(tracks, origin)
            result.tracks_new += written.new
            result.tracks_updated += written.updated


def _batches(rows: Sequence[Any]) -> Iterable[Sequence[Any]]:
    return (rows[start : start + BATCH] for start in range(0, len(rows), BATCH))


def import_source(
    store: Store,
    src: SourceFile,
    *,
    strict: bool = False,
    source: str = "import",
    on_rows: Callable[[int], None] = lambda n: None,
) -> ImportResult:
    """Import one checked file (idempotent: ids are stable, writes are upserts)."""
    table = _read_table(src, source, on_rows)
    result = table.result
    if strict and result.bad_rows:
        first = result.bad_rows[0]
        raise UsageError(
            f"{first.where}: {first.reason} ({len(result.bad_rows)} bad row(s); nothing imported because of --strict)"
        )
    _write_table(store, src, table)
    return result


def import_file(
    store: Store,
    path: Path,
    *,
    strict: bool = False,
    source: str = "import",
    fmt: str | None = None,
    encoding: str = "utf-8",
    on_rows: Callable[[int], None] = lambda n: None,
) -> ImportResult:
    """Import one table into the store (idempotent: ids are stable, writes are upserts).

    `on_rows(n)` reports progress: n more rows read.
    """
    return import_source(store, check_file(path, fmt, encoding), strict=strict, source=source, on_rows=on_rows)


def import_files(
    store: Store,
    sources: Sequence[SourceFile],
    *,
    strict: bool = False,
    source: str = "import",
    progress: Callable[[Path], AbstractContextManager[Callable[[int], None]]] | None = None,
    start: int = 0,
) -> list[ImportResult]:
    """Import checked files one after the other, each in its own transaction.

    A file refused half-way leaves the files before it imported and nothing of itself; the
    error says which files were imported and which were not read. `start`: the files before
    it were imported already (into this store), and are named as such.
    """
    results = []
    for index in range(start, len(sources)):
        try:
            results.append(_import_one(store, sources[index], strict, source, progress))
        except UsageError as exc:
            raise _refused(exc, sources, index) from None
    return results


def import_into(
    db: Path,
    sources: Sequence[SourceFile],
    *,
    strict: bool = False,
    source: str = "import",
    progress: Callable[[Path], AbstractContextManager[Callable[[int], None]]] | None = None,
) -> list[ImportResult]:
    """`import_files` into the store at `db`, made when missing.

    A missing store is built aside with the first file in it (Store.create_aside: a large first
    import writes each page once instead of twice) and takes its path only when that file is
    in; should another command create the store meanwhile, the file goes into theirs."""
    results: list[ImportResult] = []
    if sources and not db.exists():
        try:
            with Store.create_aside(db) as aside:
                first = _import_one(aside.store, sources[0], strict, source, progress)
        except UsageError as exc:
            raise _refused(exc, sources, 0) from None
        if aside.linked:
            results.append(first)
            if len(sources) == 1:
                return results
    with Store.open(db) as store:
        return results + import_files(
            store, sources, strict=strict, source=source, progress=progress, start=len(results)
        )


def _import_one(
    store: Store,
    src: SourceFile,
    strict: bool,
    source: str,
    progress: Callable[[Path], AbstractContextManager[Callable[[int], None]]] | None,
) -> ImportResult:
    if progress is None:
        return import_source(store, src, strict=strict, source=source)
    with progress(src.path) as advance:
        return import_source(store, src, strict=strict, source=source, on_rows=advance)


def _refused(exc: UsageError, sources: Sequence[SourceFile], index: int) -> UsageError:
    """A file's refusal, naming (when there are several files) those imported before it and
    those not read."""
    if len(sources) == 1:
        return exc
    src = sources[index]
    done = ", ".join(str(s.path) for s in sources[:index]) or "none"
    rest = ", ".join(str(s.path) for s in sources[index + 1 :]) or "none"
    return UsageError(
        f"{exc.message} [nothing of {src.path} was imported; imported before it: {done}; not read: {rest}]"
    )
