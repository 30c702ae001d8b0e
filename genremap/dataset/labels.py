"""Store + rules → labelled subgenres, artists and tracks.

Each distinct genre string is normalised and decided once; artists and tracks are then
labelled with integer arrays (artist and subgenre codes), never by looping over rows.
Readable frames for reports are built only when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Protocol

import numpy as np
import pandas as pd

from genremap.engine import CompiledRules, Policy, RuleSet, SubgenreDecision, decisions_frame
from genremap.engine.cache import CacheKey, CacheUse, Saved, cache_key, decide_cached
from genremap.engine.policy import ARTIST_STATUSES, ArtistLabels, DecisionArrays, resolve
from genremap.errors import UsageError
from genremap.normalize import normalize_many
from genremap.sources import (
    DEFAULT_GENRE_SOURCE,
    OTHER_SOURCE,
    SOURCE_BITS,
    STORED_SOURCES,
    VOTE_FILTERED,
    Precedence,
    parse_genre_sources,
)
from genremap.store import Store, TrackIds


@dataclass
class GenreRows:
    """The genres labels use, one row per distinct subgenre of an artist, sorted by artist then
    list position: artist (position in the artists frame), source (code: index into
    genremap.sources.STORED_SOURCES), genre (index into genre_names) and subgenre (index into the
    canonical vocabulary). Every artist's rows come from one source: the first of the precedence
    list that has any."""

    artist: np.ndarray
    source: np.ndarray
    genre: np.ndarray
    subgenre: np.ndarray
    votes: np.ndarray | None = None  # weight per row: vote count, tag weight (NaN where none)


@dataclass
class Labelling:
    """Everything a report or a build needs: decisions per subgenre, labels per artist."""

    ruleset: RuleSet
    policy: Policy
    genre_source: str  # the precedence list, comma-separated (aliases expanded)
    decisions: dict[str, SubgenreDecision]  # canonical subgenre → decision, for subgenres present
    labels: ArtistLabels  # per artist (position in `artists_in`), as integer arrays
    artist_of_key: np.ndarray  # store artist_key → position in the artists frame (-1 when absent)
    artists_in: pd.DataFrame  # the artists frame as given: artist_id, name, tracks, ...
    genre_names: np.ndarray  # genre strings as the sources spell them
    vocab: list[str]  # canonical subgenres present, in code order
    rows: GenreRows = field(repr=False)
    # Rules compiled for the decisions made here; compiled on first use when all were reused.
    compiled_rules: CompiledRules | None = field(default=None, repr=False)
    # How the decisions were made: None when no decision cache was consulted.
    cache: CacheUse | None = None
    # The stored sources consulted, first choice first (`spotify` brings `import` after it).
    sources: tuple[str, ...] = STORED_SOURCES

    @property
    def compiled(self) -> CompiledRules:
        """The rules compiled (for explanations of subgenres the store lacks)."""
        if self.compiled_rules is None:
            self.compiled_rules = CompiledRules.build(self.ruleset)
        return self.compiled_rules

    @cached_property
    def subgenres(self) -> pd.DataFrame:
        """decisions_frame: subgenre, status, target, rule, priority, weight, conflict."""
        return decisions_frame(self.decisions)

    @cached_property
    def artist_genres(self) -> pd.DataFrame:
        """artist (position), artist_id, source, position, genre (as spelled), subgenre (canonical)."""
        rows = self.rows
        return pd.DataFrame(
            {
                "artist": rows.artist,
                "artist_id": self.artists_in["artist_id"].to_numpy(dtype=object)[rows.artist],
                "source": _source_names(rows.source),
                "position": np.arange(len(rows.artist)) - _group_starts(rows.artist),
                "genre": pd.Categorical.from_codes(rows.genre, categories=pd.Index(self.genre_names, dtype=object)),
                "subgenre": pd.Categorical.from_codes(rows.subgenre, categories=pd.Index(self.vocab, dtype=object)),
                "votes": rows.votes if rows.votes is not None else np.full(len(rows.artist), np.nan),
            }
        )

    @cached_property
    def artists(self) -> pd.DataFrame:
        """The artists frame plus status, target, subgenre (canonical), rule, share, detail, genre
        (the deciding subgenre as the source spells it) and genre_source."""
        labels, rows = self.labels, self.rows
        out = self.artists_in.copy()
        out["status"] = np.array(ARTIST_STATUSES, dtype=object)[labels.status]
        out["target"] = np.array([*self.ruleset.targets, None], dtype=object)[labels.target]  # -1 → None
        rule_names = np.array([self.decisions[s].rule_name for s in self.vocab] + [None], dtype=object)
        out["subgenre"] = self._from_deciding_row(np.array([*self.vocab, None], dtype=object), rows.subgenre)
        out["rule"] = self._from_deciding_row(rule_names, rows.subgenre)
        out["share"] = labels.share
        out["detail"] = labels.details(list(self.ruleset.targets))
        out["genre"] = self._from_deciding_row(np.array([*self.genre_names, None], dtype=object), rows.genre)
        out["genre_source"] = _source_names(self.chosen_source)
        return out

    @cached_property
    def chosen_source(self) -> np.ndarray:
        """Per artist: the code of the source its genres came from, -1 where it has none."""
        rows = self.rows
        chosen = np.full(len(self.artists_in), -1, dtype=np.int64)
        starts = _group_firsts(rows.artist)
        chosen[rows.artist[starts]] = rows.source[starts]
        return chosen

    def labelled_by_source(self, where: np.ndarray) -> dict[str, int]:
        """Per stored source: how many of the artists selected by the boolean mask `where` took
        their genres from it (every source, 0 where none, in STORED_SOURCES order)."""
        chosen = self.chosen_source[where]
        counts = np.bincount(chosen[chosen >= 0], minlength=len(STORED_SOURCES))
        return {name: int(n) for name, n in zip(STORED_SOURCES, counts.tolist(), strict=False)}

    @cached_property
    def artist_tracks(self) -> np.ndarray:
        """Tracks per artist (position in `artists_in`), 0 where unknown."""
        return self.artists_in["tracks"].fillna(0).to_numpy().astype(np.int64)

    def subgenre_counts(self) -> dict[str, tuple[int, int]]:
        """Per subgenre carried, in vocabulary order: (artists carrying it, tracks they hold)."""
        rows, n = self.rows, len(self.vocab)
        artists = np.bincount(rows.subgenre, minlength=n)
        tracks = np.zeros(n, dtype=np.int64)
        np.add.at(tracks, rows.subgenre, self.artist_tracks[rows.artist])
        vocab, n_artists, n_tracks = self.vocab, artists.tolist(), tracks.tolist()
        return {vocab[i]: (n_artists[i], n_tracks[i]) for i in np.flatnonzero(artists).tolist()}

    def spellings(self) -> dict[str, list[str]]:
        """Per subgenre carried: the distinct ways the sources spell it, sorted."""
        rows, n_genres = self.rows, len(self.genre_names)
        pairs = np.unique(rows.subgenre.astype(np.int64) * n_genres + rows.genre)
        out: dict[str, set[str]] = {}
        for sub, genre in zip((pairs // n_genres).tolist(), (pairs % n_genres).tolist(), strict=True):
            out.setdefault(self.vocab[sub], set()).add(self.genre_names[genre])
        return {subgenre: sorted(names) for subgenre, names in out.items()}

    def _from_deciding_row(self, values: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """values[codes[deciding row]] per artist; the trailing element of `values` (None) where none."""
        row = self.labels.row
        pick = np.full(len(row), len(values) - 1)
        pick[row >= 0] = codes[row[row >= 0]]
        return values[pick]

    def artist_columns(self, artist: np.ndarray) -> dict[str, np.ndarray]:
        """artist_id, artist_name, subgenre (as spelled) and rule of the given artists, without
        building the whole artists frame (for exports)."""
        row = self.labels.row[artist]
        decided = row >= 0
        genre = np.full(len(artist), None, dtype=object)
        rule = np.full(len(artist), None, dtype=object)
        genre[decided] = self.genre_names.astype(object)[self.rows.genre[row[decided]]]
        rule_names = np.array([self.decisions[s].rule_name for s in self.vocab], dtype=object)
        rule[decided] = rule_names[self.rows.subgenre[row[decided]]]
        return {
            "artist_id": self.artists_in["artist_id"].to_numpy(dtype=object)[artist],
            "artist_name": self.artists_in["name"].to_numpy(dtype=object)[artist],
            "subgenre": genre,
            "rule": rule,
        }


def choose_policy(ruleset: RuleSet, name: str | None, min_votes: int | None = None) -> Policy:
    """The policy named on the command line, else the one in the rules (default: vote), with
    --min-votes when given."""
    if min_votes is not None and min_votes < 1:
        raise UsageError(f"--min-votes {min_votes}: expected a number of votes, 1 or more")
    chosen = ruleset.policy
    if name is not None:
        if name not in ("vote", "first", "priority"):
            raise UsageError(f"unknown policy '{name}' (expected vote, first or priority)")
        chosen = replace(chosen, name=name)
    return chosen if min_votes is None else replace(chosen, min_votes=min_votes)


def _group_firsts(sorted_groups: np.ndarray) -> np.ndarray:
    """Indices of the first element of each run of equal values in a sorted array."""
    if len(sorted_groups) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])


def _group_starts(sorted_groups: np.ndarray) -> np.ndarray:
    """For each element of a sorted array, the index where its run of equal values starts."""
    starts = _group_firsts(sorted_groups)
    return np.repeat(starts, np.diff(np.r_[starts, len(sorted_groups)]))


def _source_names(codes: np.ndarray) -> np.ndarray:
    """Source names of source codes (None for -1 and for codes of unknown names)."""
    names = np.array([*STORED_SOURCES, None], dtype=object)
    codes = np.asarray(codes, dtype=np.int64)
    return names[np.where((codes >= 0) & (codes < len(STORED_SOURCES)), codes, len(STORED_SOURCES))]


def first_source_rows(artist: np.ndarray, source: np.ndarray, keep: np.ndarray, precedence: Precedence) -> np.ndarray:
    """`keep` narrowed to each artist's rows from the first source of `precedence` that has any
    kept row (array work: one pass per source of the list, none per artist)."""
    n = int(artist.max(initial=-1)) + 1
    rank = np.full(len(artist), -1, dtype=np.int64)
    for place, code in enumerate(precedence.codes):
        rank[source == code] = place
    usable = keep & (rank >= 0)
    best = np.full(n, len(precedence.codes), dtype=np.int64)
    for place in range(len(precedence.codes) - 1, -1, -1):
        has = np.bincount(artist[usable & (rank == place)], minlength=n) > 0
        best[has] = place
    return usable & (rank == best[artist])


def label_rows(
    ruleset: RuleSet,
    artists: pd.DataFrame,
    genre_names: np.ndarray,
    artist: np.ndarray,
    source: np.ndarray,
    position: np.ndarray,
    genre: np.ndarray,
    policy: Policy,
    genre_source: str = DEFAULT_GENRE_SOURCE,
    compiled: CompiledRules | None = None,
    artist_of_key: np.ndarray | None = None,
    cache: DecisionStore | None = None,
    votes: np.ndarray | None = None,
) -> Labelling:
    """Label `artists` from genre rows given as arrays: artist (position in `artists`), source
    (code, genremap.sources), position in the source's list, genre (index into `genre_names`),
    and optionally each row's weight (NaN where none): MusicBrainz rows with fewer votes than the
    policy's min_votes are dropped, and the vote policy weighs the others by their weights.
    Each artist's genres come from the first source of the `genre_source` precedence list that
    has any (rows dropped above do not count). With a `cache` (the store), decisions saved by an
    earlier command are reused."""
    precedence = parse_genre_sources(genre_source)
    n_artists = len(artists)
    codes = np.asarray(source, dtype=np.int64)
    keep = np.ones(len(artist), dtype=bool)
    row_votes = None if votes is None else np.asarray(votes, dtype=np.float64)
    if row_votes is not None:
        counted = np.isin(codes, VOTE_FILTERED)
        keep &= ~(counted & (row_votes < policy.min_votes))  # NaN (no count) is kept

    canonical = np.array(normalize_many([str(g) for g in genre_names]), dtype=object)
    canon_code, canon_vocab = pd.factorize(canonical)
    if len(genre):
        keep &= (canonical != "")[genre]
    idx = np.flatnonzero(first_source_rows(artist, codes, keep, precedence))
    # Rows usually arrive sorted (the store scans in key order); sort only when they do not.
    order_key = artist[idx] * (int(position.max(initial=0)) + 1) + position[idx]
    if len(idx) > 1 and not bool(np.all(order_key[1:] >= order_key[:-1])):
        idx = idx[np.lexsort((position[idx], artist[idx]))]
    row_canon = canon_code[genre[idx]] if len(idx) else np.zeros(0, dtype=np.int64)
    if len(canon_vocab) < len(genre_names):
        # Two spellings of one subgenre (`hip-hop`, `hip hop`) on one artist vote once.
        _, first = np.unique(artist[idx] * len(canon_vocab) + row_canon, return_index=True)
        keep_first = np.sort(first)
        idx, row_canon = idx[keep_first], row_canon[keep_first]

    present = np.flatnonzero(np.bincount(row_canon, minlength=len(canon_vocab)))
    vocab = [str(canon_vocab[c]) for c in present]
    code_of = np.full(len(canon_vocab), -1, dtype=np.int64)
    code_of[present] = np.arange(len(present))
    sub = code_of[row_canon]
    if cache is None:
        compiled = compiled or CompiledRules.build(ruleset)
        decided, use = compiled.decide_many(vocab), None
    else:
        decided, use, compiled = _decide_with(cache, ruleset, vocab, compiled)
    decision_list = [decided[s] for s in vocab]
    targets = list(ruleset.targets)
    rows = GenreRows(artist[idx], codes[idx], genre[idx], sub, None if row_votes is None else row_votes[idx])
    weight = None if rows.votes is None else np.where(np.isnan(rows.votes), 1.0, rows.votes)
    labels = resolve(n_artists, rows.artist, sub, DecisionArrays.build(decision_list, targets), policy, targets, weight)
    return Labelling(
        ruleset,
        policy,
        precedence.spec,
        decided,
        labels,
        artist_of_key if artist_of_key is not None else np.arange(n_artists),
        artists,
        np.asarray(genre_names, dtype=object),
        vocab,
        rows,
        compiled,
        use,
        precedence.stored,
    )


class DecisionStore(Protocol):
    """Where decisions are kept between commands (the store)."""

    def decision_cache_entry(self, engine: str, rules: str, vocab: str) -> tuple[str, str, bytes] | None: ...

    def save_decision_cache(self, engine: str, rules: str, vocab: str, payload: bytes) -> bool: ...


def _decide_with(
    cache: DecisionStore, ruleset: RuleSet, vocab: list[str], compiled: CompiledRules | None
) -> tuple[dict[str, SubgenreDecision], CacheUse, CompiledRules | None]:
    """Decide `vocab`, reusing the decisions `cache` holds and saving the new ones."""
    built: list[CompiledRules] = [compiled] if compiled is not None else []

    def compile_once() -> CompiledRules:
        if not built:
            built.append(CompiledRules.build(ruleset))
        return built[0]

    key = cache_key(ruleset, vocab)
    entry = cache.decision_cache_entry(key.engine, key.rules, key.vocab)
    saved = Saved(CacheKey(key.engine, entry[0], entry[1]), entry[2]) if entry is not None else None
    decided, use, payload = decide_cached(ruleset, vocab, saved, compile_once)
    if payload is not None:
        cache.save_decision_cache(key.engine, key.rules, key.vocab, payload)
    return decided, use, built[0] if built else None


def label_artist_genres(
    ruleset: RuleSet,
    artist_genres: pd.DataFrame,
    artists: pd.DataFrame,
    policy: Policy,
    genre_source: str = DEFAULT_GENRE_SOURCE,
    compiled: CompiledRules | None = None,
) -> Labelling:
    """Label artists from readable frames: genres (artist_id, source name, position, genre, and
    optionally votes) and artists (artist_id, name, tracks, ...), without a store."""
    artist = pd.Index(artists["artist_id"]).get_indexer(artist_genres["artist_id"])
    if (artist < 0).any():
        unknown = artist_genres["artist_id"][artist < 0].iloc[0]
        raise ValueError(f"genre row for an artist missing from the artists table: {unknown!r}")
    genre, genre_names = pd.factorize(artist_genres["genre"].astype(object))
    return label_rows(
        ruleset,
        artists.reset_index(drop=True),
        np.asarray(genre_names, dtype=object),
        artist.astype(np.int64),
        _source_codes(artist_genres["source"]),
        artist_genres["position"].to_numpy(dtype=np.int64),
        genre.astype(np.int64),
        policy,
        genre_source,
        compiled,
        votes=artist_genres["votes"].to_numpy(dtype=np.float64) if "votes" in artist_genres else None,
    )


def _source_codes(names: pd.Series) -> np.ndarray:
    """Source codes of source names (OTHER_SOURCE for names this version does not know)."""
    codes = pd.Index(STORED_SOURCES).get_indexer(pd.Index(names.astype(object)))
    return np.where(codes >= 0, codes, OTHER_SOURCE).astype(np.int64)


def _key_index(keys: np.ndarray) -> np.ndarray:
    """An array mapping each key to its position in `keys` (-1 for keys not there)."""
    size = int(keys.max()) + 1 if len(keys) else 0
    index = np.full(size, -1, dtype=np.int64)
    index[keys] = np.arange(len(keys))
    return index


def label_store(
    store: Store,
    ruleset: RuleSet,
    policy: Policy | None = None,
    genre_source: str = DEFAULT_GENRE_SOURCE,
    with_counts: bool = True,
    cache: bool = True,
) -> Labelling:
    """Label every artist of the store under `policy` (default: the rules' policy).

    `with_counts=False` skips counting each artist's tracks (builds do not need it). The three
    reads come from one snapshot, so a command writing the store meanwhile cannot mix them.
    Decisions come from the store's decision cache where it has them and are saved there for
    the next command (`cache=False`: decide every subgenre, save nothing)."""
    return label_store_each(store, [(ruleset, policy)], genre_source, with_counts, cache)[0]


def label_store_each(
    store: Store,
    rulesets: Sequence[tuple[RuleSet, Policy | None]],
    genre_source: str = DEFAULT_GENRE_SOURCE,
    with_counts: bool = True,
    cache: bool = True,
) -> list[Labelling]:
    """Label the store under each (rule set, policy) from one read of it, as `label_store`
    does for one (`diff` labels with the base and the edited rules: one read, one snapshot)."""
    with store.snapshot():
        artists = store.artists_frame(with_counts=with_counts)
        genres, rows = store.genres_frame(), genre_rows_with_votes(store)
    decisions = store if cache else None
    return [label_frames(r, artists, genres, rows, p, genre_source, cache=decisions) for r, p in rulesets]


def genre_rows_with_votes(store: Store) -> pd.DataFrame:
    """The store's genre_rows with a `votes` column: each row's weight (MusicBrainz vote count,
    Last.fm tag weight), NaN where there is none (Spotify's genres, imported ones). Call inside
    a snapshot."""
    rows, counted = store.genre_rows(), store.genre_votes()
    votes = np.full(len(rows), np.nan)
    if len(counted) and len(rows):
        span = int(max(rows["position"].max(), counted["position"].max())) + 1

        def key(frame: pd.DataFrame) -> np.ndarray:
            where = frame["artist_key"].to_numpy() * span + frame["position"].to_numpy()
            return (where << SOURCE_BITS) + frame["source"].to_numpy()

        at = pd.Index(key(counted)).get_indexer(key(rows))
        found = at >= 0
        votes[found] = counted["votes"].to_numpy(dtype=np.float64)[at[found]]
    return rows.assign(votes=votes)


def label_frames(
    ruleset: RuleSet,
    artists: pd.DataFrame,
    genres: pd.DataFrame,
    rows: pd.DataFrame,
    policy: Policy | None = None,
    genre_source: str = DEFAULT_GENRE_SOURCE,
    compiled: CompiledRules | None = None,
    cache: DecisionStore | None = None,
) -> Labelling:
    """Label from the store's frames as read (artists_frame, genres_frame, genre_rows)."""
    artist_of_key = _key_index(artists["artist_key"].to_numpy())
    genre_of_key = _key_index(genres["genre_key"].to_numpy())
    return label_rows(
        ruleset,
        artists,
        genres["name"].to_numpy(dtype=object),
        artist_of_key[rows["artist_key"].to_numpy()],
        rows["source"].to_numpy(),
        rows["position"].to_numpy(),
        genre_of_key[rows["genre_key"].to_numpy()],
        policy or ruleset.policy,
        genre_source,
        compiled,
        artist_of_key=artist_of_key,
        cache=cache,
        votes=rows["votes"].to_numpy(dtype=np.float64) if "votes" in rows else None,
    )


def track_targets(labelling: Labelling, artist_keys: np.ndarray) -> np.ndarray:
    """Each track's target code (index into the rules' targets; -1 when its primary artist is
    not labelled, or not in the labelling at all: imported after it was read), from the store
    artist_key of its primary artist: array lookups."""
    artist = _artist_positions(labelling, artist_keys)
    known = artist >= 0
    target = np.full(len(artist_keys), -1, dtype=np.int64)
    labels = labelling.labels
    target[known] = np.where(labels.status[artist[known]] == 0, labels.target[artist[known]], -1)
    return target


def _artist_positions(labelling: Labelling, artist_keys: np.ndarray) -> np.ndarray:
    """Each store artist_key's position in the labelling's artists frame, -1 where it has none."""
    index = labelling.artist_of_key
    position = np.full(len(artist_keys), -1, dtype=np.int64)
    inside = (artist_keys >= 0) & (artist_keys < len(index))
    position[inside] = index[artist_keys[inside]]
    return position


def labelled_tracks(store: Store, labelling: Labelling) -> pd.DataFrame:
    """Tracks whose primary artist is labelled, in track_id order: track_id, artist (position in
    the artists frame), dedupe_hash, isrc_hash (0 = unknown), target (categorical over the targets)."""
    rows, ids = labelled_track_rows(store, labelling)
    return rows.assign(track_id=pd.Series(ids.take(rows["track_id"].to_numpy()), dtype="str"))


def labelled_track_rows(store: Store, labelling: Labelling) -> tuple[pd.DataFrame, TrackIds]:
    """`labelled_tracks` with each track_id given as its position in `ids` (integers in track_id
    order: they sort, de-duplicate and balance as the ids do), and every track's id: a build
    materialises only the ids it keeps."""
    tracks = store.track_key_arrays()
    keys = tracks.artist_key
    target = track_targets(labelling, keys)
    ok = target >= 0
    chosen = pd.DataFrame(
        {
            "track_id": np.flatnonzero(ok),
            "dedupe_hash": tracks.dedupe_hash[ok],
            "isrc_hash": tracks.isrc_hash[ok],
            "artist": _artist_positions(labelling, keys[ok]),
            "target": pd.Categorical.from_codes(
                target[ok], categories=pd.Index(list(labelling.ruleset.targets), dtype=object)
            ),
        }
    )
    return chosen, tracks.ids
