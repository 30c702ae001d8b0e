"""`genremap watch`: the store labelled again on every save of the rules folder.

The store is read once (artists, genres, genre rows) and kept in memory; a save re-loads only
the rules and re-decides, so an update takes a fraction of a second on a 20,000-artist store.
Each update shows the coverage (the `report` table, with each row's change in tracks) and what
moved since the last good rules (the `diff` moves and the subgenres that moved). A broken rule
file shows its one-line FILE:LINE:COL error and the watch goes on; the next good save is
compared with the last good rules.

`run` takes bursts of changed paths from any iterable (the tests feed lists); `folder_events`
makes them with watchfiles, one burst per save however many events an editor's temporary
files, renames and swaps cause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from genremap.dataset.labels import Labelling, choose_policy, genre_rows_with_votes, label_frames
from genremap.diff import RULE_SUFFIXES, diff_labellings
from genremap.engine import RuleSet, load_rules
from genremap.errors import RuleErrors, UsageError
from genremap.render import table
from genremap.report import STATUS_ROWS, coverage, source_columns
from genremap.sources import parse_genre_sources
from genremap.store import Store
from genremap.text import terminal_safe

# watchfiles yields a burst once no event came for STEP_MS (at most DEBOUNCE_MS after its
# first event), and an empty burst every TIMEOUT_MS without events: the first one says the
# folder is being watched.
STEP_MS = 50
DEBOUNCE_MS = 1_600
TIMEOUT_MS = 200


@dataclass(frozen=True)
class StoreFrames:
    """The store's artists and genres as read once: all that labelling it again needs."""

    path: Path
    artists: pd.DataFrame
    genres: pd.DataFrame
    rows: pd.DataFrame


def read_store(db: Path) -> StoreFrames:
    """Read the store at `db` (which must exist) in one snapshot."""
    with Store.open(db, create=False, readonly=True) as store, store.snapshot():
        return StoreFrames(
            db, store.artists_frame(with_counts=True), store.genres_frame(), genre_rows_with_votes(store)
        )


def check_options(policy: str | None, genre_source: str, max_updates: int | None) -> None:
    """Refuse bad options at start, before the first (possibly broken) rules are read."""
    choose_policy(RuleSet(), policy)
    parse_genre_sources(genre_source)
    if max_updates is not None and max_updates < 0:
        raise UsageError(f"--max-updates {max_updates}: expected 0 (show the rules once) or more")


def is_rule_file(folder: Path, path: str) -> bool:
    """Whether a changed `path` is one of the rule files of `folder` (resolved): a *.yaml or *.yml
    directly inside it. Editors' temporaries (`.#x.yaml` locks, `x.yaml~`, `.x.yaml.swp`,
    `x.yaml.tmp`) are not, nor is anything in a subfolder."""
    changed = Path(path)
    return changed.parent == folder and changed.suffix in RULE_SUFFIXES and not changed.name.startswith((".", "#"))


@dataclass(frozen=True)
class Update:
    """What one render shows: number 0 is the start, then one per burst of saves."""

    number: int
    changed: tuple[str, ...]  # names of the rule files saved (created, changed or deleted)
    seconds: float  # time to load the rules, label and compare
    coverage: dict[str, Any] | None  # of these rules; when broken, of the last good ones (if any)
    previous: dict[str, Any] | None  # coverage of the rules compared with
    diff: dict[str, Any] | None  # what moved since update `since`
    since: int | None  # the update whose rules (the last good ones) these are compared with
    error: str | None = None  # when the rules are broken: the first problem, one line
    more_errors: int = 0  # how many more problems the loader found


