"""Resolve each artist's several subgenres to one target, with integer arrays (numpy).

Policies:
- `first`: the first subgenre in the artist's list that maps decides (the seed notebook).
- `vote` (default): each mapped subgenre votes for its target with its rule's weight, times
  its vote count where the source gives one (MusicBrainz: 12 votes weigh twelve times 1); the
  top target wins when its share of the votes is at least `min_share` and it leads the
  runner-up by at least `min_margin` (as a share of all votes; a tie never passes);
  otherwise the artist is *ambiguous*.
- `priority`: the mapped subgenre whose rule has the highest priority decides; ties go to
  the earlier subgenre in the artist's list.
Artists with no mapped subgenre are *ignored* when every subgenre they carry is ignored,
else *unlabelled* (this includes artists with no genres at all). Not-genres (`not_genres:`,
Last.fm's `seen live`) are as if absent: they never vote, and never make an artist ignored.

Inputs are rows of (artist, position, subgenre) as integer codes, sorted by artist then
position, one row per distinct subgenre of an artist; every step is a vectorised array
operation, so a million artists cost about as much as a few numpy sorts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genremap.engine.matcher import IGNORED, MAPPED, NOT_GENRE, SubgenreDecision
from genremap.engine.model import Policy

LABELLED, AMBIGUOUS, UNLABELLED, IGNORED_ARTIST = "labelled", "ambiguous", "unlabelled", "ignored"
ARTIST_STATUSES = (LABELLED, AMBIGUOUS, UNLABELLED, IGNORED_ARTIST)  # index = status code
_MAPPED, _IGNORED, _UNMAPPED, _NOT_GENRE = 0, 1, 2, 3  # subgenre status codes


@dataclass(frozen=True)
class DecisionArrays:
    """Per subgenre code: status, target code (-1 for none), rule priority and vote weight."""

    status: np.ndarray
    target: np.ndarray
    priority: np.ndarray
    weight: np.ndarray

    @classmethod
    def build(cls, decisions: Sequence[SubgenreDecision], targets: Sequence[str]) -> DecisionArrays:
        target_code = {t: i for i, t in enumerate(targets)}
        status = np.full(len(decisions), _UNMAPPED, dtype=np.int8)
        target = np.full(len(decisions), -1, dtype=np.int64)
        priority = np.zeros(len(decisions), dtype=np.int64)
        weight = np.zeros(len(decisions), dtype=np.float64)
        for i, d in enumerate(decisions):
            if d.status == MAPPED and d.rule is not None:
                status[i], target[i] = _MAPPED, target_code[d.rule.target]
                priority[i], weight[i] = d.rule.priority, d.rule.weight
            elif d.status == IGNORED:
                status[i] = _IGNORED
            elif d.status == NOT_GENRE:
                status[i] = _NOT_GENRE
        return cls(status, target, priority, weight)


@dataclass(frozen=True)
class ArtistLabels:
    """Per artist: status code (index into ARTIST_STATUSES), target code (-1), the row that
    decided (-1), the winning target's share of the votes (NaN when unlabelled), the number of
    subgenres carried, and the votes per target (artists × targets)."""

    status: np.ndarray
    target: np.ndarray
    row: np.ndarray
    share: np.ndarray
    carried: np.ndarray
    votes: np.ndarray

    def details(self, targets: Sequence[str]) -> np.ndarray:
        """Why each unlabelled artist is so, in words; the vote breakdown of ambiguous artists."""
        detail = np.full(len(self.status), "", dtype=object)
        detail[(self.status == 2) & (self.carried == 0)] = "no genres"
        detail[(self.status == 2) & (self.carried > 0)] = "no subgenre maps"
        detail[self.status == 3] = "every subgenre is ignored"
        for a in np.flatnonzero(self.status == 1):
            shares = self.votes[a] / self.votes[a].sum()
            ranked = sorted(((s, t) for t, s in enumerate(shares) if s > 0), key=lambda st: (-st[0], st[1]))
            detail[a] = " / ".join(f"{targets[t]} {s:.0%}" for s, t in ranked)
        return detail


def _first_per_group(groups: np.ndarray) -> np.ndarray:
    """Indices of the first element of each run of equal values in a sorted array."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])


