"""The public Python API: rules, labelling and the build as pandas-in, pandas-out functions.

Everything exported here (and from `genremap`) is a documented promise (docs/api.md); the rest
of the package is internal and may change. The CLI runs the same code underneath, so the same
data and seed give the same labels and rows from Python as from `genremap build`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from genremap.dataset.columns import TRACK_COLUMNS  # build_dataset's columns: tracks.csv's
from genremap.errors import GenremapError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from genremap.dataset.labels import Labelling
    from genremap.engine import CompiledRules, Policy, RuleSet
    from genremap.store import Store

__all__ = [
    "ARTIST_COLUMNS",
    "LABEL_COLUMNS",
    "TRACK_COLUMNS",
    "Decision",
    "Explanation",
    "GenremapError",
    "Rules",
    "RulesError",
    "StoreView",
    "build_dataset",
    "label_artists",
    "load_rules",
    "open_store",
]

LABEL_COLUMNS = ("status", "target", "subgenre", "rule", "share")
"""Columns `label_artists` adds (the same meaning as in `genremap artists`)."""

ARTIST_COLUMNS = ("artist_id", "artist", "status", "target", "subgenre", "rule", "share", "source", "tracks")
"""Columns of `StoreView.artists()`, in the order of `genremap artists`."""


class RulesError(UsageError):
    """Rule files that cannot be loaded. The message is the one line the CLI prints
    (`FILE:LINE:COL: problem`, the first problem by file and line); `errors` lists them all."""

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.errors: list[str] = list(errors) or [message]


@dataclass(frozen=True)
class Decision:
    """What the rules decided for one genre string: `target` (None unless `status` is
    "mapped"), the deciding `rule` and its `location` (FILE:LINE:COL), or the ignore entry's."""

    genre: str
    subgenre: str
    status: str
    target: str | None
    rule: str | None
    location: str | None
    reason: str


@dataclass(frozen=True)
class Explanation:
    """Every rule that matched or was vetoed for a genre, and the final decision. `str()` gives
    the lines `genremap explain GENRE` prints; `data` is its `--format json` answer."""

    decision: Decision
    data: dict[str, Any] = field(repr=False)

    @property
    def matches(self) -> list[dict[str, Any]]:
        """One entry per rule that matched (rule, target, kind, pattern, priority, score,
        location, vetoed_by, outcome)."""
        return list(self.data["matches"])

    def __str__(self) -> str:
        from genremap.report import decision_lines

        return "\n".join(decision_lines(self.data))


class Rules:
    """A loaded rule set: map genre strings onto targets, decide and explain them.

    Made by `load_rules`; compiled once, on first use."""

    def __init__(self, ruleset: RuleSet, path: Path) -> None:
        self.ruleset = ruleset
        self.path = path
        self._compiled: CompiledRules | None = None

    def __repr__(self) -> str:
        return f"Rules({str(self.path)!r}, targets={self.targets!r})"

    @property
    def targets(self) -> list[str]:
        """The target genres (the dataset's classes), in declaration order."""
        return list(self.ruleset.targets)

    @property
    def hash(self) -> str:
        """sha256 of the rule files' names and bytes (the manifest's `rules.sha256`)."""
        return self.ruleset.source_hash

    @property
    def policy(self) -> Policy:
        """The artist policy the rule files declare (default: vote)."""
        return self.ruleset.policy

    @property
    def compiled(self) -> CompiledRules:
        """The rules compiled for matching (built on first use)."""
        if self._compiled is None:
            from genremap.engine import CompiledRules

            self._compiled = CompiledRules.build(self.ruleset)
        return self._compiled

    def with_file(self, name: str, text: str) -> Rules:
        """These rules with the rule file `name` added, or replaced, by the YAML `text`: try an
        edit without touching the folder. Raises RulesError (naming `name`) when it is wrong."""
        import os
        import shutil
        import tempfile

        from genremap.engine.loader import display_path

        if Path(name).name != name or not name.endswith((".yaml", ".yml")):
            raise RulesError(f"{name!r}: a rule file name is a bare NAME.yaml")
        with tempfile.TemporaryDirectory(prefix="genremap-rules-") as tmp:
            folder = Path(tmp) / "rules"
            shutil.copytree(self.path, folder)
            (folder / name).write_text(text, encoding="utf-8")
            try:
                edited = load_rules(folder)
            except RulesError as exc:  # name the files as the caller knows them, not the copy
                inside = f"{display_path(folder)}{os.sep}"
                raise RulesError(exc.message.replace(inside, ""), [e.replace(inside, "") for e in exc.errors]) from None
        edited.path = self.path
        return edited

    def map(self, genres: Iterable[str]) -> list[str | None]:
        """The target of each genre string, in order (None where the rules give none); each
        distinct spelling is decided once."""
        from genremap.normalize import normalize_many

        texts = [str(g) for g in genres]
        canonical = normalize_many(texts)
        decided = self.compiled.decide_many(c for c in canonical if c)
        return [decided[c].target if c else None for c in canonical]

    def decide(self, genre: str) -> Decision:
        """The full decision for one genre string (any spelling)."""
        return self.explain(genre).decision

    def explain(self, genre: str) -> Explanation:
        """Why `genre` gets its target: the same explanation as `genremap explain GENRE`."""
        from genremap.report import explain_subgenre

        data = explain_subgenre(self.compiled, str(genre))
        ignored = data["ignored_by"]
        location = data["location"] or (ignored["location"] if ignored else None)
        decision = Decision(
            genre=str(genre),
            subgenre=data["subgenre"],
            status=data["status"],
            target=data["target"],
            rule=data["rule"] if data["status"] == "mapped" else None,
            location=location,
            reason=data["reason"],
        )
        return Explanation(decision, data)


