"""Store + rules → labelled subgenres, artists and tracks (each distinct subgenre mapped once)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from genremap.engine import CompiledRules, Policy, RuleSet, SubgenreDecision, decisions_frame, resolve_artists
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
    decisions: dict[str, SubgenreDecision]
    subgenres: pd.DataFrame  # subgenre, status, target, rule, priority, weight, conflict
    artist_genres: pd.DataFrame  # artist_id, source, position, genre, subgenre (the genres labels use)
    # artist_id, name, tracks, stored_tracks, status, target, subgenre (canonical), rule, share,
    # detail, genre (the deciding subgenre as the source spells it), genre_source
    artists: pd.DataFrame


def choose_policy(ruleset: RuleSet, name: str | None) -> Policy:
    """The policy named on the command line, else the one in the rules (default: vote)."""
    if name is None:
        return ruleset.policy
    if name not in ("vote", "first", "priority"):
        raise UsageError(f"unknown policy '{name}' (expected vote, first or priority)")
    return replace(ruleset.policy, name=name)


def select_genres(frame: pd.DataFrame, genre_source: str) -> pd.DataFrame:
    """Keep the genre rows labels use: one source, or (`both`) Spotify's and MusicBrainz's where Spotify has none."""
    if genre_source not in GENRE_SOURCES:
        raise UsageError(f"unknown genre source '{genre_source}' (expected {', '.join(GENRE_SOURCES)})")
    is_mb = frame["source"] == "musicbrainz"
    if genre_source == "spotify":
        return frame[~is_mb]
    if genre_source == "musicbrainz":
        return frame[is_mb]
    has_primary = frame.loc[~is_mb, "artist_id"].unique()
    return frame[~is_mb | ~frame["artist_id"].isin(has_primary)]


def label_artist_genres(
    ruleset: RuleSet,
    artist_genres: pd.DataFrame,
    artists: pd.DataFrame,
    policy: Policy,
    genre_source: str = "both",
    compiled: CompiledRules | None = None,
) -> Labelling:
    """Label artists from raw genre rows (artist_id, source, position, genre) without a store."""
    compiled = compiled or CompiledRules.build(ruleset)
    chosen = select_genres(artist_genres, genre_source).copy()
    chosen["subgenre"] = pd.Series(normalize_many(chosen["genre"].tolist()), index=chosen.index, dtype=object)
    chosen = chosen[chosen["subgenre"] != ""]
    # Sources before positions: Spotify's list order, then MusicBrainz's (by votes, as stored).
    chosen = chosen.sort_values(["artist_id", "source", "position"], kind="stable")
    chosen = chosen.drop_duplicates(["artist_id", "subgenre"])
    chosen["position"] = chosen.groupby("artist_id").cumcount()
    decisions = compiled.decide_many(chosen["subgenre"].unique().tolist())
    subgenres = decisions_frame(decisions)
    labels = resolve_artists(chosen[["artist_id", "position", "subgenre"]], subgenres, policy, artists["artist_id"])
    source_of = chosen.drop_duplicates("artist_id").set_index("artist_id")["source"]
    spelling = chosen[["artist_id", "subgenre", "genre"]]
    merged = artists.merge(labels, on="artist_id", how="left").merge(spelling, on=["artist_id", "subgenre"], how="left")
    merged["genre_source"] = merged["artist_id"].map(source_of)
    return Labelling(ruleset, compiled, policy, genre_source, decisions, subgenres, chosen, merged)


def label_store(store: Store, ruleset: RuleSet, policy: Policy | None = None, genre_source: str = "both") -> Labelling:
    """Label every artist of the store under `policy` (default: the rules' policy)."""
    return label_artist_genres(
        ruleset, store.artist_genres_frame(), store.artists_frame(), policy or ruleset.policy, genre_source
    )


def labelled_tracks(store: Store, labelling: Labelling) -> pd.DataFrame:
    """Tracks whose primary artist is labelled: track_id, artist_id, dedupe_key, isrc, target,
    subgenre (as the source spells it), rule."""
    tracks = store.tracks_frame(("track_id", "artist_id", "dedupe_key", "isrc"))
    artists = labelling.artists
    labelled = artists.loc[artists["status"] == "labelled", ["artist_id", "target", "genre", "rule"]]
    return tracks.merge(labelled.rename(columns={"genre": "subgenre"}), on="artist_id", how="inner")
