"""The `genremap` command line: parses arguments, calls the library, renders the result."""

from __future__ import annotations

import functools
import gc
import os
import shlex
import sqlite3
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from genremap import __version__
from genremap.choices import did_you_mean, resolve_targets
from genremap.defaults import (
    DEFAULT_ALLOWED_HOSTS,
    DEFAULT_API_BASE,
    DEFAULT_AUTH_URL,
    DEFAULT_DB,
    DEFAULT_DEADLINE,
    DEFAULT_DEEZER_API,
    DEFAULT_DURATION_TOLERANCE,
    DEFAULT_FRAME_SECONDS,
    DEFAULT_LASTFM_API,
    DEFAULT_LASTFM_MIN_WEIGHT,
    DEFAULT_MAX_BYTES,
    DEFAULT_MB_API,
    DEFAULT_MIN_SCORE,
    DEFAULT_SEGMENTS,
    DEFAULT_THRESHOLD,
    DEFAULT_WORKERS,
    EMIT_CONFIDENCE,
)
from genremap.errors import GenremapError, RuleErrors, UsageError
from genremap.render import FORMATS, emit, err_console, out_console, write_json
from genremap.sources import DEFAULT_GENRE_SOURCE, STORED_SOURCES, parse_genre_sources
from genremap.words import counted

# Each command imports the stages it runs inside its body: `--help`, `--version`, `schema` and
# `lint` of a rules folder never import pandas, numpy, spotipy, requests or the audio stack
# (tests/test_startup.py holds this).
if TYPE_CHECKING:
    from genremap.dataset.labels import Labelling
    from genremap.engine import RuleSet
    from genremap.http import Retrying
    from genremap.store import Store

app = typer.Typer(
    name="genremap",
    help=(
        "Build balanced, genre-labelled music datasets from Spotify's micro-genres.\n\n"
        "Typical loop: `genremap init work` (plain copies of the packaged rules in work/rules), "
        "`cd work`, `genremap import artists.csv`, `genremap report`, `genremap unmapped`, "
        "edit rules/*.yaml, `genremap diff` (./rules against the packaged rules; `--rev HEAD` "
        "against the last commit in git), `genremap build --out dataset` (from track rows: a track "
        "table or `genremap collect`; an artist table only counts tracks). "
        "Try it offline with `genremap build --sample`."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[Path, typer.Option("--db", help="SQLite store to read and write.", show_default=True)]
ReadDbOption = Annotated[
    Path, typer.Option("--db", help="SQLite store to read (this command never writes it).", show_default=True)
]
BuildDbOption = Annotated[
    Path,
    typer.Option(
        "--db",
        help="SQLite store to read (never written, except that --sample loads the sample into it, "
        "creating it if missing).",
        show_default=True,
    ),
]
RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules", help="Folder of rule files (*.yaml). Default: ./rules if it exists, else the packaged rules."
    ),
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="Output format: table, json or csv.")]
PolicyOption = Annotated[
    str | None,
    typer.Option(
        "--policy",
        help="Artist policy: vote (majority of subgenres), first (seed notebook), priority. "
        "Default: the rules' policy.",
    ),
]
MinVotesOption = Annotated[
    int | None,
    typer.Option(
        "--min-votes",
        help="Drop MusicBrainz genres with fewer votes than this (default 1: keep all); "
        "the vote policy weighs the others by their vote counts.",
    ),
]
GenreSourceOption = Annotated[
    str,
    typer.Option(
        "--genre-source",
        help="Where an artist's genres come from: a comma-separated precedence list of spotify, import, "
        "musicbrainz, lastfm (the first that has any is used; spotify includes imported files unless "
        "import is named); both = spotify,musicbrainz.",
    ),
]


def handles_errors(func: F) -> F:
    """Turn GenremapError, and SQLite errors about the store, into one line on stderr and exit
    status 2; anything else unexpected into one line asking for a bug report, exit status 1
    (GENREMAP_DEBUG=1 shows the traceback instead). Never a traceback by default."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RuleErrors as exc:
            # Located errors read like a compiler's: FILE:LINE:COL: message.
            err_console().print(exc.message, markup=False)
            raise typer.Exit(exc.exit_code) from None
        except GenremapError as exc:
            err_console().print(f"error: {exc.message}", markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console().print(
                "interrupted: the store is consistent; run the same command again to resume", markup=False
            )
            raise typer.Exit(130) from None
        except sqlite3.Error as exc:
            from genremap.store import describe_store_error

            error = describe_store_error(kwargs.get("db") or DEFAULT_DB, exc)
            if error is None or os.environ.get("GENREMAP_DEBUG"):
                raise
            err_console().print(f"error: {error.message}", markup=False)
            raise typer.Exit(error.exit_code) from None

    return _reports_bugs(wrapper)  # type: ignore[return-value]


def _reports_bugs(func: F) -> F:
    """A last resort: an exception genremap did not expect becomes one line, exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("GENREMAP_DEBUG"):
                raise
            first_line = (str(exc).strip().splitlines() or [""])[0]
            err_console().print(
                f"internal error: {type(exc).__name__}: {first_line} (a bug in genremap: please report it; "
                "set GENREMAP_DEBUG=1 for the traceback)",
                markup=False,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    if fmt not in allowed:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(allowed)}")
    return fmt


def _rules(rules_dir: Path | None) -> tuple[Path, RuleSet]:
    from genremap.engine import load_rules, resolve_rules_dir

    folder = resolve_rules_dir(rules_dir)
    return folder, load_rules(folder)


def _label(
    store: Store, ruleset: RuleSet, policy: str | None, genre_source: str, min_votes: int | None = None
) -> Labelling:
    from genremap.dataset.labels import choose_policy, label_store

    parse_genre_sources(genre_source)  # before the store is read
    return label_store(store, ruleset, choose_policy(ruleset, policy, min_votes), genre_source)


_WHOLE_PROCESS = False  # set by `main`: the process is the command's own, not a caller's


def _open_existing(db: Path, *, readonly: bool = True) -> AbstractContextManager[Store]:
    """The store at `db`, which must exist (reports never create an empty one), opened for
    reading only unless the command writes it: reports work on a read-only store.

    By now the command has imported what it runs (pandas...), which stays until it exits: in
    the genremap process (`main`), `gc.freeze()` spares every later garbage collection a walk
    over those objects (about a tenth of a report's time); objects made from here on are
    collected as usual. A program calling `app` itself (tests) keeps its collector as it is."""
    from genremap.store import Store

    if _WHOLE_PROCESS:
        gc.freeze()

    return Store.open(db, create=False, readonly=readonly)


def _retrying(
    service: str, console: Any, max_wait: float, timeout: float = 15.0, deadline: float = DEFAULT_DEADLINE
) -> Retrying:
    """genremap's retry policy for one service, saying so on stderr whenever it waits 2 s or more."""
    from genremap.http import Retrying, RetryPolicy

    if not 0 < deadline < float("inf"):
        raise UsageError(f"--deadline {deadline:g}: expected a positive number of seconds")

    def on_wait(endpoint: str, seconds: float, why: str) -> None:
        if seconds >= 2:
            console.print(f"{why} from {service} ({endpoint}): waiting {seconds:.0f} s", markup=False)

    policy = RetryPolicy(max_wait=max_wait, timeout=timeout, deadline=deadline)
    return Retrying(service, policy, on_wait=on_wait)