class Session:
    """The rules folder, the store as read at start and the last good rules' labelling."""

    def __init__(self, rules_dir: Path, frames: StoreFrames, policy: str | None, genre_source: str) -> None:
        self.rules_dir = rules_dir
        self.folder = rules_dir.resolve()
        self.frames = frames
        self.policy = policy
        self.genre_source = genre_source
        self.good: Labelling | None = None  # the last good rules' labelling
        self.good_coverage: dict[str, Any] | None = None
        self.good_number: int | None = None

    def changed_rule_files(self, burst: Collection[str]) -> tuple[str, ...]:
        """The names of the rule files among a burst of changed paths, sorted."""
        return tuple(sorted({Path(p).name for p in burst if is_rule_file(self.folder, p)}))

    def update(self, number: int, changed: tuple[str, ...] = ()) -> Update:
        """Load the rules, label the store again and compare with the last good rules."""
        start = time.perf_counter()
        if not self.rules_dir.is_dir():
            raise UsageError(f"rules folder {self.rules_dir} was removed or renamed: stopped watching")
        try:
            ruleset = load_rules(self.rules_dir)
        except UsageError as exc:  # located rule errors, or a folder without rule files
            located = isinstance(exc, RuleErrors)
            return Update(
                number,
                changed,
                time.perf_counter() - start,
                coverage=self.good_coverage,
                previous=None,
                diff=None,
                since=self.good_number,
                error=exc.message if located else f"error: {exc.message}",
                more_errors=len(exc.errors) - 1 if isinstance(exc, RuleErrors) else 0,
            )
        labelling = self._label(ruleset)
        cover = coverage(labelling)
        before, before_coverage, since = self.good, self.good_coverage, self.good_number
        diff = diff_labellings(before, labelling) if before is not None else None
        self.good, self.good_coverage, self.good_number = labelling, cover, number
        seconds = time.perf_counter() - start
        return Update(number, changed, seconds, coverage=cover, previous=before_coverage, diff=diff, since=since)

    def _label(self, ruleset: RuleSet) -> Labelling:
        """The store labelled by `ruleset`; the last good labelling again when the files are unchanged."""
        if self.good is not None and self.good.ruleset.source_hash == ruleset.source_hash:
            return self.good
        frames = self.frames
        policy = choose_policy(ruleset, self.policy)
        return label_frames(ruleset, frames.artists, frames.genres, frames.rows, policy, self.genre_source)


def run(
    session: Session,
    events: Iterable[Collection[str]],
    show: Callable[[Update], None],
    max_updates: int | None = None,
) -> int:
    """Show the rules as they are once the first burst arrives (an event source sends one, maybe
    empty, as soon as it watches: no save after that is missed), then one update per burst that
    touches a rule file, until the events end or `max_updates` updates were shown. Returns the
    number of updates shown after the start."""
    count = 0
    started = False
    for burst in events:
        if not started:
            show(session.update(0))
            started = True
        if max_updates is not None and count >= max_updates:
            break
        changed = session.changed_rule_files(burst)
        if not changed:
            continue
        count += 1
        show(session.update(count, changed))
        if max_updates is not None and count >= max_updates:
            break
    return count


def folder_events(folder: Path) -> Iterator[set[str]]:
    """Bursts of changed rule-file paths in `folder`, from watchfiles (native file-system events).

    An editor's save (a temporary file renamed over the old one, a backup swapped, several
    writes) comes as one burst; empty bursts come every TIMEOUT_MS without events, the first as
    soon as the folder is watched. Ctrl-C raises KeyboardInterrupt."""
    import watchfiles

    root = folder.resolve()
    try:
        for changes in watchfiles.watch(
            root,
            watch_filter=lambda _change, path: is_rule_file(root, path),
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            rust_timeout=TIMEOUT_MS,
            yield_on_timeout=True,
            recursive=False,
            raise_interrupt=True,
        ):
            yield {path for _change, path in changes}
    except OSError as exc:  # e.g. the system's limit of watched folders is reached
        raise UsageError(
            f"cannot watch {folder}: {exc.strerror or exc}; set WATCHFILES_FORCE_POLLING=1 to poll the folder instead"
        ) from None


# --- rendering ---------------------------------------------------------------------------------

COVERAGE_COLUMNS = ["target", "artists", "tracks", "share", "subgenres"]
NUMERIC = ["artists", "tracks", "share", "subgenres", "change"]


def coverage_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The `report` table's rows: each target, then the unlabelled, ambiguous and ignored artists."""
    rows = [dict(r) for r in data["targets"]]
    for status in STATUS_ROWS:
        rows.append({"target": f"({status})", **{k: v for k, v in data[status].items() if k != "without_genres"}})
    return rows


def coverage_caption(data: dict[str, Any]) -> str:
    """The `report` table's caption: policy, subgenres mapped, conflicts, artists without genres."""
    totals = data["totals"]
    caption = (
        f"policy {data['policy']} · {totals['mapped_subgenres']:,} of {totals['subgenres']:,} subgenres mapped"
        f" · {totals['conflicts']:,} conflicts"
        f" · {data['unlabelled']['without_genres']['artists']:,} artists have no genres"
    )
    from_mb = sum(t["artists_from_musicbrainz"] for t in data["targets"])
    return caption + (f" · {from_mb:,} labelled from MusicBrainz genres" if from_mb else "")


