"""Fill the genres Spotify leaves empty from MusicBrainz's JSON data dump of artists, offline.

MusicBrainz publishes its database twice a week as JSON dumps (DUMPS_URL). `artist.tar.xz`
holds `mbdump/artist`: one artist a line, shaped like the web service's answer (`id`, `name`,
`aliases`, `genres` with vote counts, `tags`, ...). This module reads that archive, or the
`mbdump/artist` file itself, plain or compressed (xz, gzip, bzip2: told by the first bytes,
not by the name), as a stream: nothing is extracted to disk, no line is held beyond the one
being read, and no request is sent.

Matching: the store's artists are indexed first by `exact_key` (the normalised name without
spaces, the key two names share exactly when `name_score` gives them 100); each dump line whose
name or alias has one of those keys becomes a candidate, at most `SEARCH_LIMIT` kept per key
(like a page of search results); once the dump is read, `decide_match` chooses among each
artist's candidates as for the web service, and the answers are saved like the web service's,
`SAVE_BATCH` artists per transaction. So memory grows with the store's artists, not with the
dump's millions of lines.

Where the two paths can differ: the dump finds only names and aliases equal after
normalisation (score 100); the web service's search also offers near names, which pass at
--threshold below 100. Among same-name candidates the web service breaks ties by MusicBrainz's
search relevance, the dump by "own name before alias", then the smaller mbid for both.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, cast

from genremap.collectors.musicbrainz import (
    DEFAULT_THRESHOLD,
    SEARCH_LIMIT,
    EnrichResult,
    alias_names,
    artists_to_enrich,
    check_enrich_options,
    decide_match,
    exact_key,
    parse_genres,
    save_match,
)
from genremap.errors import UsageError
from genremap.store import Store

DUMPS_URL = "https://data.metabrainz.org/pub/musicbrainz/data/json-dumps/"
MEMBER = "mbdump/artist"  # the artists' file inside artist.tar.xz
MAX_LINE_BYTES = 16 * 1024 * 1024  # a longer line is reported and skipped, never held whole
MAX_HEADER_BYTES = 1024 * 1024  # a tar's long-name or pax header larger than this is refused
MAX_MEMBERS = 1000  # tar members read before giving up on finding MEMBER (the real archive has ~10)
MAX_ID_CHARS = 64  # MusicBrainz ids have 36
MAX_NAME_CHARS = 1000  # longer names and aliases are not matched (no real artist's name is that long)
MAX_GENRES = 100  # genres kept per candidate, most votes first
MAX_GENRE_CHARS = 200  # longer genre names are dropped
SAVE_BATCH = 500  # artists saved per transaction
READ_BYTES = 1024 * 1024  # the file is read in blocks of this size
REPORTED_LINES = 20  # line numbers of malformed lines kept in the summary
NAME_RANK, ALIAS_RANK = 100, 50  # a candidate's own name ranks over an alias (best_match's tie-break)

_MAGIC = {b"\xfd7zXZ\x00": "xz", b"\x1f\x8b": "gzip", b"BZh": "bzip2"}
_ZSTD = b"\x28\xb5\x2f\xfd"
_HEADER_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
_CORRUPT = (EOFError, OSError, lzma.LZMAError, zlib.error, tarfile.TarError, RecursionError)


@dataclass
class DumpResult(EnrichResult):
    """What an enrichment from a dump did: EnrichResult's counts (no request) and the dump's."""

    dump: str = ""
    lines: int = 0  # lines read, blank and malformed ones included
    artists_read: int = 0
    malformed: int = 0
    malformed_lines: list[int] = field(default_factory=list)  # the first REPORTED_LINES of them
    bytes_read: int = 0  # of the file as stored (compressed, when it is)

    def summary(self) -> dict[str, Any]:
        """EnrichResult's summary and the dump's counts (the fields above)."""
        inherited = {f.name for f in fields(EnrichResult)}
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in inherited}
        return {**super().summary(), **own, "malformed_lines": list(self.malformed_lines)}


# --- reading the file ----------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """A binary file that reports how many bytes were read from it so far."""

    def __init__(self, file: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self._file, self._on_bytes, self.count = file, on_bytes, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._file.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        self._on_bytes(self.count)
        return int(n or 0)


class _BoundedTarInfo(tarfile.TarInfo):
    """Tar headers with bounded extensions: tarfile reads a long-name or pax header whole into
    memory, so one claiming gigabytes is refused first; sparse members are refused."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _HEADER_TYPES and self.size > MAX_HEADER_BYTES:
            raise tarfile.HeaderError(f"a {self.size:,}-byte extended header (at most {MAX_HEADER_BYTES:,})")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise tarfile.HeaderError("a sparse member")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


def _compression(path: Path) -> str:
    """'xz', 'gzip', 'bzip2' or 'plain', from the file's first bytes."""
    with path.open("rb") as file:
        head = file.read(6)
    if head.startswith(_ZSTD):
        raise UsageError(f"{path}: zstd-compressed, which genremap does not read: decompress it (`zstd -d`) first")
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), "plain")


