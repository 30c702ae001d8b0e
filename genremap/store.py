"""The SQLite store: schema, migrations, idempotent upserts, and the frames later stages read.

This is the only module that writes SQL. Every write is an upsert inside a transaction, so
a run killed at any moment leaves the store consistent and a re-run duplicates nothing.
Opening is safe too: a file that is not a genremap store is refused before anything touches
it, new stores appear whole, readers see one snapshot while another command writes, and
failures of the file (full disk, damage, read-only, busy) become one-line StoreErrors.
"""

from __future__ import annotations

import functools
import gc
import glob
import hashlib
import json
import operator
import os
import secrets
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genremap.dedupe import DedupeColumns, dedupe_columns
from genremap.defaults import DEFAULT_DB
from genremap.errors import StoreError, UsageError
from genremap.sources import OTHER_SOURCE, SOURCE_BITS, STORED_SOURCES
from genremap.store_connect import (
    _READ_ONLY_ADVICE,
    APPLICATION_ID,
    BUSY_TIMEOUT_SECONDS,
    SQLITE_MAGIC,
    EarlyTrackKeys,
    _connect,
    read_track_key_texts,
)

# Each migration takes the store from version i to i + 1. Never edit a released one: append.
MIGRATIONS: list[str] = [
    """
    -- Artists and genres have compact integer keys (artist_key, genre_key) so that labelling
    -- a million tracks is integer array work; artist_id is the Spotify (or derived) id.
    CREATE TABLE artists (
        artist_key  INTEGER PRIMARY KEY,
        artist_id   TEXT NOT NULL UNIQUE,
        name        TEXT NOT NULL,
        track_count INTEGER,            -- declared by an import (e.g. a `count` column), else NULL
        origin      TEXT NOT NULL,      -- where the row came from: 'spotify', 'import:<file>', ...
        updated_at  TEXT NOT NULL
    );
    CREATE INDEX artists_name ON artists(name COLLATE NOCASE);
    CREATE TABLE genres (
        genre_key INTEGER PRIMARY KEY,
        name      TEXT NOT NULL UNIQUE  -- as the source spelled it, not normalised
    );
    -- One row per (artist, genre source) that was consulted, even when it gave no genres:
    -- an artist Spotify leaves with [] is cached as such and never fetched again.
    CREATE TABLE artist_genre_sources (
        artist_key INTEGER NOT NULL REFERENCES artists(artist_key),
        source     TEXT NOT NULL,       -- 'spotify' or 'musicbrainz'
        origin     TEXT NOT NULL,
        fetched_at TEXT NOT NULL,
        PRIMARY KEY (artist_key, source)
    );
    -- WITHOUT ROWID: rows are stored, and scanned, in primary-key order.
    CREATE TABLE artist_genres (
        artist_key INTEGER NOT NULL REFERENCES artists(artist_key),
        source     TEXT NOT NULL,
        position   INTEGER NOT NULL,    -- order as the source listed them
        genre_key  INTEGER NOT NULL REFERENCES genres(genre_key),
        votes      INTEGER,             -- MusicBrainz vote count, NULL for Spotify
        PRIMARY KEY (artist_key, source, position)
    ) WITHOUT ROWID;
    CREATE TABLE tracks (
        track_id     TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        artist_key   INTEGER NOT NULL REFERENCES artists(artist_key),  -- primary artist: gives the label
        album        TEXT,
        release_date TEXT,
        duration_ms  INTEGER,
        preview_url  TEXT,
        isrc         TEXT,
        popularity   INTEGER,
        dedupe_key   TEXT NOT NULL,     -- normalised primary artist + title without version suffixes
        dedupe_hash  INTEGER NOT NULL,  -- 64-bit hash of dedupe_key (integer work when building)
        isrc_hash    INTEGER,           -- 64-bit hash of isrc
        origin       TEXT NOT NULL,
        added_at     TEXT NOT NULL
    ) WITHOUT ROWID;                    -- scanned in track_id order, which builds rely on
    CREATE INDEX tracks_artist ON tracks(artist_key);
    CREATE TABLE track_artists (
        track_id  TEXT NOT NULL,
        position  INTEGER NOT NULL,
        artist_id TEXT NOT NULL,        -- every artist of the track, in credit order
        PRIMARY KEY (track_id, position)
    ) WITHOUT ROWID;
    CREATE TABLE search_progress (
        term        TEXT NOT NULL,
        market      TEXT NOT NULL DEFAULT '',
        next_offset INTEGER NOT NULL DEFAULT 0,
        total       INTEGER,
        done        INTEGER NOT NULL DEFAULT 0,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (term, market)
    );
    CREATE TABLE api_state (
        key        TEXT PRIMARY KEY,    -- e.g. 'spotify.search_limit', 'spotify.batch_artists'
        value      TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE request_counts (
        endpoint  TEXT PRIMARY KEY,
        requests  INTEGER NOT NULL DEFAULT 0,
        throttled INTEGER NOT NULL DEFAULT 0,
        errors    INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE audio_features (
        track_id   TEXT PRIMARY KEY,
        status     TEXT NOT NULL,       -- 'ok', 'missing', 'forbidden'
        features   TEXT,                -- JSON object as the API returned it
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE audio_analysis (
        track_id   TEXT PRIMARY KEY,
        status     TEXT NOT NULL,       -- 'ok', 'missing' (404), 'forbidden'
        segments   INTEGER,
        pitches    TEXT,                -- JSON list of the first N segments' 12 pitches, flattened
        timbres    TEXT,
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE previews (
        track_id   TEXT PRIMARY KEY,
        status     TEXT NOT NULL,       -- 'found', 'missing', 'rejected', 'failed'
        source     TEXT,
        url        TEXT,
        score      REAL,
        bytes      INTEGER,
        sha256     TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE musicbrainz_lookups (
        artist_id  TEXT PRIMARY KEY,
        status     TEXT NOT NULL,       -- 'matched', 'no match'
        mbid       TEXT,
        mb_name    TEXT,
        score      REAL,
        candidates TEXT,                -- JSON: rejected candidates with their scores
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        run_id      INTEGER PRIMARY KEY AUTOINCREMENT,
        command     TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        status      TEXT NOT NULL,      -- 'running', 'ok', 'failed'
        details     TEXT                -- JSON
    );
    """,
    f"""
    -- Mark the file as a genremap store, and drop two tables that no version ever wrote.
    DROP TABLE IF EXISTS runs;
    DROP TABLE IF EXISTS previews;
    PRAGMA application_id = {APPLICATION_ID};
    """,
    """
    -- Decisions of a rule set for the store's vocabulary (its distinct canonical subgenres), so
    -- that the next command with the same rules, or with one rule edited, does not decide every
    -- subgenre again (genremap/engine/cache.py). Only a cache: deleting its rows is always safe.
    CREATE TABLE decision_cache (
        engine_hash TEXT NOT NULL,      -- the deciding code and the cache format
        rules_hash  TEXT NOT NULL,      -- what the rules say, not how their files are laid out
        vocab_hash  TEXT NOT NULL,      -- the distinct canonical subgenres decided
        payload     BLOB NOT NULL,      -- zlib-compressed JSON: the rules, the vocabulary, the decisions
        PRIMARY KEY (engine_hash, rules_hash, vocab_hash)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# The version that added the decision cache: older stores, read as they are, have none.
DECISION_CACHE_VERSION = 3
# Entries kept (the newest): the rules in use, the base of a diff and a few edits back.
DECISION_CACHE_ENTRIES = 8
# How long a command waits for another writer before giving up on saving its decisions.
DECISION_CACHE_WAIT_SECONDS = 0.2
# Read-only opens read a store as it is, without migrating it: the read methods must work on
# every version from this one on (raise it when a migration changes what they read).
OLDEST_READABLE = 1
# A stored source name → its code (genremap.sources): SQL, so that reads stay integer columns.
_SOURCE_CODE_SQL = (
    "(CASE source "
    + " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(STORED_SOURCES))
    + f" ELSE {OTHER_SOURCE} END)"
)


def stable_hash(text: str) -> int:
    """A 64-bit signed hash of `text` that is the same in every process (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


_BLAKE2B_64 = functools.partial(hashlib.blake2b, digest_size=8)


def stable_hashes(texts: Sequence[str]) -> list[int]:
    """`stable_hash` of each text: the same values, the digests converted in one numpy call."""
    digests = b"".join([_BLAKE2B_64(text.encode("utf-8")).digest() for text in texts])
    hashes: list[int] = np.frombuffer(digests, dtype="<i8").tolist()
    return hashes


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ArtistRecord:
    """An artist and, when `genres` is not None, its complete genre list from `genre_source`."""

    artist_id: str
    name: str
    genres: tuple[str, ...] | None = None
    genre_source: str = "spotify"
    track_count: int | None = None
    votes: tuple[int, ...] | None = None  # one per genre (MusicBrainz vote counts)


@dataclass(frozen=True)
class TrackRecord:
    """A track with its primary artist (first of `artist_ids`)."""

    track_id: str
    name: str
    artist_id: str
    artist_name: str
    artist_ids: tuple[str, ...] = ()
    album: str | None = None
    release_date: str | None = None
    duration_ms: int | None = None
    preview_url: str | None = None
    isrc: str | None = None
    popularity: int | None = None


@dataclass
class TrackColumns:
    """Tracks as columns, one list per TrackRecord field: what bulk writes take (a million
    TrackRecords would cost more to make than to write)."""

    track_id: list[str]
    name: list[str]
    artist_id: list[str]
    artist_name: list[str]
    artist_ids: list[tuple[str, ...]]
    album: list[str | None]
    release_date: list[str | None]
    duration_ms: list[int | None]
    preview_url: list[str | None]
    isrc: list[str | None]
    popularity: list[int | None]

    def __len__(self) -> int:
        return len(self.track_id)

    @classmethod
    def from_records(cls, records: Sequence[TrackRecord]) -> TrackColumns:
        names = [f.name for f in fields(TrackRecord)]
        if not records:
            return cls(*([] for _ in names))
        return cls(*(list(column) for column in zip(*map(operator.attrgetter(*names), records), strict=True)))


# A bulk write drops a table's secondary indexes and builds them again (one sort instead of a
# million random inserts) when it adds at least this many rows and more than the table holds.
REBUILD_INDEXES_FROM = 50_000
BULK_CACHE_KIB = 256 * 1024  # SQLite page cache during bulk writes: dirty pages stay in memory

# Columns of `tracks` an upsert sets from the row (the others keep their value, or their
# COALESCE-d one, when the track is known already).
_TRACK_SET = {
    "name": "excluded.name",
    "artist_key": "excluded.artist_key",
    "album": "COALESCE(excluded.album, tracks.album)",
    "release_date": "COALESCE(excluded.release_date, tracks.release_date)",
    "duration_ms": "COALESCE(excluded.duration_ms, tracks.duration_ms)",
    "preview_url": "COALESCE(excluded.preview_url, tracks.preview_url)",
    "isrc": "COALESCE(excluded.isrc, tracks.isrc)",
    "popularity": "COALESCE(excluded.popularity, tracks.popularity)",
    "dedupe_key": "excluded.dedupe_key",
    "dedupe_hash": "excluded.dedupe_hash",
    "isrc_hash": "COALESCE(excluded.isrc_hash, tracks.isrc_hash)",
}


def _upsert_track_sql(columns: Sequence[str], constants: Mapping[str, str]) -> str:
    """The track upsert for the given bound columns; `constants` (the same in every row) are
    written into the statement, so that a million rows do not bind them a million times. A
    column left out is NULL in `excluded`, so the COALESCEs keep what the store holds."""
    names = [*columns, *constants]
    values = ["?"] * len(columns) + [_sql_text(v) for v in constants.values()]
    return (
        f"INSERT INTO tracks({', '.join(names)}) VALUES ({', '.join(values)}) "
        f"ON CONFLICT(track_id) DO UPDATE SET {', '.join(f'{c} = {e}' for c, e in _TRACK_SET.items())}"
    )


def _insert_track_sql(columns: Sequence[str], constants: Mapping[str, str]) -> str:
    """A plain insert of tracks, for a table that holds none and rows with distinct ids: no row can
    conflict, so SQLite is spared the upsert's extra lookup per row (the result is the same)."""
    names = [*columns, *constants]
    values = ["?"] * len(columns) + [_sql_text(v) for v in constants.values()]
    return f"INSERT INTO tracks({', '.join(names)}) VALUES ({', '.join(values)})"


def _sql_text(value: str) -> str:
    """`value` as an SQL string literal (SQLite's only escape is a doubled quote)."""
    if "\x00" in value:
        raise ValueError("text with a NUL character cannot be written into a statement")
    return "'" + value.replace("'", "''") + "'"


@dataclass
class WriteCounts:
    """What an upsert batch changed: rows new to the store and rows updated."""

    new: int = 0
    updated: int = 0


@dataclass
class StoreSummary:
    """Headline counts of the store."""

    tracks: int
    artists: int
    artists_with_genres: int
    genre_sources: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackIds:
    """Track ids as one UTF-8 buffer and where each id is in it (`data[starts[i]:ends[i]]`):
    ids by position without a million str objects. `joined`: the buffer is the ids joined
    by newlines, none holding one."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    joined_by_newlines: bool = False

    @classmethod
    def joined(cls, data: bytes) -> TrackIds:
        """The ids of newline-separated UTF-8 bytes (an id holding a newline reads as two: the
        caller compares the count with the rows')."""
        breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        starts = np.concatenate(([0], breaks + 1))
        ends = np.concatenate((breaks, [len(data)]))
        return cls(data, starts, ends, joined_by_newlines=True)

    @classmethod
    def of(cls, ids: Sequence[str]) -> TrackIds:
        """Ids given as strings (which may hold newlines: the offsets say where each one is)."""
        encoded = [i.encode("utf-8") for i in ids]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        ends = np.cumsum(lengths)
        return cls(b"".join(encoded), ends - lengths, ends)

    def __len__(self) -> int:
        return len(self.starts)

    def in_order(self) -> bool:
        """Seen to be in strictly increasing byte order (SQLite's order of text): checked where
        the ids are joined, all of one length and without NUL bytes; False where it cannot be."""
        if len(self) < 2:
            return True
        width = int(self.ends[0] - self.starts[0])
        if (
            not self.joined_by_newlines
            or len(self.data) != len(self) * (width + 1) - 1
            or b"\0" in self.data
            or not (self.ends - self.starts == width).all()
        ):
            return False
        fixed = np.frombuffer(self.data + b"\n", dtype=f"S{width + 1}")  # each id and its separator
        return bool((fixed[1:] > fixed[:-1]).all())

    def all(self) -> list[str]:
        """Every id, as str."""
        if self.joined_by_newlines:
            return self.data.decode("utf-8").split("\n") if len(self) else []
        return list(self.take(np.arange(len(self))))

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The ids at these positions, as an object array of str: the bytes are gathered by
        NumPy and decoded by Arrow (a Python loop takes several times as long)."""
        import pyarrow as pa

        at = np.asarray(positions, dtype=np.int64)
        starts = self.starts[at]
        lengths = self.ends[at] - starts
        offsets = np.zeros(len(at) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        data = np.frombuffer(self.data, dtype=np.uint8)[gather]
        array = pa.LargeStringArray.from_buffers(len(at), pa.py_buffer(offsets), pa.py_buffer(data))
        array.validate(full=True)  # invalid UTF-8 is refused here, as SQLite's text would be
        return array.to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class TrackKeys:
    """Store.track_key_arrays: every track's id and integer keys, in track_id order."""

    ids: TrackIds
    artist_key: np.ndarray
    dedupe_hash: np.ndarray
    isrc_hash: np.ndarray  # 0 when unknown

    def frame(self) -> pd.DataFrame:
        """track_id, artist_key, dedupe_hash, isrc_hash (Store.track_keys)."""
        return pd.DataFrame(
            {
                "track_id": pd.Series(self.ids.all(), dtype="str"),
                "artist_key": self.artist_key,
                "dedupe_hash": self.dedupe_hash,
                "isrc_hash": self.isrc_hash,
            }
        )


@dataclass
class AsideStore:
    """A store being built beside its path (Store.create_aside); `linked` once it took the path."""

    store: Store
    linked: bool = False


class Store:
    """A genremap SQLite store. Use `Store.open(path)` as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path, early: EarlyTrackKeys | None = None) -> None:
        self.conn = conn
        self.path = path
        self._early = early  # track keys read as the store was opened (see _track_key_texts)

    @classmethod
    @contextmanager
    def open(
        cls,
        path: Path | str = DEFAULT_DB,
        *,
        create: bool = True,
        readonly: bool = False,
        early: EarlyTrackKeys | None = None,
    ) -> Iterator[Store]:
        """The store at `path`, made when missing (if `create`) and migrated to this version.

        `readonly` promises that the caller only reads: the store is then read as it is (not
        migrated), even from a read-only file or folder. A file that is not a genremap store is
        refused before anything touches it; SQLite errors become one-line StoreErrors. `early`
        (a reader: store_connect.early_track_keys of the same path) gives its connection, in
        the read transaction its track keys came from."""
        path = Path(path)
        if not create and not path.exists():
            raise UsageError(f"store not found: {path} (import data first: genremap import FILE, or pass --db PATH)")
        if path.is_dir():
            raise UsageError(f"--db must be a file, not a directory: {path}")
        if not path.parent.exists():
            raise UsageError(f"folder for the store does not exist: {path.parent}")
        with _errors_named(path):
            if not path.exists():
                _create(path)
            _identify(path)
            adopted = early is not None and early.conn is not None and readonly
            conn = early.adopt() if early is not None and adopted else _connect(path, readonly)
        try:
            with _errors_named(path):
                store = cls(conn, path, early if adopted else None)
                store._prepare(readonly)
                yield store
        finally:
            conn.close()

    @classmethod
    @contextmanager
    def create_aside(cls, path: Path | str) -> Iterator[AsideStore]:
        """A store for `path`, which does not exist yet, built in a hidden file beside it and
        linked into place when the block ends without an error (then `linked` says whether it
        was: False when another command created `path` meanwhile, and the caller writes again,
        into that store).

        For a first bulk write (an import into a new store): until it is complete the file has
        no journal on disk (rollbacks still work, from memory) and is never synced, which saves
        writing every page twice (WAL, then checkpoint). Nothing can see the file before it is
        linked, so an error or a kill leaves `path` missing, as it was; what a kill leaves
        beside it is removed by the next command that builds a store there."""
        path = Path(path)
        _check_new_path(path)
        _remove_stale_temporaries(path)
        temporary = _temporary_beside(path)
        try:
            with _errors_named(path), _creating(path):
                conn = sqlite3.connect(temporary, isolation_level=None)
            try:
                with _errors_named(path):
                    conn.execute("PRAGMA journal_mode=MEMORY")
                    conn.execute("PRAGMA synchronous=OFF")
                    aside = AsideStore(cls(conn, path))
                    aside.store.migrate()
                    conn.execute("PRAGMA foreign_keys=ON")
                    yield aside
                    conn.execute("PRAGMA journal_mode=WAL")  # what every store is in
            finally:
                conn.close()
            with _creating(path):
                sync_file(temporary)
                aside.linked = _link_new(temporary, path)
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{temporary}{suffix}").unlink(missing_ok=True)

    # --- schema ---------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _prepare(self, readonly: bool) -> None:
        """Connection settings, then the schema: migrated for writers, checked for readers."""
        if readonly:
            self._check_version(self.version, readonly=True)
            return
        if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.conn.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def _check_version(self, version: int, readonly: bool = False) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema version {version} is newer than this genremap knows "
                f"({SCHEMA_VERSION}); upgrade genremap"
            )
        if readonly and version < OLDEST_READABLE:
            raise StoreError(
                f"{self.path}: store schema version {version} is too old to read as it is; "
                "run a command that writes it (e.g. genremap import) to migrate it"
            )

    def migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION in one transaction under the write lock: of several
        commands opening an old store at once, the first migrates it and the others find it done."""
        self._check_version(self.version)
        if self.version == SCHEMA_VERSION:
            return
        with self.transaction() as conn:
            version = self.version  # again, now that no one else can write
            self._check_version(version)
            for script in MIGRATIONS[version:]:
                for statement in _statements(script):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (a failed COMMIT too); the
        original error is what propagates, never an error from the rollback."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    @contextmanager
    def bulk_transaction(self) -> Iterator[sqlite3.Connection]:
        """`transaction` for an import's bulk writes, without SQLite's foreign key lookup per row
        (a tenth of writing a million tracks): the writes inside take every artist and genre
        key from their tables in the same transaction and delete no artist, so no reference
        can dangle. Checks are back on when it ends, whatever happens."""
        if self.conn.in_transaction:  # PRAGMA foreign_keys does nothing inside a transaction
            with self.transaction() as conn:
                yield conn
            return
        self.conn.execute("PRAGMA foreign_keys=OFF")
        try:
            with self.transaction() as conn:
                yield conn
        finally:
            self.conn.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees the store as the first one did (one read transaction): a
        command writing meanwhile is neither seen nor blocked."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        """Roll back what is still open. SQLite rolls back by itself on some errors (a full disk,
        an I/O error), and a failed rollback must not hide the error that caused it."""
        if self.conn.in_transaction:
            with suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    # --- writes ---------------------------------------------------------------------------
    def _keys(self, table: str, text_column: str, key_column: str, values: Iterable[str]) -> dict[str, int]:
        """text → integer key for the given values that exist in `table`."""
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), 900):
            chunk = unique[start : start + 900]
            marks = ",".join("?" * len(chunk))
            found.update(
                self.conn.execute(
                    f"SELECT {text_column}, {key_column} FROM {table} WHERE {text_column} IN ({marks})", chunk
                ).fetchall()
            )
        return found

    def upsert_artists(self, artists: Iterable[ArtistRecord], origin: str) -> WriteCounts:
        """Insert or update artists; a record with genres replaces that source's genre list."""
        stamp = now()
        rows = list(artists)
        ids = {a.artist_id for a in rows}
        with self.transaction() as conn:
            known = set(self._keys("artists", "artist_id", "artist_key", ids))
            conn.executemany(
                """INSERT INTO artists(artist_id, name, track_count, origin, updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(artist_id) DO UPDATE SET
                     name = excluded.name,
                     track_count = COALESCE(excluded.track_count, artists.track_count),
                     updated_at = excluded.updated_at""",
                [(a.artist_id, a.name, a.track_count, origin, stamp) for a in rows],
            )
            with_genres = [a for a in rows if a.genres is not None]
            if with_genres:
                key_of = self._keys("artists", "artist_id", "artist_key", (a.artist_id for a in with_genres))
                names = {g for a in with_genres for g in a.genres or ()}
                conn.executemany("INSERT OR IGNORE INTO genres(name) VALUES (?)", ((g,) for g in names))
                genre_key = self._keys("genres", "name", "genre_key", names)
                conn.executemany(  # an artist new to the store has no genre rows yet
                    "DELETE FROM artist_genres WHERE artist_key = ? AND source = ?",
                    [(key_of[a.artist_id], a.genre_source) for a in with_genres if a.artist_id in known],
                )
                self._drop_old_imports(
                    [key_of[a.artist_id] for a in with_genres if a.genre_source == "import" and a.artist_id in known]
                )
                conn.executemany(
                    "INSERT INTO artist_genres(artist_key, source, position, genre_key, votes) VALUES (?, ?, ?, ?, ?)",
                    [
                        (key_of[a.artist_id], a.genre_source, i, genre_key[g], votes.get(g))
                        for a in with_genres
                        for votes in (dict(zip(a.genres or (), a.votes or (), strict=False)),)
                        for i, g in enumerate(dict.fromkeys(a.genres or ()))
                    ],
                )
                conn.executemany(
                    """INSERT INTO artist_genre_sources(artist_key, source, origin, fetched_at) VALUES (?, ?, ?, ?)
                       ON CONFLICT(artist_key, source) DO UPDATE SET origin = excluded.origin,
                         fetched_at = excluded.fetched_at""",
                    [(key_of[a.artist_id], a.genre_source, origin, stamp) for a in with_genres],
                )
        return WriteCounts(new=len(ids - known), updated=len(ids & known))

    def _drop_old_imports(self, artist_keys: list[int]) -> None:
        """An imported list replaces the one an earlier import stored, also where that import
        predates the `import` source and stored it as `spotify` (its origin says `import:`);
        Spotify's own answers (origin `spotify`) stay. Inside upsert_artists' transaction."""
        for start in range(0, len(artist_keys), 900):
            chunk = artist_keys[start : start + 900]
            stale = self.conn.execute(
                f"""SELECT artist_key FROM artist_genre_sources WHERE source = 'spotify'
                    AND origin LIKE 'import:%' AND artist_key IN ({",".join("?" * len(chunk))})""",
                chunk,
            ).fetchall()
            for table in ("artist_genres", "artist_genre_sources"):
                self.conn.executemany(f"DELETE FROM {table} WHERE artist_key = ? AND source = 'spotify'", stale)

    def upsert_tracks(self, tracks: Iterable[TrackRecord], origin: str) -> WriteCounts:
        """Insert or update tracks and their artist lists; known fields are never blanked.

        A primary artist the store does not know yet is added (by id and name, no genres).
        """
        return self.upsert_track_columns(TrackColumns.from_records(list(tracks)), origin)

    def upsert_track_columns(
        self, tracks: TrackColumns, origin: str, dedupe: Callable[[], DedupeColumns] | None = None
    ) -> WriteCounts:
        """`upsert_tracks` for tracks given as columns: the bulk path of imports.

        Of several rows with one track id, the last one's artist list and non-blank fields win.
        Rows are written in track-id order (the table's key, so its B-tree grows at the end),
        binding only the columns that hold a value; dedupe keys are computed once per distinct
        artist name and title. A large batch into a smaller table rebuilds the table's indexes
        instead of updating them row by row; the rebuild happens inside the transaction, so a
        kill or an error leaves the indexes as they were. Into an empty table, rows with distinct
        ids are plain inserts (nothing to merge with). `dedupe`: gives the tracks' dedupe columns,
        asked for once everything else is ready (genremap.dedupe computes them on a second core
        meanwhile); without it they are computed here.
        """
        count = len(tracks)
        if not count:
            return WriteCounts()
        ids = tracks.track_id
        distinct = len(set(ids))
        with self.transaction() as conn, self._bulk_cache():
            before = self._count("tracks")
            key_of = self._artist_keys(tracks, origin)
            columns: dict[str, Sequence[Any]] = {
                "track_id": ids,
                "name": tracks.name,
                "artist_key": list(map(key_of.__getitem__, tracks.artist_id)),
                "album": tracks.album,
                "release_date": tracks.release_date,
                "duration_ms": tracks.duration_ms,
                "preview_url": tracks.preview_url,
                "isrc": tracks.isrc,
                "popularity": tracks.popularity,
            }
            order = sorted(range(count), key=ids.__getitem__)
            take = _taker(order)
            bound = {name: take(values) for name, values in columns.items() if _any_value(values)}
            found = dedupe() if dedupe is not None else dedupe_columns(tracks.artist_name, tracks.name, tracks.isrc)
            for name, values in (
                ("dedupe_key", found.keys),
                ("dedupe_hash", found.key_hashes),
                ("isrc_hash", found.isrc_hashes),
            ):
                if _any_value(values):
                    bound[name] = take(values)
            plain = not before and distinct == count  # nothing to merge with: every row is new
            sql = (_insert_track_sql if plain else _upsert_track_sql)(
                list(bound), {"origin": origin, "added_at": now()}
            )
            with self._indexes_rebuilt("tracks", count >= REBUILD_INDEXES_FROM and count > before):
                conn.executemany(sql, zip(*bound.values(), strict=True))
            if distinct < count:  # the last row of a track id gives its artist list
                last = {track_id: index for index, track_id in enumerate(ids)}
                order = [index for index in order if last[ids[index]] == index]
            fresh = not before and self.conn.execute("SELECT 1 FROM track_artists LIMIT 1").fetchone() is None
            self._write_track_artists(tracks, order, fresh)
            new = count if plain else self._count("tracks") - before
        return WriteCounts(new=new, updated=distinct - new)

    def _artist_keys(self, tracks: TrackColumns, origin: str) -> dict[str, int]:
        """artist_id → artist_key of the tracks' primary artists, adding those the store does not
        know yet (with the name of their first row, no genres)."""
        key_of = self._keys("artists", "artist_id", "artist_key", dict.fromkeys(tracks.artist_id))
        if len(key_of) < len(dict.fromkeys(tracks.artist_id)):
            first = dict(zip(reversed(tracks.artist_id), reversed(tracks.artist_name), strict=True))
            missing = [a for a in dict.fromkeys(tracks.artist_id) if a not in key_of]
            stamp = now()
            self.conn.executemany(
                "INSERT INTO artists(artist_id, name, origin, updated_at) VALUES (?, ?, ?, ?)",
                ((artist_id, first[artist_id], origin, stamp) for artist_id in missing),
            )
            key_of.update(self._keys("artists", "artist_id", "artist_key", missing))
        return key_of

    def _write_track_artists(self, tracks: TrackColumns, order: Sequence[int], fresh: bool) -> None:
        """The credit lists of the tracks at `order`, replacing the lists the store holds (`fresh`:
        it holds none); a track without artist ids keeps its list.

        Only tracks credited to more than one artist get rows: a single credit is the track's
        primary artist, which `tracks.artist_key` holds already (most tracks: writing them again
        was a fifth of an import's time; stores written before this may hold such rows, which say
        the same). Rows are bound in track-id order (the table's key)."""
        ids, credits = tracks.track_id, tracks.artist_ids
        lengths = set(map(len, credits))
        order = [i for i in order if credits[i]] if 0 in lengths else order
        if not fresh:
            self.conn.executemany("DELETE FROM track_artists WHERE track_id = ?", ((ids[i],) for i in order))
        if lengths - {0, 1}:
            self.conn.executemany(
                "INSERT INTO track_artists(track_id, position, artist_id) VALUES (?, ?, ?)",
                (
                    (ids[index], position, artist_id)
                    for index in order
                    if len(credits[index]) > 1
                    for distinct in (dict.fromkeys(credits[index]),)
                    if len(distinct) > 1
                    for position, artist_id in enumerate(distinct)
                ),
            )

    def _count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    @contextmanager
    def _bulk_cache(self) -> Iterator[None]:
        """A page cache large enough that a bulk write's pages are written once, at commit."""
        previous = int(self.conn.execute("PRAGMA cache_size").fetchone()[0])
        self.conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
        try:
            yield
        finally:
            self.conn.execute(f"PRAGMA cache_size = {previous}")

    @contextmanager
    def _indexes_rebuilt(self, table: str, rebuild: bool) -> Iterator[None]:
        """Drop `table`'s secondary indexes while the caller writes, then create them again, all in
        the caller's transaction: an error or a kill rolls the drop back with the rows."""
        if not rebuild:
            yield
            return
        if not self.conn.in_transaction:
            raise RuntimeError("indexes are rebuilt only inside a transaction")
        indexes = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
        ).fetchall()
        for name, _ in indexes:
            self.conn.execute(f'DROP INDEX "{name}"')
        yield
        for _, sql in indexes:
            self.conn.execute(sql)

    # --- reads ----------------------------------------------------------------------------
    def _frame(
        self, sql: str, params: Sequence[Any] = (), ints: Sequence[str] = (), nullable_ints: Sequence[str] = ()
    ) -> pd.DataFrame:
        """Run a query into a DataFrame quickly: the garbage collector is paused while millions of
        row tuples are built, and columns are converted one by one (`ints`: integer columns
        without NULLs, `nullable_ints`: with NULLs; other columns are inferred, text as strings)."""
        with _gc_paused():
            cursor = self.conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return _rows_frame(names, cursor.fetchall(), ints, nullable_ints)

    def summary(self) -> StoreSummary:
        one = self.conn.execute
        sources = dict(one("SELECT source, count(DISTINCT artist_key) FROM artist_genres GROUP BY source").fetchall())
        return StoreSummary(
            tracks=one("SELECT count(*) FROM tracks").fetchone()[0],
            artists=one("SELECT count(*) FROM artists").fetchone()[0],
            artists_with_genres=one("SELECT count(DISTINCT artist_key) FROM artist_genres").fetchone()[0],
            genre_sources=sources,
        )

    def artists_frame(self, with_counts: bool = True) -> pd.DataFrame:
        """artist_key, artist_id, name, and (with_counts) tracks (the declared count where an import
        gave one, else the tracks stored) and stored_tracks; ordered by artist_key."""
        if not with_counts:
            return self._frame(
                "SELECT artist_key, artist_id, name FROM artists ORDER BY artist_key", ints=("artist_key",)
            )
        return self._frame(
            """SELECT a.artist_key, a.artist_id, a.name,
                      COALESCE(a.track_count, t.n, 0) AS tracks,
                      COALESCE(t.n, 0) AS stored_tracks
               FROM artists a
               LEFT JOIN (SELECT artist_key, count(*) AS n FROM tracks GROUP BY artist_key) t USING (artist_key)
               ORDER BY a.artist_key""",
            ints=("artist_key", "tracks", "stored_tracks"),
        )

    def genres_frame(self) -> pd.DataFrame:
        """genre_key, name: every genre string any source gave."""
        return self._frame("SELECT genre_key, name FROM genres ORDER BY genre_key", ints=("genre_key",))

    def genre_rows(self) -> pd.DataFrame:
        """artist_key, source (code: index into genremap.sources.STORED_SOURCES, OTHER_SOURCE for a
        name it lacks), position, genre_key: every stored genre of every artist, as integers, in
        (artist, source name, position) order.

        Read as one packed integer per row where the keys leave room (a third of the time of four
        columns: every command that labels reads this), else as four columns."""
        columns = ("artist_key", "source", "position", "genre_key")
        top = self.conn.execute(
            "SELECT (SELECT coalesce(max(artist_key), 0) FROM artists),"
            " (SELECT coalesce(max(genre_key), 0) FROM genres)"
        ).fetchone()
        artist_bits, genre_bits = int(top[0]).bit_length(), int(top[1]).bit_length()
        position_bits = 63 - SOURCE_BITS - artist_bits - genre_bits
        if position_bits >= 8:
            cursor = self.conn.execute(
                f"""SELECT CASE WHEN artist_key BETWEEN 0 AND {int(top[0])} AND genre_key BETWEEN 0 AND {int(top[1])}
                                 AND position BETWEEN 0 AND {(1 << position_bits) - 1}
                           THEN (((artist_key << {position_bits}) | position) << {genre_bits + SOURCE_BITS})
                                | (genre_key << {SOURCE_BITS}) | {_SOURCE_CODE_SQL}
                           ELSE -1 END
                    FROM artist_genres"""
            )
            cursor.row_factory = lambda _, row: row[0]
            with _gc_paused():
                packed = np.array(cursor.fetchall(), dtype=np.int64)
            if not (packed < 0).any():
                genre_mask, position_mask = (1 << genre_bits) - 1, (1 << position_bits) - 1
                return pd.DataFrame(
                    {
                        "artist_key": packed >> (position_bits + genre_bits + SOURCE_BITS),
                        "source": packed & ((1 << SOURCE_BITS) - 1),
                        "position": (packed >> (genre_bits + SOURCE_BITS)) & position_mask,
                        "genre_key": (packed >> SOURCE_BITS) & genre_mask,
                    },
                    columns=list(columns),
                )
        return self._frame(
            f"SELECT artist_key, {_SOURCE_CODE_SQL} AS source, position, genre_key FROM artist_genres",
            ints=columns,
        )

    def genre_votes(self) -> pd.DataFrame:
        """artist_key, source (code, as in genre_rows), position, votes of every genre stored with
        a weight (MusicBrainz vote counts, Last.fm tag weights): the weights of the vote policy;
        `genre_rows` leaves them out to stay one packed integer."""
        return self._frame(
            f"SELECT artist_key, {_SOURCE_CODE_SQL} AS source, position, votes FROM artist_genres"
            " WHERE votes IS NOT NULL",
            ints=("artist_key", "source", "position", "votes"),
        )

    def genres_of(self, artist_id: str) -> dict[str, list[tuple[str, int | None]]]:
        """One artist's stored genres, every source apart: source name → [(genre as spelled,
        weight or None)] in the source's order; a source asked that gave none maps to []."""
        out: dict[str, list[tuple[str, int | None]]] = {
            source: []
            for (source,) in self.conn.execute(
                """SELECT s.source FROM artist_genre_sources s JOIN artists a USING (artist_key)
                   WHERE a.artist_id = ? ORDER BY s.source""",
                (artist_id,),
            )
        }
        for source, genre, votes in self.conn.execute(
            """SELECT g.source, n.name, g.votes
               FROM artist_genres g JOIN artists a USING (artist_key) JOIN genres n USING (genre_key)
               WHERE a.artist_id = ? ORDER BY g.source, g.position""",
            (artist_id,),
        ):
            out.setdefault(source, []).append((genre, votes))
        return out

    def artist_genres_frame(self) -> pd.DataFrame:
        """artist_id, source, position, genre for every stored genre (readable; for small stores)."""
        return self._frame(
            """SELECT a.artist_id, g.source, g.position, n.name AS genre
               FROM artist_genres g JOIN artists a USING (artist_key) JOIN genres n USING (genre_key)
               ORDER BY a.artist_id, g.source, g.position""",
            ints=("position",),
        )

    def track_keys(self) -> pd.DataFrame:
        """track_id, artist_key, dedupe_hash, isrc_hash (0 when unknown) for every track, in
        track_id order: what labelling, de-duplication and balancing need, mostly integers."""
        return self.track_key_arrays().frame()

    def track_key_arrays(self) -> TrackKeys:
        """`track_keys` as arrays, the ids kept as one UTF-8 buffer (a build materialises only
        the ids it keeps: a million str objects cost more than reading them)."""
        fast = self._track_keys_concatenated()
        if fast is not None:
            return fast
        frame = self._frame(
            "SELECT track_id, artist_key, dedupe_hash, COALESCE(isrc_hash, 0) AS isrc_hash FROM tracks"
            " ORDER BY track_id",
            ints=("artist_key", "dedupe_hash", "isrc_hash"),
        )
        return TrackKeys(
            TrackIds.of(frame["track_id"].tolist()),
            *(frame[name].to_numpy() for name in ("artist_key", "dedupe_hash", "isrc_hash")),
        )

    def _track_keys_concatenated(self) -> TrackKeys | None:
        """track_keys read as one text per column (SQLite joins them, NumPy parses the integers
        and finds the ids' separators): a third of the time of a million row tuples. None where
        a track_id holds the separator (or the counts disagree), and the caller reads rows instead.

        The table is first read in its own order (a WITHOUT ROWID table is stored by track_id,
        and an ordered subquery costs a fifth more); where the ids are not seen to be in
        order (they differ in length, or are not), it is read again, ordered by track_id."""
        keys = self._track_keys_joined(ordered=False)
        if keys is not None and not keys.ids.in_order():
            keys = self._track_keys_joined(ordered=True)
        return keys

    def _track_keys_joined(self, ordered: bool) -> TrackKeys | None:
        """One read of `_track_key_texts`, parsed; None where it cannot be (see above)."""
        try:  # a store too large for one text (SQLite's length limit, 1 GB by default) reads rows
            row = self._track_key_texts(ordered)
        except sqlite3.DataError:
            return None
        count = int(row[0])
        if count == 0 or not isinstance(row[1], bytes):
            return None
        ids = TrackIds.joined(row[1])
        with warnings.catch_warnings():  # text that is not all integers parses short: caught below
            warnings.simplefilter("ignore", DeprecationWarning)
            numbers = [np.fromstring(text, dtype=np.int64, sep=",") for text in row[2:]]
        if len(ids) != count or any(len(values) != count for values in numbers):
            return None
        return TrackKeys(ids, *numbers)

    def _track_key_texts(self, ordered: bool) -> tuple[Any, ...]:
        """The texts of store_connect.track_keys_sql: read early (on the thread of
        `Store.open(early=...)`, in this connection's transaction) where they were."""
        early, self._early = self._early, None
        if early is not None and not ordered:
            with suppress(sqlite3.Error):  # read again here: an error that recurs is the caller's
                return early.result()
        return read_track_key_texts(self.conn, ordered)

    def track_details(self, track_ids: Sequence[str]) -> pd.DataFrame:
        """track_id, track_name, duration_ms, preview_url, isrc of the given tracks (for export)."""
        names = ["track_id", "track_name", "duration_ms", "preview_url", "isrc"]
        if not len(track_ids):
            return pd.DataFrame(columns=names)
        sql = "SELECT track_id, name, duration_ms, preview_url, isrc FROM tracks WHERE track_id IN ({marks})"
        with _gc_paused():  # one frame from all the chunks' rows: hundreds of small frames cost more
            return _rows_frame(names, self._rows_for(sql, track_ids, "tracks"), nullable_ints=("duration_ms",))

    def tracks_frame(self, columns: Sequence[str] = ("track_id", "artist_id", "dedupe_key", "isrc")) -> pd.DataFrame:
        """Chosen track columns (artist_id comes from the primary artist), ordered by track_id."""
        allowed = {
            "track_id", "name", "artist_id", "album", "release_date", "duration_ms", "preview_url",
            "isrc", "popularity", "dedupe_key", "origin",
        }  # fmt: skip
        bad = set(columns) - allowed
        if bad:
            raise ValueError(f"unknown track columns: {sorted(bad)}")
        select = ", ".join("a.artist_id" if c == "artist_id" else f"t.{c}" for c in columns)
        return self._frame(f"SELECT {select} FROM tracks t JOIN artists a USING (artist_key) ORDER BY t.track_id")

    # --- decision cache -------------------------------------------------------------------
    def decision_cache_entry(self, engine: str, rules: str, vocab: str) -> tuple[str, str, bytes] | None:
        """The saved decisions that best serve these rules and this vocabulary (rules_hash,
        vocab_hash, payload): the exact entry, else the newest for the same vocabulary, else
        the newest for the same rules; None when nothing fits or the store has no cache."""
        try:
            if self.version < DECISION_CACHE_VERSION:
                return None
            row = self.conn.execute(
                """SELECT rules_hash, vocab_hash, payload FROM decision_cache WHERE engine_hash = ?
                   ORDER BY rules_hash = ? AND vocab_hash = ? DESC, vocab_hash = ? DESC, rules_hash = ? DESC,
                            rowid DESC
                   LIMIT 1""",
                (engine, rules, vocab, vocab, rules),
            ).fetchone()
        except sqlite3.Error:  # a cache that cannot be read is no cache
            return None
        if row is None or (row[0] != rules and row[1] != vocab) or not isinstance(row[2], bytes):
            return None
        return str(row[0]), str(row[1]), row[2]

    def save_decision_cache(self, engine: str, rules: str, vocab: str, payload: bytes) -> bool:
        """Save decisions for the next command, as a best effort that never fails the command.

        Read-only commands call this too, so it writes only when this process may write the
        store and the store has the cache table (read as it is, an older store is left as it
        is), on a connection of its own in its own short transaction, waiting at most
        DECISION_CACHE_WAIT_SECONDS for another writer. False when nothing was saved."""
        if not (os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)):
            return False
        try:
            if self.version < DECISION_CACHE_VERSION:
                return False
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=DECISION_CACHE_WAIT_SECONDS)
            try:
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT OR REPLACE INTO decision_cache(engine_hash, rules_hash, vocab_hash, payload)"
                    " VALUES (?, ?, ?, ?)",
                    (engine, rules, vocab, payload),
                )
                conn.execute(
                    "DELETE FROM decision_cache WHERE rowid NOT IN"
                    " (SELECT rowid FROM decision_cache ORDER BY rowid DESC LIMIT ?)",
                    (DECISION_CACHE_ENTRIES,),
                )
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.Error:
            return False
        return True

    # --- collection state -----------------------------------------------------------------
    def get_state(self, key: str) -> str | None:
        """A remembered fact about an API (e.g. 'spotify.search_limit'), None if never learnt."""
        row = self.conn.execute("SELECT value FROM api_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def state_updated_at(self, key: str) -> datetime | None:
        """When a remembered fact was last learnt or confirmed (UTC), None if never learnt."""
        row = self.conn.execute("SELECT updated_at FROM api_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else datetime.strptime(str(row[0]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    def set_state(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO api_state(key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, value, now()),
            )

    def add_request_counts(
        self, requests: Mapping[str, int], throttled: Mapping[str, int], errors: Mapping[str, int]
    ) -> None:
        """Add to the per-endpoint request counters (kept across runs for `status`)."""
        endpoints = set(requests) | set(throttled) | set(errors)
        if not endpoints:
            return
        with self.transaction() as conn:
            conn.executemany(
                """INSERT INTO request_counts(endpoint, requests, throttled, errors) VALUES (?, ?, ?, ?)
                   ON CONFLICT(endpoint) DO UPDATE SET requests = requests + excluded.requests,
                     throttled = throttled + excluded.throttled, errors = errors + excluded.errors""",
                [(e, requests.get(e, 0), throttled.get(e, 0), errors.get(e, 0)) for e in sorted(endpoints)],
            )

    def request_counts(self) -> dict[str, dict[str, int]]:
        rows = self.conn.execute("SELECT endpoint, requests, throttled, errors FROM request_counts ORDER BY endpoint")
        return {e: {"requests": r, "throttled": t, "errors": x} for e, r, t, x in rows}

    def search_checkpoint(self, term: str, market: str) -> tuple[int, int | None, bool]:
        """(next offset, total as last reported, done) for a search term; (0, None, False) if new."""
        row = self.conn.execute(
            "SELECT next_offset, total, done FROM search_progress WHERE term = ? AND market = ?", (term, market)
        ).fetchone()
        return (0, None, False) if row is None else (int(row[0]), row[1], bool(row[2]))

    def search_progress(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT term, market, next_offset, total, done, updated_at FROM search_progress ORDER BY term, market"
        ).fetchall()
        keys = ("term", "market", "next_offset", "total", "done", "updated_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def save_search_page(
        self,
        term: str,
        market: str,
        tracks: Sequence[TrackRecord],
        artists: Sequence[ArtistRecord],
        next_offset: int,
        total: int | None,
        done: bool,
        origin: str = "spotify",
    ) -> WriteCounts:
        """One page of search results and the term's checkpoint, in one transaction: a run
        killed at any moment either has the page and its checkpoint, or neither."""
        with self.transaction() as conn:
            self.upsert_artists(artists, origin)
            written = self.upsert_tracks(tracks, origin)
            conn.execute(
                """INSERT INTO search_progress(term, market, next_offset, total, done, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT(term, market) DO UPDATE SET next_offset = excluded.next_offset,
                     total = excluded.total, done = excluded.done, updated_at = excluded.updated_at""",
                (term, market, next_offset, total, int(done), now()),
            )
        return written

    def artists_without_genres(self, source: str, *, primary_only: bool = True) -> list[str]:
        """Ids of artists of stored tracks (primary artists only, unless `primary_only` is False)
        that `source` was never asked about, in a stable order. An imported file's genres count as
        Spotify's (genremap.sources): collect does not ask Spotify again about those artists."""
        asked = "s.source IN (?, 'import')" if source == "spotify" else "s.source = ?"
        if primary_only:
            sql = f"""SELECT DISTINCT a.artist_id FROM tracks t JOIN artists a USING (artist_key)
                     WHERE NOT EXISTS (SELECT 1 FROM artist_genre_sources s
                                       WHERE s.artist_key = a.artist_key AND {asked})
                     ORDER BY a.artist_id"""
        else:
            sql = f"""SELECT DISTINCT a.artist_id FROM track_artists ta JOIN artists a USING (artist_id)
                     WHERE NOT EXISTS (SELECT 1 FROM artist_genre_sources s
                                       WHERE s.artist_key = a.artist_key AND {asked})
                     UNION
                     SELECT DISTINCT a.artist_id FROM tracks t JOIN artists a USING (artist_key)
                     WHERE NOT EXISTS (SELECT 1 FROM artist_genre_sources s
                                       WHERE s.artist_key = a.artist_key AND {asked})
                     ORDER BY 1"""
        params = (source,) if primary_only else (source, source)
        return [r[0] for r in self.conn.execute(sql, params)]

    def tracks_without(self, table: str) -> list[str]:
        """Ids of tracks with no row yet in `table` ('audio_features' or 'audio_analysis')."""
        if table not in ("audio_features", "audio_analysis"):
            raise ValueError(table)
        sql = f"SELECT track_id FROM tracks t WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.track_id = t.track_id)"
        return [r[0] for r in self.conn.execute(sql + " ORDER BY track_id")]

    def save_audio_features(self, rows: Sequence[tuple[str, Mapping[str, Any] | None]]) -> None:
        """Spotify audio features per track (None: the API had none for it), in one transaction."""
        stamp = now()
        with self.transaction() as conn:
            conn.executemany(
                """INSERT INTO audio_features(track_id, status, features, fetched_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT(track_id) DO UPDATE SET status = excluded.status, features = excluded.features,
                     fetched_at = excluded.fetched_at""",
                [
                    (t, "ok" if f else "missing", json.dumps(dict(f), sort_keys=True) if f else None, stamp)
                    for t, f in rows
                ],
            )

    def save_audio_analysis(
        self, track_id: str, status: str, segments: int | None, pitches: Sequence[float], timbres: Sequence[float]
    ) -> None:
        """The first segments' pitches and timbres of one track ('ok'), or that it has none ('missing')."""
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO audio_analysis(track_id, status, segments, pitches, timbres, fetched_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT(track_id) DO UPDATE SET status = excluded.status, segments = excluded.segments,
                     pitches = excluded.pitches, timbres = excluded.timbres, fetched_at = excluded.fetched_at""",
                (track_id, status, segments, json.dumps(list(pitches)), json.dumps(list(timbres)), now()),
            )

    def _rows_for(self, sql: str, track_ids: Sequence[str], table: str) -> list[tuple[Any, ...]]:
        """Rows of `sql` for the given tracks, 900 ids per query; none asked where `table` is empty
        (a build of a million tracks would otherwise ask a thousand queries of an empty table)."""
        rows: list[tuple[Any, ...]] = []
        if not self.conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:
            return rows
        wanted = list(track_ids)
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            rows += self.conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
        return rows

    def audio_features_for(self, track_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Spotify audio features stored for the given tracks (those that have them)."""
        rows = self._rows_for(
            "SELECT track_id, features FROM audio_features WHERE status = 'ok' AND track_id IN ({marks})",
            track_ids,
            "audio_features",
        )
        return {t: json.loads(f) for t, f in rows}

    def audio_analysis_for(self, track_ids: Sequence[str]) -> dict[str, tuple[int, list[float], list[float]]]:
        """(segments, pitches, timbres) stored for the given tracks (those with an analysis)."""
        rows = self._rows_for(
            "SELECT track_id, segments, pitches, timbres FROM audio_analysis WHERE status = 'ok' "
            "AND track_id IN ({marks})",
            track_ids,
            "audio_analysis",
        )
        return {t: (int(n), json.loads(p), json.loads(m)) for t, n, p, m in rows}

    def artists_for_musicbrainz(self, *, refresh: bool = False) -> list[tuple[str, str]]:
        """(artist_id, name) of artists without Spotify genres (collected or imported; asked and
        given none, or never asked) whose MusicBrainz lookup is not cached yet (cached or not with `refresh`), in a
        stable order."""
        uncached = (
            "" if refresh else "AND NOT EXISTS (SELECT 1 FROM musicbrainz_lookups m WHERE m.artist_id = a.artist_id)"
        )
        rows = self.conn.execute(
            f"""SELECT a.artist_id, a.name FROM artists a
               WHERE NOT EXISTS (SELECT 1 FROM artist_genres g
                                 WHERE g.artist_key = a.artist_key AND g.source IN ('spotify', 'import'))
                 {uncached}
               ORDER BY a.artist_id"""
        ).fetchall()
        return [(str(i), str(n)) for i, n in rows]

    def save_musicbrainz_lookup(
        self,
        artist_id: str,
        name: str,
        *,
        status: str,
        mbid: str | None,
        mb_name: str | None,
        score: float | None,
        candidates: Sequence[Mapping[str, Any]],
        genres: Sequence[tuple[str, int]],
        origin: str = "musicbrainz",
        method: str = "",
    ) -> None:
        """Cache one MusicBrainz answer ('matched' or 'no match') and, for a match, the artist's
        genres with their vote counts, in one transaction. A 'no match' never replaces a cached
        match (asking again must not erase known genres, nor leave them under a 'no match').
        With a `method` (how the match was made), the candidates column holds
        {"method", "rejected"}; without one, the plain list of rejected candidates as before."""
        payload: Any = list(candidates) if not method else {"method": method, "rejected": list(candidates)}
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO musicbrainz_lookups(artist_id, status, mbid, mb_name, score, candidates, fetched_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(artist_id) DO UPDATE SET status = excluded.status, mbid = excluded.mbid,
                     mb_name = excluded.mb_name, score = excluded.score, candidates = excluded.candidates,
                     fetched_at = excluded.fetched_at
                   WHERE excluded.status = 'matched' OR musicbrainz_lookups.status != 'matched'""",
                (artist_id, status, mbid, mb_name, score, json.dumps(payload, ensure_ascii=False), now()),
            )
            if status == "matched":
                record = ArtistRecord(
                    artist_id,
                    name,
                    genres=tuple(g for g, _ in genres),
                    genre_source="musicbrainz",
                    votes=tuple(v for _, v in genres),
                )
                self.upsert_artists([record], origin)

    def musicbrainz_cached_count(self) -> int:
        """Artists without Spotify genres whose MusicBrainz answer is already cached."""
        return int(
            self.conn.execute(
                """SELECT count(*) FROM artists a
                   WHERE NOT EXISTS (SELECT 1 FROM artist_genres g
                                     WHERE g.artist_key = a.artist_key AND g.source IN ('spotify', 'import'))
                     AND EXISTS (SELECT 1 FROM musicbrainz_lookups m WHERE m.artist_id = a.artist_id)"""
            ).fetchone()[0]
        )

    def musicbrainz_lookup(self, artist_id: str) -> dict[str, Any] | None:
        """The cached MusicBrainz answer for an artist (for `explain`), None if never looked up."""
        row = self.conn.execute(
            "SELECT status, mbid, mb_name, score, candidates, fetched_at FROM musicbrainz_lookups WHERE artist_id = ?",
            (artist_id,),
        ).fetchone()
        if row is None:
            return None
        status, mbid, mb_name, score, candidates, fetched_at = row
        payload = json.loads(candidates or "[]")
        how = {"method": str(payload.get("method", ""))} if isinstance(payload, dict) else {}
        return {
            "status": status,
            "mbid": mbid,
            "mb_name": mb_name,
            "score": score,
            **how,  # how the match was made, for answers saved with one
            "candidates": payload.get("rejected", []) if isinstance(payload, dict) else payload,
            "fetched_at": fetched_at,
        }

    def artist_isrcs(self, artist_id: str, limit: int = 3) -> list[str]:
        """Up to `limit` distinct ISRCs of the tracks whose primary artist is `artist_id`, in
        track order (used to tell same-name MusicBrainz artists apart)."""
        rows = self.conn.execute(
            """SELECT DISTINCT t.isrc FROM tracks t JOIN artists a USING (artist_key)
               WHERE a.artist_id = ? AND t.isrc IS NOT NULL AND t.isrc != '' ORDER BY t.isrc LIMIT ?""",
            (artist_id, limit),
        ).fetchall()
        return [str(i) for (i,) in rows]

    # --- Last.fm ----------------------------------------------------------------------------
    # An artist's Last.fm answer is its artist_genre_sources row with source 'lastfm': origin
    # 'lastfm' when tags were kept (they are its artist_genres rows, weights as votes),
    # 'lastfm:no tags' or 'lastfm:no match' when the answer gave none.

    _WITHOUT_OTHER_GENRES = """NOT EXISTS (SELECT 1 FROM artist_genres g
                                  WHERE g.artist_key = a.artist_key AND g.source != 'lastfm')"""
    _ASKED_LASTFM = """EXISTS (SELECT 1 FROM artist_genre_sources s
                               WHERE s.artist_key = a.artist_key AND s.source = 'lastfm')"""

    def artists_for_lastfm(self, *, refresh: bool = False) -> list[tuple[str, str]]:
        """(artist_id, name) of artists without genres from any other source whose Last.fm
        answer is not cached yet (cached or not with `refresh`), in a stable order."""
        uncached = "" if refresh else f"AND NOT {self._ASKED_LASTFM}"
        rows = self.conn.execute(
            f"SELECT a.artist_id, a.name FROM artists a WHERE {self._WITHOUT_OTHER_GENRES} {uncached} "
            "ORDER BY a.artist_id"
        ).fetchall()
        return [(str(i), str(n)) for i, n in rows]

    def lastfm_cached_count(self) -> int:
        """Artists without genres from any other source whose Last.fm answer is already cached."""
        sql = f"SELECT count(*) FROM artists a WHERE {self._WITHOUT_OTHER_GENRES} AND {self._ASKED_LASTFM}"
        return int(self.conn.execute(sql).fetchone()[0])

    def save_lastfm_answer(self, artist_id: str, name: str, status: str, tags: Sequence[tuple[str, int]]) -> None:
        """Cache one Last.fm answer, in one transaction: the kept tags (tag, weight) become the
        artist's genres from source 'lastfm'; an answer without any (`status` 'no tags' or 'no
        match') is remembered as asked and never erases tags an earlier answer gave."""
        if tags:
            record = ArtistRecord(
                artist_id,
                name,
                genres=tuple(t for t, _ in tags),
                genre_source="lastfm",
                votes=tuple(w for _, w in tags),
            )
            self.upsert_artists([record], "lastfm")
            return
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO artist_genre_sources(artist_key, source, origin, fetched_at)
                   SELECT artist_key, 'lastfm', ?, ? FROM artists WHERE artist_id = ?
                   ON CONFLICT(artist_key, source) DO UPDATE SET fetched_at = excluded.fetched_at""",
                (f"lastfm:{status}", now(), artist_id),
            )

    def lastfm_answer(self, artist_id: str) -> dict[str, Any] | None:
        """The cached Last.fm answer of an artist: status ('tagged', 'no tags', 'no match'),
        when it was asked, and its tags with their weights; None if never asked."""
        row = self.conn.execute(
            """SELECT s.origin, s.fetched_at, s.artist_key FROM artist_genre_sources s JOIN artists a USING (artist_key)
               WHERE a.artist_id = ? AND s.source = 'lastfm'""",
            (artist_id,),
        ).fetchone()
        if row is None:
            return None
        origin, fetched_at, key = row
        tags = self.conn.execute(
            """SELECT n.name, g.votes FROM artist_genres g JOIN genres n USING (genre_key)
               WHERE g.artist_key = ? AND g.source = 'lastfm' ORDER BY g.position""",
            (key,),
        ).fetchall()
        status = str(origin).removeprefix("lastfm:") if str(origin).startswith("lastfm:") else "tagged"
        return {"status": status, "fetched_at": fetched_at, "tags": [(str(n), v) for n, v in tags]}

    def status(self) -> dict[str, Any]:
        """Collection progress for `genremap status`: counts, per-term progress, what is pending,
        what the API allows this app, requests made."""
        one = self.conn.execute
        summary = self.summary()
        counts = self.request_counts()
        state = dict(one("SELECT key, value FROM api_state").fetchall())
        lookups = dict(one("SELECT status, count(*) FROM musicbrainz_lookups GROUP BY status").fetchall())
        return {
            # As reports count them: an artist table's `count` where one was imported, else track rows.
            "tracks": one(
                "SELECT COALESCE(sum(COALESCE(a.track_count, t.n, 0)), 0) FROM artists a "
                "LEFT JOIN (SELECT artist_key, count(*) AS n FROM tracks GROUP BY artist_key) t USING (artist_key)"
            ).fetchone()[0],
            "track_rows": summary.tracks,
            "artists": summary.artists,
            "artists_with_genres": summary.artists_with_genres,
            "genre_sources": summary.genre_sources,
            "requests": {endpoint: c["requests"] for endpoint, c in counts.items()},
            "throttled": {endpoint: c["throttled"] for endpoint, c in counts.items() if c["throttled"]},
            "errors": {endpoint: c["errors"] for endpoint, c in counts.items() if c["errors"]},
            "terms": self.search_progress(),
            "artists_pending": len(self.artists_without_genres("spotify")),
            "features_pending": one(
                "SELECT count(*) FROM tracks t "
                "WHERE NOT EXISTS (SELECT 1 FROM audio_features f WHERE f.track_id = t.track_id)"
            ).fetchone()[0],
            "analysis_pending": one(
                "SELECT count(*) FROM tracks t "
                "WHERE NOT EXISTS (SELECT 1 FROM audio_analysis f WHERE f.track_id = t.track_id)"
            ).fetchone()[0],
            "api": {k: v for k, v in sorted(state.items())},
            # Whether Spotify's artist answers carry genres for this app ('spotify.genres', learnt by collect).
            "spotify_genres": state.get("spotify.genres", "unknown"),
            "musicbrainz": {"matched": lookups.get("matched", 0), "no_match": lookups.get("no match", 0)},
        }

    def find_artists(self, name: str) -> pd.DataFrame:
        """Artists whose id, or name (case-insensitive), equals `name`."""
        return self._frame(
            "SELECT artist_id, name FROM artists WHERE artist_id = ? OR name = ? COLLATE NOCASE ORDER BY artist_id",
            (name, name),
        )

    def track(self, track_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT t.track_id, t.name, a.artist_id, a.name FROM tracks t JOIN artists a USING (artist_key) "
            "WHERE t.track_id = ?",
            (track_id,),
        ).fetchone()
        if row is None:
            return None
        return {"track_id": row[0], "track_name": row[1], "artist_id": row[2], "artist_name": row[3]}


# --- opening safely ----------------------------------------------------------------------------


def hashes_or_zero(texts: Sequence[str | None]) -> list[int]:
    """stable_hash of each text, 0 (unknown, as `track_keys` reads a missing ISRC) where there is none."""
    return [0 if h is None else h for h in hashes_or_none(texts)]


def hashes_or_none(texts: Sequence[str | None]) -> list[int | None]:
    """stable_hash of each text, None where there is none."""
    present = [index for index, text in enumerate(texts) if text]
    out: list[int | None] = [None] * len(texts)
    for index, value in zip(present, stable_hashes([texts[i] or "" for i in present]), strict=True):
        out[index] = value
    return out


def _any_value(values: Sequence[Any]) -> bool:
    """Whether a column holds a value (columns of None only are left to their default)."""
    return any(v is not None for v in values)


def _taker(order: Sequence[int]) -> Any:
    """A function that puts a column in `order` (itemgetter, which returns a bare item for one index)."""
    if len(order) == 1:
        return lambda column: (column[order[0]],)
    return operator.itemgetter(*order)


@contextmanager
def _errors_named(path: Path) -> Iterator[None]:
    """SQLite errors about the store file (full, busy, damaged, read-only …) as one-line StoreErrors."""
    try:
        yield
    except sqlite3.Error as exc:
        error = describe_store_error(path, exc)
        if error is None:
            raise
        raise error from None


def describe_store_error(path: Path | str, exc: sqlite3.Error) -> StoreError | None:
    """What a failure of the store file means for the user, with what to do; None for errors
    that are genremap's own bugs (a constraint, a bad statement), which must not be disguised."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return None
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return StoreError(
            f"{path}: the disk is full ({text}); nothing of the unfinished write was kept: "
            "free some space and run the command again"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreError(
            f"{path}: the store is busy: another command kept it locked for over {BUSY_TIMEOUT_SECONDS:g} s; "
            "run this again when it has finished"
        )
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM")) or "readonly" in text:
        return StoreError(f"{path}: the store is read-only ({text}); {_READ_ONLY_ADVICE}")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return StoreError(
            f"{path}: the store is damaged ({text}); restore it from a copy, or pass another --db PATH and import again"
        )
    if name.startswith("SQLITE_IOERR") or "I/O error" in text:
        return StoreError(f"{path}: disk I/O error on the store ({text}); check the disk, then run the command again")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return StoreError(
            f"{path}: cannot open the store ({text}); check that the file and its folder exist and are accessible"
        )
    return None


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script one by one (executescript would commit the open transaction)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""


def _create(path: Path) -> None:
    """Build a new store beside `path` and link it into place only when complete: a store path
    never shows a half-made store, and of several commands creating it at once one wins and the
    others open its store."""
    if not os.access(path.parent, os.W_OK):
        raise StoreError(f"{path}: cannot create the store: its folder is not writable; pass another --db PATH")
    temporary = _temporary_beside(path)
    try:
        conn = sqlite3.connect(temporary, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            Store(conn, temporary).migrate()
        finally:
            conn.close()
        _link_new(temporary, path)
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot create the store ({exc.strerror}); check that its folder is writable"
        ) from None
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{temporary}{suffix}").unlink(missing_ok=True)


def _link_new(temporary: Path, path: Path) -> bool:
    """Give the finished store its name unless another command already did (then theirs is used,
    and the answer is False)."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: rename, which could replace a racing twin
        if path.exists():
            return False
        os.replace(temporary, path)
    with suppress(OSError):  # make the new name durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return True


def _temporary_beside(path: Path) -> Path:
    """A hidden name beside `path` for a store being built, unique to this process and call."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.new")


def _remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed command left while building a store for `path`: files named by
    `_temporary_beside` whose process is gone."""
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*-*.new*"):
        pid = leftover.name[len(path.name) + 2 :].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with suppress(OSError):
            leftover.unlink()


def _alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would end the process there: never call a file stale
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (PermissionError): alive
        return True
    return True


def sync_file(path: Path) -> None:
    """Flush `path`'s data to disk (a file written without syncs, before it takes its name)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _creating(path: Path) -> Iterator[None]:
    """OS errors while making a new store as one-line StoreErrors."""
    try:
        yield
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot create the store ({exc.strerror}); check that its folder is writable"
        ) from None


def _check_new_path(path: Path) -> None:
    """The checks of Store.open for a store about to be created at `path`."""
    if path.is_dir():
        raise UsageError(f"--db must be a file, not a directory: {path}")
    if not path.parent.exists():
        raise UsageError(f"folder for the store does not exist: {path.parent}")
    if not os.access(path.parent, os.W_OK):
        raise StoreError(f"{path}: cannot create the store: its folder is not writable; pass another --db PATH")


def _foreign(path: Path, why: str) -> StoreError:
    return StoreError(f"{path}: not a genremap store ({why}); pass another --db PATH (the file was not changed)")


def _identify(path: Path) -> None:
    """Refuse a file that is not a genremap store before anything changes it: the SQLite header
    names the application; a store from before application ids (schema 1) is recognised by its
    tables, read without writing anything."""
    try:
        with path.open("rb") as file:
            header = file.read(100)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the store ({exc.strerror}); check its permissions") from None
    if not header:
        raise _foreign(path, "an empty file")
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise _foreign(path, "not an SQLite database: another kind of file, or a damaged one")
    application = int.from_bytes(header[68:72], "big")
    if application == APPLICATION_ID:
        return
    if application != 0:
        raise _foreign(path, f"an SQLite file of another program, application id {application:#x}")
    if header[18] != 2:  # every genremap store is in WAL mode
        raise _foreign(path, "an SQLite file of another program")
    if not _is_schema_1_store(path):
        raise _foreign(path, "an SQLite file of another program: its tables are not genremap's")


def _is_schema_1_store(path: Path) -> bool:
    """Whether a WAL-mode file without an application id holds genremap's schema-1 tables, read
    through a connection that cannot write (and, as the last one to close, removes the -wal and
    -shm files its reading made)."""
    conn = _connect(path, readonly=True)
    try:
        # One read transaction: a migration committed by another command between two of these reads
        # would otherwise show an old header beside the new tables.
        conn.execute("BEGIN")
        application, version = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("application_id", "user_version"))
        if application == APPLICATION_ID:  # migrated by another command since the header was read
            return True
        if application != 0 or version != 1:
            return False
        layout = _layout(conn)
        return all(layout.get(table) == columns for table, columns in _schema_1_layout().items())
    finally:
        conn.close()


def _layout(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Table name → column names."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: [c[0] for c in conn.execute("SELECT name FROM pragma_table_info(?)", (t,))] for t in tables}


def _schema_1_layout() -> dict[str, list[str]]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(MIGRATIONS[0])
    try:
        return _layout(conn)
    finally:
        conn.close()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building millions of row tuples triggers the cyclic GC over and over; none of them is cyclic."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rows_frame(
    names: Sequence[str], rows: list[tuple[Any, ...]], ints: Sequence[str] = (), nullable_ints: Sequence[str] = ()
) -> pd.DataFrame:
    """A DataFrame of fetched rows, converted column by column (see Store._frame)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    data: dict[str, Any] = {}
    for name, values in zip(names, columns, strict=True):
        if name in ints:
            data[name] = np.fromiter(values, dtype=np.int64, count=len(values))
        elif name in nullable_ints:
            data[name] = pd.array(values, dtype="Int64")
        else:
            data[name] = pd.Series(values, dtype=_infer_dtype(values), name=name)
    del rows, columns
    return pd.DataFrame(data, columns=list(names))


def _infer_dtype(values: Sequence[Any]) -> str | None:
    """'str' for text columns (pandas' string dtype), None to let pandas infer numbers."""
    for value in values:
        if value is not None:
            return "str" if isinstance(value, str) else None
    return "str"
