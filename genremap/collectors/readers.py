"""Read table files into (where, record) pairs, refusing what cannot be read safely.

Every file is checked before anything is written (it exists, is readable, has a known
format). Text is decoded strictly (UTF-8 unless --encoding says otherwise), so a wrong
encoding stops with the line and byte instead of importing garbled names. gzip is detected
by its magic bytes and read transparently. Reads are bounded: CSV, TSV and JSONL are read
with a cap per line (checked as the bytes arrive, so a stream without line ends stops at the
cap); a JSON document and a pickle are read whole, up to a cap; a pickle is also capped in
what it expands to (see `safe_pickle`).

CSV/TSV files are parsed whole into columns (`read_csv_table`) by the standard library's C
parser, with the physical lines of every record, so that importers can validate a column at a
time and still name the exact line (or lines) of a bad row.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import pickle
import pickletools
import reprlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn, cast

from genremap.collectors.safe_pickle import PickleTooLarge, safe_unpickle
from genremap.errors import UsageError

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
FILE_FORMATS = ("csv", "json", "jsonl", "parquet", "pickle")
MIB = 1024 * 1024
ARROW_BLOCK = 16 * MIB  # pyarrow parses blocks of this size on its threads, a chunk of each column each
MAX_LINE_BYTES = 16 * MIB  # one CSV/TSV/JSONL line
MAX_JSON_BYTES = 256 * MIB  # a whole JSON document (after gunzip)
MAX_PICKLE_BYTES = 256 * MIB  # a whole pickle (after gunzip)
READ_BLOCK = MIB  # CSV bytes are read in blocks this size (well under MAX_LINE_BYTES: see _read_lines_capped)
CSV_CHUNK = 100_000  # records parsed, then turned into columns, at a time
GZIP_MAGIC = b"\x1f\x8b"
ERROR = "__error__"  # key of a record that is a bad row already (its value says why)
_PICKLE_OPCODES = {op.code.encode("latin-1") for op in pickletools.opcodes}
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = _SHORT.maxfrozenset = 4
_SHORT.maxlevel = 3


def short(value: Any) -> str:
    """A short, escaped excerpt of `value` for messages (never the whole of a huge or deep value)."""
    try:
        return _SHORT.repr(value)
    except (ValueError, RecursionError):  # e.g. an int of more than 4,300 digits
        return f"<{type(value).__name__}>"


@dataclass(frozen=True)
class SourceFile:
    """A file that passed the up-front checks: its format, whether it is gzipped, its encoding."""

    path: Path
    fmt: str
    gzipped: bool = False
    encoding: str = "utf-8"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def delimiter(self) -> str:
        return "\t" if ".tsv" in [s.lower() for s in self.path.suffixes] else ","


def column_map(keys: Iterable[Any]) -> dict[str, str]:
    """Our field → the source's column, by alias (case-insensitive, first alias present wins)."""
    lower = {k.lower().strip(): k for k in keys if isinstance(k, str)}
    mapping: dict[str, str] = {}
    for fieldname, aliases in ALIASES.items():
        for alias in aliases:
            if alias in lower and lower[alias] not in mapping.values():
                mapping[fieldname] = lower[alias]
                break
    return mapping


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The format forced by --file-format, else the one the file name says (`.gz` aside)."""
    if fmt:
        if fmt not in FILE_FORMATS:
            raise UsageError(f"--file-format {fmt!r}: expected one of {', '.join(FILE_FORMATS)}")
        return fmt
    for suffix in reversed([s.lower() for s in path.suffixes]):
        if suffix in FORMATS:
            return FORMATS[suffix]
    raise UsageError(
        f"{path.name}: unknown file type; use one of {', '.join(sorted(FORMATS))} (optionally .gz) "
        "or pass --file-format"
    )


def check_encoding(encoding: str) -> str:
    """The codec's canonical name; only encodings that write ASCII as ASCII can split lines safely."""
    probe = '\n\r,;\t"[]{}'
    try:
        name = codecs.lookup(encoding).name
        ascii_compatible = probe.encode(name) == probe.encode("ascii")
    except (LookupError, UnicodeError, TypeError, ValueError):
        raise UsageError(f"--encoding {encoding!r}: unknown text encoding; e.g. utf-8, latin-1, cp1252") from None
    if not ascii_compatible:
        raise UsageError(f"--encoding {encoding}: not supported (not ASCII-compatible); re-encode the file as UTF-8")
    return name