def _decompressed(kind: str, file: IO[bytes]) -> IO[bytes]:
    """`file` decompressed on the fly (itself when plain)."""
    if kind == "xz":
        return cast(IO[bytes], lzma.LZMAFile(file))
    if kind == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=file, mode="rb"))
    if kind == "bzip2":
        return cast(IO[bytes], bz2.BZ2File(file))
    return file


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    """The first `size` bytes of `stream` (fewer at its end): one read may return less."""
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _is_tar(path: Path, kind: str) -> bool:
    """Whether the (decompressed) file is a tar archive: "ustar" at offset 257 of its first block."""
    with path.open("rb") as file, _decompressed(kind, file) as stream:
        head = _read_exactly(stream, 512)
    return head[257:262] == b"ustar"


def _tar_member(tar: tarfile.TarFile, path: Path) -> IO[bytes]:
    """MEMBER of a tar opened in stream mode, as a stream: other members are skipped, none is
    extracted, and the search stops after MAX_MEMBERS members (tarfile keeps each one read)."""
    seen: list[str] = []
    for count, member in enumerate(tar, start=1):
        if member.name.removeprefix("./") == MEMBER:
            stream = tar.extractfile(member) if member.isfile() else None
            if stream is None:
                raise UsageError(f"{path}: {MEMBER} in this archive is not a regular file; nothing was saved")
            return stream
        if len(seen) < 5:
            seen.append(member.name)
        if count >= MAX_MEMBERS:
            break
    holds = f" (it holds {', '.join(repr(s) for s in seen)}{', ...' if len(seen) == 5 else ''})" if seen else ""
    raise UsageError(
        f"{path}: no {MEMBER} in this archive{holds}: pass artist.tar.xz from {DUMPS_URL}, or the {MEMBER} file in it"
    )


@contextmanager
def open_dump(path: Path, on_bytes: Callable[[int, int], None] = lambda done, total: None) -> Iterator[IO[bytes]]:
    """The bytes of the artists' file: `path` itself, or MEMBER when `path` is a tar; xz, gzip
    or bzip2 decompressed on the fly. `on_bytes(done, total)` follows the bytes read from disk."""
    try:
        total = path.stat().st_size
        kind = _compression(path)
        is_tar = _is_tar(path, kind)
    except PermissionError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror}); nothing was saved") from exc
    except _CORRUPT as exc:
        raise _unreadable(path, exc, 0) from exc
    with ExitStack() as stack:
        file = stack.enter_context(path.open("rb"))
        counted = io.BufferedReader(_CountingReader(file, lambda done: on_bytes(done, total)), READ_BYTES)
        stream = stack.enter_context(_decompressed(kind, counted))
        if is_tar:
            try:
                tar = stack.enter_context(tarfile.open(fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo))
                stream = _tar_member(tar, path)
            except _CORRUPT as exc:
                raise _unreadable(path, exc, 0) from exc
        yield stream


def _unreadable(path: Path, exc: BaseException, lines: int) -> UsageError:
    where = f" after {lines:,} lines" if lines else ""
    reason = str(exc) or type(exc).__name__
    return UsageError(
        f"{path}: unreadable{where} ({reason}): a damaged or incomplete download? Download it again; nothing was saved"
    )


def iter_lines(stream: IO[bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(line number from 1, line) for every line; None for a line longer than `max_bytes`,
    which is skipped without ever being held whole."""
    number = 0
    while line := stream.readline(max_bytes + 1):
        number += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while (rest := stream.readline(max_bytes + 1)) and not rest.endswith(b"\n"):
                pass
            yield number, None
        else:
            yield number, line


def parse_artist(line: bytes) -> dict[str, Any] | str:
    """The artist on one line of the dump, or what is wrong with the line."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return f"not JSON ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})"
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an artist object"
    if not isinstance(record.get("id"), str) or not record["id"] or not isinstance(record.get("name"), str):
        return "not a MusicBrainz artist (no `id` or `name`)"
    if len(record["id"]) > MAX_ID_CHARS:
        return f"not a MusicBrainz artist (an `id` of {len(record['id']):,} characters)"
    return record


# --- matching ------------------------------------------------------------------------------


def _rank(candidate: Mapping[str, Any]) -> tuple[int, str]:
    return -int(candidate["score"]), str(candidate["id"])


def _genres(record: Mapping[str, Any]) -> list[tuple[str, int]]:
    """parse_genres, bounded: at most MAX_GENRES, none longer than MAX_GENRE_CHARS."""
    return [g for g in parse_genres(record) if len(g[0]) <= MAX_GENRE_CHARS][:MAX_GENRES]


