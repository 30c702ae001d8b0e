"""Store + rules → labelled subgenres, artists and tracks.

Each distinct genre string is normalised and decided once; artists and tracks are then
labelled with integer arrays (artist and subgenre codes), never by looping over rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from genremap.engine import CompiledRules, Policy, RuleSet, SubgenreDecision, decisions_frame
from genremap.engine.policy import ARTIST_STATUSES, ArtistLabels, DecisionArrays, resolve
from genremap.errors import UsageError
from genremap.normalize import normalize_many
from genremap.store import Store

GENRE_SOURCES = ("both", "spotify", "musicbrainz")


@dataclass
class Labelling:
    """Everything a report or a build needs: decisions per subgenre, labels per artist."""

    ruleset: RuleSet
    compiled: CompiledRules
    policy: Policy
    genre_source: str
    decisions: dict[str, SubgenreDecision]  # canonical subgenre → decision, for subgenres present
    subgenres: pd.DataFrame  # decisions_frame: subgenre, status, target, rule, priority, weight, conflict
    # The genres labels use, one row per distinct subgenre of an artist, in list order:
    # artist (position in `artists`), artist_id, source, position, genre (as spelled), subgenre.
    artist_genres: pd.DataFrame
    # artist_id, name, tracks, ... as given, plus status, target, subgenre (canonical), rule,
    # share, detail, genre (the deciding subgenre as the source spells it), genre_source.
    artists: pd.DataFrame
    labels: ArtistLabels  # the same per-artist result as integer arrays
    artist_of_key: np.ndarray  # store artist_key → position in `artists` (-1 when absent)


def choose_policy(ruleset: RuleSet, name: str | None) -> Policy:
    """The policy named on the command line, else the one in the rules (default: vote)."""
    if name is None:
        return ruleset.policy
    if name not in ("vote", "first", "priority"):
        raise UsageError(f"unknown policy '{name}' (expected vote, first or priority)")
    return replace(ruleset.policy, name=name)


def _group_starts(sorted_groups: np.ndarray) -> np.ndarray:
    """For each element of a sorted array, the index where its run of equal values starts."""
    if len(sorted_groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    return np.repeat(starts, np.diff(np.r_[starts, len(sorted_groups)]))


def label_rows(
    ruleset: RuleSet,
    artists: pd.DataFrame,
    genre_names: np.ndarray,
    artist: np.ndarray,
    source: np.ndarray,
    position: np.ndarray,
    genre: np.ndarray,
    policy: Policy,
    genre_source: str = "both",
    compiled: CompiledRules | None = None,
    artist_of_key: np.ndarray | None = None,
) -> Labelling:
    """Label `artists` from genre rows given as arrays: artist (position in `artists`), source
    (strings), position in the source's list, genre (index into `genre_names`)."""
    if genre_source not in GENRE_SOURCES:
        raise UsageError(f"unknown genre source '{genre_source}' (expected {', '.join(GENRE_SOURCES)})")
    compiled = compiled or CompiledRules.build(ruleset)
    n_artists = len(artists)
    is_mb = np.asarray(source == "musicbrainz", dtype=bool)
    if genre_source == "spotify":
        keep = ~is_mb
    elif genre_source == "musicbrainz":
        keep = is_mb
    else:  # Spotify's genres, and MusicBrainz's where Spotify has none
        has_primary = np.bincount(artist[~is_mb], minlength=n_artists) > 0
        keep = ~is_mb | ~has_primary[artist]

    canonical = np.array(normalize_many([str(g) for g in genre_names]), dtype=object)
    canon_code, canon_vocab = pd.factorize(canonical)
    row_canon = canon_code[genre] if len(genre) else np.zeros(0, dtype=np.int64)
    keep &= canonical[genre] != "" if len(genre) else keep
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((position[idx], is_mb[idx], artist[idx]))]
    # One row per (artist, canonical subgenre): `hip-hop` and `hip hop` vote once.
    _, first = np.unique(artist[idx] * max(len(canon_vocab), 1) + row_canon[idx], return_index=True)
    idx = idx[np.sort(first)]
    rows_artist = artist[idx]

    present = np.unique(row_canon[idx])
    vocab = [str(canon_vocab[c]) for c in present]
    sub = np.searchsorted(present, row_canon[idx])
    decided = compiled.decide_many(vocab)
    decision_list = [decided[s] for s in vocab]
    targets = list(ruleset.targets)
    labels = resolve(n_artists, rows_artist, sub, DecisionArrays.build(decision_list, targets), policy, targets)

    artist_genres = pd.DataFrame(
        {
            "artist": rows_artist,
            "artist_id": artists["artist_id"].to_numpy(dtype=object)[rows_artist],
            "source": np.asarray(source, dtype=object)[idx],
            "position": np.arange(len(idx)) - _group_starts(rows_artist),
            "genre": pd.Categorical.from_codes(genre[idx], categories=pd.Index(genre_names, dtype=object)),
            "subgenre": pd.Categorical.from_codes(sub, categories=pd.Index(vocab, dtype=object)),
        }
    )
    out = artists.copy()
    decided_row = labels.row
    has_row = decided_row >= 0
    pick = np.where(has_row, decided_row, 0)

    def from_row(values: np.ndarray) -> np.ndarray:
        result = np.full(n_artists, None, dtype=object)
        if len(values):
            result[has_row] = values[pick[has_row]]
        return result

    rule_names = np.array([d.rule.name if d.rule is not None else None for d in decision_list], dtype=object)
    vocab_arr = np.array(vocab, dtype=object)
    genre_arr = np.asarray(genre_names, dtype=object)
    out["status"] = np.array(ARTIST_STATUSES, dtype=object)[labels.status]
    target_names = np.array([*targets, None], dtype=object)
    out["target"] = target_names[labels.target]  # -1 picks the trailing None
    out["subgenre"] = from_row(vocab_arr[sub]) if len(sub) else from_row(np.zeros(0, dtype=object))
    out["rule"] = from_row(rule_names[sub]) if len(sub) else from_row(np.zeros(0, dtype=object))
    out["share"] = labels.share
    out["detail"] = labels.detail
    out["genre"] = from_row(genre_arr[genre[idx]]) if len(idx) else from_row(np.zeros(0, dtype=object))
    first_source = np.full(n_artists, None, dtype=object)
    starts = np.flatnonzero(np.r_[True, rows_artist[1:] != rows_artist[:-1]]) if len(idx) else np.zeros(0, int)
    first_source[rows_artist[starts]] = np.asarray(source, dtype=object)[idx[starts]]
    out["genre_source"] = first_source
    return Labelling(
        ruleset,
        compiled,
        policy,
        genre_source,
        decided,
        decisions_frame(decided),
        artist_genres,
        out,
        labels,
        artist_of_key if artist_of_key is not None else np.arange(n_artists),
    )