def _version_callback(value: bool) -> None:
    if value:
        print(f"genremap {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Build balanced, genre-labelled music datasets from Spotify's micro-genres."""


# --- import ----------------------------------------------------------------------------------


@app.command("import")
@handles_errors
def import_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="CSV, TSV, JSON, JSONL, Parquet or seed-notebook pickle files (optionally gzipped).", metavar="FILE..."
        ),
    ],
    db: DbOption = DEFAULT_DB,
    rules: RulesOption = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse a file, writing nothing of it, if any of its rows is bad.")
    ] = False,
    source: Annotated[
        str,
        typer.Option(
            "--source", help="Genre source the file's genres are stored under: import, spotify, musicbrainz, lastfm."
        ),
    ] = "import",
    file_format: Annotated[
        str | None, typer.Option("--file-format", help="Force the file type: csv, json, jsonl, parquet, pickle.")
    ] = None,
    encoding: Annotated[
        str, typer.Option("--encoding", help="Text encoding of CSV/TSV/JSON/JSONL files, e.g. latin-1, cp1252.")
    ] = "utf-8",
    fmt: FormatOption = "table",
) -> None:
    """Load artist or track tables into the store (idempotent: importing twice changes nothing).

    Columns are recognised by name with aliases: track_id/id, track_name/name/title,
    artist_name/artist/artists, artist_id, genres (a list, a Python or JSON list literal, or
    `;`-separated), count/track_count. Rows without ids get stable ids derived from names.
    A blank genres cell never erases known genres; only `[]` means "no genres". Each file is
    written in one transaction, all files are checked before the first is read.
    Pickles are read with a restricted unpickler that admits only plain dicts, lists and strings.
    Afterwards, one line says how the rules (--rules) cover the store.
    """
    from genremap.collectors.importers import check_files, import_into
    from genremap.progress import counter
    from genremap.report import coverage, tracks_phrase
    from genremap.store import Store

    _check_format(fmt)
    if source not in STORED_SOURCES:
        raise UsageError(f"--source {source!r}: expected one of {', '.join(STORED_SOURCES)}")
    _, ruleset = _rules(rules)  # a broken rule file stops here, before anything is written
    sources = check_files(paths, file_format, encoding)  # so does a missing or unreadable file
    results = import_into(
        db,
        sources,
        strict=strict,
        source=source,
        progress=lambda path: counter(err_console(), f"importing {path.name}", None),
    )
    with Store.open(db) as store:
        cover = coverage(_label(store, ruleset, None, DEFAULT_GENRE_SOURCE))
    rows = [
        {
            "file": Path(r.path).name,
            "table": r.table,
            "rows": r.rows,
            "tracks_new": r.tracks_new,
            "tracks_updated": r.tracks_updated,
            "artists_new": r.artists_new,
            "artists_updated": r.artists_updated,
            "bad_rows": len(r.bad_rows),
        }
        for r in results
    ]
    bad = [{"file": r.path, "where": b.where, "reason": b.reason} for r in results for b in r.bad_rows]
    merged = [{"file": r.path, "where": b.where, "reason": b.reason} for r in results for b in r.duplicates]
    totals = cover["totals"]
    labelled = sum(t["artists"] for t in cover["targets"])
    summary = {
        "artists": totals["artists"],
        "labelled_artists": labelled,
        "tracks": totals["tracks"],
        "track_rows": totals["track_rows"],
        "subgenres": totals["subgenres"],
        "mapped_subgenres": totals["mapped_subgenres"],
    }
    if fmt == "json":
        write_json({"imports": rows, "bad_rows": bad, "merged_rows": merged, "store": str(db), "coverage": summary})
        return
    emit(
        fmt,
        data=None,
        rows=rows,
        columns=list(rows[0]),
        title=f"Imported into {db}",
        numeric=[k for k in rows[0] if k not in ("file", "table")],
        optional=["artists_updated", "tracks_updated"],
    )
    if bad and fmt == "table":
        console = err_console()
        console.print(f"{len(bad)} bad row(s) skipped (use --strict to refuse the file):", markup=False)
        for row in bad[:20]:
            console.print(f"  {row['where']}: {row['reason']}", markup=False)
        if len(bad) > 20:
            console.print(f"  … and {len(bad) - 20} more (see --format json)", markup=False)
    if merged and fmt == "table":
        for row in merged[:5]:
            err_console().print(f"note: {row['where']}: {row['reason']}", markup=False)
        if len(merged) > 5:
            err_console().print(f"note: … and {len(merged) - 5} more merged rows (see --format json)", markup=False)
    if fmt == "table":
        share = labelled / summary["artists"] if summary["artists"] else 0.0
        out_console().print(
            f"store: {counted(summary['artists'], 'artist')}, "
            f"{tracks_phrase(summary['tracks'], totals['track_rows'])}; "
            f"the rules label {counted(labelled, 'artist')} ({share:.0%}) and map {summary['mapped_subgenres']:,} of "
            f"{counted(summary['subgenres'], 'subgenre')}. Next: genremap report, genremap unmapped",
            markup=False,
        )


# --- report ----------------------------------------------------------------------------------


@app.command("report")
@handles_errors
def report_command(
    db: ReadDbOption = DEFAULT_DB,
    rules: RulesOption = None,
    policy: PolicyOption = None,
    genre_source: GenreSourceOption = DEFAULT_GENRE_SOURCE,
    min_votes: MinVotesOption = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="Output format: table, json, csv, or html (a self-contained page, see --out)."
        ),
    ] = "table",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="With --format html: the page to write (default coverage.html)."),
    ] = None,
) -> None:
    """Coverage per target: artists, tracks, share of tracks, distinct subgenres; plus the
    unlabelled, ambiguous and ignored artists. Totals add up. `--format html` writes one offline
    page with a chart and every subgenre, searchable, to open in a browser."""
    from genremap.report import coverage, source_columns, tracks_phrase

    _check_format(fmt, (*FORMATS, "html"))
    if out is not None and fmt != "html":
        raise UsageError(f"--out is for --format html; --format {fmt} prints to stdout")
    if fmt == "html":
        from genremap.html_report import DEFAULT_OUT, Origin, check_out, write_report

        page = check_out(out or DEFAULT_OUT)
        folder, ruleset = _rules(rules)
        with _open_existing(db) as store:
            written = write_report(page, _label(store, ruleset, policy, genre_source, min_votes), Origin(db, folder))
        out_console().print(
            f"wrote {written.path}: {written.subgenres:,} subgenres, {written.bytes:,} bytes", markup=False
        )
        return
    _, ruleset = _rules(rules)
    with _open_existing(db) as store:
        data = coverage(_label(store, ruleset, policy, genre_source, min_votes))
    rows = [dict(r) for r in data["targets"]]
    for status in ("unlabelled", "ambiguous", "ignored"):
        rows.append({"target": f"({status})", **{k: v for k, v in data[status].items() if k != "without_genres"}})
    totals = data["totals"]
    footer = {"target": "total", **totals}
    no_genres = data["unlabelled"]["without_genres"]["artists"]
    caption = (
        f"policy {data['policy']} · {totals['mapped_subgenres']:,} of {counted(totals['subgenres'], 'subgenre')}"
        f" mapped · {counted(totals['conflicts'], 'conflict')}"
        f" · {counted(no_genres, 'artist')} {'has' if no_genres == 1 else 'have'} no genres"
    )
    if totals["tracks"] != totals["track_rows"]:
        caption += f" · {tracks_phrase(totals['tracks'], totals['track_rows'])}"
    from_mb = sum(t["artists_from_musicbrainz"] for t in data["targets"])
    if from_mb:
        caption += f" · {from_mb:,} labelled from MusicBrainz genres"
    by_source = source_columns(data, every=fmt != "table")
    emit(
        fmt,
        data=data,
        rows=rows + ([] if fmt == "table" else [footer]),
        columns=["target", "artists", "tracks", "share", "subgenres", *by_source],
        title=f"Coverage of {db}",
        numeric=["artists", "tracks", "share", "subgenres", *by_source],
        headers={c: c.removeprefix("artists_from_") for c in by_source},
        footer=footer,
        caption=caption,
    )


TABLE_TOP = 50  # artists a table lists unless --top says otherwise