@dataclass
class DumpIndex:
    """The store artists' keys, and the dump's candidates for each, at most SEARCH_LIMIT a key."""

    keys: frozenset[str]
    found: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def offer(self, record: Mapping[str, Any]) -> None:
        """Keep `record` as a candidate for each store key its name or one of its aliases has."""
        hits: dict[str, dict[str, Any]] = {}
        name = record["name"]
        if len(name) <= MAX_NAME_CHARS and (key := exact_key(name)) in self.keys:
            hits[key] = {"id": record["id"], "name": name, "score": NAME_RANK}
        for alias in alias_names(record):
            if len(alias) > MAX_NAME_CHARS or (key := exact_key(alias)) not in self.keys:
                continue
            # The first alias with the key is the one best_match names: one is all it needs.
            hits.setdefault(key, {"id": record["id"], "name": name, "score": ALIAS_RANK, "aliases": [alias]})
        if len(name) > MAX_NAME_CHARS:
            for hit in hits.values():
                hit["name"] = name[:MAX_NAME_CHARS]
        genres = _genres(record) if hits else []
        for key, hit in hits.items():
            hit["genres"] = genres
            kept = self.found.setdefault(key, [])
            kept.append(hit)
            if len(kept) > 2 * SEARCH_LIMIT:
                self._trim(kept)

    @staticmethod
    def _trim(kept: list[dict[str, Any]]) -> None:
        kept.sort(key=_rank)
        del kept[SEARCH_LIMIT:]

    def candidates(self, name: str) -> list[dict[str, Any]]:
        """The candidates kept for an artist of the store named `name`, best first."""
        kept = self.found.get(exact_key(name), [])
        self._trim(kept)
        return kept


def scan_dump(
    stream: IO[bytes],
    index: DumpIndex,
    result: DumpResult,
    *,
    on_problem: Callable[[int, str], None] = lambda line, problem: None,
) -> None:
    """Offer every artist of the dump to `index`, counting lines, artists and malformed lines in
    `result`. A malformed line is reported (`on_problem(line, what)`) and skipped; but when the
    first line that is not blank is malformed, the file is not an artist dump: UsageError."""
    for number, line in iter_lines(stream, MAX_LINE_BYTES):
        result.lines = number
        if line is None:
            record: dict[str, Any] | str = f"longer than {MAX_LINE_BYTES:,} bytes"
        elif not line.strip():
            continue
        else:
            record = parse_artist(line)
        if isinstance(record, str):
            if not result.artists_read and not result.malformed:
                raise UsageError(
                    f"{result.dump} line {number}: {record}: not a MusicBrainz JSON artist dump "
                    f"(pass artist.tar.xz from {DUMPS_URL}, or the {MEMBER} file in it); nothing was saved"
                )
            result.malformed += 1
            if len(result.malformed_lines) < REPORTED_LINES:
                result.malformed_lines.append(number)
            on_problem(number, record)
            continue
        result.artists_read += 1
        index.offer(record)


def _batches(items: list[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def enrich_from_dump(
    store: Store,
    dump: Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int | None = None,
    refresh: bool = False,
    on_bytes: Callable[[int, int], None] = lambda done, total: None,
    on_problem: Callable[[int, str], None] = lambda line, problem: None,
    on_artist: Callable[[int, int], None] = lambda done, total: None,
) -> DumpResult:
    """Fill genres from a MusicBrainz JSON artist dump for artists that Spotify left without any.

    The same artists as `enrich_musicbrainz` are answered (no Spotify genres, no answer cached
    unless `refresh`; the first `limit`), from the dump instead of the web service: see the
    module's docstring for how matching works and where it can differ. With no artist to
    answer, the dump is not even opened. Nothing is written until
    the whole dump is read (a damaged file is a UsageError and leaves the store as it was);
    then the answers are saved SAVE_BATCH artists per transaction, so an interrupted run keeps
    the batches saved and a rerun answers only the others. `on_bytes(done, total)` follows the
    file's bytes, `on_problem(line, what)` each malformed line (skipped), `on_artist(done,
    total)` the saving.
    """
    check_enrich_options(threshold, limit)
    if not dump.is_file():
        what = "not a file" if dump.exists() else "no such file"
        raise UsageError(f"--dump {dump}: {what} (pass artist.tar.xz from {DUMPS_URL}, or the {MEMBER} file in it)")
    result = DumpResult(dump=str(dump))
    chosen = artists_to_enrich(store, result, limit=limit, refresh=refresh)
    if not chosen:
        return result  # nothing to answer: the dump is not read
    index = DumpIndex(frozenset(k for _, name in chosen if (k := exact_key(name))))

    def count_bytes(done: int, total: int) -> None:
        result.bytes_read = done
        on_bytes(done, total)

    with open_dump(dump, count_bytes) as stream:
        try:
            scan_dump(stream, index, result, on_problem=on_problem)
        except _CORRUPT as exc:
            raise _unreadable(dump, exc, result.lines) from exc
    if not result.artists_read:
        raise UsageError(f"{dump}: no artist in it; nothing was saved")

    origin = f"musicbrainz-dump:{dump.name}"
    on_artist(0, len(chosen))
    for batch in _batches(chosen, SAVE_BATCH):
        with store.transaction():
            for artist_id, name in batch:
                match = decide_match(artist_id, name, index.candidates(name), threshold, lambda c: list(c["genres"]))
                save_match(store, match, result, origin)
        on_artist(result.looked_up, len(chosen))
    return result