def resolve(
    n_artists: int,
    artist: np.ndarray,
    subgenre: np.ndarray,
    decisions: DecisionArrays,
    policy: Policy,
    targets: Sequence[str],
    row_weight: np.ndarray | None = None,
) -> ArtistLabels:
    """Label `n_artists` artists from their rows (artist code, subgenre code), sorted by artist
    then by position in the artist's list. `row_weight` (per row, default 1) multiplies each
    row's rule weight in the vote: a MusicBrainz genre's vote count."""
    n_targets = len(targets)
    sub_status = decisions.status[subgenre] if len(subgenre) else np.zeros(0, dtype=np.int8)
    mapped = np.flatnonzero(sub_status == _MAPPED)
    m_artist = artist[mapped]
    m_target = decisions.target[subgenre[mapped]]
    weights = decisions.weight[subgenre[mapped]]
    if row_weight is not None:
        weights = weights * row_weight[mapped]
    votes = np.bincount(m_artist * n_targets + m_target, weights=weights, minlength=n_artists * n_targets).reshape(
        n_artists, n_targets
    )
    total = votes.sum(axis=1)
    has_vote = total > 0

    status = np.full(n_artists, 2, dtype=np.int8)  # unlabelled
    target = np.full(n_artists, -1, dtype=np.int64)
    row = np.full(n_artists, -1, dtype=np.int64)

    if policy.name == "vote":
        top = votes.argmax(axis=1)
        ordered = np.sort(votes, axis=1)
        top_votes = ordered[:, -1] if n_targets else np.zeros(n_artists)
        second = ordered[:, -2] if n_targets > 1 else np.zeros(n_artists)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = top_votes / total
            margin = (top_votes - second) / total
        ambiguous = has_vote & ((share < policy.min_share) | (margin < policy.min_margin) | (margin <= 0))
        winner = has_vote & ~ambiguous
        # The deciding row: the artist's first subgenre (in list order) of the winning target.
        of_winner = mapped[m_target == top[m_artist]]
        firsts = of_winner[_first_per_group(artist[of_winner])]
        row[artist[firsts]] = firsts
        status[winner], target[winner] = 0, top[winner]
        status[ambiguous] = 1
        row[~winner] = -1
    else:
        if policy.name == "priority":
            order = np.lexsort((np.arange(len(mapped)), -decisions.priority[subgenre[mapped]], m_artist))
            candidates = mapped[order]
        else:  # first
            candidates = mapped
        firsts = candidates[_first_per_group(artist[candidates])]
        row[artist[firsts]] = firsts
        target[artist[firsts]] = decisions.target[subgenre[firsts]]
        status[artist[firsts]] = 0
    winners = status == 0
    share_out = np.full(n_artists, np.nan)
    share_out[winners] = votes[winners, target[winners]] / total[winners]

    # Artists without a label: ignored when every subgenre they carry is ignored.
    carried = np.bincount(artist, minlength=n_artists)
    ignored_rows = np.bincount(artist[sub_status == _IGNORED], minlength=n_artists)
    genres = carried - np.bincount(artist[sub_status == _NOT_GENRE], minlength=n_artists)  # not-genres left out
    all_ignored = (genres > 0) & (ignored_rows == genres) & ~has_vote
    status[all_ignored] = 3

    return ArtistLabels(status, target, row, share_out, carried, votes)


def decisions_frame(decisions: Mapping[str, SubgenreDecision]) -> pd.DataFrame:
    """One row per canonical subgenre: status, target, rule, priority, vote weight, conflict."""
    rows = [
        (
            s,
            d.status,
            d.target,
            d.rule.name if d.rule is not None and d.status == MAPPED else None,
            d.rule.priority if d.rule is not None and d.status == MAPPED else 0,
            d.rule.weight if d.rule is not None and d.status == MAPPED else 0.0,
            d.is_conflict,
        )
        for s, d in decisions.items()
    ]
    return pd.DataFrame(
        rows, columns=["subgenre", "status", "target", "rule", "priority", "weight", "conflict"]
    ).astype(
        {
            "subgenre": object,
            "status": object,
            "target": object,
            "rule": object,
            "priority": "int64",
            "weight": "float64",
            "conflict": "bool",
        }
    )