@app.command("artists")
@handles_errors
def artists_command(
    db: ReadDbOption = DEFAULT_DB,
    rules: RulesOption = None,
    target: Annotated[str | None, typer.Option("--target", help="Only artists labelled this target.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only labelled, ambiguous, unlabelled or ignored artists.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Only artists whose genres came from this source (spotify, musicbrainz; none)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Only artists whose name contains TEXT (any case).", metavar="TEXT")
    ] = None,
    top: Annotated[
        int | None,
        typer.Option("--top", help="How many to list, most tracks first (0 = all; default: all, or 50 in a table)."),
    ] = None,
    policy: PolicyOption = None,
    genre_source: GenreSourceOption = DEFAULT_GENRE_SOURCE,
    min_votes: MinVotesOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Every artist with its label, most tracks first: status, target, the subgenre and rule
    that decided it, the winning target's share of the votes, the genre source used and its
    tracks. Every track of an artist takes the artist's label: read this to judge the rules."""
    from genremap.artist_report import ARTIST_COLUMNS, ArtistFilter, artist_rows

    _check_format(fmt)
    if top is not None and top < 0:
        raise UsageError("--top must be 0 (all) or more")
    _, ruleset = _rules(rules)
    wanted = None if target is None else resolve_targets([target], ruleset, "--target")[0]
    with _open_existing(db) as store:
        labelling = _label(store, ruleset, policy, genre_source, min_votes)
    limit = (TABLE_TOP if fmt == "table" else 0) if top is None else top
    rows, matching = artist_rows(labelling, ArtistFilter(wanted, status, source, name, limit or None))
    if fmt != "table":
        emit(fmt, data=rows, rows=rows, columns=list(ARTIST_COLUMNS), title="")
        return
    shown = [{**r, "share": "" if r["share"] is None else f"{r['share']:.0%}"} for r in rows]
    more = f" (top {len(rows):,} of {matching:,} by tracks; --top 0 lists all)" if matching > len(rows) else ""
    emit(
        fmt,
        data=None,
        rows=shown,
        columns=list(ARTIST_COLUMNS),
        title=counted(matching, "artist") + more,
        numeric=["share", "tracks"],
        optional=["artist_id", "rule", "source", "subgenre"],
    )


@app.command("subgenres")
@handles_errors
def subgenres_command(
    db: ReadDbOption = DEFAULT_DB,
    rules: RulesOption = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only mapped, ignored, not_genre or unmapped subgenres.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Only subgenres mapped to this target (any spelling: Hip-Hop)."),
    ] = None,
    genre_source: GenreSourceOption = DEFAULT_GENRE_SOURCE,
    fmt: FormatOption = "table",
) -> None:
    """Every distinct subgenre in the store: its target, the rule and file:line that decided it,
    how many artists carry it and how many tracks they hold."""
    from genremap.engine.loader import display_path
    from genremap.report import subgenres, within_rules_folder

    _check_format(fmt)
    if status not in (None, "mapped", "ignored", "not_genre", "unmapped"):
        raise UsageError(f"--status {status!r}: expected mapped, ignored, not_genre or unmapped")
    rules_dir, ruleset = _rules(rules)
    wanted = None if target is None else resolve_targets([target], ruleset, "--target")[0]
    with _open_existing(db) as store:
        rows = subgenres(_label(store, ruleset, None, genre_source))
    rows = [r for r in rows if (status is None or r["status"] == status) and (wanted is None or r["target"] == wanted)]
    if fmt != "table":
        columns = ["subgenre", "target", "status", "rule", "location", "artists", "tracks", "conflict", "spellings"]
        emit(fmt, data=rows, rows=rows, columns=columns, title="")
        return
    # A table puts the status where the target would be, as `report` does, and locations
    # relative to the rules folder, so that it fits 80 columns with every location whole.
    shown = [{**r, "target": r["target"] or f"({r['status']})"} for r in within_rules_folder(rows, rules_dir)]
    emit(
        fmt,
        data=None,
        rows=shown,
        columns=["subgenre", "target", "rule", "location", "artists", "tracks", "conflict"],
        title=counted(len(rows), "subgenre"),
        numeric=["artists", "tracks"],
        caption=f"locations in {display_path(rules_dir)}" if rows else None,
        optional=["conflict", "rule", "artists"],
    )


@app.command("unmapped")
@handles_errors
def unmapped_command(
    db: ReadDbOption = DEFAULT_DB,
    rules: RulesOption = None,
    top: Annotated[int, typer.Option("--top", help="How many to list (0 = all).")] = 30,
    emit_rules: Annotated[
        Path | None, typer.Option("--emit-rules", help="Write the suggestions as a commented YAML rule file to review.")
    ] = None,
    min_confidence: Annotated[
        float,
        typer.Option(
            "--min-confidence",
            help="Write only suggestions at least this confident (0-1) to --emit-rules; "
            "0.5 is one artist whose other subgenres all agree.",
        ),
    ] = EMIT_CONFIDENCE,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the --emit-rules file if it exists.")] = False,
    genre_source: GenreSourceOption = DEFAULT_GENRE_SOURCE,
    fmt: FormatOption = "table",
) -> None:
    """Unmapped subgenres ranked by the tracks they hold, with an example artist and a suggested
    target, or (ignore) to leave it out, with a confidence from 0 to 1 and its evidence: what the
    rules decide for the other subgenres of the artists carrying it (co-occurrence), for names
    sharing its words, and for the most similarly spelled names."""
    from genremap.report import check_rules_output, emit_rules_yaml, unmapped, write_rules_output

    _check_format(fmt)
    if top < 0:
        raise UsageError("--top must be 0 (all) or more")
    if not 0 <= min_confidence <= 1:
        raise UsageError(f"--min-confidence {min_confidence:g}: expected a number from 0 to 1")
    if emit_rules is not None:
        check_rules_output(emit_rules, force)
    rules_dir, ruleset = _rules(rules)
    with _open_existing(db) as store:
        rows = unmapped(_label(store, ruleset, None, genre_source), top or None)
    if emit_rules is not None:
        write_rules_output(emit_rules, emit_rules_yaml(rows, str(db), min_confidence))
        inside = emit_rules.resolve().parent == rules_dir.resolve()
        note = (
            " (inside the rules folder: it is now live, review it!)"
            if inside
            else "; review it, then move accepted rules into rules/"
        )
        written = sum(1 for r in rows if r["suggested_target"] and r["confidence"] >= min_confidence)
        err_console().print(
            f"wrote {counted(written, 'suggestion')} (confidence {min_confidence:.2f} or more) to {emit_rules}{note}",
            markup=False,
        )
    shown = [{**r, "confidence": f"{r['confidence']:.2f}" if r["suggested_target"] else ""} for r in rows]
    columns = ["subgenre", "tracks", "artists", "example_artist", "suggested_target", "confidence", "evidence"]
    emit(
        fmt,
        data=rows,
        rows=shown if fmt == "table" else rows,
        columns=columns + (["suggestion_source", "ignore_like", "ignore_reason"] if fmt != "table" else []),
        title=f"Unmapped subgenres by tracks (top {top or 'all'})",
        numeric=["tracks", "artists", "confidence"],
        headers={"suggested_target": "suggest", "confidence": "conf"},
        long_text=["evidence"],
    )


@app.command("explain")
@handles_errors
def explain_command(
    text: Annotated[str | None, typer.Argument(help="A subgenre, as Spotify writes it or in any spelling.")] = None,
    artist: Annotated[str | None, typer.Option("--artist", help="Explain an artist's label (name or id).")] = None,
    track: Annotated[str | None, typer.Option("--track", help="Explain a track's label (track id).")] = None,
    db: ReadDbOption = DEFAULT_DB,
    rules: RulesOption = None,
    policy: PolicyOption = None,
    genre_source: GenreSourceOption = DEFAULT_GENRE_SOURCE,
    fmt: FormatOption = "table",
    min_votes: MinVotesOption = None,
) -> None:
    """Why a subgenre, artist or track got its label: every rule that matched or was vetoed,
    priorities, scores, file:line, and the final decision. CSV lists one row per rule match."""
    from genremap.report import explain_artist, explain_subgenre

    _check_format(fmt)
    if sum(x is not None for x in (text, artist, track)) != 1:
        raise UsageError("give exactly one of: a SUBGENRE argument, --artist NAME, --track ID")
    _, ruleset = _rules(rules)
    if text is not None:
        from genremap.engine import CompiledRules

        data = explain_subgenre(CompiledRules.build(ruleset), text)
        if fmt == "json":
            write_json(data)
        elif fmt == "csv":
            _explain_csv([("", data)])
        else:
            _print_decision(data)
        return
    with _open_existing(db) as store:
        if track is not None:
            found = store.track(track)
            if found is None:
                raise UsageError(f"no track with id {track!r} in {db}")
            artist_ids = [found["artist_id"]]
        else:
            assert artist is not None
            matches = store.find_artists(artist)
            if matches.empty:
                from genremap.normalize import normalize_name

                names = store.artists_frame(with_counts=False)["name"].drop_duplicates().tolist()
                raise UsageError(f"no artist named {artist!r} in {db}{did_you_mean(artist, names, normalize_name)}")
            artist_ids = matches["artist_id"].tolist()
            found = None
        labelling = _label(store, ruleset, policy, genre_source, min_votes)
        explained = [
            {**explain_artist(labelling, a, store.genres_of(a)), "musicbrainz": store.musicbrainz_lookup(a)}
            for a in artist_ids
        ]
    if fmt == "csv":
        _explain_csv([(item["name"], sub) for item in explained for sub in item["subgenres"]])
        return
    if fmt == "json":
        write_json(
            {"track": found, "artists": explained} if found else (explained[0] if len(explained) == 1 else explained)
        )
        return
    console = out_console()
    if found:
        console.print(
            f"track {found['track_id']} “{found['track_name']}” takes the label of its primary artist", markup=False
        )
    for item in explained:
        console.print(
            f"artist {item['name']} ({item['artist_id']}), {counted(item['tracks'], 'track')}, "
            + (f"genres from {item['genre_source']}" if item["genre_source"] else "no genres in the store"),
            markup=False,
        )
        for sub in item["subgenres"]:
            _print_decision(sub, indent="  ", raw=sub["genre"])
        for source in item["sources"]:  # the other sources' genres, and why they were not used
            if source["genres"] and not source["used"]:
                genres = ", ".join(
                    f"'{g['genre']}'" + (f" {g['votes']}" if "votes" in g else "") for g in source["genres"]
                )
                console.print(f"  {source['source']} (not used: {source['why']}): {genres}", markup=False)
        lookup = item["musicbrainz"]
        if lookup is not None:
            rejected = ", ".join(f"'{c['name']}' {c['score']:g}" for c in lookup["candidates"][:3])
            matched = f"'{lookup['mb_name']}' (score {lookup['score']:g})" if lookup["status"] == "matched" else ""
            how = f" {lookup['mbid']} by {lookup['method']}" if lookup.get("method") else ""
            console.print(
                f"  MusicBrainz: {lookup['status']} {matched}{how}" + (f"; rejected {rejected}" if rejected else ""),
                markup=False,
            )
            for c in lookup["candidates"][:3] if how else []:
                console.print(f"    rejected {c['mbid']} '{c['name']}': {c.get('reason', '')}", markup=False)
        policy_text = item["policy"]
        votes = ", ".join(f"{v['target']} {v['votes']:g} ({v['share']:.0%})" for v in item["votes"]) or "none"
        scope = item["out_of_scope_votes"]
        if policy_text["out_of_scope"] == "vote":
            votes += f"; out of scope (none) {scope['votes']:g} ({scope['share']:.0%})"
        console.print(
            f"  policy {policy_text['name']} (min share {policy_text['min_share']}, "
            f"min margin {policy_text['min_margin']}); votes: {votes}",
            markup=False,
        )
        verdict = item["target"] if item["status"] == "labelled" else item["status"]
        why = f" via '{item['deciding_subgenre']}' (rule '{item['rule']}')" if item["rule"] else f" ({item['detail']})"
        if item["related_targets_decided"]:
            why += f"; {item['detail']}"
        console.print(f"  → {verdict}{why}", markup=False)