def check_file(path: Path, fmt: str | None = None, encoding: str = "utf-8") -> SourceFile:
    """Everything that can be known about a file before reading it, refused with one line."""
    if not path.exists():
        raise UsageError(f"file not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file")
    kind = detect_format(path, fmt)
    codec = check_encoding(encoding)
    try:
        with path.open("rb") as handle:
            gzipped = handle.read(2) == GZIP_MAGIC
        size = path.stat().st_size
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if gzipped and kind == "parquet":
        raise UsageError(f"{path.name}: a gzipped Parquet file; Parquet is compressed inside already: gunzip it")
    cap = {"json": MAX_JSON_BYTES, "pickle": MAX_PICKLE_BYTES}.get(kind)
    if cap is not None and not gzipped and size > cap:
        raise UsageError(_too_large(path.name, kind, cap))
    return SourceFile(path, kind, gzipped, codec)


def _too_large(name: str, kind: str, cap: int) -> str:
    hint = {
        "json": "write it as JSONL (one object per line), which is read line by line",
        "pickle": "convert it to JSONL or CSV",
    }[kind]
    return f"{name}: more than {cap // MIB} MiB of {kind.upper()}, the most genremap reads at once; {hint}"


@contextmanager
def _open_bytes(source: SourceFile) -> Iterator[IO[bytes]]:
    with source.path.open("rb") as raw:
        if source.gzipped:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield cast(IO[bytes], unzipped)
        else:
            yield raw