def load_rules(path: str | Path | None = None) -> Rules:
    """The packaged default rules (`path=None`), or every rule file of the folder `path`.

    Raises RulesError with the CLI's `FILE:LINE:COL: problem` line when a file is wrong."""
    from genremap.engine.loader import default_rules_dir
    from genremap.engine.loader import load_rules as load_folder
    from genremap.errors import RuleErrors

    folder = default_rules_dir() if path is None else Path(path)
    if not folder.is_dir():
        raise RulesError(f"{folder}: no such rules folder (give a folder of rules/*.yaml files, or None)")
    try:
        ruleset = load_folder(folder)
    except RuleErrors as exc:
        raise RulesError(exc.message, [e.message for e in exc.errors]) from None
    except UsageError as exc:
        raise RulesError(exc.message) from None
    return Rules(ruleset, folder)


def _rules_of(rules: Rules | str | Path | None) -> Rules:
    return rules if isinstance(rules, Rules) else load_rules(rules)


def _policy_of(rules: Rules, policy: str | None, min_votes: int | None) -> Policy:
    from genremap.dataset.labels import choose_policy

    return choose_policy(rules.ruleset, policy, min_votes)


def _genre_lists(cells: pd.Series, column: str) -> list[tuple[str, ...]]:
    """Each cell as a tuple of genre strings: lists, tuples, arrays, or their string form
    ("['rock', 'blues']", JSON, "a; b"); blank cells are no genres. A cell that is none of
    these is refused naming the column and the row's index label."""
    from genremap.collectors.importers import parse_genres

    out = []
    for label, value in zip(cells.index, cells.tolist(), strict=True):
        try:
            parsed = parse_genres(value)
        except ValueError as exc:
            raise UsageError(f"column {column!r}, row {label!r}: {exc}") from None
        out.append(parsed or ())
    return out