def _explain_csv(decisions: list[tuple[str, dict[str, Any]]]) -> None:
    """One CSV row per rule match (or one row for a subgenre no rule matched)."""
    from genremap.report import EXPLAIN_COLUMNS, explain_rows

    emit("csv", data=None, rows=explain_rows(decisions), columns=EXPLAIN_COLUMNS, title="")


def _print_decision(data: dict[str, Any], indent: str = "", raw: str | None = None) -> None:
    from genremap.report import decision_lines

    console = out_console()
    for line in decision_lines(data, indent, raw):
        console.print(line, markup=False)


# --- diff and lint ----------------------------------------------------------------------------


@app.command("diff")
@handles_errors
def diff_command(
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="The edited rules folder. Default: ./rules if it exists, else the packaged rules."
        ),
    ] = None,
    base: Annotated[Path | None, typer.Option("--base", help="Compare against this rules folder.")] = None,
    rev: Annotated[
        str | None, typer.Option("--rev", help="Compare against the --rules folder as committed at this git revision.")
    ] = None,
    db: ReadDbOption = DEFAULT_DB,
    policy: PolicyOption = None,
    genre_source: GenreSourceOption = DEFAULT_GENRE_SOURCE,
    artists: Annotated[
        bool,
        typer.Option("--artists", help="List the artists that change label (from, to, tracks), most tracks first."),
    ] = False,
    fmt: FormatOption = "table",
) -> None:
    """What an edit of the rules changes before it is applied: a from→to matrix of tracks and
    the subgenres that moved, largest first (`--artists`: the artists that change label). Compares
    ./rules (or --rules) with the packaged rules unless --base DIR or --rev REV; the first line
    says what was compared.

    The loop: `genremap init DIR` (plain copies of the packaged rules in DIR/rules), edit
    DIR/rules/*.yaml, then `genremap diff` in DIR. In a git checkout, `genremap diff --rev HEAD`
    shows what the uncommitted edits change."""
    from genremap.dataset.labels import choose_policy, label_store_each
    from genremap.diff import (
        ARTIST_MOVE_COLUMNS,
        compared_with,
        diff_labellings,
        moved_artists,
        no_change_message,
        rules_at_revision,
        temporary_folder,
    )
    from genremap.engine import default_rules_dir, load_rules, resolve_rules_dir
    from genremap.engine.loader import display_path

    _check_format(fmt)
    if base is not None and rev is not None:
        raise UsageError("give --base DIR or --rev REV, not both")
    parse_genre_sources(genre_source)
    rules = resolve_rules_dir(rules)
    edited = load_rules(rules)
    with temporary_folder() as tmp:
        base_dir = (
            base if base is not None else (rules_at_revision(rules, rev, Path(tmp)) if rev else default_rules_dir())
        )
        base_rules = load_rules(base_dir)
        with _open_existing(db) as store:  # one read of the store, labelled by both rule sets
            before, after = label_store_each(
                store,
                [(base_rules, choose_policy(base_rules, policy)), (edited, choose_policy(edited, policy))],
                genre_source,
            )
    data = diff_labellings(before, after)
    data["base_dir"] = f"{rules}@{rev}" if rev else display_path(base_dir)
    data["rules_dir"] = str(rules)
    data["compared_with"] = compared_with(rules, base, rev, display_path(base_dir))
    if artists:
        data["artists"] = moved_artists(before, after)
    if fmt == "json":
        write_json(data)
        return
    if fmt == "csv" and artists:
        emit("csv", data=None, rows=data["artists"], columns=list(ARTIST_MOVE_COLUMNS), title="")
        return
    if fmt == "csv":
        emit(
            "csv",
            data=None,
            rows=data["subgenres"],
            columns=["subgenre", "from", "to", "from_rule", "to_rule", "artists", "tracks"],
            title="",
        )
        return
    console = out_console()
    if not data["matrix"] and not data["subgenres"]:
        console.print(no_change_message(rules, base, rev, data["compared_with"]), markup=False)
        return
    console.print(
        f"{display_path(rules)} compared with {data['compared_with']}: "
        f"{counted(data['tracks_moved'], 'track')} ({counted(data['artists_moved'], 'artist')}) "
        f"change{'s' if data['tracks_moved'] == 1 else ''} label",
        markup=False,
    )
    if artists:
        emit(
            "table",
            data=None,
            rows=data["artists"],
            columns=list(ARTIST_MOVE_COLUMNS),
            title="Artists that change label",
            numeric=["tracks"],
            optional=["artist_id"],
        )
        return
    emit(
        "table",
        data=None,
        rows=data["matrix"],
        columns=["from", "to", "artists", "tracks"],
        title="Moves (from → to)",
        numeric=["artists", "tracks"],
    )
    emit(
        "table",
        data=None,
        rows=data["subgenres"],
        columns=["subgenre", "from", "to", "to_rule", "artists", "tracks"],
        title="Subgenres that moved",
        numeric=["artists", "tracks"],
        headers={"to_rule": "now decided by"},
    )