def coverage_table(data: dict[str, Any], title: str, previous: dict[str, Any] | None) -> Table:
    """The `report` table; with `previous`, a `change` column: each row's tracks gained or lost."""
    rows = coverage_rows(data)
    by_source = source_columns(data, every=False)  # when more than one source labelled artists
    columns = [*COVERAGE_COLUMNS, *by_source]
    if previous is not None:
        before = {r["target"]: r["tracks"] for r in coverage_rows(previous)}
        for row in rows:
            delta = row["tracks"] - before.get(row["target"], 0)
            row["change"] = f"{delta:+,}" if delta else ""
        columns.append("change")
    footer = {"target": "total", **data["totals"]}
    headers = {c: c.removeprefix("artists_from_") for c in by_source}
    numeric = [*NUMERIC, *by_source]
    return table(title, rows, columns, numeric=numeric, headers=headers, footer=footer, caption=coverage_caption(data))


def diff_renderables(diff: dict[str, Any], since: str, top: int) -> list[RenderableType]:
    """The `diff` output: a summary line, the moves (from → to) and the subgenres that moved."""
    if not diff["matrix"] and not diff["subgenres"]:
        return [f"no label changes since {since}"]
    moved = diff["subgenres"]
    shown = moved[:top] if top else moved
    moves = f"{_count(diff['tracks_moved'], 'track')} ({_count(diff['artists_moved'], 'artist')})"
    out: list[RenderableType] = [
        f"{moves} change label since {since}",
        table("Moves (from → to)", diff["matrix"], ["from", "to", "artists", "tracks"], numeric=["artists", "tracks"]),
        table(
            "Subgenres that moved",
            shown,
            ["subgenre", "from", "to", "to_rule", "artists", "tracks"],
            numeric=["artists", "tracks"],
            headers={"to_rule": "now decided by"},
        ),
    ]
    if len(shown) < len(moved):
        out.append(f"… and {len(moved) - len(shown):,} more subgenres moved")
    return out


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _files(names: tuple[str, ...]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} and {len(names) - 3} more"


def _since(number: int | None) -> str:
    return "the start" if number == 0 else f"update {number}"


class View:
    """Shows updates on a console: one plain-text block per update off a terminal (to pipe and
    test), a redrawn screen in a terminal. A block starts with a `=== ` header and ends with a
    status line: `watching ...` once the next save can be shown, or `done: ...` after the last
    update `max_updates` allows. Every string goes through the console, which escapes terminal
    controls (store names and file names are data)."""

    def __init__(self, console: Console, rules: str, db: str, *, top: int = 20, max_updates: int | None = None) -> None:
        self.console = console
        self.rules = rules
        self.db = db
        self.top = top
        self.max_updates = max_updates

    def __call__(self, update: Update) -> None:
        console = self.console
        with console:  # one write per update: the screen is redrawn at once
            if console.is_terminal:
                console.clear()
            for part in self.renderables(update):
                console.print(part)
            console.print(Text(terminal_safe(self.status(update.number)), style="dim"))
        console.file.flush()

    def status(self, number: int) -> str:
        """The block's last line: still watching, or done."""
        if self.max_updates is not None and number >= self.max_updates:
            return f"done: {_count(number, 'update')} (--max-updates {self.max_updates})"
        return f"watching {self.rules} for saves of rule files (the store was read at start); Ctrl-C to stop"

    def header(self, update: Update) -> str:
        if update.number == 0:
            what = f"start · {self.rules} on {self.db}"
        else:
            what = f"update {update.number} · saved {_files(update.changed)}"
        state = " · rules broken" if update.error else ""
        return f"=== {what} · {update.seconds:.2f} s{state} ==="

    def renderables(self, update: Update) -> list[RenderableType]:
        """The block of one update: header, then the error or the coverage and what moved."""
        header = terminal_safe(self.header(update))
        parts: list[RenderableType] = [Text(header, style="bold red" if update.error else "bold")]
        title = f"Coverage of {self.db}"
        if update.error is not None:
            more = f" (and {_count(update.more_errors, 'more problem')})" if update.more_errors else ""
            parts.append(Text(terminal_safe(update.error + more), style="red"))
            if update.since is None:
                parts.append("the rules are broken: still watching; no good rules yet, fix them and save")
                return parts
            parts.append(
                f"the rules are broken: still watching; the next good save is compared with {_since(update.since)}"
            )
            if self.console.is_terminal and update.coverage is not None:
                parts.append(coverage_table(update.coverage, f"{title} with the rules of {_since(update.since)}", None))
            return parts
        assert update.coverage is not None
        parts.append(coverage_table(update.coverage, title, update.previous))
        if update.number == 0:
            return parts
        if update.diff is None:
            parts.append("first good rules: nothing to compare with")
        else:
            parts += diff_renderables(update.diff, _since(update.since), self.top)
        return parts
