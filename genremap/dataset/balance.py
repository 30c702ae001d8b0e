"""Duplicate removal, per-artist caps, undersampling and artist-disjoint splits (vectorised).

Every random choice comes from one numpy Generator seeded by the user, applied to rows in
a fixed order (sorted by track id), so the same store, rules and seed give the same sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from genremap.errors import UsageError
from genremap.words import counted

SPLITS = ("train", "validation", "test")


@dataclass
class DedupeResult:
    tracks: pd.DataFrame
    dropped_isrc: int
    dropped_title: int
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)  # the dropped rows, `duplicate` says why

    def dropped_among(self, targets: list[str]) -> tuple[int, int]:
        """Duplicates dropped (by ISRC, by artist + title) among the tracks labelled with `targets`."""
        rows = self.dropped[self.dropped["target"].isin(targets)] if "target" in self.dropped else self.dropped
        why = rows["duplicate"] if "duplicate" in rows else pd.Series(dtype=object)
        return int((why == "isrc").sum()), int((why == "title").sum())


@dataclass
class BalanceResult:
    tracks: pd.DataFrame  # the selected tracks, with a `split` column
    class_sizes: dict[str, int]  # labelled tracks per class after dedupe and the artist cap
    per_class: int
    warnings: list[str] = field(default_factory=list)
    over_artist_cap: int = 0  # tracks of the targets left out by max_per_artist


def parse_split(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' → (train, validation, test) fractions that add up to 1."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise UsageError(f"--split {text!r}: expected three fractions such as 0.8,0.1,0.1") from None
    return check_split(parts, repr(text))


def check_split(parts: tuple[float, ...], shown: str) -> tuple[float, float, float]:
    """Three finite fractions in [0, 1], train > 0, adding up to 1 (within 1e-6); NaN compares
    false with everything, so finiteness is checked first."""
    if (
        len(parts) != 3
        or not all(math.isfinite(p) and 0 <= p <= 1 for p in parts)
        or abs(sum(parts) - 1.0) > 1e-6
        or parts[0] <= 0
    ):
        raise UsageError(
            f"--split {shown}: expected three fractions between 0 and 1 (train > 0) adding up to 1, such as 0.8,0.1,0.1"
        )
    return parts[0], parts[1], parts[2]


def dedupe(tracks: pd.DataFrame) -> DedupeResult:
    """Drop repeated recordings, keeping the first by track_id: same ISRC, else same normalised
    primary artist + title. `tracks` has track_id, isrc_hash (0 = unknown) and dedupe_hash."""
    ordered = tracks if tracks["track_id"].is_monotonic_increasing else tracks.sort_values("track_id", kind="stable")
    isrc = ordered["isrc_hash"]
    dup_isrc = ((isrc != 0) & isrc.duplicated()).to_numpy()
    kept = ordered[~dup_isrc]
    dup_title = kept["dedupe_hash"].duplicated().to_numpy()
    dropped = pd.concat([ordered[dup_isrc].assign(duplicate="isrc"), kept[dup_title].assign(duplicate="title")])
    return DedupeResult(kept[~dup_title], int(dup_isrc.sum()), int(dup_title.sum()), dropped)


def balance(
    tracks: pd.DataFrame,
    targets: list[str],
    *,
    seed: int,
    per_class: int | None = None,
    max_per_artist: int | None = None,
    allow_short: bool = False,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> BalanceResult:
    """Sample the same number of tracks per target, at most `max_per_artist` per artist, and split.

    `tracks` needs columns track_id, artist (any artist key) and target. Undersamples every
    target to the smallest class unless `per_class` is given. Works on integer arrays: the
    frame's other columns are carried along untouched.
    """
    rng = np.random.default_rng(seed)
    frame = tracks[tracks["target"].isin(targets)]
    if not frame["track_id"].is_monotonic_increasing:
        frame = frame.sort_values("track_id", kind="stable")
    frame = frame.reset_index(drop=True)
    key = rng.random(len(frame))
    target_code = _target_codes(frame["target"], targets)
    artist_code = pd.factorize(frame["artist"])[0]
    keep = np.ones(len(frame), dtype=bool)
    if max_per_artist is not None:
        if max_per_artist < 1:
            raise UsageError("--max-per-artist must be at least 1")
        by_artist = np.lexsort((key, artist_code))
        keep[by_artist] = _rank_in_groups(artist_code[by_artist]) < max_per_artist
    counts = np.bincount(target_code[keep], minlength=len(targets))
    class_sizes = {t: int(counts[i]) for i, t in enumerate(targets)}
    warnings: list[str] = []
    listing = ", ".join(f"{t} {n}" for t, n in sorted(class_sizes.items(), key=lambda kv: kv[1]))
    empty = [t for t, n in class_sizes.items() if n == 0]
    if empty and not allow_short:
        raise UsageError(
            f"no labelled tracks for {', '.join(empty)} (class sizes: {listing}); import or collect more, "
            "edit the rules, choose classes with --targets, or pass --allow-short to drop empty classes"
        )
    if empty:
        warnings.append(f"dropped empty classes: {', '.join(empty)}")
    live = {t: n for t, n in class_sizes.items() if n > 0}
    if not live:
        raise UsageError("no labelled tracks at all: import data first (genremap import FILE) or check the rules")
    if per_class is None:
        target_n = min(live.values())
    else:
        if per_class < 1:
            raise UsageError("--per-class must be at least 1")
        short = {t: n for t, n in live.items() if n < per_class}
        if short and not allow_short:
            raise UsageError(
                f"--per-class {per_class} is not reachable: class sizes are {listing}; "
                "lower it, or pass --allow-short to keep the short classes as they are"
            )
        if short:
            warnings.append("short classes kept as they are: " + ", ".join(f"{t} {n}" for t, n in short.items()))
        target_n = per_class
    candidates = np.flatnonzero(keep)
    by_class = candidates[np.lexsort((key[candidates], target_code[candidates]))]
    chosen = np.sort(by_class[_rank_in_groups(target_code[by_class]) < target_n])
    picked = frame.iloc[chosen].reset_index(drop=True)
    picked["split"] = assign_splits(picked, split, rng, warnings)
    return BalanceResult(picked, class_sizes, target_n, warnings, over_artist_cap=int((~keep).sum()))


def _target_codes(target: pd.Series, targets: list[str]) -> np.ndarray:
    """Each row's position in `targets` (-1 for none); a categorical column maps its few
    categories rather than every row's text."""
    wanted = pd.Index(targets)
    if isinstance(target.dtype, pd.CategoricalDtype):
        of_category = np.append(wanted.get_indexer(target.cat.categories.astype(object)), -1)  # code -1: missing
        return of_category[target.cat.codes.to_numpy()].astype(np.int64)
    return wanted.get_indexer(pd.Index(target.astype(object))).astype(np.int64)