@app.command("lint")
@handles_errors
def lint_command(
    rules: RulesOption = None,
    db: ReadDbOption = DEFAULT_DB,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    vocabulary_name: Annotated[
        str | None,
        typer.Option(
            "--vocabulary",
            metavar="NAME",
            help="Also decide every genre of a shipped vocabulary (musicbrainz: MusicBrainz's genre list);"
            " exit 1 if a rule file leaves one undecided.",
        ),
    ] = None,
    fmt: FormatOption = "table",
) -> None:
    """Check the rules: schema errors (exit 2), and warnings for rules that never fire on the
    store, rules shadowed by higher-priority rules, duplicate patterns, targets with no rule.
    With --vocabulary, every name of the list that no rule or ignore entry decides (exit 1)."""
    from genremap.engine import resolve_rules_dir
    from genremap.lint import lint_rules

    _check_format(fmt)
    folder = resolve_rules_dir(rules)
    vocab = None
    if vocabulary_name is not None:
        from genremap.vocabulary import vocabulary

        vocab = vocabulary(vocabulary_name)
    subgenre_list = None
    if db.exists():
        with _open_existing(db) as store:
            from genremap.normalize import normalize_many

            subgenre_list = list(dict.fromkeys(normalize_many(store.genres_frame()["name"].tolist())))
    ruleset, findings = lint_rules(folder, subgenre_list)
    coverage = None
    if vocab is not None and ruleset is not None:
        from genremap.lint import vocabulary_coverage

        coverage = vocabulary_coverage(ruleset, vocab)
        findings = [*findings, *coverage.findings]
    rows = [f.as_dict() for f in findings]
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if fmt == "json":
        write_json(
            {
                "rules": str(folder),
                "store": str(db) if subgenre_list is not None else None,
                "errors": errors,
                "warnings": warnings,
                "findings": rows,
                **({"vocabulary": coverage.summary()} if coverage is not None else {}),
            }
        )
    elif fmt == "csv":
        emit("csv", data=None, rows=rows, columns=["severity", "code", "location", "message"], title="")
    else:
        console = err_console() if errors else out_console()
        for f in findings:
            console.print(f"{f.location}: {f.severity}: {f.message} [{f.code}]", markup=False)
        scope = (
            f"against the {counted(len(subgenre_list), 'subgenre')} of {db}"
            if subgenre_list is not None
            else f"(no store at {db}: static checks only)"
        )
        rules_count = len(ruleset.rules) if ruleset else 0
        out_console().print(
            f"{folder}: {counted(rules_count, 'rule')}, {errors} error(s), {warnings} warning(s) {scope}", markup=False
        )
        if coverage is not None:
            total = coverage.summary()
            out_console().print(
                f"{coverage.vocabulary.title}: {counted(total['names'], 'name')},"
                f" {total['mapped']:,} mapped, {total['ignored']:,} ignored, {total['undecided']:,} undecided"
                + (f", {total['not_genres']:,} not genres" if total["not_genres"] else ""),
                markup=False,
            )
    if errors:
        raise typer.Exit(2)
    if (strict and warnings) or (coverage is not None and coverage.undecided):
        raise typer.Exit(1)


# --- collect and status ------------------------------------------------------------------------


@app.command("collect")
@handles_errors
def collect_command(
    terms: Annotated[
        list[str] | None,
        typer.Option("--term", metavar="TEXT", help="A search term (repeatable); replaces the config's terms."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="collect.yaml: terms, market, results per term, what to fetch. "
            "Default: ./collect.yaml if it exists, else the original notebook's 33 terms.",
        ),
    ] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="A .env file with SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET "
            "(else they are read from the environment).",
        ),
    ] = None,
    market: Annotated[str | None, typer.Option("--market", help="ISO country code for search results.")] = None,
    all_artists: Annotated[bool, typer.Option("--all-artists", help="Also fetch featured artists' genres.")] = False,
    audio_features: Annotated[
        bool, typer.Option("--audio-features", help="Fetch Spotify audio features (extended-quota apps only).")
    ] = False,
    audio_analysis: Annotated[
        bool, typer.Option("--audio-analysis", help="Fetch audio analysis pitches/timbres (extended-quota apps).")
    ] = False,
    max_wait: Annotated[
        float,
        typer.Option(
            "--max-wait", help="Longest Retry-After (seconds) to honour; beyond it, stop and say when to resume."
        ),
    ] = 600.0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before a request times out.")] = 15.0,
    api_base: Annotated[
        str, typer.Option("--api-base", help="Spotify Web API base URL (for proxies and tests).")
    ] = DEFAULT_API_BASE,
    auth_url: Annotated[str, typer.Option("--auth-url", help="Spotify token endpoint URL.")] = DEFAULT_AUTH_URL,
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Summary format: table or json.")] = "table",
) -> None:
    """Search Spotify for tracks and fetch their artists' genres into the store.

    Resumable: every page of results commits with its checkpoint, so after an interruption
    (Ctrl-C, kill, a long Retry-After) the same command carries on where it stopped. The app's
    limits are detected (page size, batch artists, audio features) and remembered. Credentials
    come from SPOTIPY_CLIENT_ID / SPOTIPY_CLIENT_SECRET and are never printed or stored.
    """
    from genremap.collectors.spotify import SpotifyCollector, check_endpoints, load_collect_config, read_credentials
    from genremap.progress import collect_progress
    from genremap.store import Store

    _check_format(fmt, ("table", "json"))
    settings = load_collect_config(config)
    if terms:
        settings.terms = [t.strip() for t in terms if t.strip()]
    if market is not None:
        settings.market = market
    settings.all_artists = settings.all_artists or all_artists
    settings.audio_features = settings.audio_features or audio_features
    settings.audio_analysis = settings.audio_analysis or audio_analysis
    if not settings.terms:
        raise UsageError("no search terms: give --term TEXT or list terms in collect.yaml")
    if max_wait < 0 or timeout <= 0:
        raise UsageError("--max-wait must be >= 0 and --timeout > 0")
    check_endpoints(api_base, auth_url)  # before the credentials are even read
    client_id, secret = read_credentials(env_file)
    console = err_console()
    retrying = _retrying("Spotify", console, max_wait, timeout)
    with Store.open(db) as store, collect_progress(console) as progress:
        collector = SpotifyCollector(
            store, client_id, secret, settings, retrying, api_base=api_base, auth_url=auth_url, progress=progress
        )
        result = collector.run()
    data = {**result.as_dict(), **retrying.stats.summary(), "store": str(db)}
    if fmt == "json":
        write_json(data)
        return
    out = out_console()
    for note in result.notes:
        out.print(f"note: {note}", markup=False)
    out.print(
        f"collected {counted(result.new_tracks, 'new track')} ({result.updated_tracks:,} seen again), "
        f"{counted(result.artists_fetched, 'artist')} fetched, "
        f"{counted(sum(retrying.stats.requests.values()), 'request')}, {counted(data['retries'], 'retry', 'retries')}, "
        f"{data['throttled']:,} rate-limited, {data['waited_seconds']:,} s waited"
        + (f", errors: {data['errors']}" if data["errors"] else ""),
        markup=False,
    )


@app.command("enrich")
@handles_errors
def enrich_command(
    source: Annotated[
        str, typer.Option("--source", help="Where to look genres up: musicbrainz or lastfm.")
    ] = "musicbrainz",
    mb_api: Annotated[str, typer.Option("--mb-api", help="MusicBrainz web service base URL.")] = DEFAULT_MB_API,
    lastfm_api: Annotated[
        str, typer.Option("--lastfm-api", help="Last.fm API base URL (with --source lastfm).")
    ] = DEFAULT_LASTFM_API,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file", help="A .env file with LASTFM_API_KEY (with --source lastfm; else read from the environment)."
        ),
    ] = None,
    min_weight: Annotated[
        int,
        typer.Option("--min-weight", help="With --source lastfm: keep tags whose weight (0-100) is at least this."),
    ] = DEFAULT_LASTFM_MIN_WEIGHT,
    contact: Annotated[
        str | None,
        typer.Option("--contact", help="Contact (e-mail or URL) for the User-Agent MusicBrainz asks for."),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Minimum name-match score (0-100) to accept an artist.")
    ] = DEFAULT_THRESHOLD,
    limit: Annotated[int | None, typer.Option("--limit", help="Look up at most N artists in this run.")] = None,
    max_wait: Annotated[
        float, typer.Option("--max-wait", help="Longest Retry-After (seconds) to honour before stopping.")
    ] = 600.0,
    dump: Annotated[
        Path | None,
        typer.Option(
            "--dump",
            help="Read MusicBrainz's JSON artist dump (artist.tar.xz, or mbdump/artist, plain, .xz or .gz) "
            "instead of the web service: no request, any number of artists.",
        ),
    ] = None,
    refresh: Annotated[
        bool, typer.Option("--all", help="Also look up artists answered before (refresh), not only the new ones.")
    ] = False,
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Summary format: table or json.")] = "table",
) -> None:
    """Fill genres from MusicBrainz for the artists Spotify left without any.

    Only artists with no Spotify genres are searched; names must match (after normalising
    case, accents, punctuation and a leading "The") with a score of at least --threshold.
    Every answer is cached, "no match" included, so a second run sends no request (--all
    asks again). One request per second, as MusicBrainz asks; for large collections,
    --dump reads MusicBrainz's JSON data dump instead (exact normalised names and aliases,
    no request). Labels then use these genres where Spotify has none (see --genre-source on
    the reports).

    --source lastfm asks Last.fm's artist top tags instead (artists with no genres from any
    source; key from LASTFM_API_KEY or --env-file, never shown or stored; five requests per
    second), keeping tags of weight --min-weight or more.
    """
    from genremap.collectors.musicbrainz import SERVICE as MB_SERVICE
    from genremap.collectors.musicbrainz import enrich_musicbrainz

    _check_format(fmt, ("table", "json"))
    if source not in ("musicbrainz", "lastfm"):
        raise UsageError(f"--source {source!r}: expected musicbrainz or lastfm")
    if source == "lastfm":
        if dump is not None:
            raise UsageError("--dump reads MusicBrainz's dump: use it with --source musicbrainz")
        _enrich_from_lastfm(db, lastfm_api, env_file, contact, min_weight, limit, refresh, max_wait, fmt)
        return
    if dump is not None:
        _enrich_from_dump(db, dump, threshold=threshold, limit=limit, refresh=refresh, fmt=fmt)
        return
    _enrich_online(
        db,
        MB_SERVICE,
        max_wait,
        fmt,
        lambda store, retrying, on_artist: enrich_musicbrainz(
            store,
            api=mb_api,
            contact=contact,
            threshold=threshold,
            limit=limit,
            refresh=refresh,
            retrying=retrying,
            on_artist=on_artist,
        ),
    )