def _genre_table(
    artist_ids: Sequence[Any], lists_by_source: Mapping[str, list[tuple[str, ...]]], votes: Sequence[Any] | None
) -> pd.DataFrame:
    """Rows (artist_id, source, position, genre, votes) from per-artist genre lists."""
    import numpy as np
    import pandas as pd

    frames = []
    for source, lists in lists_by_source.items():
        lengths = np.fromiter((len(g) for g in lists), dtype=np.int64, count=len(lists))
        ids = np.repeat(np.asarray(artist_ids, dtype=object), lengths)
        position = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        weight = np.full(len(ids), np.nan)
        if votes is not None:
            flat = [v for cell, n in zip(votes, lengths.tolist(), strict=True) for v in _votes_cell(cell, n)]
            weight = np.array(flat, dtype=np.float64)
        frames.append(
            pd.DataFrame(
                {
                    "artist_id": ids,
                    "source": source,
                    "position": position,
                    "genre": [g for genres in lists for g in genres],
                    "votes": weight,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _votes_cell(cell: Any, count: int) -> list[float]:
    """A row's vote weights as floats (NaN where none), one per genre."""
    if count == 0 or cell is None or (isinstance(cell, float) and cell != cell):
        return [float("nan")] * count
    values = [float("nan") if v is None else float(v) for v in cell]
    if len(values) != count:
        raise UsageError(f"a votes cell has {len(values)} values for {count} genres")
    return values


def _label_frame(
    frame: pd.DataFrame,
    *,
    ids: Sequence[Any],
    names: Sequence[Any],
    sources: Mapping[str, str],
    rules: Rules,
    policy: Policy,
    votes: str | None = None,
    tracks: Sequence[int] | None = None,
) -> Labelling:
    """Label one artist per row of `frame` (ids must be unique) from its genre columns."""
    import pandas as pd

    from genremap.dataset.labels import label_artist_genres
    from genremap.sources import STORED_SOURCES

    unknown = [name for name in sources if name not in STORED_SOURCES]
    if unknown:
        raise UsageError(f"unknown genre source {unknown[0]!r} (expected {', '.join(STORED_SOURCES)})")
    lists = {source: _genre_lists(frame[column], column) for source, column in sources.items()}
    vote_cells = frame[votes].tolist() if votes is not None else None
    genres = _genre_table(ids, lists, vote_cells)
    artists = pd.DataFrame({"artist_id": list(ids), "name": list(names), "tracks": tracks})
    # The first source of the list that has usable genres gives an artist's genres (--genre-source).
    return label_artist_genres(rules.ruleset, genres, artists, policy, ",".join(sources), compiled=rules.compiled)


def _check_columns(df: pd.DataFrame, columns: Iterable[str | None], what: str) -> None:
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise UsageError(f"{what}: no column {missing[0]!r} (columns: {', '.join(map(str, df.columns))})")


def label_artists(
    df: pd.DataFrame,
    genres: str = "genres",
    name: str = "artist",
    rules: Rules | str | Path | None = None,
    policy: str | None = None,
    sources: Mapping[str, str] | None = None,
    *,
    min_votes: int | None = None,
) -> pd.DataFrame:
    """A copy of `df` (one artist per row) with the columns status, target, subgenre, rule and
    share, decided by the same policy code as the CLI.

    `genres` names the column of genre lists (lists, or their string form as in public Spotify
    dumps). `sources` maps source names to genre columns in precedence order (an artist's
    genres come from the first that has any), e.g. {"spotify": "genres", "musicbrainz":
    "mb_genres"}; it replaces `genres`. `rules`: a Rules, a rules folder, or None for the
    packaged rules; `policy`: vote, first or priority (default: the rules' own)."""
    import pandas as pd

    ruleset = _rules_of(rules)
    chosen = dict(sources) if sources is not None else {"spotify": genres}
    _check_columns(df, [name, *chosen.values()], "label_artists")
    labelling = _label_frame(
        df,
        ids=list(range(len(df))),
        names=df[name].tolist(),
        sources=chosen,
        rules=ruleset,
        policy=_policy_of(ruleset, policy, min_votes),
    )
    decided = labelling.artists
    out = df.copy()
    for column in LABEL_COLUMNS:
        values = decided[column].to_numpy()
        if column != "share":  # text columns: None (not NaN) where there is no value
            values = values.astype(object)
            values[pd.isna(values)] = None
        out[column] = pd.Series(values, index=out.index, dtype=float if column == "share" else object)
    return out


def build_dataset(
    tracks: pd.DataFrame,
    *,
    rules: Rules | str | Path | None = None,
    per_class: int | None = None,
    max_per_artist: int | None = None,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 42,
    targets: Sequence[str] | None = None,
    allow_short: bool = False,
    policy: str | None = None,
    min_votes: int | None = None,
) -> pd.DataFrame:
    """The balanced, de-duplicated, artist-disjoint rows `genremap build` would write to
    tracks.csv (columns TRACK_COLUMNS), from a track table, without a store.

    `tracks` needs track_id, track_name, artist_id, artist_name and genres (the primary
    artist's genre list on every row of theirs); optional: isrc, duration_ms, preview_url,
    genre_source and genre_votes (as `StoreView.tracks()` gives them), dedupe_key. The same
    seed gives the same rows and splits as the CLI on the same data. Raises UsageError when
    the request cannot be met (the message names the class sizes)."""
    import numpy as np
    import pandas as pd

    from genremap.dataset.build import BuildOptions, check_request, dataset_rows, select_tracks
    from genremap.normalize import recording_keys
    from genremap.sources import STORED_SOURCES
    from genremap.store import hashes_or_zero, stable_hashes

    ruleset = _rules_of(rules)
    options = BuildOptions(
        out=Path("."),
        seed=seed,
        per_class=per_class,
        max_per_artist=max_per_artist,
        allow_short=allow_short,
        split=tuple(split),  # type: ignore[arg-type]
        targets=list(targets) if targets is not None else None,
    )
    chosen_targets = check_request(options, ruleset.ruleset)
    _check_columns(tracks, ["track_id", "track_name", "artist_id", "artist_name", "genres"], "build_dataset")
    frame = tracks.reset_index(drop=True)
    ids = frame["track_id"]
    if ids.isna().any() or ids.duplicated().any():
        bad = "a blank track_id" if ids.isna().any() else f"track_id {ids[ids.duplicated()].iloc[0]!r} twice"
        raise UsageError(f"build_dataset: {bad}: each row is one track, with its own id (drop_duplicates first)")
    first = frame.drop_duplicates("artist_id")
    has_source = "genre_source" in frame.columns
    sources = list(STORED_SOURCES) if has_source else ["spotify"]
    by_source = {
        s: first["genres"].where(first["genre_source"].eq(s)) if has_source else first["genres"] for s in sources
    }
    artists = first.assign(**{f"_genres_{s}": v for s, v in by_source.items()})
    labelling = _label_frame(
        artists,
        ids=artists["artist_id"].tolist(),
        names=artists["artist_name"].tolist(),
        sources={s: f"_genres_{s}" for s in sources},
        rules=ruleset,
        policy=_policy_of(ruleset, policy, min_votes),
        votes="genre_votes" if "genre_votes" in frame.columns else None,
    )
    position = pd.Index(artists["artist_id"]).get_indexer(frame["artist_id"])
    labels = labelling.labels
    code = np.where(labels.status[position] == 0, labels.target[position], -1)
    ok = code >= 0
    names = frame["track_name"].astype(object).fillna("").tolist()
    artist_names = frame["artist_name"].astype(object).fillna("").tolist()
    keys = frame["dedupe_key"].tolist() if "dedupe_key" in frame.columns else recording_keys(artist_names, names)
    isrc = [v if isinstance(v, str) and v else None for v in frame.get("isrc", pd.Series([None] * len(frame)))]
    keyed = pd.DataFrame(
        {
            "track_id": frame["track_id"].astype(object),
            "artist": position,
            "dedupe_hash": stable_hashes(keys),
            "isrc_hash": hashes_or_zero(isrc),
            "target": pd.Categorical.from_codes(np.where(ok, code, 0), categories=pd.Index(ruleset.targets)),
        }
    )[ok]
    if keyed.empty:
        raise UsageError("no labelled tracks: no track's artist gets a target from these rules")
    picked = select_tracks(keyed.reset_index(drop=True), chosen_targets, options, labelling).balanced.tracks
    rows = frame.iloc[pd.Index(frame["track_id"]).get_indexer(picked["track_id"])]
    out = dataset_rows(picked, picked["track_id"].to_numpy(dtype=object), rows, labelling)
    from genremap.dataset.export import tracks_csv_order

    return tracks_csv_order(out)[list(TRACK_COLUMNS)].reset_index(drop=True)


class StoreView:
    """A genremap store opened for reading: its reports and its tracks as DataFrames.

    Made by `open_store`; close it (or use `with`) when done."""

    def __init__(self, path: Path, stack: ExitStack, store: Store) -> None:
        self.path = path
        self._stack = stack
        self._store = store

    def __enter__(self) -> StoreView:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StoreView({str(self.path)!r})"

    def close(self) -> None:
        """Close the store file."""
        self._stack.close()

    def _labelling(self, rules: Rules | str | Path | None, policy: str | None, min_votes: int | None) -> Labelling:
        from genremap.dataset.labels import label_store
        from genremap.sources import DEFAULT_GENRE_SOURCE

        ruleset = _rules_of(rules)
        return label_store(self._store, ruleset.ruleset, _policy_of(ruleset, policy, min_votes), DEFAULT_GENRE_SOURCE)

    def report(
        self, rules: Rules | str | Path | None = None, policy: str | None = None, min_votes: int | None = None
    ) -> pd.DataFrame:
        """Coverage per target (the rows of `genremap report --format json`'s `targets`)."""
        import pandas as pd

        from genremap.report import coverage

        return pd.DataFrame(coverage(self._labelling(rules, policy, min_votes))["targets"])

    def unmapped(self, rules: Rules | str | Path | None = None, top: int | None = None) -> pd.DataFrame:
        """Subgenres no rule maps, ranked by the tracks of the artists carrying them, with the
        suggestions `genremap unmapped` makes (all of them unless `top`)."""
        import pandas as pd

        from genremap.report import unmapped

        return pd.DataFrame(unmapped(self._labelling(rules, None, None), top))

    def subgenres(self, rules: Rules | str | Path | None = None) -> pd.DataFrame:
        """Every subgenre of the store with its decision, artists and tracks (`genremap subgenres`)."""
        import pandas as pd

        from genremap.report import subgenres

        return pd.DataFrame(subgenres(self._labelling(rules, None, None)))

    def artists(
        self, rules: Rules | str | Path | None = None, policy: str | None = None, min_votes: int | None = None
    ) -> pd.DataFrame:
        """Every artist with its label (columns ARTIST_COLUMNS), most tracks first: the rows of
        `genremap artists --format json`."""
        import pandas as pd

        from genremap.artist_report import artist_rows

        rows, _ = artist_rows(self._labelling(rules, policy, min_votes))
        return pd.DataFrame(rows, columns=list(ARTIST_COLUMNS))

    def tracks(
        self, rules: Rules | str | Path | None = None, policy: str | None = None, min_votes: int | None = None
    ) -> pd.DataFrame:
        """The store's tracks with their primary artist's genres: the input `build_dataset`
        takes (`build_dataset(store.tracks(), seed=s)` gives the rows of `genremap build
        --seed s`). Columns: track_id, track_name, artist_id, artist_name, genres (the list the
        labels use: the first source that has any), genre_source, genre_votes, isrc,
        duration_ms, preview_url, dedupe_key; in track_id order."""
        import numpy as np
        import pandas as pd

        store = self._store
        with store.snapshot():
            frame = store.tracks_frame(
                ("track_id", "name", "artist_id", "isrc", "duration_ms", "preview_url", "dedupe_key")
            )
            labelling = self._labelling(rules, policy, min_votes)
        frame = frame.rename(columns={"name": "track_name"})
        artists = labelling.artists_in
        rows = labelling.rows
        names = labelling.genre_names.astype(object)
        genre_lists = _rows_to_lists(rows.artist, names[rows.genre], len(artists))
        vote_values = rows.votes if rows.votes is not None else np.full(len(rows.artist), np.nan)
        vote_lists = [
            None if all(v != v for v in votes) else votes
            for votes in _rows_to_lists(rows.artist, vote_values.astype(object), len(artists))
        ]
        source = labelling.artists["genre_source"].to_numpy(dtype=object)
        at = pd.Index(artists["artist_id"]).get_indexer(frame["artist_id"])
        frame.insert(3, "artist_name", artists["name"].to_numpy(dtype=object)[at])
        frame.insert(4, "genres", [genre_lists[i] for i in at])
        frame.insert(5, "genre_source", source[at])
        frame.insert(6, "genre_votes", [vote_lists[i] for i in at])
        return frame


def _rows_to_lists(artist: Any, values: Any, n: int) -> list[list[Any]]:
    """Per artist (0..n-1), the values of its rows in order (rows sorted by artist)."""
    import numpy as np

    bounds = np.searchsorted(artist, np.arange(n + 1))
    items = list(values)
    return [items[bounds[i] : bounds[i + 1]] for i in range(n)]


def open_store(path: str | Path) -> StoreView:
    """Open the store at `path` for reading (it must exist; it is never changed)."""
    from genremap.store import Store

    where = Path(path)
    if not where.is_file():
        raise UsageError(f"{where}: no genremap store there (create one with `genremap import` or `collect`)")
    stack = ExitStack()
    store = stack.enter_context(Store.open(where, create=False, readonly=True))
    return StoreView(where, stack, store)