def _rank_in_groups(sorted_groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    if len(sorted_groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    return np.arange(len(sorted_groups)) - np.repeat(starts, np.diff(np.r_[starts, len(sorted_groups)]))


def _fill_splits(
    wanted: list[str], goal_share: dict[str, float], total: float, artists: list[Any], sizes: list[int]
) -> dict[str, list[tuple[Any, int]]]:
    """Each artist in turn (sizes[i] tracks) to the split furthest below its goal, the first
    of those on a tie: a plain loop over lists, as it runs once per artist."""
    goals = [goal_share[name] for name in wanted]
    filled = [0.0] * len(wanted)
    chosen: list[list[tuple[Any, int]]] = [[] for _ in wanted]
    splits = range(len(wanted))
    for artist, count in zip(artists, sizes, strict=True):
        best, gap = 0, goals[0] * total - filled[0]
        for i in splits:
            room = goals[i] * total - filled[i]
            if room > gap:
                best, gap = i, room
        filled[best] += count
        chosen[best].append((artist, int(count)))
    return dict(zip(wanted, chosen, strict=True))


def assign_splits(
    tracks: pd.DataFrame, ratios: tuple[float, float, float], rng: np.random.Generator, warnings: list[str]
) -> pd.Series:
    """Artist-disjoint splits per class: no artist in two splits, every split non-empty when possible.

    Artists go, largest first (random order among equals), to the split furthest below its
    share of the class's tracks; if a split ends up empty, the smallest artist of the split
    holding the most artists moves there.
    """
    wanted = [s for s, r in zip(SPLITS, ratios, strict=True) if r > 0]
    goal_share = {s: r for s, r in zip(SPLITS, ratios, strict=True) if r > 0}
    assignment: dict[str, str] = {}
    for target in sorted(tracks["target"].unique()):
        per_artist = tracks.loc[tracks["target"] == target, "artist"].value_counts().sort_index()
        shuffle = rng.random(len(per_artist))
        sizes = per_artist.to_numpy()
        order = np.lexsort((shuffle, -sizes))  # largest first, random among equals
        total = float(per_artist.sum())
        members = _fill_splits(wanted, goal_share, total, per_artist.index[order].tolist(), sizes[order].tolist())
        if len(per_artist) < len(wanted):
            warnings.append(
                f"class '{target}' has {len(per_artist)} artist(s): it cannot appear in all of {', '.join(wanted)} "
                "without sharing an artist across splits"
            )
        else:
            for split_name in wanted:
                if not members[split_name]:
                    donor = max(wanted, key=lambda s: (len(members[s]), -wanted.index(s)))
                    smallest = min(members[donor], key=lambda a: (a[1], a[0]))
                    members[donor].remove(smallest)
                    members[split_name].append(smallest)
            if len(per_artist) < 10:
                warnings.append(
                    f"class '{target}' has only {counted(len(per_artist), 'artist')}: split sizes will be uneven"
                )
        for split_name, artists in members.items():
            for artist, _ in artists:
                assignment[artist] = split_name
    return tracks["artist"].map(assignment)