def _enrich_from_lastfm(
    db: Path,
    api: str,
    env_file: Path | None,
    contact: str | None,
    min_weight: int,
    limit: int | None,
    refresh: bool,
    max_wait: float,
    fmt: str,
) -> None:
    """`enrich --source lastfm`: the URL checked before the key is read, then the lookups."""
    from genremap.collectors.lastfm import SERVICE, check_min_weight, enrich_lastfm, read_api_key
    from genremap.http import require_https

    require_https(api, "--lastfm-api")
    check_min_weight(min_weight)
    key = read_api_key(env_file)
    _enrich_online(
        db,
        SERVICE,
        max_wait,
        fmt,
        lambda store, retrying, on_artist: enrich_lastfm(
            store,
            key,
            api=api,
            contact=contact,
            min_weight=min_weight,
            limit=limit,
            refresh=refresh,
            retrying=retrying,
            on_artist=on_artist,
        ),
    )


def _enrich_online(
    db: Path, service: str, max_wait: float, fmt: str, run: Callable[[Store, Retrying, Callable[[int, int], None]], Any]
) -> None:
    """One web-service enrichment (`run(store, retrying, on_artist)`) with a bar of artists; the
    requests it sent are counted in the store even when it fails; then its summary."""
    from genremap.progress import tracked

    console = err_console()
    retrying = _retrying(service, console, max_wait)
    with _open_existing(db, readonly=False) as store:
        try:
            with tracked(console, f"{service} lookups") as on_artist:
                result = run(store, retrying, on_artist)
        finally:
            stats = retrying.stats
            store.add_request_counts(stats.requests, stats.throttled, stats.failed)
    looked_up = f"{service}: {counted(result.looked_up, 'artist')} looked up"
    _enrich_summary(result, db, fmt, looked_up, counted(result.requests, "request"))


def _enrich_summary(result: Any, db: Path, fmt: str, before: str, after: str) -> None:
    """An enrichment's summary: JSON, or what was found and left between `before` and `after`."""
    if fmt == "json":
        write_json({**result.summary(), "store": str(db)})
        return
    answered = (
        f"{result.matched:,} matched ({counted(result.genres_added, 'genre')} stored), "
        f"{result.no_match:,} without a match; {result.skipped_cached:,} answered before, {result.pending:,} left"
    )
    out_console().print(f"{before}, {answered}; {after}", markup=False)


def _enrich_from_dump(db: Path, dump: Path, *, threshold: float, limit: int | None, refresh: bool, fmt: str) -> None:
    """`enrich --dump`: read the dump with a bar of bytes read, warn about malformed lines, summarise."""
    from genremap.collectors.mbdump import REPORTED_LINES, enrich_from_dump
    from genremap.progress import bytes_read

    console = err_console()
    warned: list[int] = []

    def warn(line: int, problem: str) -> None:
        if len(warned) < REPORTED_LINES:
            warned.append(line)
            console.print(f"warning: {dump} line {line:,}: {problem}; skipped", markup=False)

    with _open_existing(db, readonly=False) as store, bytes_read(console, f"reading {dump.name}") as on_bytes:
        result = enrich_from_dump(
            store, dump, threshold=threshold, limit=limit, refresh=refresh, on_bytes=on_bytes, on_problem=warn
        )
    if result.malformed > len(warned):
        console.print(f"warning: {result.malformed - len(warned):,} more malformed lines skipped", markup=False)
    skipped = f" ({counted(result.malformed, 'malformed line')} skipped)" if result.malformed else ""
    read = f"MusicBrainz dump {dump}: {counted(result.artists_read, 'artist')} read{skipped}; "
    _enrich_summary(result, db, fmt, read + f"{counted(result.looked_up, 'artist')} answered", "no request sent")


@app.command("status")
@handles_errors
def status_command(db: ReadDbOption = DEFAULT_DB, fmt: FormatOption = "table") -> None:
    """Collection progress: tracks and artists in the store, progress per search term, artists
    and features still pending, what the API allows this app, requests made and 429s seen."""
    from genremap.report import tracks_phrase

    _check_format(fmt)
    with _open_existing(db) as store:
        data = store.status()
    if fmt == "json":
        write_json(data)
        return
    terms = [
        {
            **t,
            "progress": f"{t['next_offset'] if not t['done'] else min(t['total'] or 0, 1000)}/"
            f"{min(t['total'] or 0, 1000) if t['total'] is not None else '?'}",
            "state": "done" if t["done"] else "in progress",
        }
        for t in data["terms"]
    ]
    if fmt == "csv":
        emit("csv", data=None, rows=terms, columns=["term", "market", "next_offset", "total", "done"], title="")
        return
    out = out_console()
    out.print(
        f"{db}: {tracks_phrase(data['tracks'], data['track_rows'])}, {counted(data['artists'], 'artist')} "
        f"({data['artists_with_genres']:,} with genres); pending: {counted(data['artists_pending'], 'artist')}"
        + (
            f", {counted(data['features_pending'], 'audio feature')}"
            if data["api"].get("spotify.audio_features") == "ok"
            else ""
        ),
        markup=False,
    )
    genres_in_words = {
        "available": "given to this app (artist answers carry genres)",
        "unavailable": "none for this app (development mode): run `genremap enrich` to fill the artists' genres",
        "unknown": "not asked yet (no artist answer so far)",
    }
    out.print(f"Spotify genres: {genres_in_words[data['spotify_genres']]}", markup=False)
    if terms:
        emit("table", data=None, rows=terms, columns=["term", "market", "progress", "state"], title="Search terms")
    requests = [
        {"endpoint": e, "requests": n, "throttled": data["throttled"].get(e, 0), "errors": data["errors"].get(e, 0)}
        for e, n in data["requests"].items()
    ]
    if requests:
        emit(
            "table",
            data=None,
            rows=requests,
            columns=["endpoint", "requests", "throttled", "errors"],
            title="Requests",
            numeric=["requests", "throttled", "errors"],
        )
    if data["api"]:
        out.print("API: " + ", ".join(f"{k} = {v}" for k, v in data["api"].items()), markup=False)


# --- dataset folder stages: audio, features, evaluate --------------------------------------------

DatasetOption = Annotated[Path, typer.Option("--dataset", help="Dataset folder written by `genremap build --out`.")]