def records(source: SourceFile) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) pairs; `where` is what a person needs to find the row.

    A record holding ERROR is a row that is bad already (invalid JSON, too many fields).
    Problems with the file as a whole raise UsageError.
    """
    if source.fmt == "parquet":
        yield from _parquet_records(source)
        return
    if source.fmt == "csv":
        yield from read_csv_table(source).records()
        return
    with _open_bytes(source) as stream:
        if source.fmt == "jsonl":
            yield from _jsonl_records(stream, source)
        elif source.fmt == "json":
            yield from _json_records(stream, source)
        else:
            yield from _pickle_records(stream, source)


# --- text ------------------------------------------------------------------------------------


def _decode_error(source: SourceFile, line: int, column: int, byte: int) -> str:
    hint = (
        "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8) or pass --encoding latin-1 (or cp1252)"
        if source.encoding == "utf-8"
        else "check --encoding"
    )
    return f"{source.name}:{line}: byte 0x{byte:02x} (byte {column} of the line) is not {source.encoding}; {hint}"


def _split_bare_cr(text: str) -> list[str]:
    """Lines of a file with old Mac line ends (a lone \\r), each keeping its end."""
    pieces = text.split("\r")
    lines = [piece + "\r" for piece in pieces[:-1]]
    if pieces[-1] == "\n":
        lines[-1] += "\n"
    elif pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _text_lines(stream: IO[bytes], source: SourceFile) -> Iterator[str]:
    """Decoded lines, each at most MAX_LINE_BYTES; a decoding error names its line and byte."""
    number = 0
    utf8 = source.encoding == "utf-8"
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise UsageError(
                f"{source.name}:{number}: a line longer than {MAX_LINE_BYTES // MIB} MiB; not a table genremap reads"
            )
        if number == 1 and utf8 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            text = raw.decode(source.encoding)
        except UnicodeDecodeError as exc:
            raise UsageError(_decode_error(source, number, exc.start + 1, raw[exc.start])) from None
        if text.count("\r") > text.endswith("\r\n"):
            yield from _split_bare_cr(text)
        else:
            yield text


@dataclass
class CsvTable:
    """A CSV/TSV file parsed into columns, with the physical lines of every record.

    Records are the rows after the header; blank lines are not records. A row shorter than the
    header has None in the missing columns (as csv.DictReader gives); a row with non-blank
    fields beyond the header is a bad row already (`errors`), blank extra fields are dropped.
    """

    name: str
    header: list[str]
    columns: list[list[str | None]]  # one list per header position, one value per record
    first_line: list[int]  # physical line where each record starts (1 is the header's first)
    last_line: list[int]  # ... and where it ends: more than first_line for a quoted line break
    errors: dict[int, str] = field(default_factory=dict)  # record → why it is bad already
    # A file read by pyarrow (see _arrow_table): one chunked string array per header position
    # instead of `columns`, turned into lists only when asked for.
    arrays: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.first_line)

    def _position(self, name: str) -> int:
        return len(self.header) - 1 - self.header[::-1].index(name)

    def column(self, name: str) -> list[str | None]:
        """The values of column `name`; of a name the header repeats, the last one (as DictReader)."""
        if self.arrays and not self.columns:
            self.columns = [[] for _ in self.header]
        position = self._position(name)
        if self.arrays and not self.columns[position]:
            self.columns[position] = self.arrays[position].to_pylist()
        return self.columns[position]

    def array(self, name: str) -> Any:
        """Column `name` as a pyarrow string array when pyarrow read the file, else None."""
        return self.arrays[self._position(name)] if self.arrays else None

    def multiline(self) -> list[int]:
        """Records that span several lines: only these can hold a line break in a field."""
        return [i for i, (a, b) in enumerate(zip(self.first_line, self.last_line, strict=True)) if a != b]

    def where(self, index: int) -> str:
        """file:line, or file:first-last for a record that spans lines."""
        first, last = self.first_line[index], self.last_line[index]
        return f"{self.name}:{first}" if first == last else f"{self.name}:{first}-{last}"

    def record(self, index: int) -> dict[str, Any]:
        """The record as csv.DictReader gives it (a repeated column name: the last one wins)."""
        if index in self.errors:
            return {ERROR: self.errors[index]}
        if self.arrays:
            return dict(zip(self.header, (array[index].as_py() for array in self.arrays), strict=True))
        return dict(zip(self.header, (column[index] for column in self.columns), strict=True))

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for index in range(len(self)):
            yield self.where(index), self.record(index)


def read_csv_table(source: SourceFile, on_rows: Callable[[int], None] = lambda n: None) -> CsvTable:
    """Parse a CSV/TSV file (gzipped or not) into a CsvTable; `on_rows(n)`: n more records read.

    The file's bytes are read whole (lines capped at MAX_LINE_BYTES as the bytes arrive), then
    decoded strictly a block of whole lines at a time (so the text is never held whole) and
    split into lines at \\n, \\r\\n and a lone \\r like a text file; a decoding error names
    its line and byte. Problems with the file as a whole raise UsageError.
    """
    with _open_bytes(source) as stream:
        data = _read_lines_capped(stream, source)
    if source.encoding == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    table = _arrow_table(data, source)
    if table is not None:
        on_rows(len(table))
        return table
    return _parse_csv(data, source, on_rows)


def _arrow_table(data: bytes, source: SourceFile) -> CsvTable | None:
    """The file parsed by pyarrow's CSV reader (C++, a tenth of the csv module's time), or None
    when the file is not one it reads exactly as the csv module does, or when pyarrow is absent:
    then the caller parses it with the csv module (which also words every error).

    Read here only: UTF-8 text of two or more columns with a header of distinct names and no
    quote, every record on one line of its own (no blank line, no line break inside a quoted
    field: the records are exactly the lines after the header), line ends \n or \r\n, no
    NUL, no field over the csv module's field size limit, every row as wide as the header.
    Quoting rules themselves (doubled quotes, text after a closing quote, a quote inside an
    unquoted field) are read by both parsers alike (tests/test_import_differential.py)."""
    if source.encoding != "utf-8" or not data or b"\x00" in data or data.startswith((b"\n", b"\r")):
        return None
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    carriage = data.count(b"\r") if b"\r" in data else 0
    if carriage and carriage != data.count(b"\r\n"):
        return None
    if not data.isascii() and not _is_utf8(data):
        return None
    header_text = data.split(b"\n", 1)[0].decode("utf-8").removesuffix("\r")
    if '"' in header_text:
        return None
    header = header_text.split(source.delimiter)
    if len(header) < 2 or len(set(header)) < len(header):
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow is a dependency; the csv module reads alone
        return None
    try:
        parsed = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=True, block_size=ARROW_BLOCK),
            parse_options=pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    if parsed.num_rows != lines - 1:  # a record over several lines (or a misread one): not ours
        return None
    arrays = parsed.columns  # chunked (a chunk per block): joined only where a use needs it
    if any(_longest(array) > csv.field_size_limit() for array in arrays):
        return None
    records = list(range(2, parsed.num_rows + 2))
    return CsvTable(source.name, header, [], records, records, arrays=arrays)


def _is_utf8(data: bytes) -> bool:
    """Whether `data` is valid UTF-8 as Python's strict decoder sees it, decoded a block at a time
    (the text of a whole file at once would take up to four times its size in memory)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), READ_BLOCK):
            decoder.decode(view[start : start + READ_BLOCK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _longest(array: Any) -> int:
    """The longest value of a pyarrow string array, in bytes (at least its length in characters)."""
    import pyarrow.compute as pc

    return int(pc.max(pc.binary_length(array)).as_py() or 0)


def _read_lines_capped(stream: IO[bytes], source: SourceFile) -> bytes:
    """All the bytes of `stream`, refused as soon as a line (up to its \\n) exceeds MAX_LINE_BYTES.

    Blocks are far smaller than the cap, so a line longer than the cap spans several blocks and
    the length of the line still open at a block's end is all that needs to be tracked.
    """
    blocks: list[bytes] = []
    open_line = 0  # bytes of the line not ended yet
    while block := stream.read(READ_BLOCK):
        end = block.find(b"\n")
        if end < 0:
            open_line += len(block)
        else:
            if open_line + end + 1 > MAX_LINE_BYTES:
                break
            open_line = len(block) - block.rfind(b"\n") - 1
        blocks.append(block)
        if open_line > MAX_LINE_BYTES:
            break
    else:
        return b"".join(blocks)
    lines = sum(block.count(b"\n") for block in blocks)  # line ends before the long line: counted only here
    raise UsageError(
        f"{source.name}:{lines + 1}: a line longer than {MAX_LINE_BYTES // MIB} MiB; not a table genremap reads"
    )


def _decoded_lines(data: bytes, source: SourceFile) -> Iterator[str]:
    """The lines of `data`, decoded a block at a time; blocks end after a \\n, which no
    ASCII-compatible encoding (the only ones check_encoding admits) uses inside a character."""
    start, lines_before = 0, 0
    while start < len(data):
        end = data.find(b"\n", start + READ_BLOCK)
        end = len(data) if end < 0 else end + 1
        block = data[start:end]
        try:
            text = block.decode(source.encoding)
        except UnicodeDecodeError as exc:
            line = lines_before + block.count(b"\n", 0, exc.start) + 1
            column = exc.start - (block.rfind(b"\n", 0, exc.start) + 1) + 1
            raise UsageError(_decode_error(source, line, column, block[exc.start])) from None
        yield from io.StringIO(text, newline="")  # universal line ends, kept: what the csv module expects
        lines_before += block.count(b"\n")
        start = end


def _parse_csv(data: bytes, source: SourceFile, on_rows: Callable[[int], None]) -> CsvTable:
    reader = csv.reader(_decoded_lines(data, source), delimiter=source.delimiter)
    table = CsvTable(source.name, [], [], [], [])
    try:
        table.header = next(reader, [])
    except csv.Error:
        _locate_error(data, source)
    if not table.header:
        return table
    table.columns = [[] for _ in table.header]
    parsed = 0  # rows after the header
    while True:
        before = reader.line_num
        try:
            rows = list(itertools.islice(reader, CSV_CHUNK))
        except csv.Error:
            _locate_error(data, source)
        if not rows:
            return table
        consumed = reader.line_num - before
        if consumed == len(rows):  # one line per row: no field holds a line break
            ends: Sequence[int] = range(before + 1, before + 1 + len(rows))
        else:
            ends = list(itertools.accumulate((1 + _line_breaks(row) for row in rows), initial=before))[1:]
            if ends[-1] != reader.line_num:  # never seen; the reader itself says where each row ends
                ends = _row_ends(data, source, parsed, len(rows))
        _add_rows(table, rows, before, ends)
        parsed += len(rows)
        on_rows(len(rows))


def _row_ends(data: bytes, source: SourceFile, skip: int, count: int) -> list[int]:
    """The last lines of rows skip+1 … skip+count after the header, parsing again row by row."""
    reader = csv.reader(_decoded_lines(data, source), delimiter=source.delimiter)
    for _ in itertools.islice(reader, skip + 1):
        pass
    return [reader.line_num for _ in itertools.islice(reader, count)]


def _locate_error(data: bytes, source: SourceFile) -> NoReturn:
    """Parse a file that failed to parse again, row by row, to name the line where the bad record
    starts (and raise that UsageError)."""
    reader = csv.reader(_decoded_lines(data, source), delimiter=source.delimiter)
    start = 1
    try:
        for _ in reader:
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _csv_error(source, exc, start, reader.line_num) from None
    raise AssertionError("a file that failed to parse parsed the second time")  # pragma: no cover


def _csv_error(source: SourceFile, exc: csv.Error, start: int, line: int) -> UsageError:
    if "field limit" in str(exc):
        return UsageError(
            f"{source.name}:{start}: a field longer than {csv.field_size_limit():,} characters (an unclosed "
            "quote makes one field swallow the lines after it); fix the quoting"
        )
    return UsageError(f"{source.name}:{line}: not valid CSV ({exc})")


def _line_breaks(row: list[str]) -> int:
    """Line ends inside a row's fields (\\r\\n counts once): the lines it spans, less one."""
    return sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in row)


def _add_rows(table: CsvTable, rows: list[list[str]], before: int, ends: Sequence[int]) -> None:
    """Append parsed rows (read after line `before`, row i ending on line ends[i]) to the table."""
    starts = [before + 1, *(end + 1 for end in ends[:-1])] if isinstance(ends, list) else ends
    width = len(table.header)
    if all(len(row) == width for row in rows):
        table.first_line += starts
        table.last_line += ends
        for column, values in zip(table.columns, zip(*rows, strict=True), strict=True):
            column += values
        return
    for start, end, row in zip(starts, ends, rows, strict=True):
        if not row:
            continue  # a blank line
        if len(row) > width and any(isinstance(e, str) and e.strip() for e in row[width:]):
            table.errors[len(table.first_line)] = (
                f"{len(row)} fields where the header has {width} (an unquoted delimiter?)"
            )
        table.first_line.append(start)
        table.last_line.append(end)
        for index, column in enumerate(table.columns):
            column.append(row[index] if index < len(row) else None)


def _jsonl_records(stream: IO[bytes], source: SourceFile) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in enumerate(_text_lines(stream, source), 1):
        if not line.strip():
            continue
        where = f"{source.name}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield where, {ERROR: f"invalid JSON ({exc.msg})"}
            continue
        except (ValueError, RecursionError) as exc:
            yield where, {ERROR: f"invalid JSON ({_json_problem(exc)})"}
            continue
        yield where, item if isinstance(item, dict) else {ERROR: "not a JSON object"}


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested more deeply than genremap reads"
    return str(exc)


def _read_capped(stream: IO[bytes], cap: int, source: SourceFile, first: bytes) -> bytes:
    """The rest of the stream after `first`, refused past `cap` bytes in all."""
    data = first + stream.read(cap + 1 - len(first))
    if len(data) > cap:
        raise UsageError(_too_large(source.name, source.fmt, cap))
    return data


def _json_records(stream: IO[bytes], source: SourceFile) -> Iterator[tuple[str, dict[str, Any]]]:
    head = stream.read(64 * 1024)
    start = head.lstrip(b" \t\r\n" + codecs.BOM_UTF8)[:1]
    if start and start not in b"[{":
        raise UsageError(f"{source.name}: does not start with [ or {{, so it is not a JSON table; check --file-format")
    data = _read_capped(stream, MAX_JSON_BYTES, source, head)
    if source.encoding == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode(source.encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UsageError(_decode_error(source, line, column, data[exc.start])) from None
    del data
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source.name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{source.name}: invalid JSON ({_json_problem(exc)})") from None
    del text
    yield from container_records(parsed, source.name)


# --- binary ----------------------------------------------------------------------------------


def _parquet_records(source: SourceFile) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq  # a dependency; imported here to keep start-up fast

    try:
        parquet = pq.ParquetFile(source.path)
        names = parquet.schema_arrow.names
        wanted = set(column_map(names).values()) | ({"external_ids"} & set(names))
        rows = parquet.read(columns=[n for n in dict.fromkeys(names) if n in wanted]).to_pylist()
    except Exception as exc:  # pyarrow raises several types for a bad file or an unconvertible value
        raise UsageError(f"{source.name}: not a readable Parquet file ({type(exc).__name__}: {short(exc)})") from None
    for number, row in enumerate(rows, 1):
        yield f"{source.name}: row {number}", row


def _pickle_records(stream: IO[bytes], source: SourceFile) -> Iterator[tuple[str, dict[str, Any]]]:
    head = stream.read(64 * 1024)
    if head and head[:1] not in _PICKLE_OPCODES:
        raise UsageError(f"{source.name}: not a pickle (it starts with byte 0x{head[0]:02x}); check --file-format")
    data = _read_capped(stream, MAX_PICKLE_BYTES, source, head)
    try:
        value = safe_unpickle(data)
    except PickleTooLarge as exc:
        raise UsageError(f"{source.name}: {exc}; refused (convert the data to JSONL or CSV)") from None
    except pickle.UnpicklingError as exc:
        raise UsageError(
            f"{source.name}: {exc}: genremap loads only pickles of plain dicts, lists and strings "
            "(such as the original notebook's track dictionary); convert other data to CSV or JSON"
        ) from None
    except Exception as exc:  # a truncated or corrupt pickle raises many types
        raise UsageError(f"{source.name}: not a readable pickle ({type(exc).__name__}: {short(exc)})") from None
    del data
    yield from container_records(value, source.name)


def container_records(data: Any, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
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
                    label = key if isinstance(key, str) and len(key) <= 60 and key.isprintable() else short(key)
                    yield f"{name}: entry {number} ({label})", record
                return
    if not isinstance(data, list):
        raise UsageError(f"{name}: expected a list of records or a mapping of id to record, got {type(data).__name__}")
    for number, item in enumerate(data, 1):
        yield f"{name}: item {number}", item if isinstance(item, dict) else {ERROR: "not an object"}


def check_files(paths: Iterable[Path], fmt: str | None = None, encoding: str = "utf-8") -> list[SourceFile]:
    """Check every file before anything is written, so a bad third file stops the first too."""
    return [check_file(Path(p), fmt, encoding) for p in paths]
