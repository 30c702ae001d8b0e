"""Dedupe keys and hashes of tracks, computed on a second core while the first writes the store.

A large import spends a tenth of its time normalising a million artist names and titles into
dedupe keys and hashing them: pure Python that needs none of what the store is meanwhile busy
writing (the artists). On Linux with a second CPU, that work runs in a forked child and comes
back as plain arrays through an unlinked temporary file; anywhere else, or if the child fails, it runs here.
The result is the same either way.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO

import numpy as np

# Below this many tracks the fork costs more than it saves.
ASIDE_FROM = 100_000


@dataclass(frozen=True)
class DedupeColumns:
    """One value per track: the dedupe key, its hash, and the ISRC's hash (None: no ISRC)."""

    keys: list[str]
    key_hashes: list[int]
    isrc_hashes: list[int | None]


def dedupe_columns(artist_names: Sequence[str], names: Sequence[str], isrcs: Sequence[str | None]) -> DedupeColumns:
    """The dedupe columns of tracks given as columns (primary artist names, titles, ISRCs)."""
    from genremap.normalize import recording_keys
    from genremap.store import hashes_or_none, stable_hashes

    keys = recording_keys(artist_names, names)
    return DedupeColumns(keys, stable_hashes(keys), hashes_or_none(isrcs))


class Pending:
    """Dedupe columns being computed: `result()` waits for them."""

    def __init__(self, compute: Callable[[], DedupeColumns]) -> None:
        self._compute = compute
        self._pid = 0
        self._file: IO[bytes] | None = None

    def start_aside(self) -> None:
        """Fork a child that computes the columns into a private temporary file."""
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close()): unlinked, ours and the child's only
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns that a child of a threaded process may deadlock on a lock that
                # another thread held (pyarrow's idle pool, a progress bar): the child only runs
                # Python code on its own objects and exits without cleanup, taking none of those.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:  # no process to spare: compute here when asked
            return
        if pid == 0:  # the child: compute, write, and leave without running any exit handler
            status = 1
            try:
                _send(self._compute(), self._file)
                status = 0
            finally:
                os._exit(status)
        self._pid = pid

    def result(self) -> DedupeColumns:
        """The columns: the child's when it succeeded, else computed here."""
        if self._pid:
            pid, self._pid = self._pid, 0
            _, status = os.waitpid(pid, 0)
            if status == 0 and self._file is not None:
                with suppress(OSError, ValueError, UnicodeDecodeError):  # a short or odd file: compute here
                    self._file.seek(0)
                    return _receive(self._file)
        return self._compute()

    def close(self) -> None:
        """Stop a child still running (the caller failed) and release the file."""
        if self._pid:
            with suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
            self._pid = 0
        if self._file is not None:
            self._file.close()
            self._file = None


# The child writes plain arrays, never objects: the track count (8 bytes), the key hashes and the
# ISRC hashes (int64 each), which ISRCs there are (one byte each), then the keys in UTF-8 joined
# by NUL (a key with a NUL makes the child fail, and the columns are computed here instead).
_COUNT = np.dtype("<i8")


def _send(columns: DedupeColumns, file: IO[bytes]) -> None:
    if any("\x00" in key for key in columns.keys):
        raise ValueError("a dedupe key holds a NUL")
    isrc = columns.isrc_hashes
    file.write(np.array([len(columns.keys)], dtype=_COUNT).tobytes())
    file.write(np.array(columns.key_hashes, dtype=_COUNT).tobytes())
    file.write(np.array([0 if h is None else h for h in isrc], dtype=_COUNT).tobytes())
    file.write(np.array([h is not None for h in isrc], dtype=np.uint8).tobytes())
    file.write("\x00".join(columns.keys).encode("utf-8"))
    file.flush()


def _receive(file: IO[bytes]) -> DedupeColumns:
    """What `_send` wrote; ValueError when the file is not whole."""
    count = int(np.frombuffer(_exactly(file, 8), dtype=_COUNT)[0])
    if count < 0:
        raise ValueError("negative count")
    key_hashes: list[int] = np.frombuffer(_exactly(file, 8 * count), dtype=_COUNT).tolist()
    isrc: list[int | None] = np.frombuffer(_exactly(file, 8 * count), dtype=_COUNT).tolist()
    present = np.frombuffer(_exactly(file, count), dtype=np.uint8)
    for index in np.flatnonzero(present == 0).tolist():
        isrc[index] = None
    keys = file.read().decode("utf-8").split("\x00") if count else []
    if len(keys) != count:
        raise ValueError("keys missing")
    return DedupeColumns(keys, key_hashes, isrc)


def _exactly(file: IO[bytes], size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise ValueError("file cut short")
    return data


def _second_core() -> bool:
    """Whether this process may run on more than one CPU (and can fork safely: Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except (AttributeError, OSError):  # pragma: no cover - Linux always has it
        return False


@contextmanager
def dedupe_aside(artist_names: Sequence[str], names: Sequence[str], isrcs: Sequence[str | None]) -> Iterator[Pending]:
    """Start computing the dedupe columns of many tracks, on a second core when there is one and
    the tracks are many; the block's `result()` gives them."""
    pending = Pending(lambda: dedupe_columns(artist_names, names, isrcs))
    try:
        if len(names) >= ASIDE_FROM and _second_core():
            pending.start_aside()
        yield pending
    finally:
        pending.close()
