"""Opening a store's SQLite file: what store.py and a build's early read share, without
pandas (a build starts reading the store while pandas is still being imported)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genremap.errors import StoreError

# PRAGMA application_id of every genremap store ("GRMP"): what tells our files from other SQLite files.
APPLICATION_ID = 0x47524D50
# How long a command waits for another one that is writing the store before giving up.
BUSY_TIMEOUT_SECONDS = 30.0
SQLITE_MAGIC = b"SQLite format 3\x00"

_READ_ONLY_ADVICE = (
    "commands that write it (import, collect, enrich) need write access to the file and its folder; "
    "reports and build can read it as it is"
)


def _connect(path: Path, readonly: bool, threads: bool = False) -> sqlite3.Connection:
    """A connection to an identified store: read-write; or, for a reader, one that cannot write.
    A store this process may not write is read in place: as an unchanging file when no command
    has it open (no -wal file), else through SQLite's read-only mode. `threads`: the connection
    may be handed from one thread to another (used by one at a time)."""
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    if not readonly and not writable:
        raise StoreError(
            f"{path}: the store is read-only (no write permission on it or its folder); {_READ_ONLY_ADVICE}"
        )
    if writable:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=not threads)
        if readonly:
            conn.execute("PRAGMA query_only=ON")
        return conn
    uri = path.resolve().as_uri()
    wal = Path(f"{path}-wal")
    if wal.exists():
        conn = sqlite3.connect(
            f"{uri}?mode=ro",
            uri=True,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_SECONDS,
            check_same_thread=not threads,
        )
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:  # SQLite cannot make the -shm file in a read-only folder
            conn.close()
            if wal.stat().st_size:
                raise StoreError(
                    f"{path}: the store's folder is read-only and {wal.name} holds changes not yet in the "
                    "store; run any genremap command on it once with write access"
                ) from None
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=not threads)


def track_keys_sql(ordered: bool, utf8: bool) -> str:
    """The query of Store._track_key_texts: count, then track_id (newline-separated, as UTF-8
    bytes where the store's text is UTF-8), artist_key, dedupe_hash and isrc_hash
    (comma-separated); `ordered`: in track_id order for sure, else in the table's own order
    (no index: the track_id order of a WITHOUT ROWID table, in fact)."""
    ids = "CAST(group_concat(track_id, char(10)) AS BLOB)" if utf8 else "group_concat(track_id, char(10))"
    source = (
        "(SELECT track_id, artist_key, dedupe_hash, isrc_hash FROM tracks ORDER BY track_id)"
        if ordered
        else "tracks NOT INDEXED"
    )
    return f"""SELECT count(*), {ids}, group_concat(artist_key), group_concat(dedupe_hash),
                      group_concat(COALESCE(isrc_hash, 0))
                 FROM {source}"""


def read_track_key_texts(conn: sqlite3.Connection, ordered: bool) -> tuple[Any, ...]:
    """Run track_keys_sql on `conn` (see there)."""
    utf8 = conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8"
    return tuple(conn.execute(track_keys_sql(ordered, utf8)).fetchone())


class EarlyTrackKeys:
    """The track keys read on a thread of their own while the command imports pandas and loads
    the rules (SQLite works without Python's lock): a third of a 1M-track build's reading, hidden.

    The read starts a read transaction on a connection made as Store.open makes it; the Store
    then adopts that connection, so everything the build reads comes from the same snapshot
    as these keys."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn: sqlite3.Connection | None = conn
        self._result: tuple[Any, ...] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, name="genremap-track-keys", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.conn is not None
        try:
            self.conn.execute("BEGIN")
            self._result = read_track_key_texts(self.conn, ordered=False)
        except BaseException as exc:  # handed to the reader of the result
            self._error = exc

    def wait(self) -> None:
        """Return when the read has ended."""
        self._thread.join()

    def adopt(self) -> sqlite3.Connection:
        """The connection, once the read has ended (the caller now owns and closes it)."""
        self.wait()
        conn, self.conn = self.conn, None
        assert conn is not None
        return conn

    def result(self) -> tuple[Any, ...]:
        """The texts read (call once, after `adopt`); raises what the read raised."""
        self.wait()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        result, self._result = self._result, None
        return result

    def close(self) -> None:
        """Stop the read and close the connection, unless a Store adopted it."""
        if self.conn is None:
            return
        self.conn.interrupt()
        self._thread.join()
        self.conn.close()
        self.conn = None


@contextmanager
def early_track_keys(path: Path) -> Iterator[EarlyTrackKeys | None]:
    """Start reading the track keys of the store at `path` (for `Store.open(early=...)`); None
    where it is not plainly a genremap store of this kind (Store.open then says what it is)."""
    early = None
    try:
        with path.open("rb") as file:
            header = file.read(100)
        if header.startswith(SQLITE_MAGIC) and int.from_bytes(header[68:72], "big") == APPLICATION_ID:
            early = EarlyTrackKeys(_connect(path, readonly=True, threads=True))
    except (OSError, sqlite3.Error, StoreError):
        early = None
    try:
        yield early
    finally:
        if early is not None:
            early.close()