def label_artist_genres(
    ruleset: RuleSet,
    artist_genres: pd.DataFrame,
    artists: pd.DataFrame,
    policy: Policy,
    genre_source: str = "both",
    compiled: CompiledRules | None = None,
) -> Labelling:
    """Label artists from readable frames: genres (artist_id, source, position, genre) and
    artists (artist_id, name, tracks, ...), without a store."""
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
        artist_genres["source"].to_numpy(dtype=object),
        artist_genres["position"].to_numpy(dtype=np.int64),
        genre.astype(np.int64),
        policy,
        genre_source,
        compiled,
    )


def _key_index(keys: np.ndarray) -> np.ndarray:
    """An array mapping each key to its position in `keys` (-1 for keys not there)."""
    size = int(keys.max()) + 1 if len(keys) else 0
    index = np.full(size, -1, dtype=np.int64)
    index[keys] = np.arange(len(keys))
    return index


def label_store(store: Store, ruleset: RuleSet, policy: Policy | None = None, genre_source: str = "both") -> Labelling:
    """Label every artist of the store under `policy` (default: the rules' policy)."""
    artists = store.artists_frame()
    genres = store.genres_frame()
    rows = store.genre_rows()
    artist_of_key = _key_index(artists["artist_key"].to_numpy())
    genre_of_key = _key_index(genres["genre_key"].to_numpy())
    return label_rows(
        ruleset,
        artists,
        genres["name"].to_numpy(dtype=object),
        artist_of_key[rows["artist_key"].to_numpy()],
        rows["source"].to_numpy(dtype=object),
        rows["position"].to_numpy(),
        genre_of_key[rows["genre_key"].to_numpy()],
        policy or ruleset.policy,
        genre_source,
        artist_of_key=artist_of_key,
    )


def labelled_tracks(store: Store, labelling: Labelling) -> pd.DataFrame:
    """Tracks whose primary artist is labelled: row, track_id, artist (position in
    labelling.artists), dedupe_key, isrc, target (categorical over the rules' targets)."""
    tracks = store.track_keys()
    artist = labelling.artist_of_key[tracks["artist_key"].to_numpy()]
    ok = labelling.labels.status[artist] == 0
    chosen = tracks.loc[ok, ["row", "track_id", "dedupe_key", "isrc"]].reset_index(drop=True)
    chosen["artist"] = artist[ok]
    chosen["target"] = pd.Categorical.from_codes(
        labelling.labels.target[artist[ok]], categories=pd.Index(list(labelling.ruleset.targets), dtype=object)
    )
    return chosen