@app.command("audio")
@handles_errors
def audio_command(
    dataset: DatasetOption,
    deezer_api: Annotated[str, typer.Option("--deezer-api", help="Deezer API base URL.")] = DEFAULT_DEEZER_API,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="HOST",
            help="Also allow this host (repeatable; plain http only for loopback hosts named here). "
            f"Always allowed: {', '.join(DEFAULT_ALLOWED_HOSTS)}.",
        ),
    ] = None,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", help="Size cap per file, enforced while downloading.")
    ] = DEFAULT_MAX_BYTES,
    workers: Annotated[int, typer.Option("--workers", help="Downloads in parallel.")] = DEFAULT_WORKERS,
    min_score: Annotated[
        float, typer.Option("--min-score", help="Minimum artist and title match score (0-100) for a Deezer result.")
    ] = DEFAULT_MIN_SCORE,
    duration_tolerance: Annotated[
        float, typer.Option("--duration-tolerance", help="Seconds a Deezer track's duration may differ from Spotify's.")
    ] = DEFAULT_DURATION_TOLERANCE,
    retry_missing: Annotated[
        bool, typer.Option("--retry-missing", help="Ask again for tracks that ended missing, rejected or failed.")
    ] = False,
    max_wait: Annotated[
        float, typer.Option("--max-wait", help="Longest wait (seconds) for a rate limit before stopping.")
    ] = 600.0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before a request times out.")] = 15.0,
    deadline: Annotated[
        float,
        typer.Option(
            "--deadline", help="Seconds one download (or API answer) may take in all; a slower one fails that track."
        ),
    ] = DEFAULT_DEADLINE,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Summary format: table or json.")] = "table",
) -> None:
    """Download a 30-second MP3 preview for every track of a dataset folder into
    DIR/audio/<target>/<track_id>.mp3, with DIR/audio/manifest.csv (one row per track:
    status found/missing/rejected/failed, source, match score, bytes, sha256, duration).

    The track's Spotify preview_url when tracks.csv has one, else Deezer (by ISRC, then by a
    search with both artist and title; covers, karaoke and other songs are rejected). Only
    https and allowed hosts, a size cap while streaming, MP3 checks, no partial files;
    resumable: files already found (checked by sha256) are not fetched again.
    """
    from genremap.audio.previews import fetch_previews
    from genremap.progress import tracked

    _check_format(fmt, ("table", "json"))
    console = err_console()
    retrying = _retrying("Deezer", console, max_wait, timeout, deadline)
    with tracked(console, "previews") as on_track:
        result = fetch_previews(
            dataset,
            deezer_api=deezer_api,
            allow_hosts=allow_host or (),
            max_bytes=max_bytes,
            workers=workers,
            min_score=min_score,
            duration_tolerance=duration_tolerance,
            retry_missing=retry_missing,
            retrying=retrying,
            on_track=on_track,
        )
    if fmt == "json":
        write_json(result.summary())
        return
    out_console().print(result.describe(), markup=False)


@app.command("features")
@handles_errors
def features_command(
    dataset: DatasetOption,
    segments: Annotated[
        int, typer.Option("--segments", help="Segments kept per clip in pitches.csv/timbres.csv (12 values each).")
    ] = DEFAULT_SEGMENTS,
    segmentation: Annotated[
        str, typer.Option("--segmentation", help="onset (segments between note onsets) or frames (fixed length).")
    ] = "onset",
    frame_seconds: Annotated[
        float, typer.Option("--frame-seconds", help="Segment length with --segmentation frames.")
    ] = DEFAULT_FRAME_SECONDS,
    workers: Annotated[int | None, typer.Option("--workers", help="Processes (default: one per core).")] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Run on a Dask cluster (tcp://host:8786; workers must see DIR at the same path), "
            "or 'local' for a LocalCluster of --workers processes. Needs the [cluster] extra.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Compute every clip again (default: only new or changed clips).")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Summary format: table or json.")] = "table",
) -> None:
    """Compute audio features of every clip under DIR/audio/ (mp3, wav, flac, ogg; file name =
    track id) with librosa, and write pitches.csv and timbres.csv (the notebook's layout: the
    first N segments x 12 chroma / MFCC-timbre values, zero-padded, with a `segments` column)
    and features.csv (per-track summaries; starts track_id,target,split). Needs the [audio]
    extra: pip install 'genremap[audio]'. A file that does not decode is reported and skipped.
    A rerun computes only new or changed clips (DIR/.features_cache.sqlite); --force all."""
    from genremap.audio.features import compute_features
    from genremap.progress import tracked

    _check_format(fmt, ("table", "json"))
    errors = err_console()
    with tracked(errors, "features") as on_file:
        result = compute_features(
            dataset, segments=segments, segmentation=segmentation, frame_seconds=frame_seconds, workers=workers,
            scheduler=scheduler, force=force, on_file=on_file,
            on_cluster=lambda link: errors.print(f"Dask dashboard: {link}", markup=False),
        )  # fmt: skip
    data = {
        "processed": result.processed,
        "computed": result.computed,
        "reused": result.reused,
        "scheduler": result.scheduler or None,
        "padded": result.padded,
        "failed": [{"file": f, "reason": r} for f, r in result.failed],
        "skipped_unknown": result.skipped_unknown,
        "skipped_duplicate": result.skipped_duplicate,
        "no_audio": result.no_audio,
        "files": result.files_written,
        "seconds": round(result.seconds, 2),
        "workers": result.workers,
    }
    if fmt == "json":
        write_json(data)
        return
    out = out_console()
    where = f"on {result.scheduler}, " if result.scheduler else ""
    out.print(
        f"features of {counted(result.processed, 'clip')} ({result.padded:,} shorter than "
        f"{counted(segments, 'segment')}, padded; {result.computed:,} computed, {result.reused:,} unchanged "
        f"and reused) in {result.seconds:.1f} s {where}with {result.workers} worker(s); "
        f"wrote {', '.join(result.files_written)}",
        markup=False,
    )
    for name, reason in result.failed[:10]:
        errors.print(f"skipped {name}: {reason}", markup=False)
    if result.skipped_unknown:
        errors.print(f"{len(result.skipped_unknown)} file(s) not in tracks.csv were skipped", markup=False)
    if result.skipped_duplicate:
        errors.print(f"{len(result.skipped_duplicate)} second file(s) for the same track were skipped", markup=False)
    if result.no_audio:
        errors.print(f"{result.no_audio:,} track(s) of tracks.csv have no audio file", markup=False)
    if result.failed or result.skipped_unknown or result.skipped_duplicate:
        errors.print(f"details: {dataset / 'features_errors.csv'}", markup=False)


@app.command("evaluate")
@handles_errors
def evaluate_command(
    dataset: DatasetOption,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the models and of the mixed split.")] = 0,
    threads: Annotated[
        int, typer.Option("--threads", help="Threads for the models (1 is fastest on small data and busy machines).")
    ] = 1,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output format: table or json.")] = "table",
) -> None:
    """Train quick baselines (logistic regression, gradient boosted trees) on features.csv with
    the dataset's artist-disjoint splits, and beside them on a random split that ignores
    artists, to show how much artist leakage inflates scores. Writes DIR/evaluation.json,
    confusion_matrix.png and per_class_f1.png."""
    from genremap.audio.evaluate import evaluate_dataset, model_rows

    _check_format(fmt, ("table", "json"))
    if threads < 1:
        raise UsageError("--threads must be at least 1")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn missing: evaluate_dataset says what to install
        report = evaluate_dataset(dataset, seed=seed)
    else:
        with threadpool_limits(limits=threads):
            report = evaluate_dataset(dataset, seed=seed)
    if fmt == "json":
        write_json(report)
        return
    emit("table", data=None, rows=model_rows(report), columns=["split", "model", "accuracy", "macro_f1"],
         title=f"Baseline on {dataset} (chance {report['chance']:.1%})", numeric=["accuracy", "macro_f1"],
         headers={"macro_f1": "macro-F1"})  # fmt: skip
    matrix = report["artist_disjoint"]["confusion_matrix"]
    labels = [str(label) for label in matrix["labels"]]
    cm_rows = [
        {"true": label, **dict(zip(labels, values, strict=True))}
        for label, values in zip(labels, matrix["matrix"], strict=True)
    ]
    title = f"Confusion matrix of {report['artist_disjoint']['model']} (artist-disjoint test set; rows: true)"
    emit("table", data=None, rows=cm_rows, columns=["true", *labels], title=title, numeric=labels)
    for warning in report.get("warnings", []):
        err_console().print(f"warning: {warning}", markup=False)
    out_console().print(f"wrote {', '.join(report.get('files', []))} in {dataset}", markup=False)


@app.command("schema")
@handles_errors
def schema_command(
    path_only: Annotated[
        bool, typer.Option("--path", help="Print the schema file's path instead of its text.")
    ] = False,
) -> None:
    """Print the JSON Schema of rule files, for editors (e.g. `# yaml-language-server: $schema=...`)."""
    from genremap.engine.loader import schema_path

    if path_only:
        print(schema_path())
    else:
        sys.stdout.write(schema_path().read_text(encoding="utf-8"))


# --- build -------------------------------------------------------------------------------------


@app.command("build")
@handles_errors
def build_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to write.")] = Path("dataset"),
    sample: Annotated[
        bool, typer.Option("--sample", help="First load the bundled sample into the store (offline, idempotent).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same inputs and seed give the same dataset.")] = 42,
    per_class: Annotated[
        int | None, typer.Option("--per-class", help="Tracks per class (default: the smallest class).")
    ] = None,
    max_per_artist: Annotated[
        int | None, typer.Option("--max-per-artist", help="At most K tracks of one artist per class.")
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="train,validation,test fractions; splits are artist-disjoint.")
    ] = "0.8,0.1,0.1",
    allow_short: Annotated[
        bool, typer.Option("--allow-short", help="Keep classes smaller than --per-class (and drop empty ones).")
    ] = False,
    targets: Annotated[
        str | None,
        typer.Option("--targets", help="Comma-separated subset of targets to build (any spelling: Hip-Hop, hiphop)."),
    ] = None,
    db: BuildDbOption = DEFAULT_DB,
    rules: RulesOption = None,
    policy: PolicyOption = None,
    genre_source: GenreSourceOption = DEFAULT_GENRE_SOURCE,
    min_votes: MinVotesOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Summary format: table or json.")] = "table",
    spreadsheet_safe: Annotated[
        bool,
        typer.Option(
            "--spreadsheet-safe",
            help="Also write tracks_spreadsheet.csv, with cells beginning with = + - @ prefixed by ' "
            "(tracks.csv always keeps values exactly).",
        ),
    ] = False,
) -> None:
    """Label the store, drop duplicate recordings, balance the classes, split by artist and
    write OUT/tracks.csv (+ .parquet) and OUT/manifest.json, replacing a previous dataset there
    all at once."""
    from genremap.store_connect import early_track_keys

    # The store's track keys are read on a thread while pandas is imported and the rules load.
    with early_track_keys(db) if not sample else nullcontext() as early:
        from genremap.dataset.balance import parse_split
        from genremap.dataset.build import BuildOptions, build_dataset, check_build_options
        from genremap.dataset.labels import choose_policy
        from genremap.progress import stages
        from genremap.store import Store

        _check_format(fmt, ("table", "json"))
        ratios = parse_split(split)
        rules_dir, ruleset = _rules(rules)
        chosen_policy = choose_policy(ruleset, policy, min_votes)
        command = "genremap " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else "genremap build"
        options = BuildOptions(
            out=out,
            seed=seed,
            per_class=per_class,
            max_per_artist=max_per_artist,
            allow_short=allow_short,
            split=ratios,
            targets=[t.strip() for t in targets.split(",") if t.strip()] if targets else None,
            genre_source=genre_source,
            command=command,
            spreadsheet_safe=spreadsheet_safe,
        )
        check_build_options(options, ruleset)  # before the store is opened (the early read stops here)
        if not sample and not db.exists():
            raise UsageError(
                f"store not found: {db}: try the bundled sample with `genremap build --sample`, "
                "or import data first (genremap import FILE), or pass --db PATH"
            )
        with (
            Store.open(db, create=sample, readonly=not sample, early=early) as store,
            stages(err_console(), "build") as on_stage,
        ):
            if sample:
                from genremap.sample import load_sample

                on_stage("loading the bundled sample")
                load_sample(store)
            with store.snapshot():  # labels, tracks and details from one state of the store
                result = build_dataset(store, ruleset, chosen_policy, options, rules_dir, on_stage)
    manifest = result.export.manifest
    for warning in result.warnings:
        err_console().print(f"warning: {warning}", markup=False)
    if fmt == "json":
        write_json(manifest)
        return
    console = out_console()
    counts = manifest["counts"]
    rows = [
        {
            "target": t,
            **{s: n for s, n in per_split.items()},
            "total": sum(per_split.values()),
            "available": result.class_sizes.get(t, 0),
        }
        for t, per_split in counts["per_class_split"].items()
    ]
    footer = {"target": "total", **counts["per_split"], "total": counts["tracks"], "available": result.available}
    capped = f" and {result.over_artist_cap:,} beyond --max-per-artist {max_per_artist}" if max_per_artist else ""
    emit(
        "table",
        data=None,
        rows=rows,
        columns=["target", "train", "validation", "test", "total", "available"],
        title=f"Dataset {out} ({counted(result.per_class, 'track')} per class, seed {seed})",
        numeric=["train", "validation", "test", "total", "available"],
        footer=footer,
        caption=f"available = {result.labelled_tracks:,} labelled tracks less "
        f"{result.dropped_isrc + result.dropped_title:,} duplicate recordings"
        f" ({result.dropped_isrc:,} by ISRC, {result.dropped_title:,} by artist + title){capped}",
    )
    console.print(f"wrote {', '.join(str(out / f) for f in result.export.files)}", markup=False)


# --- init --------------------------------------------------------------------------------------


@app.command("init")
@handles_errors
def init_command(
    folder: Annotated[Path, typer.Argument(help="Folder to set up (created if missing).", metavar="DIR")] = Path("."),
) -> None:
    """Set up a folder to work in: DIR/rules/*.yaml (plain copies of the packaged rules, to edit)
    and DIR/collect.yaml (the search terms of `genremap collect`, commented). Never overwrites:
    if any of these files exists, nothing is written.

    Then, in DIR: edit rules/*.yaml, and `genremap diff` shows what the edit changes against the
    packaged rules; every command there uses ./rules unless given --rules."""
    from genremap.scaffold import init_folder
    from genremap.text import escape_unprintable

    scaffold = init_folder(folder)
    rules = [path for path, _ in scaffold.files if path.parent == scaffold.rules_dir]
    shown = escape_unprintable(str(folder))  # as typed: `../work` stays `../work`
    out_console().print(
        f"wrote {len(rules)} rule files to {escape_unprintable(str(scaffold.rules_dir))}/ and "
        f"{escape_unprintable(str(folder / 'collect.yaml'))}. Next: "
        + ("" if shown == "." else f"cd {shlex.quote(shown)}, ")
        + "genremap import FILE --db corpus.db, edit rules/*.yaml, genremap diff --db corpus.db",
        markup=False,
    )


# --- watch -------------------------------------------------------------------------------------


@app.command("watch")
@handles_errors
def watch_command(
    rules: RulesOption = None,
    db: Annotated[
        Path, typer.Option("--db", help="SQLite store to read (once, at start).", show_default=True)
    ] = DEFAULT_DB,
    max_updates: Annotated[
        int | None,
        typer.Option(
            "--max-updates",
            metavar="N",
            help="Exit (status 0) after N updates caused by saves; the render at start does not count.",
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Subgenres that moved listed per update (0 = all).")] = 20,
    policy: PolicyOption = None,
    genre_source: GenreSourceOption = DEFAULT_GENRE_SOURCE,
) -> None:
    """Watch the rules folder and, on every save, show the coverage (the `report` table, with
    each row's change in tracks) and what moved since the previous save (the `diff` moves and
    subgenres). The store is read once; a save re-loads only the rules. A broken rule file shows
    its FILE:LINE:COL error and the watch goes on. Off a terminal, each update is a plain-text
    block starting with `=== `. Ctrl-C stops it (exit status 130)."""
    from genremap.engine import load_rules, resolve_rules_dir
    from genremap.engine.loader import display_path
    from genremap.watch import Session, View, check_options, folder_events, read_store, run

    check_options(policy, genre_source, max_updates)
    if top < 0:
        raise UsageError("--top must be 0 (all) or more")
    folder = resolve_rules_dir(rules)
    if not folder.is_dir():
        load_rules(folder)  # the loader's one-line error for a missing folder or a file
    session = Session(folder, read_store(db), policy, genre_source)
    view = View(out_console(), display_path(folder), str(db), top=top, max_updates=max_updates)
    try:
        run(session, folder_events(folder) if max_updates != 0 else [()], view, max_updates)
    except KeyboardInterrupt:
        err_console().print("stopped watching", markup=False)
        raise typer.Exit(130) from None


def main() -> None:
    """Run one command as the process's only one (raises SystemExit, as `app` does)."""
    global _WHOLE_PROCESS
    _WHOLE_PROCESS = True
    app()


def run() -> None:
    """The `genremap` program (console script, `python -m genremap`): `main`, then the process
    ends at once (`_exit_now`)."""
    try:
        main()
    except SystemExit as exc:
        _exit_now(exc.code)
        raise
    _exit_now(0)


def _exit_now(code: object) -> None:
    """End the process as Python's own exit would, without its last step: taking every module and
    object apart one by one (about 0.2 s after a command that loaded pandas, for nothing: the
    process ends). Streams are flushed and exit handlers run first; a thread still running
    (a caller's, or a cluster's) gets the normal exit instead, which waits for it."""
    import atexit
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    if isinstance(code, str):
        print(code, file=sys.stderr)
        status = 1
    else:
        status = code if isinstance(code, int) else (0 if code is None else 1)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream: nothing more to say
            status = status or 120
    os._exit(status)


if __name__ == "__main__":
    run()
